"""Benchmark: the arena's vote loop under load, through a real application server.

Duet runs under gunicorn (several workers) on PostgreSQL (a throwaway cluster this script
starts with initdb/pg_ctl on a free loopback port) and on SQLite. Simulated voters (one
asyncio task each, keep-alive HTTP over loopback, token authentication) repeat "next
comparison, vote" for a fixed time, in two flows (`--flow`, both by default):

- separate: GET next, then POST vote; two round trips per vote (the loop the issue's
  target, at least half the ceiling below with p99 < 150 ms, is set for);
- chained: each vote asks for the following comparison (POST vote/?next=1), as the arena
  page does; one round trip per vote, so with the same 64 voters each round trip waits
  for twice as many others (Little's law: mean latency = voters / votes per second).

`--hosts 2` runs two web "hosts" (gunicorn process groups, each with its own DUET_VAR_DIR,
the voters split between them) on one database and a private Redis (`--redis`, implied),
which also carries the Celery broker. A Celery worker refreshes the board during the run,
as it does in use (`--no-worker` to leave it out; without Redis it reads the first host's
embedded broker, so with one host only).

In the same run the same servers answer a trivial JSON view (`/api/ping/`: Django's
middleware, no database) for `--ceiling-seconds`, from the same voters on the same
connections: the machine's ceiling for a request through Django. The figure that travels
between machines is the vote loop's ratio to it, counted as two requests per vote.

Reported: votes per second, the ceiling and the ratio, p50/p95/p99 of each request and of
the whole next+vote cycle, errors by kind, CPU per vote (web, database, worker, voters),
the board refreshes; then every acknowledged vote is looked up in the database: lost
(acknowledged, not stored) and doubled (stored twice, or counted twice on the leaderboard)
must both be zero. Prints figures; not a test.

    .venv/bin/python bench/load.py [--db sqlite|postgres|both] [--flow separate|chained|both]
        [--hosts 1|2] [--redis] [--no-worker] [--seconds 60] [--voters 64] [--workers 4]
        [--systems 8] [--prompts 100] [--ceiling-seconds 20] [--ports 8114,8124] [--profile]

The voters, gunicorn, the database and any other work on the machine share its cores:
the script prints the load average before and after so a reader can judge contention.
`--profile` samples one gunicorn worker with py-spy (pip install py-spy) while it holds
the GIL (so: its CPU) and prints the top frames. `--settings MODULE` runs the server with
another settings module. `--limits off` measures what the rate limits cost.

After the warm-up the PostgreSQL tables are analysed, as autovacuum does within a minute
on a running server: they were empty when the warm-up began, and without statistics the
planner may sort a voter's whole history to find their newest comparison.

Each web process warms its own caches (arena/hotcache.py: rendered outputs, the
matchmaking index, token owners) during the warm-up; the figures are steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
VERDICTS = ("a", "b", "a", "b", "tie", "both_bad")  # mostly decisive, like real arenas


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


def process_tree(root_pid: int | None) -> dict[int, tuple[list[str], str]]:
    """Each process under root_pid (itself included): its /proc stat fields after the
    command name, and its command line (for PostgreSQL, the process title)."""
    if root_pid is None:
        return {}
    parents, found = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        found[pid] = (fields, title)
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return {pid: found[pid] for pid in tree if pid in found}


def tree_cpu_seconds(root_pid: int | None, part: str = "both") -> float:
    """CPU seconds (user, system or both) used so far by a process and all its descendants,
    those that have exited included (a process's children's times count once they are
    reaped: Django reconnects every CONN_MAX_AGE seconds, and PostgreSQL's backend for the
    old connection exits)."""
    total = 0
    for fields, _ in process_tree(root_pid).values():
        # utime, stime, then cutime, cstime: the reaped children's
        user = int(fields[11]) + int(fields[13])
        system = int(fields[12]) + int(fields[14])
        total += {"user": user, "system": system, "both": user + system}[part]
    return total / os.sysconf("SC_CLK_TCK")


def tree_cpu_by_role(root_pid: int | None) -> Counter:
    """CPU seconds so far of each live process under root_pid, summed by role (for
    PostgreSQL its process title without the client address: "postgres: postgres duet",
    "postgres: autovacuum worker", "postgres: walwriter"...; the server itself as
    "postmaster"), plus "exited" for what the reaped children used."""
    roles: Counter = Counter()
    tick = os.sysconf("SC_CLK_TCK")
    for pid, (fields, title) in process_tree(root_pid).items():
        role = " ".join(word for word in title.split()[:4] if "(" not in word and "." not in word)
        role = "postmaster" if pid == root_pid else role or "?"
        roles[role] += (int(fields[11]) + int(fields[12])) / tick
        roles["exited"] += (int(fields[13]) + int(fields[14])) / tick
    return roles


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- databases ------------------------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL cluster in a temp dir, owned by the `postgres` user, on a free
    loopback port; stopped and deleted on exit. Default server settings (fsync on), so
    the figures are what a stock install gives."""

    def __init__(self, workdir: Path):
        if not PG_BIN_CANDIDATES:
            raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql")
        self.bin = PG_BIN_CANDIDATES[0]
        self.dir = workdir / "pg"
        self.port = free_port()

    def _as_postgres(self, *args, **kwargs):
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> str:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        self._as_postgres(self.bin / "initdb", "-D", self.dir / "data", "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self._as_postgres(
            self.bin / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "server.log", "-w", "start",
            "-o", f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c max_connections=200",
        )  # fmt: skip
        self._as_postgres(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "duet")
        return f"postgres://postgres@127.0.0.1:{self.port}/duet"

    def analyze(self) -> None:
        """What autovacuum does within a minute of a table's growth: the tables were empty
        when the warm-up began, and a server that has been running has statistics."""
        self._as_postgres(self.bin / "psql", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", "-d", "duet",
                          "-q", "-c", "ANALYZE")  # fmt: skip

    def pid(self) -> int | None:
        pid_file = self.dir / "data" / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None

    def stop(self) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            self._as_postgres(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "stop")


