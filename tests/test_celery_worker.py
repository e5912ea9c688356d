"""A real Celery worker process fills in outputs queued by `seed_demo`, on the embedded
filesystem broker (what `make run` uses) and on a real Redis."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from arena.models import Output, System
from tests import processes

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(tiny_model_dir, tmp_path):
    db_name = django_settings.DATABASES["default"]["NAME"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{db_name}",
        "DUET_VAR_DIR": str(tmp_path / "var"),
        "DUET_MEDIA_ROOT": str(tmp_path / "media"),
        "DUET_DEMO_TEXT_MODEL": str(tiny_model_dir),
        "DUET_GENERATION_MAX_NEW_TOKENS": "6",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(env, tmp_path):
    worker = processes.start_worker(env, tmp_path)
    return worker, None


def stop_worker(worker, log):
    worker.stop()


def run_demo_through_worker(env, tmp_path):
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "generation queued on the worker" in seeded.stdout
    # the demo renderers ran in the command; the text systems wait for the worker
    assert Output.objects.filter(system__modality="image").count() == 30
    assert Output.objects.filter(system__modality="audio").count() == 30
    assert Output.objects.filter(system__modality="text").count() == 0

    worker, log = start_worker(env, tmp_path)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and Output.objects.filter(system__modality="text").count() < 60:
            assert worker.alive(), worker.log()
            time.sleep(1)
    finally:
        stop_worker(worker, log)
    text_outputs = Output.objects.filter(system__modality="text")
    assert text_outputs.count() == 60, (tmp_path / "worker.log").read_text()[-3000:]
    assert set(text_outputs.values_list("system__name", flat=True)) == set(
        System.objects.filter(modality="text").values_list("name", flat=True)
    )
    assert all(output.metadata.get("tokens", 0) > 0 for output in text_outputs)
    assert "generate_outputs" in (tmp_path / "worker.log").read_text()


def test_worker_on_embedded_filesystem_broker(worker_env, tmp_path):
    run_demo_through_worker(worker_env, tmp_path)
    assert (tmp_path / "var" / "broker" / "queue").is_dir()


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI installs it)")
    port = processes.free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.redis
def test_worker_on_redis(worker_env, redis_url, tmp_path):
    run_demo_through_worker({**worker_env, "CELERY_BROKER_URL": redis_url}, tmp_path)


VOTE_SCRIPT = """
import time
from django.contrib.auth import get_user_model
from arena.voting import actions
from arena.models import Output, Prompt, System
systems = [System.objects.create(name=f"s{i}") for i in range(3)]
prompt = Prompt.objects.create(text="Why?")
for i, system in enumerate(systems):
    Output.objects.create(system=system, prompt=prompt, text=f"answer {i}")
judge = actions.judge_for_user(get_user_model().objects.create_user("voter"))
comparison = actions.next_comparison(judge, "text")
vote = actions.check_vote(token=actions.issue_vote_token(comparison, judge), judge=judge, verdict="a")
actions.do_record_judgment(vote)
print("VOTED", time.time())
"""


def test_vote_reaches_the_leaderboard_through_the_worker(worker_env, tmp_path):
    from arena.models import LeaderboardSnapshot

    worker, log = start_worker(worker_env, tmp_path)
    try:
        time.sleep(3)  # let the worker connect before the vote is queued
        voted = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", VOTE_SCRIPT], cwd=ROOT, env=worker_env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert voted.returncode == 0, voted.stderr
        voted_at = float(voted.stdout.split("VOTED")[1])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not LeaderboardSnapshot.objects.filter(n_battles=1).exists():
            time.sleep(0.05)
        seen_at = time.time()
    finally:
        stop_worker(worker, log)
    snapshot = LeaderboardSnapshot.objects.filter(n_battles=1).first()
    assert snapshot is not None, (tmp_path / "worker.log").read_text()[-3000:]
    battle_systems = {row["system"] for row in snapshot.payload["systems"]}
    assert len(battle_systems) == 2 and battle_systems <= {"s0", "s1", "s2"}
    # Reported, not asserted: timing belongs to benchmarks, and this machine is shared.
    print(f"vote visible on the leaderboard {seen_at - voted_at:.2f} s after it was recorded")


LIVE_SCRIPT = """
from django.contrib.auth import get_user_model
from arena.voting import actions
from arena.live import battles as live
from arena.models import System
for name, prompt in (("smol-a", "Answer briefly."), ("smol-b", "Answer cheerfully.")):
    System.objects.create(name=name, provider="transformers", provider_config={
        "model": "smollm2-135m-instruct", "system_prompt": prompt, "max_new_tokens": 24, "temperature": 0})
