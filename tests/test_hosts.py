"""Duet on two hosts: two web "hosts" (process groups, each with its own DUET_VAR_DIR and
model cache, gunicorn with two workers, a Celery worker) on one PostgreSQL, one Redis and
one shared storage folder.

- a token revoked through one host is refused by the other within a second;
- a system deactivated through one host leaves the other's comparisons within a second;
- a model trained by the first host's worker answers in the second host's generation
  worker, which copies it out of the storage into its own cache.

Before the shared state, each host kept its change stamps in a file of its own: the other
host trusted its copies for DUET_ARENA_CACHE_SECONDS (60 s), and the tuned model was
registered under a folder only the training host had."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.annotation.test_concurrency import throwaway_postgres
from tests.processes import free_port
from tests.reliability.conftest import ROOT, processes, redis_server, start_gunicorn  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

WORLD = """
import json, random, sys
from pathlib import Path
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from arena.voting import actions
from arena.providers.localmodel import build_tiny_model
from arena.models import Output, Prompt, System
from arena.roles import assign_role

tiny = build_tiny_model(Path(sys.argv[1]))
tokens = {}
for name, role in [("boss", "admin"), ("revoked", "annotator")] + [(f"watcher{i}", "annotator") for i in range(40)]:
    user = get_user_model().objects.create_user(username=name, password="correct-horse-battery")
    assign_role(user, role)
    tokens[name] = Token.objects.create(user=user).key
base = System.objects.create(name="tiny-base", provider="transformers",
                             provider_config={"model": str(tiny), "max_new_tokens": 6, "temperature": 0})
systems = [System.objects.create(name=f"answers-{i}") for i in range(3)]
for j in range(8):
    prompt = Prompt.objects.create(text=f"Question number {j}?")
    for i, system in enumerate(systems):
        Output.objects.create(system=system, prompt=prompt, text="word " * (2 + 3 * i) + f"answer {j} of answers-{i}")
# Voters who prefer the longer answer: the data the tuned model learns from.
for v in range(3):
    user = get_user_model().objects.create_user(username=f"voter{v}", password="x")
    assign_role(user, "annotator")
    judge = actions.judge_for_user(user)
    while True:
        try:
            comparison = actions.next_comparison(judge, "text", rng=random.Random(v))
        except Exception:
            break
        a, b = comparison.output_a.text, comparison.output_b.text
        vote = actions.check_vote(token=actions.issue_vote_token(comparison, judge), judge=judge,
                                  verdict="a" if len(a) > len(b) else "b")
        actions.do_record_judgment(vote)