class Redis:
    """A private redis-server on a free loopback port, nothing saved to disk."""

    def __init__(self, workdir: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed: apt-get install -y redis-server")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port, 30, self.process)
        self.url = f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


# --- the arena ------------------------------------------------------------------------------

SETUP = """
import json, sys
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from arena.board.snapshots import default_arena, refresh_arena
from arena.models import Battle, Output, Prompt, Provider, System
from arena.roles import assign_role, ensure_roles
from django.utils import timezone

n_voters, n_systems, n_prompts = {voters}, {systems}, {prompts}
ensure_roles()
systems = [System.objects.create(name=f"load-sys-{{i}}", provider=Provider.UPLOADED) for i in range(n_systems)]
prompts = Prompt.objects.bulk_create([Prompt(text=f"Question {{j}}: explain idea {{j}} briefly.") for j in range(n_prompts)])
body = "## Answer\\n\\nHere is a **short** answer with a list:\\n\\n- first point\\n- second point\\n\\n" + "More text. " * 30
Output.objects.bulk_create([
    Output(system=s, prompt=p, text=f"{{body}} ({{s.name}}/{{p.pk}})", metadata={{"tokens": 120}})
    for s in systems for p in prompts
])
# A board to match against, as a running arena has: some imported battles, one refresh.
arena = default_arena()
Battle.objects.bulk_create([
    Battle(arena=arena, system_a=systems[i % n_systems], system_b=systems[(i * 7 + 1) % n_systems],
           outcome="a" if i % 3 else "b", source="import", tstamp=timezone.now())
    for i in range(400) if i % n_systems != (i * 7 + 1) % n_systems
])
refresh_arena(arena)
User = get_user_model()
tokens = []
for k in range(n_voters):
    user = User.objects.create_user(f"load-voter-{{k}}", password=None)
    assign_role(user, "annotator")
    tokens.append(Token.objects.create(user=user).key)
print("TOKENS" + json.dumps(tokens))
"""

VERIFY = """
import json, sys
from django.db.models import Count
from arena.models import Battle, Judgment
acked = set(json.load(open({acked_path!r})))
stored = Judgment.objects.filter(judge__user__username__startswith="load-voter-")
stored_ids = set(str(u) for u in stored.values_list("public_id", flat=True))
twice = stored.values("comparison_id", "judge_id").annotate(n=Count("id")).filter(n__gt=1).count()
battles_twice = Battle.objects.filter(judgment__isnull=False).values("judgment_id").annotate(n=Count("id")).filter(n__gt=1).count()
unbattled = stored.filter(battle__isnull=True).count()
print("VERIFY" + json.dumps({{
    "acknowledged": len(acked), "stored": len(stored_ids), "lost": len(acked - stored_ids),
    "stored_unacknowledged": len(stored_ids - acked), "doubled_judgments": twice,
    "doubled_battles": battles_twice, "judgments_without_battle": unbattled,
}}))
"""


def manage(env: dict, *args: str, timeout: float = 600) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args[:1])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