judge = actions.judge_for_user(get_user_model().objects.create_user("asker"))
battle = live.start_live_battle(judge, "text", "What colour is the sky on a clear day?")
print("BATTLE", battle.pk)
"""


def test_live_battle_answered_by_real_smollm2_in_the_worker(smollm2_dir, tmp_path):
    from arena.models import LiveBattle, LiveGeneration

    env = processes.process_env(tmp_path)
    worker = processes.start_worker(env, tmp_path, concurrency=2)
    try:
        started = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", LIVE_SCRIPT], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        battle = LiveBattle.objects.get(pk=int(started.stdout.split("BATTLE")[1]))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            battle.refresh_from_db()
            if battle.status != "generating":
                break
            assert worker.alive(), worker.log()
            time.sleep(0.5)
    finally:
        worker.stop()
    errors = list(LiveGeneration.objects.filter(battle=battle).values_list("side", "status", "error"))
    assert battle.status == "ready", (errors, worker.log())
    for generation in LiveGeneration.objects.filter(battle=battle):
        assert generation.status == "done"
        assert len(generation.text.split()) >= 3  # real words from the real model
        assert generation.first_token_at <= generation.finished_at
        assert generation.output.metadata["tokens"] > 0
    print({g.side: g.text for g in LiveGeneration.objects.filter(battle=battle)})


TRAIN_SETUP = """
import random
from django.contrib.auth import get_user_model
from arena.voting import actions
from arena.models import Output, Prompt, System
System.objects.create(name="tiny-base", provider="transformers", provider_config={"model": "%(model)s"})
others = [System.objects.create(name=f"answers-{i}") for i in range(3)]
for j in range(6):
    prompt = Prompt.objects.create(text=f"Question {j}?")
    for i, system in enumerate(others):
        Output.objects.create(system=system, prompt=prompt, text="word " * (2 + 3 * i))
for v in range(2):
    judge = actions.judge_for_user(get_user_model().objects.create_user(f"voter{v}"))
    for _ in range(18):
        comparison = actions.next_comparison(judge, "text", rng=random.Random(v))
        verdict = "a" if len(comparison.output_a.text) > len(comparison.output_b.text) else "b"
        actions.do_record_judgment(actions.check_vote(
            token=actions.issue_vote_token(comparison, judge), judge=judge, verdict=verdict))
"""


def run_train_command_through_worker(env, tmp_path, tiny_model_dir):
    setup = subprocess.run([sys.executable, "manage.py", "shell", "-c", TRAIN_SETUP % {"model": tiny_model_dir}],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    worker = processes.start_worker(env, tmp_path)
    try:
        trained = subprocess.run(
            [sys.executable, "manage.py", "train", "--kind", "dpo", "--arena", "main", "--base", "tiny-base",
             "--max-steps", "2", "--lora", "--wait", "--timeout", "400", "--format", "json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        worker.stop()
    assert trained.returncode == 0, trained.stderr + worker.log()
    body = json.loads(trained.stdout)
    assert body["status"] == "succeeded"
    assert body["metrics"]["heldout_accuracy"] is not None and body["metrics"]["ranking_accuracy"] is not None
    assert body["produced_system"] == f"tiny-base+dpo-run{body['id']}"
    assert System.objects.filter(name=body["produced_system"], parent__name="tiny-base").exists()


def test_train_command_waits_for_the_worker_on_the_embedded_broker(tiny_model_dir, tmp_path):
    env = processes.process_env(tmp_path, DUET_TRAINING_RUNS_DIR=str(tmp_path / "runs"))
    run_train_command_through_worker(env, tmp_path, tiny_model_dir)


@pytest.mark.redis
def test_train_command_waits_for_the_worker_on_redis(tiny_model_dir, redis_url, tmp_path):
    env = processes.process_env(tmp_path, DUET_TRAINING_RUNS_DIR=str(tmp_path / "runs"), CELERY_BROKER_URL=redis_url)
    run_train_command_through_worker(env, tmp_path, tiny_model_dir)
