"""Worker lanes: quick work (the board refresh, live battles) has worker processes of its
own, so a busy long lane (outputs in bulk, judging, training, exports) never holds it up."""

import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from arena.live import battles as live
from arena.models import GenerationStatus, LiveGeneration, Output, Prompt, System
from arena.voting import actions
from config.celery import LANES, app
from tests import processes

ROOT = Path(__file__).resolve().parent.parent
QUICK_TASKS = {"arena.tasks.refresh_leaderboards", "arena.tasks.generate_live_turn", "arena.jobs.tasks.sweep_stale_jobs"}
LONG_TASKS = {
    "arena.tasks.generate_outputs",
    "routing.tasks.run_judging_job",
    "training.tasks.run_training",
    "annotation.export_tasks.export_dataset_task",
    "annotation.import_tasks.import_comparisons_task",
}


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


# --- routing and the lanes' definition ------------------------------------------------------


def test_every_task_is_routed_by_name_to_a_declared_queue():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert QUICK_TASKS | LONG_TASKS <= ours
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    for name in ours:
        # by name, so a new task is placed on purpose, not left on `default` by accident
        assert name in settings.CELERY_TASK_ROUTES, f"{name} has no route"
        assert queue_of(name) in declared, name


def test_quick_tasks_go_to_quick_queues_and_long_ones_to_long_queues():
    assert {queue_of(name) for name in QUICK_TASKS} <= set(settings.CELERY_QUICK_QUEUES)
    assert queue_of("arena.tasks.generate_live_turn") == "live"
    assert {queue_of(name) for name in LONG_TASKS} <= set(settings.CELERY_LONG_QUEUES)


def test_the_lanes_consume_every_queue_once_and_long_work_yields_the_cpu():
    consumed = [queue for lane in LANES for queue in lane.queues]
    assert sorted(consumed) == sorted(settings.CELERY_QUICK_QUEUES + settings.CELERY_LONG_QUEUES)
    for lane in LANES:
        quick = set(lane.queues) <= set(settings.CELERY_QUICK_QUEUES)
        assert quick or set(lane.queues) <= set(settings.CELERY_LONG_QUEUES), f"{lane.name} mixes the lanes"
        assert (lane.nice == 0) if quick else (lane.nice > 0), lane


def test_one_lane_runs_the_beat_and_its_schedule_sweeps_stale_jobs():
    # given the lanes `make run` and `make worker` start
    beats = [lane for lane in LANES if lane.beat]
    # then exactly one of them runs the beat, and the beat sweeps stale jobs on the quick lane
    assert len(beats) == 1 and "-B" in beats[0].worker_args()
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "arena.jobs.tasks.sweep_stale_jobs" in tasks
    assert queue_of("arena.jobs.tasks.sweep_stale_jobs") in settings.CELERY_QUICK_QUEUES


def test_file_jobs_have_a_process_of_their_own_and_the_beat_sweeps_their_leftovers():
    # exports and imports go to `export`, consumed by a lane that takes nothing else, so no
    # generation or training ever holds them up
    assert {queue_of("annotation.export_tasks.export_dataset_task"),
            queue_of("annotation.import_tasks.import_comparisons_task")} == {"export"}  # fmt: skip
    [files] = [lane for lane in LANES if "export" in lane.queues]
    assert files.queues == ("export",) and files.concurrency >= 1 and not files.beat
    # the beat deletes import uploads kept past their days every hour, on that lane, and
    # queues again webhook deliveries every minute
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule["annotation.import_tasks.sweep_import_uploads"] == 3600.0
    assert queue_of("annotation.import_tasks.sweep_import_uploads") == "export"
    assert schedule["arena.webhooks.sweep_deliveries"] == 60.0


def test_every_scheduled_task_exists_and_expired_leases_are_tidied():
    # found reading the code: the lease upkeep task the README promises was never queued
    from celery import current_app

    current_app.loader.import_default_modules()
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert set(schedule) <= set(app.tasks), set(schedule) - set(app.tasks)
    assert schedule["annotation.tasks.reclaim_expired_leases"] == 300.0
    assert queue_of("annotation.tasks.reclaim_expired_leases") in settings.CELERY_QUICK_QUEUES


def test_make_run_and_make_worker_start_the_lanes():
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(WORKER_\w+)\s*:=\s*(.+)$", makefile, re.M))
    started = {}
    for variable, command in variables.items():
        nice, name, queues, concurrency, beat = re.search(
            r"OMP_NUM_THREADS=1 nice -n (\d+) \S+/celery -A config worker -n (\w+)@%h -Q (\S+) -c (\d+)( -B)?", command
        ).groups()
        started[variable] = (name, tuple(queues.split(",")), int(concurrency), int(nice), bool(beat))
    assert sorted(started.values()) == sorted((lane.name, lane.queues, lane.concurrency, lane.nice, lane.beat)
                                              for lane in LANES)  # fmt: skip

    def recipe(target):
        return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)

    for target in ("run", "worker"):
        assert all(f"$({variable})" in recipe(target) for variable in variables), target
    assert "$(WORKER_FILES)" in recipe("worker-long")
    assert "runserver" in recipe("run")