# --- the voters -----------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            try:
                self.writer.write(head.encode() + body)
                await self.writer.drain()
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("server closed the connection")
                status = int(status_line.split()[1])
                length, close = 0, False
                while True:
                    line = await self.reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                payload = await self.reader.readexactly(length) if length else b""
                if close:
                    self.close()
                return status, payload
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                # Only a request that never reached the server is retried (a stale idle
                # connection); a vote's POST is never sent twice by this client.
                if attempt == 2 or status_line:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def voter(port: int, token: str, deadline: float, stats: dict, rng: random.Random, min_votes: int = 0,
                flow: str = "chained") -> None:
    """One voter's loop. "chained" (what the arena page does): GET next once, then each
    vote asks for the following comparison (POST vote/?next=1), one round trip per vote.
    "separate": GET next, then POST vote, two round trips per vote."""
    connection = Connection(port)
    auth = {"Authorization": f"Token {token}", "Accept": "application/json"}
    vote_path = "/api/arena/vote/?next=1" if flow == "chained" else "/api/arena/vote/"
    voted, served = 0, None  # served: the vote token of the comparison in hand
    while time.monotonic() < deadline or voted < min_votes:
        cycle_start = time.perf_counter()
        try:
            if served is None:
                start = time.perf_counter()
                status, payload = await connection.request("GET", "/api/arena/next/?modality=text", auth)
                stats["next_ms"].append((time.perf_counter() - start) * 1000)
                if status != 200:
                    stats["errors"][f"next {status}: {payload[:120]!r}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                served = json.loads(payload)["token"]
            body = json.dumps({"token": served, "verdict": rng.choice(VERDICTS), "time_to_vote_ms": 1500}).encode()
            served = None
            start = time.perf_counter()
            status, payload = await connection.request("POST", vote_path, {**auth, "Content-Type": "application/json"}, body)
            stats["vote_ms"].append((time.perf_counter() - start) * 1000)
            if status == 201:
                voted += 1
                answer = json.loads(payload)
                stats["acked"].append(answer["judgment"])
                stats["cycle_ms"].append((time.perf_counter() - cycle_start) * 1000)
                if answer.get("next"):
                    served = answer["next"]["token"]
                elif flow == "chained":
                    stats["errors"][f"vote without next: {answer.get('next_error')}"[:160]] += 1
            elif status == 200:
                stats["errors"]["vote 200 duplicate (unexpected)"] += 1
            else:
                stats["errors"][f"vote {status}: {payload[:120]!r}"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            stats["errors"][f"{type(error).__name__}: {error}"[:160]] += 1
            connection.close()
            served = None
            await asyncio.sleep(0.05)
    connection.close()


def cpu_seconds(pids: list[int | None], part: str = "both") -> float:
    return sum(tree_cpu_seconds(pid, part) for pid in pids)


async def drive(ports: list[int], tokens: list[str], seconds: float, warmup: float, cpu: dict, web_pids: list[int],
                db_pid: int | None, worker_pid: int | None, flow: str, after_warmup=None) -> dict:
    """The voters, split between the hosts' ports (voter i on host i mod hosts)."""
    def port(i: int) -> int:
        return ports[i % len(ports)]

    # Warm-up: voters vote for `warmup` seconds (at least 3 times each) so every worker has
    # opened its connection, prepared its statements and filled its caches (each process
    # renders every output once); those figures are dropped.
    warm = {"next_ms": [], "vote_ms": [], "cycle_ms": [], "acked": [], "errors": Counter()}
    deadline = time.monotonic() + warmup
    await asyncio.gather(*(voter(port(i), t, deadline, warm, random.Random(i), 3, flow) for i, t in enumerate(tokens)))
    if after_warmup is not None:
        after_warmup()
    stats = {"next_ms": [], "vote_ms": [], "cycle_ms": [], "acked": [], "errors": Counter()}
    # CPU used by the servers, the database, the worker and the voters, over the measured window only
    db_roles = tree_cpu_by_role(db_pid)
    cpu.update(web=-cpu_seconds(web_pids), db=-tree_cpu_seconds(db_pid), worker=-tree_cpu_seconds(worker_pid),
               voters=-time.process_time(), web_system=-cpu_seconds(web_pids, "system"),
               db_system=-tree_cpu_seconds(db_pid, "system"))  # fmt: skip
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(voter(port(i), t, deadline, stats, random.Random(1000 + i), flow=flow)
                           for i, t in enumerate(tokens)))  # fmt: skip
    stats["elapsed"] = time.monotonic() - started
    cpu["web"] += cpu_seconds(web_pids)
    cpu["db"] += tree_cpu_seconds(db_pid)
    cpu["worker"] += tree_cpu_seconds(worker_pid)
    cpu["voters"] += time.process_time()
    cpu["web_system"] += cpu_seconds(web_pids, "system")
    cpu["db_system"] += tree_cpu_seconds(db_pid, "system")
    db_roles = tree_cpu_by_role(db_pid) - db_roles
    stats["db_roles"] = db_roles
    stats["warm_acked"] = warm["acked"]
    stats["warm_errors"] = warm["errors"]
    return stats


async def pinger(port: int, deadline: float, latencies: list[float], errors: Counter) -> None:
    connection = Connection(port)
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            status, payload = await connection.request("GET", "/api/ping/", {"Accept": "application/json"})
        except (OSError, asyncio.IncompleteReadError) as error:
            errors[f"{type(error).__name__}: {error}"[:160]] += 1
            connection.close()
            continue
        if status == 200:
            latencies.append((time.perf_counter() - start) * 1000)
        else:
            errors[f"ping {status}"] += 1
    connection.close()


async def ceiling(ports: list[int], n_clients: int, seconds: float) -> dict:
    """The same number of clients, on the same servers, asking for /api/ping/: requests/s."""
    await asyncio.gather(*(pinger(ports[i % len(ports)], time.monotonic() + 2.0, [], Counter())
                           for i in range(n_clients)))  # fmt: skip
    latencies, errors = [], Counter()
    started = time.monotonic()
    await asyncio.gather(*(pinger(ports[i % len(ports)], started + seconds, latencies, errors)
                           for i in range(n_clients)))  # fmt: skip
    elapsed = time.monotonic() - started
    return {"rps": len(latencies) / elapsed, "ms": latencies, "errors": errors}


def run_loop(coroutine):
    """The voters share the machine's cores with the server they measure: uvloop spends
    about half of asyncio's CPU per request, which leaves more for the server."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - in requirements.txt; asyncio works, slower
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)

    def at(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.50):6.1f}  p95 {at(0.95):6.1f}  p99 {at(0.99):6.1f}  max {ordered[-1]:7.1f} ms"


# --- one run --------------------------------------------------------------------------------


def profile_worker(server: subprocess.Popen, seconds: float, out: Path, delay: float = 0.0) -> subprocess.Popen | None:
    """py-spy on one worker for `seconds`, starting after `delay` (the warm-up: its first
    renders and loads are not the steady state)."""
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(spy).exists():
        print("  (py-spy not installed: pip install py-spy; skipping the profile)")
        return None
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    if not children:
        return None
    record = [spy, "record", "-p", children[0], "-d", str(int(seconds)), "-f", "raw", "-o", str(out), "-r", "200",
              "--gil", "--nonblocking"]  # fmt: skip
    return subprocess.Popen(
        ["sh", "-c", f'sleep {delay:.1f} && exec "$@"', "py-spy", *record],
        stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "w"),
    )  # fmt: skip


def top_frames(raw: Path, n: int = 25) -> str:
    """Self and inclusive sample counts per function from py-spy's collapsed stacks."""
    if not raw.exists():
        log = raw.with_suffix(".log")
        return "  (no profile written)" + (f": {log.read_text()[-500:]}" if log.exists() else "")
    inclusive, own, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        count = int(count)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"  {total} samples; inclusive % / own % / function"]
    for frame, count in inclusive.most_common(n):
        lines.append(f"  {100 * count / total:5.1f} {100 * own[frame] / total:5.1f}  {frame[:150]}")
    # Duet's own functions, which is where a change can be made
    lines.append("  -- Duet's functions:")
    duet = [(frame, count) for frame, count in inclusive.most_common() if f"{ROOT}/" in frame or "(arena/" in frame]
    for frame, count in duet[:n]:
        lines.append(f"  {100 * count / total:5.1f} {100 * own[frame] / total:5.1f}  {frame[:150]}")
    lines.append("  -- most own time:")
    for frame, count in own.most_common(n):
        lines.append(f"  {100 * inclusive[frame] / total:5.1f} {100 * count / total:5.1f}  {frame[:150]}")
    return "\n".join(lines)