print("WORLD", json.dumps({"tokens": tokens, "systems": {s.name: s.pk for s in systems}}))
"""


# Deletes the token, prints when the deletion committed (and its change stamp was bumped),
# and stays up, as a host's process would.
REVOKE = """
import time
import django
django.setup()
from rest_framework.authtoken.models import Token
assert Token.objects.filter(user__username="revoked").delete()[0] == 1
print("REVOKED", time.time(), flush=True)
time.sleep(60)
"""


class Host:
    def __init__(self, name: str, env: dict, url: str):
        self.name, self.env, self.url = name, env, url

    def call(self, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def manage(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)  # fmt: skip
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        return result.stdout


def host_env(tmp_path: Path, name: str, database_url: str, redis_url: str) -> dict:
    import os

    var = tmp_path / name
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "DUET_VAR_DIR": str(var),  # this host's own: SQLite-free, but its caches and runs
        "DUET_MODEL_CACHE": str(var / "models"),
        "DUET_REDIS_URL": redis_url + "/0",
        "CELERY_BROKER_URL": redis_url + "/1",
        # Shared by both hosts, as a network folder would be.
        "DUET_STORAGE_DIR": str(tmp_path / "shared" / "storage"),
        "DUET_MEDIA_ROOT": str(tmp_path / "shared" / "media"),
        "DUET_LEADERBOARD_DEBOUNCE": "0.2",
        "DUET_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }


def start_worker(processes, host: Host, queues: str):  # noqa: F811
    return processes.start(
        f"worker-{host.name}",
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1", "--loglevel=INFO",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"{host.name}@%h"],
        host.env,
    )  # fmt: skip


def wait_for(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


def seconds_until(condition, timeout: float = 5.0) -> float:
    """Seconds until `condition()` holds, checked every 20 ms (fails past `timeout`)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def two_hosts(tmp_path, processes, redis_server):  # noqa: F811
    redis_url = redis_server[0].rsplit("/", 1)[0]
    with throwaway_postgres() as database_url:
        a = Host("a", host_env(tmp_path, "a", database_url, redis_url), "")
        b = Host("b", host_env(tmp_path, "b", database_url, redis_url), "")
        a.manage("migrate", "--noinput", "-v", "0")
        out = subprocess.run([sys.executable, "-c", WORLD, str(tmp_path / "shared" / "tiny")], cwd=ROOT, env=a.env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert out.returncode == 0, out.stderr[-4000:]
        world = json.loads(out.stdout.split("WORLD ", 1)[1])
        for host in (a, b):
            port = free_port()
            start_gunicorn(processes, host.env, port, workers=2, name=f"web-{host.name}")
            host.url = f"http://127.0.0.1:{port}"
        yield a, b, world, processes


def test_two_hosts_share_revocations_deactivations_and_tuned_models(two_hosts, tmp_path):
    a, b, world, processes = two_hosts  # noqa: F811
    tokens, systems = world["tokens"], world["systems"]
    # the workers: host a trains (and refreshes the board), host b generates
    workers = [start_worker(processes, a, "training,default"), start_worker(processes, b, "generation")]

    # --- a revoked token -------------------------------------------------------------------
    # given a token both hosts' web processes have accepted (and keep a copy of)
    for _ in range(4):  # two gunicorn workers each: reach both, most likely
        for host in (a, b):
            assert host.call("GET", "/api/arena/readiness/", tokens["revoked"])[0] == 200
    # when a process of host a revokes it, saying when its deletion committed
    revoking = subprocess.Popen([sys.executable, "-c", REVOKE], cwd=ROOT, env=a.env, stdout=subprocess.PIPE, text=True)
    try:
        line = revoking.stdout.readline()
        assert line.startswith("REVOKED"), line
        revoked_at = float(line.split()[1])
        # then every request host b gets from a second after the commit on is refused
        # (timed from each request's start: on a busy machine a request may wait for a core)
        timeline = []  # (request start, seconds after the commit; its status)

        def refused_by_b() -> bool:
            started = time.time() - revoked_at
            status = b.call("GET", "/api/arena/readiness/", tokens["revoked"])[0]
            timeline.append((round(started, 3), status))
            return started > 1.5 and status == 401

        seconds_until(refused_by_b, timeout=15)
    finally:
        revoking.kill()
        revoking.wait(timeout=30)
    accepted = [started for started, status in timeline if status != 401]
    assert not accepted or max(accepted) < 1.0, timeline
    print(f"\nrevoked token: last accepted by the other host in a request started "
          f"{max(accepted, default=0.0):.3f} s after the commit; requests {timeline[:3]} ...")

    # --- a deactivated system ------------------------------------------------------------------
    # given comparisons served by host b that show the system
    watchers = iter(f"watcher{i}" for i in range(40))  # 8 pairs each once a system is off
    voter = {"token": tokens[next(watchers)]}

    def one_comparison() -> str:
        """Serve and vote one comparison on host b; its two answers' text."""
        status, payload = b.call("GET", "/api/arena/next/?modality=text", voter["token"])
        if status != 200:  # this watcher has seen every pair: the next one
            voter["token"] = tokens[next(watchers)]
            status, payload = b.call("GET", "/api/arena/next/?modality=text", voter["token"])
        assert status == 200, payload
        status, voted = b.call("POST", "/api/arena/vote/", voter["token"],
                               {"token": payload["token"], "verdict": "tie"})  # fmt: skip
        assert status == 201, voted
        return payload["a"]["html"] + payload["b"]["html"]

    wait_for(lambda: "answers-2" in one_comparison(), 30, "host b serving answers-2", interval=0)
    # when host a deactivates it through its API
    status, _ = a.call("PATCH", f"/api/systems/{systems['answers-2']}/", tokens["boss"], {"is_active": False})
    assert status == 200
    deactivated = time.monotonic()
    # then host b serves it in no comparison asked for a second after that
    last_seen, served_later = 0.0, 0
    while served_later < 5:
        started = time.monotonic() - deactivated
        if "answers-2" in one_comparison():
            last_seen = started
        served_later += started > 1.0
        time.sleep(0.05)  # a few comparisons in the first second, not every pair of every watcher
    assert last_seen < 1.0, last_seen
    print(f"deactivated system: last in a comparison asked for {last_seen:.3f} s after the change")

    # --- a model trained on host a answers on host b ------------------------------------------
    # given both workers ready
    for worker, name in zip(workers, ("worker-a", "worker-b"), strict=True):
        wait_for(lambda: "ready." in processes.log(name, 100_000) or worker.poll() is not None, 180, name)
        assert worker.poll() is None, processes.log(name)
    # when host a trains a DPO run from the tiny base
    status, run = a.call("POST", "/api/training/runs/", tokens["boss"], {
        "kind": "dpo", "arena": "main", "base": "tiny-base", "max_steps": 2,
        "recipe": {"training": {"batch_size": 2}, "data": {"max_length": 64, "validation_fraction": 0.25}},
    })  # fmt: skip
    assert status == 201, run

    def finished():
        status, current = b.call("GET", f"/api/training/runs/{run['id']}/", tokens["boss"])
        return current if current.get("status") in ("succeeded", "failed", "cancelled") else None

    run = wait_for(finished, 600, "the training run", interval=1)
    assert run["status"] == "succeeded", run["error"] or processes.log("worker-a")
    status, page = b.call("GET", "/api/systems/?limit=100", tokens["boss"])
    produced = next(system["id"] for system in page["results"] if system["name"] == run["produced_system"])

    # then the tuned model answers the arena's prompts in host b's generation worker
    def produced_outputs():
        status, page = b.call("GET", "/api/outputs/?limit=500", tokens["boss"])
        return [output for output in page["results"] if output["system"] == produced]

    try:
        outputs = wait_for(lambda: len(produced_outputs()) == 8 and produced_outputs(), 300, "the tuned model's outputs")
    except AssertionError:
        status, page = b.call("GET", "/api/outputs/?limit=500", tokens["boss"])
        raise AssertionError(f"produced {produced!r}; outputs {status}: {str(page)[-3000:]}") from None
    # (a random tiny model's tokens may decode to nothing: its answers are counted in tokens)
    assert all(output["metadata"]["tokens"] > 0 for output in outputs)
    # copied out of the shared storage into host b's cache; host a never opened it
    stored = f"tuned/run-{run['id']}"
    assert (tmp_path / "b" / "models" / "stored" / stored / "config.json").is_file()
    assert not (tmp_path / "a" / "models" / "stored").exists()
    assert "Task arena.tasks.generate_outputs[" in processes.log("worker-b", 100_000)
    assert "Task arena.tasks.generate_outputs[" not in processes.log("worker-a", 100_000)