# --- what a waiting live battle shows ---------------------------------------------------------


@pytest.fixture
def image_systems(db):
    return [
        System.objects.create(
            name=f"p-{style}", provider="demo_image", modality="image", provider_config={"style": style}
        )
        for style in ("circles", "stripes")
    ]


def test_a_queued_answer_shows_the_answers_ahead_and_how_long_it_waited(db, make_user, image_systems):
    # given two voters' battles, the first still waiting for the live lane
    first = live.start_live_battle(actions.judge_for_user(make_user("first")), "image", "a red circle")
    second = live.start_live_battle(actions.judge_for_user(make_user("second")), "image", "a blue square")
    LiveGeneration.objects.filter(battle=second).update(queued_at=timezone.now() - timezone.timedelta(seconds=7))
    LiveGeneration.objects.filter(battle=first).update(queued_at=timezone.now() - timezone.timedelta(seconds=9))

    # when the second voter looks
    state = live.battle_state(second)

    # then each side counts the first battle's two answers ahead of it, not its own sibling
    for side in ("a", "b"):
        assert state["turns"][0][side]["queue_position"] == 2
        assert state["turns"][0][side]["waiting_s"] in (7, 8)
    # and the first battle, with nothing ahead, still says how long it waited
    assert [live.battle_state(first)["turns"][0][side]["queue_position"] for side in "ab"] == [0, 0]
    assert live.battle_state(first)["turns"][0]["a"]["waiting_s"] in (9, 10)

    # once an answer runs, it no longer waits
    LiveGeneration.objects.filter(battle=first).update(status=GenerationStatus.RUNNING)
    side = live.battle_state(second)["turns"][0]["a"]
    assert side["queue_position"] == 0 and side["waiting_s"] in (7, 8)


def test_answers_lost_past_the_timeout_hold_nobody_up(db, make_user, image_systems, settings):
    settings.LIVE_GENERATION_TIMEOUT_SECONDS = 60
    lost = live.start_live_battle(actions.judge_for_user(make_user("lost")), "image", "a red circle")
    LiveGeneration.objects.filter(battle=lost).update(queued_at=timezone.now() - timezone.timedelta(seconds=600))
    battle = live.start_live_battle(actions.judge_for_user(make_user("now")), "image", "a blue square")
    assert live.queue_position(LiveGeneration.objects.get(battle=battle, side="a")) == 0


def test_a_live_process_preloads_the_models_of_the_systems_that_answer_live(db, tiny_model_dir, image_systems):
    from arena.providers import localmodel
    localmodel.clear_cache()
    config = {"model": str(tiny_model_dir), "max_new_tokens": 4}
    System.objects.create(name="tiny-a", provider="transformers", provider_config=config)
    System.objects.create(name="tiny-b", provider="transformers", provider_config={**config, "system_prompt": "Hi."})
    System.objects.create(name="broken", provider="transformers", provider_config={"model": "/nonexistent/model"})
    System.objects.create(name="retired", provider="transformers", is_active=False,
                          provider_config={"model": "/retired/model"})  # fmt: skip

    loaded = live.preload_live_models()

    # one load for the two systems that share the model; the broken one is left to its battle
    assert loaded == [str(tiny_model_dir)] * 2
    assert list(localmodel._loaded) == [(str(tiny_model_dir.resolve()), localmodel.default_device())]


# --- real workers: a busy long lane ----------------------------------------------------------


class HeldEndpoint:
    """An OpenAI-compatible endpoint that holds every request until released: a long job
    that keeps the long lane's processes busy for as long as a test needs."""

    def __init__(self):
        self.release = threading.Event()
        self.held = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.held += 1
                endpoint.release.wait(120)
                endpoint.held -= 1
                body = b'{"choices": [{"message": {"content": "late"}, "finish_reason": "stop"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