def start_gunicorn(env: dict, workdir: Path, port: int, args, name: str) -> subprocess.Popen:
    log = open(workdir / f"{name}.log", "w")
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "bench_wsgi", "--preload", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "-k", args.worker_class, "--threads", str(args.threads), "--keep-alive", "30", "--backlog", "2048",
         "--timeout", "120"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for_port(port, 60, server)
    return server


def start_worker(env: dict, workdir: Path) -> subprocess.Popen:
    """A Celery worker on the quick lane's queue: the board refresh."""
    log = open(workdir / "worker.log", "w")
    return subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "default", "-c", "1", "--loglevel=INFO",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env={**env, "DUET_LOG_LEVEL": "INFO"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run(db: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"duet-load-{db}-"))
    postgres = redis = worker = None
    servers: list[subprocess.Popen] = []
    try:
        common = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": args.settings,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{workdir}",
            "DJANGO_DEBUG": "0",
            "DUET_LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
            # Tuned models and exports: one folder both hosts share, as a network folder would be.
            "DUET_STORAGE_DIR": str(workdir / "shared"),
            # The limits stay on (their cost is part of the figures) but far above the load,
            # unless --limits off measures what they cost.
            "DUET_VOTE_RATE_LIMIT": "1000000/minute" if args.limits == "on" else "off",
            "DUET_NEXT_RATE_LIMIT": "1000000/minute" if args.limits == "on" else "off",
            "DUET_CLIENT_RATE_LIMIT": "1000000/minute" if args.limits == "on" else "off",
        }
        if args.redis:
            redis = Redis(workdir)
            common["DUET_REDIS_URL"] = f"{redis.url}/0"
            common["CELERY_BROKER_URL"] = f"{redis.url}/1"
        if db == "postgres":
            postgres = Postgres(workdir)
            common["DATABASE_URL"] = postgres.start()
        else:
            common["DATABASE_URL"] = f"sqlite:///{workdir / 'duet.sqlite3'}"
        envs = [{**common, "DUET_VAR_DIR": str(workdir / f"host{h}" / "var")} for h in range(args.hosts)]
        manage(envs[0], "migrate", "--noinput")
        setup = SETUP.format(voters=args.voters, systems=args.systems, prompts=args.prompts)
        tokens = json.loads(manage(envs[0], "shell", "-c", setup).split("TOKENS", 1)[1])

        (workdir / "bench_wsgi.py").write_text(PRELOADED_WSGI)
        ports = args.ports[: args.hosts] if args.ports else []
        ports += [free_port() for _ in range(args.hosts - len(ports))]
        servers = [start_gunicorn(env, workdir, port, args, f"gunicorn-host{h}")
                   for h, (env, port) in enumerate(zip(envs, ports, strict=True))]  # fmt: skip
        if args.worker:
            worker = start_worker(envs[0], workdir)
            wait_for_log(workdir / "worker.log", "ready.", 180, worker)
        before = load_average()
        spy = profile_worker(servers[0], args.seconds - 2, workdir / "profile.txt", args.warmup + 2) if args.profile else None
        db_pid = postgres.pid() if postgres else None
        cpu = {}
        stats = run_loop(drive(ports, tokens, args.seconds, args.warmup, cpu, [server.pid for server in servers],
                               db_pid, worker.pid if worker else None, args.flow,
                               postgres.analyze if postgres else None))  # fmt: skip
        after = load_average()
        if spy is not None:
            spy.wait(timeout=120)
        refreshes = worker_refreshes(workdir / "worker.log") if worker else None
        limit = run_loop(ceiling(ports, args.voters, args.ceiling_seconds)) if args.ceiling_seconds > 0 else None
        after_ceiling = load_average()

        acked_path = workdir / "acked.json"
        acked_path.write_text(json.dumps(stats["acked"] + stats["warm_acked"]))
        verify = json.loads(manage(envs[0], "shell", "-c", VERIFY.format(acked_path=str(acked_path))).split("VERIFY", 1)[1])
        result = {"db": db, "stats": stats, "verify": verify, "load_before": before, "load_after": after, "cpu": cpu,
                  "ceiling": limit, "load_after_ceiling": after_ceiling, "refreshes": refreshes}  # fmt: skip
        report(result, args)
        if args.profile:
            print(top_frames(workdir / "profile.txt"))
        return result
    finally:
        for process in [*servers, worker]:
            stop(process)
        if postgres is not None:
            postgres.stop()
        if redis is not None:
            redis.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"  kept {workdir}")


