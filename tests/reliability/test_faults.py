"""Faults: a worker killed mid-task, Redis restarted while votes arrive, an import killed
half-way, SQLite under concurrent writes. Real subprocesses (celery, gunicorn, manage.py,
redis-server) share the file-based test database with the test."""

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings as django_settings

from arena.models import Arena, Battle, Judgment, LeaderboardSnapshot, Output, Prompt, Provider, System

from .conftest import ROOT, free_port, start_gunicorn, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(condition, timeout: float, interval: float = 0.1, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def manage_shell(env: dict, code: str, timeout: float = 120) -> str:
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# --- a worker killed in the middle of a long task --------------------------------------------

END_MARK = "[complete]"


@pytest.fixture
def slow_completions():
    """An OpenAI-compatible endpoint on loopback that takes 0.25 s per answer."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            question = body["messages"][-1]["content"]
            calls.append(question)
            time.sleep(0.25)
            answer = {"choices": [{"message": {"content": f"Answer to {question} {END_MARK}"}, "finish_reason": "stop"}],
                      "usage": {"completion_tokens": 7, "prompt_tokens": 5}}  # fmt: skip
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", calls
    server.shutdown()


def slow_system(base_url: str, n_prompts: int) -> System:
    system = System.objects.create(
        name="slow-remote", provider=Provider.OPENAI,
        provider_config={"base_url": base_url, "model": "slow", "concurrency": 1, "retries": 0},
    )  # fmt: skip
    Prompt.objects.bulk_create([Prompt(text=f"question {k}") for k in range(n_prompts)])
    return system


def assert_outputs_complete(system: System, n_prompts: int) -> None:
    outputs = list(Output.objects.filter(system=system).select_related("prompt"))
    assert len(outputs) == n_prompts
    assert len({output.prompt_id for output in outputs}) == n_prompts  # exactly one per prompt
    for output in outputs:
        assert output.text == f"Answer to {output.prompt.text} {END_MARK}", output.text
        assert output.metadata.get("tokens") == 7


def queue_generation(env: dict, system_id: int) -> None:
    manage_shell(env, f"from arena.tasks import generate_outputs; generate_outputs.delay({system_id})")


def pool_children(worker) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_pool_process_killed_mid_task_is_retried_to_completion(subprocess_env, processes, slow_completions):
    # given a slow system with 24 prompts, generated two at a time by a worker
    base_url, calls = slow_completions
    n_prompts = 24
    system = slow_system(base_url, n_prompts)
    env = {**subprocess_env, "DUET_GENERATION_BATCH_SIZE": "2"}
    worker = start_worker(processes, env)
    queue_generation(env, system.pk)
    wait_until(lambda: Output.objects.filter(system=system).count() >= 4, 120, message="the first outputs")
    # when the pool process running the task is SIGKILLed (as the OOM killer would)
    children = pool_children(worker)
    assert children, processes.log("worker")
    done_before = Output.objects.filter(system=system).count()
    assert done_before < n_prompts
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    # then the worker notices, requeues the task (acks_late + reject_on_worker_lost), and
    # a fresh pool process finishes it
    wait_until(lambda: Output.objects.filter(system=system).count() == n_prompts, 180,
               message=f"all outputs; worker log:\n{processes.log('worker')}")  # fmt: skip
    assert "WorkerLostError" in processes.log("worker", tail=100_000) or "worker lost" in processes.log(
        "worker", tail=100_000
    ).lower()
    # and every output exists once and is whole; finished batches were not generated again
    assert_outputs_complete(system, n_prompts)
    assert len(calls) <= n_prompts + 2  # at most the batch in flight was asked twice


def test_whole_worker_killed_then_restarted_finishes_the_outputs(subprocess_env, processes, slow_completions):
    # given a task half-way through its outputs
    base_url, calls = slow_completions
    n_prompts = 20
    system = slow_system(base_url, n_prompts)
    env = {**subprocess_env, "DUET_GENERATION_BATCH_SIZE": "2"}
    worker = start_worker(processes, env)
    queue_generation(env, system.pk)
    wait_until(lambda: Output.objects.filter(system=system).count() >= 4, 120, message="the first outputs")
    # when the whole worker dies at once (SIGKILL to the process group: power cut, kill -9)
    processes.kill(worker)
    partial = list(Output.objects.filter(system=system).select_related("prompt"))
    assert 0 < len(partial) < n_prompts
    # then what it wrote is whole: each output committed with its batch, none half-written
    for output in partial:
        assert output.text == f"Answer to {output.prompt.text} {END_MARK}"
    # and a new worker completes the rest. The embedded filesystem broker deletes a message
    # when a worker fetches it and restores unacknowledged ones only on a clean shutdown,
    # so a SIGKILLed worker's task is gone with it: the new worker re-queues the missing
    # outputs (generate_all_missing is idempotent: only prompts without an output are done).
    start_worker(processes, env, name="worker-2")
    manage_shell(env, "from arena.tasks import generate_all_missing; generate_all_missing.delay()")
    wait_until(lambda: Output.objects.filter(system=system).count() == n_prompts, 180,
               message=f"all outputs; worker log:\n{processes.log('worker-2')}")  # fmt: skip
    assert_outputs_complete(system, n_prompts)
    assert len(calls) <= n_prompts + 2


# --- Redis restarted while votes arrive -------------------------------------------------------


class Voter:
    """Votes over HTTP (token auth) in a background thread until stopped; keeps every status."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.statuses: list[tuple[float, str, int, float]] = []  # (when, kind, status, seconds)
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def request(self, method, path, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, payload

    def run(self):
        while not self.stop.is_set():
            try:
                started = time.monotonic()
                status, payload = self.request("GET", "/api/arena/next/")
                self.statuses.append((time.monotonic(), "next", status, time.monotonic() - started))
                if status != 200:
                    self.errors.append(f"next {status} {payload[:200]!r}")
                    time.sleep(0.1)
                    continue
                token = json.loads(payload)["token"]
                started = time.monotonic()
                status, payload = self.request("POST", "/api/arena/vote/", {"token": token, "verdict": "a"})
                self.statuses.append((time.monotonic(), "vote", status, time.monotonic() - started))
                if status == 201:
                    self.acked.append(json.loads(payload)["judgment"])
                else:
                    self.errors.append(f"vote {status} {payload[:200]!r}")
                # Paced like a quick person: unpaced, two voters judge every pair of the
                # test's arena in seconds, and the board's recovery needs votes after it.
                self.stop.wait(0.1)
            except OSError as error:
                self.errors.append(repr(error))
                time.sleep(0.1)


def voters_with_tokens(n: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from arena.roles import assign_role

    tokens = []
    for k in range(n):
        user = get_user_model().objects.create_user(f"voter{k}")
        assign_role(user, "annotator")
        tokens.append(Token.objects.create(user=user).key)
    return tokens


def answers_ping(env: dict, attempts: int = 3) -> bool:
    """`celery inspect ping`, the liveness check README asks production to run."""
    for _ in range(attempts):
        result = subprocess.run([sys.executable, "-m", "celery", "-A", "config", "inspect", "ping", "--timeout", "5"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        if result.returncode == 0 and "pong" in result.stdout:
            return True
        time.sleep(2)
    return False


@pytest.mark.redis
def test_votes_are_accepted_while_redis_restarts_and_the_board_catches_up(
    subprocess_env, processes, redis_server, arena_factory
):
    # given a web server and a worker on Redis (the broker, the change stamps and the
    # rate-limit counts), and two voters voting continuously
    url, stop_redis, start_redis = redis_server
    arena_factory("text", n_systems=4, n_prompts=300)  # enough pairs for two minutes of voting
    env = {**subprocess_env, "CELERY_BROKER_URL": url, "DUET_REDIS_URL": url, "DUET_LEADERBOARD_DEBOUNCE": "0.2",
           "DUET_VOTE_RATE_LIMIT": "1000/minute"}  # fmt: skip
    worker = start_worker(processes, env)
    port = free_port()
    start_gunicorn(processes, env, port, workers=2)
    voters = [Voter(port, token) for token in voters_with_tokens(2)]
    for voter in voters:
        voter.thread.start()

    def votes_so_far():
        return sum(len(voter.acked) for voter in voters)

    wait_until(lambda: votes_so_far() >= 6 and LeaderboardSnapshot.objects.exists(), 120,
               message="the first votes on the board")  # fmt: skip
    # when Redis goes away while votes keep coming, and comes back
    stop_redis()
    down_at, before_outage = time.monotonic(), votes_so_far()
    wait_until(lambda: votes_so_far() >= before_outage + 6 and time.monotonic() - down_at > 2, 120,
               message="votes during the outage")  # fmt: skip
    start_redis()
    up_at, after_outage = time.monotonic(), votes_so_far()
    wait_until(lambda: votes_so_far() >= after_outage + 6, 120, message="votes after the outage")
    # Celery 5.7.0 / kombu 5.7.0 workers on Redis can crash when the broker drops ("Unrecoverable
    # error: AttributeError: 'NoneType' object has no attribute 'hostname'": the consumer
    # closes a connection it has already collected, and restoring unacked messages needs
    # it) and then hang instead of exiting (see test_worker_survives_a_redis_restart).
    # Production must run workers with a liveness check that restarts them (`celery
    # inspect ping`); here the test is that supervisor.
    # A worker holding a task with a countdown when the broker drops can also stop
    # reconnecting without a word (Celery 5.6.3 on Redis): it no longer answers a ping.
    if "Unrecoverable error" in processes.log("worker", tail=1_000_000) or not answers_ping(env):
        print("the Celery worker crashed or hung when Redis went away; restarting it as a liveness check would")
        processes.kill(worker)
        start_worker(processes, env, name="worker-2")
    # and, while votes keep coming, the leaderboard catches up: a refresh queued before the
    # outage may have died with the worker, so the next vote after STALE_REFRESH_SECONDS
    # (30 s) queues another
    wait_until(lambda: LeaderboardSnapshot.objects.filter(n_battles__gte=after_outage).exists(), 120,
               message=f"a board with the votes of the outage; worker log:\n{processes.log('worker-2')}")  # fmt: skip
    for voter in voters:
        voter.stop.set()
    for voter in voters:
        voter.thread.join(timeout=90)
    # then every vote was accepted, those during the outage included, and stored once
    statuses = [s for voter in voters for s in voter.statuses]
    errors = [e for voter in voters for e in voter.errors]
    assert not errors, errors[:5]
    during = [status for at, kind, status, _ in statuses if kind == "vote" and down_at <= at <= up_at]
    assert during and set(during) == {201}, f"votes during the outage: {during}"
    acked = {judgment for voter in voters for judgment in voter.acked}
    stored = {str(u) for u in Judgment.objects.values_list("public_id", flat=True)}
    assert acked == stored and Battle.objects.filter(judgment__isnull=False).count() == len(acked)
    slowest = max(seconds for at, kind, status, seconds in statuses if kind == "vote" and down_at <= at <= up_at)
    print(f"{len(during)} votes during the outage, the slowest took {slowest:.2f} s")
    # and the last votes reach the board too, now that Redis and the worker are healthy
    wait_until(lambda: LeaderboardSnapshot.objects.filter(n_battles=len(acked)).exists(), 90,
               message=f"a board with all {len(acked)} votes")  # fmt: skip


@pytest.mark.redis
def test_worker_survives_a_redis_restart(subprocess_env, processes, redis_server):
    # given a worker on Redis holding a countdown task (as a debounced leaderboard refresh does)
    url, stop_redis, start_redis = redis_server
    env = {**subprocess_env, "CELERY_BROKER_URL": url}
    worker = start_worker(processes, env)
    wait_until(lambda: "ready" in processes.log("worker"), 120, message="the worker to start")
    arena = Arena.objects.create(name="main")
    queue = f"from arena.tasks import refresh_leaderboards as r; r.apply_async(({arena.pk},), countdown={{}})"
    manage_shell(env, queue.format(30))
    time.sleep(1)
    # when Redis restarts
    stop_redis()
    time.sleep(2)
    start_redis()
    # then the same worker reconnects and runs a task queued afterwards
    manage_shell(env, queue.format(0))
    wait_until(lambda: "succeeded" in processes.log("worker", tail=1_000_000) or worker.poll() is not None, 60,
               message="the task after the restart")  # fmt: skip
    assert "Unrecoverable error" not in processes.log("worker", tail=1_000_000)


# --- an import killed half-way ----------------------------------------------------------------


def write_battle_log(path, n: int) -> None:
    with open(path, "w") as handle:
        for k in range(n):
            row = {"system_a": f"imported-{k % 40}", "system_b": f"imported-{(k * 7 + 1) % 40 + 40}",
                   "outcome": "a" if k % 3 else "tie", "tstamp": 1_700_000_000 + k, "judge": f"j{k % 500}"}  # fmt: skip
            handle.write(json.dumps(row) + "\n")


def test_import_killed_half_way_leaves_nothing(subprocess_env, processes, tmp_path):
    # given a large battle log being imported in one transaction
    log = tmp_path / "battles.jsonl"
    write_battle_log(log, 400_000)
    db_path = django_settings.DATABASES["default"]["NAME"]
    importer = processes.start(
        "import", [sys.executable, "manage.py", "import_battles", str(log), "--format", "jsonl", "--arena", "dump"],
        subprocess_env,
    )  # fmt: skip
    # when it is SIGKILLed after it has written battles (the WAL grows with its pages)
    wal = f"{db_path}-wal"
    wait_until(lambda: importer.poll() is not None or (os.path.exists(wal) and os.path.getsize(wal) > 2_000_000),
               120, interval=0.02, message="the import to write")  # fmt: skip
    assert importer.poll() is None, "the import finished before it could be killed; make the log larger"
    processes.kill(importer)
    # then nothing of it is in the database, and the database is intact
    assert not Arena.objects.filter(name="dump").exists()
    assert not System.objects.filter(name__startswith="imported-").exists()
    assert Battle.objects.count() == 0
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # and the same import succeeds afterwards (no lock was left behind)
    small = tmp_path / "small.jsonl"
    write_battle_log(small, 1000)
    result = subprocess.run([sys.executable, "manage.py", "import_battles", str(small), "--format", "jsonl",
                             "--arena", "dump"], cwd=ROOT, env=subprocess_env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Battle.objects.filter(arena__name="dump").count() == 1000


def test_comparison_import_killed_half_way_leaves_nothing(subprocess_env, processes, tmp_path):
    from annotation.models import Project, ProjectItem

    # given a large comparison file being imported into a new project in one transaction
    path = tmp_path / "items.jsonl"
    with open(path, "w") as handle:
        for k in range(60_000):
            row = {"id": f"q{k}", "prompt": f"Question {k}?", "a": {"system": f"cmp-{k % 7}", "text": f"A{k} " * 20},
                   "b": {"system": f"cmp-{(k + 1) % 7}", "text": f"B{k} " * 20}}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    db_path = django_settings.DATABASES["default"]["NAME"]
    importer = processes.start(
        "import", [sys.executable, "manage.py", "import_comparisons", str(path), "--project", "killed"], subprocess_env
    )
    # when it is SIGKILLed while writing
    wal = f"{db_path}-wal"
    wait_until(lambda: importer.poll() is not None or (os.path.exists(wal) and os.path.getsize(wal) > 2_000_000),
               180, interval=0.02, message="the import to write")  # fmt: skip
    assert importer.poll() is None, "the import finished before it could be killed; make the file larger"
    processes.kill(importer)
    # then neither the project nor any of its items, outputs or systems exist
    assert not Project.objects.filter(name="killed").exists()
    assert ProjectItem.objects.count() == 0 and Output.objects.count() == 0
    assert not System.objects.filter(name__startswith="cmp-").exists()
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- SQLite under concurrent writes ------------------------------------------------------------


def test_sqlite_concurrent_votes_never_show_database_is_locked(subprocess_env, processes, arena_factory):
    # given gunicorn with 4 worker processes on the SQLite file and 12 voters at once
    arena_factory("text", n_systems=5, n_prompts=40)
    port = free_port()
    start_gunicorn(processes, subprocess_env, port, workers=4)
    voters = [Voter(port, token) for token in voters_with_tokens(12)]
    # when they all vote as fast as they can until each has voted ten times (counted in
    # votes, not seconds: each worker's first request imports scipy, which takes seconds
    # on a busy machine)
    for voter in voters:
        voter.thread.start()
    wait_until(lambda: all(len(v.acked) >= 10 or v.errors for v in voters), 240, interval=0.2,
               message="ten votes from every voter")  # fmt: skip
    for voter in voters:
        voter.stop.set()
    for voter in voters:
        voter.thread.join(timeout=90)
    # then no request failed (no "database is locked", no 5xx) and every vote is stored once
    errors = [e for voter in voters for e in voter.errors]
    assert not errors, errors[:5]
    assert "database is locked" not in processes.log("web", tail=1_000_000)
    acked = [judgment for voter in voters for judgment in voter.acked]
    assert len(set(acked)) == len(acked) >= 120
    assert {str(u) for u in Judgment.objects.values_list("public_id", flat=True)} == set(acked)
    assert Battle.objects.filter(judgment__isnull=False).count() == len(acked)