def run_in_django(env, script: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


QUEUE_LONG_JOBS = """
from arena.tasks import generate_outputs
for prompt_id in %(prompts)r:
    generate_outputs.delay(%(system)d, [prompt_id])
"""

VOTE_AND_ASK = """
from django.contrib.auth import get_user_model
from arena.voting import actions
from arena.live import battles as live
judge = actions.judge_for_user(get_user_model().objects.create_user("voter"))
comparison = actions.next_comparison(judge, "text")
token = actions.issue_vote_token(comparison, judge)
actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict="a"))
battle = live.start_live_battle(judge, "image", "a red circle")
print("BATTLE", battle.pk)
"""


def start_lanes(env, tmp_path):
    """The workers, how many processes take long jobs, and the log and number of those that
    take live battles."""
    return processes.start_lanes(env, tmp_path), 2, ("live.log", 2)


def start_one_worker(env, tmp_path):
    return [processes.start_worker(env, tmp_path, concurrency=1)], 1, ("worker.log", 1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "start_workers, served",
    # the lanes serve the vote and the battle; one worker on every queue (the old layout)
    # starves them while a long job holds it, which is what the lanes fix
    [(start_lanes, True), (start_one_worker, False)],
    ids=["lanes", "one-worker"],
)
def test_board_refresh_and_live_battle_run_while_the_long_lane_is_busy(
    start_workers, served, tmp_path, image_systems, tiny_model_dir
):
    from arena.models import LeaderboardSnapshot, LiveBattle

    # given a local model that can answer live (the live processes load it as they start),
    System.objects.create(name="tiny-live", provider="transformers", provider_config={"model": str(tiny_model_dir)})
    # text systems to vote on, and a system whose endpoint holds every request
    prompt = Prompt.objects.create(text="Why?")
    for i in range(3):
        Output.objects.create(system=System.objects.create(name=f"s{i}"), prompt=prompt, text=f"answer {i}")
    endpoint = HeldEndpoint()
    slow = System.objects.create(name="slow", provider="openai",
                                 provider_config={"base_url": endpoint.url, "model": "m", "timeout": 300})  # fmt: skip
    slow_prompts = [Prompt.objects.create(text=f"Slow {i}?").pk for i in range(2)]
    env = processes.process_env(tmp_path)
    workers, long_processes, (live_log, live_processes) = start_workers(env, tmp_path)
    try:
        processes.wait_until_consuming(workers)
        deadline = time.monotonic() + 180
        while (tmp_path / live_log).read_text().count(f"preloaded {tiny_model_dir}") < live_processes:
            assert time.monotonic() < deadline, (tmp_path / live_log).read_text()[-3000:]
            time.sleep(0.2)
        assert [w.log_path.name for w in workers if "preloaded" in w.log_path.read_text()] == [live_log]
        # and every long-lane process stuck in a job
        run_in_django(env, QUEUE_LONG_JOBS % {"system": slow.pk, "prompts": slow_prompts})
        deadline = time.monotonic() + 60
        while endpoint.held < long_processes:
            assert time.monotonic() < deadline, [w.log() for w in workers]
            time.sleep(0.1)

        # when a voter votes and starts a live battle
        battle = LiveBattle.objects.get(pk=int(run_in_django(env, VOTE_AND_ASK).split("BATTLE")[1]))

        # then the board shows the vote and the battle is answered while the long jobs still hold
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            battle.refresh_from_db()
            if battle.status == "ready" and LeaderboardSnapshot.objects.filter(n_battles=1).exists():
                break
            time.sleep(0.1)
        assert endpoint.held == long_processes
        if served:
            assert LeaderboardSnapshot.objects.filter(n_battles=1).exists(), "the vote never reached the board"
            assert battle.status == "ready", list(battle.generations.values("side", "status", "error"))
        else:
            assert not LeaderboardSnapshot.objects.filter(n_battles=1).exists(), "the board was refreshed"
            assert battle.status != "ready", "the live battle was answered"
    finally:
        endpoint.close()
        for worker in workers:
            worker.stop()


QUEUE_IMPORT = """
import io
from annotation import import_jobs
from annotation.models import Project
job = import_jobs.queue_import(Project.objects.get(name="lanes"), io.BytesIO(%(data)r), "items.jsonl")
print("JOB", job.pk)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_import_runs_within_seconds_while_generation_holds_the_long_lane(tmp_path):
    from annotation.models import ImportJob, Project, ProjectItem
    from tests.annotation.conftest import jsonl, text_rows

    # given the long lane and the file lane, every long-lane process stuck in a generation
    endpoint = HeldEndpoint()
    slow = System.objects.create(name="slow", provider="openai",
                                 provider_config={"base_url": endpoint.url, "model": "m", "timeout": 300})  # fmt: skip
    slow_prompts = [Prompt.objects.create(text=f"Slow {i}?").pk for i in range(2)]
    project = Project.objects.create(name="lanes")
    env = processes.process_env(tmp_path)
    workers = processes.start_lanes(env, tmp_path, names=("long", "files"))
    try:
        processes.wait_until_consuming(workers)
        run_in_django(env, QUEUE_LONG_JOBS % {"system": slow.pk, "prompts": slow_prompts})
        deadline = time.monotonic() + 60
        while endpoint.held < 2:
            assert time.monotonic() < deadline, [w.log() for w in workers]
            time.sleep(0.1)
        # when a file is imported in the background
        job_id = int(run_in_django(env, QUEUE_IMPORT % {"data": jsonl(text_rows(3))}).split("JOB")[1])
        started = time.monotonic()
        # then it is imported within seconds, while the generations still hold
        while ImportJob.objects.get(pk=job_id).status != "succeeded":
            assert time.monotonic() - started < 30, (ImportJob.objects.get(pk=job_id).status, workers[-1].log())
            time.sleep(0.2)
        assert endpoint.held == 2
        assert ProjectItem.objects.filter(project=project).count() == 3
    finally:
        endpoint.close()
        for worker in workers:
            worker.stop()