def wait_for_log(path: Path, text: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{path.name}: no {text!r}:\n{path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def worker_refreshes(log: Path) -> int:
    """Board refreshes the worker finished."""
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if "arena.tasks.refresh_leaderboards" in line and "succeeded" in line)  # fmt: skip


def report(result: dict, args) -> None:
    stats, verify = result["stats"], result["verify"]
    votes = len(stats["acked"])
    errors = sum(stats["errors"].values())
    hosts = f"{args.hosts} hosts x " if args.hosts > 1 else ""
    print(f"\n== {result['db']}{' + redis' if args.redis else ''}: {args.voters} voters, {stats['elapsed']:.1f} s, "
          f"{hosts}gunicorn {args.workers} {args.worker_class} workers x {args.threads} threads, rate limits "
          f"{args.limits}, {args.flow} flow, {'a worker refreshing the board' if args.worker else 'no worker'}")  # fmt: skip
    print(f"  load average before {result['load_before']}, after {result['load_after']} ({os.cpu_count()} cores)")
    rate = votes / stats["elapsed"]
    print(f"  votes/s      {rate:8.1f}   ({votes} votes acknowledged)")
    limit = result.get("ceiling")
    if limit:
        requests_per_vote = 1 if args.flow == "chained" else 2
        print(f"  ceiling      {limit['rps']:8.1f} requests/s of GET /api/ping/ ({percentiles(limit['ms'])}; "
              f"errors {sum(limit['errors'].values())}; load average after {result['load_after_ceiling']})")
        print(f"  ratio        {requests_per_vote * rate / limit['rps']:8.2f}   (votes/s x {requests_per_vote} requests "
              f"per vote / ceiling; target >= 0.5)")  # fmt: skip
    if args.flow == "chained":
        # Each vote's round trip also serves the next comparison; GET next runs once per
        # voter (in the warm-up) and after an error.
        print(f"  vote+next    {percentiles(stats['vote_ms'])}   (one round trip per vote)")
        if stats["next_ms"]:
            print(f"  GET next     {percentiles(stats['next_ms'])}   ({len(stats['next_ms'])} in the measured window)")
    else:
        print(f"  next         {percentiles(stats['next_ms'])}")
        print(f"  vote         {percentiles(stats['vote_ms'])}")
        print(f"  next+vote    {percentiles(stats['cycle_ms'])}")
    if result.get("refreshes") is not None:
        print(f"  board        {result['refreshes']} refreshes by the worker (warm-up and measured window)")
    cpu = result["cpu"]
    if votes:
        per_vote = {part: 1000 * seconds / votes for part, seconds in cpu.items()}
        total = per_vote["web"] + per_vote["db"] + per_vote["voters"] + per_vote["worker"]
        print(f"  CPU per vote web {per_vote['web']:.1f} ms + database {per_vote['db']:.1f} ms + worker "
              f"{per_vote['worker']:.1f} ms + voters {per_vote['voters']:.1f} ms = {total:.1f} ms: at most "
              f"{1000 * (os.cpu_count() or 1) / total:.0f} votes/s if this run had the machine to itself")  # fmt: skip
        print(f"  of which in the kernel: web {per_vote['web_system']:.1f} ms, database {per_vote['db_system']:.1f} ms")
        if stats.get("db_roles"):
            print("  database CPU per vote by process: " + ", ".join(
                f"{role} {1000 * seconds / votes:.2f} ms" for role, seconds in stats["db_roles"].most_common(6)))
    print(f"  errors       {errors}" + "".join(f"\n    {n} x {what}" for what, n in stats["errors"].most_common(8)))
    print(f"  check        acknowledged {verify['acknowledged']} (incl. warm-up), stored {verify['stored']}, "
          f"lost {verify['lost']}, doubled judgments {verify['doubled_judgments']}, doubled battles "
          f"{verify['doubled_battles']}, judgments without battle {verify['judgments_without_battle']}, "
          f"stored but unacknowledged {verify['stored_unacknowledged']}")  # fmt: skip


# gunicorn --preload imports the application once in the master and forks warm workers.
# The URL configuration pulls in numpy and scipy.stats through arena.board.snapshots (about
# 1.3 s of CPU on an idle core, several seconds on a busy one); without this each worker
# pays that on its first request, in the middle of the measurement.
PRELOADED_WSGI = textwrap.dedent("""
    from config.wsgi import application  # noqa: F401
    from django.urls import get_resolver

    get_resolver().url_patterns
    import arena.voting.actions, arena.board.snapshots, arena.ratings  # noqa: E401,F401
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--voters", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    # One thread per worker measured best on 2 cores (4 x 4 threads: -40%, GIL hand-offs).
    parser.add_argument("--threads", type=int, default=1)
    # sync: a free worker takes the next request from the shared queue, so no voter waits
    # behind a busy worker's other keep-alive connections (p99 142 ms vs 265 ms with gthread).
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class: sync or gthread (keep-alive)")
    parser.add_argument("--systems", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--settings", default="config.settings")
    parser.add_argument("--limits", choices=["on", "off"], default="on", help="rate limits counted (far above the load) or off")
    parser.add_argument("--flow", choices=["separate", "chained", "both"], default="both",
                        help="separate: GET next then POST vote, two round trips per vote (the loop the load target "
                             "is set for); chained: each vote brings the next comparison (POST vote/?next=1, what "
                             "the arena page does), one round trip per vote")  # fmt: skip
    parser.add_argument("--hosts", type=int, choices=[1, 2], default=1,
                        help="web hosts: gunicorn process groups with their own DUET_VAR_DIR (2 implies --redis)")
    parser.add_argument("--redis", action="store_true", help="a private redis-server for the shared state and broker")
    parser.add_argument("--no-worker", dest="worker", action="store_false",
                        help="no Celery worker: refreshes are requested but never run")
    parser.add_argument("--ceiling-seconds", type=float, default=20.0,
                        help="seconds of GET /api/ping/ after the vote loop (0: not measured)")
    parser.add_argument("--ports", type=lambda text: [int(p) for p in text.split(",") if p],
                        default=[], help="the hosts' ports, comma-separated (default: free ones)")
    parser.add_argument("--profile", action="store_true", help="sample one gunicorn worker with py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    args = parser.parse_args()
    if args.hosts > 1:
        args.redis = True  # the hosts' shared state and their worker's broker
    for db in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
        for flow in (["separate", "chained"] if args.flow == "both" else [args.flow]):
            run(db, argparse.Namespace(**{**vars(args), "flow": flow}))


if __name__ == "__main__":
    main()
