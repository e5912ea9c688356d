"""Worker presence: `train --wait` says within seconds that nothing consumes the `training`
queue instead of waiting a day; `train --here` runs the job in the command; a real worker
records its queues while it runs and removes them when it stops."""

import json
import time

import pytest
from django.core.management import CommandError, call_command

from arena.jobs import workers
from arena.jobs.workers import FilePresenceStore, WorkerPresence
from training.models import TrainingRun

from .test_run_requests import base_system, text_arena  # noqa: F401 - fixtures

TRAIN = ["train", "--kind", "dpo", "--arena", "main", "--base", "tiny-base", "--max-steps", "2"]


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def beat(hostname: str, queues: tuple[str, ...], age_s: float = 0.0) -> None:
    workers.presence_store().write(WorkerPresence(hostname, 123, queues, time.time() - age_s))


# --- the records ---------------------------------------------------------------------------------


def test_file_store_round_trip_and_freshness(var_dir):
    beat("celery@gpu", ("default", "training"))
    beat("celery@web", ("default",))
    beat("celery@gone", ("training",), age_s=workers.PRESENCE_TTL_S + 1)
    assert [w.hostname for w in workers.workers_for("training")] == ["celery@gpu"]
    assert {w.hostname for w in workers.workers_for("default")} == {"celery@gpu", "celery@web"}
    assert workers.queue_has_worker("judging") is False
    workers.presence_store().remove("celery@gpu")
    assert workers.workers_for("training") == [] and workers.queue_has_worker("training") is False


def test_file_store_ignores_foreign_files(var_dir):
    store = FilePresenceStore(var_dir / "workers")
    beat("celery@a/b c", ("training",))  # a hostname that is no file name
    (var_dir / "workers" / "junk.json").write_text("{not json")
    assert [w.hostname for w in store.all()] == ["celery@a/b c"]


# --- train --wait / --here -------------------------------------------------------------------------


def test_wait_without_a_worker_fails_within_seconds(text_arena, var_dir):
    # given no worker, and one that consumes other queues only
    beat("celery@web", ("default", "generation"))
    started = time.monotonic()
    # when a run is asked for with --wait
    with pytest.raises(CommandError) as failed:
        call_command(*TRAIN, "--wait", "--worker-wait", "1")
    # then it says so at once, naming the queue and the ways out, and queues nothing
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert "no worker is consuming the `training` queue" in message
    assert "make worker" in message and "--here" in message
    assert not TrainingRun.objects.exists()


def test_wait_notices_the_worker_going_away(text_arena, var_dir):
    # given a worker whose last beat is about to go stale (it was killed)
    beat("celery@gpu", ("training",), age_s=workers.PRESENCE_TTL_S - 1)
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"run \d+ is still queued: no worker is consuming the `training` queue"):
        call_command(*TRAIN, "--wait", "--worker-wait", "1")
    assert time.monotonic() - started < 15
    assert TrainingRun.objects.get().status == "queued"


def test_without_wait_the_run_is_queued_with_a_note(text_arena, var_dir, capsys):
    call_command(*TRAIN, "--format", "json")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "queued"
    assert "no worker is consuming the `training` queue" in captured.err


@pytest.mark.django_db(transaction=True)
def test_here_runs_the_job_in_the_command(text_arena, var_dir, capsys):
    # given no worker at all
    # when the run is asked for with --here
    call_command(*TRAIN, "--lora", "--here", "--format", "json")
    # then it ran in this process to the end, and nothing was left on the queue for a worker
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["status"] == run.status == "succeeded", run.error
    assert body["n_pairs"] == 12 and run.progress["step"] == 2
    assert "running here" in captured.err
    assert run.produced_system is not None


# --- a real worker ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_its_queues_while_it_runs(tmp_path, settings):
    from tests import processes

    env = processes.process_env(tmp_path)
    settings.VAR_DIR = tmp_path / "var"  # where the worker (DUET_VAR_DIR) writes its records
    worker = processes.start_worker(env, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not workers.workers_for("training") and time.monotonic() < deadline:
            assert worker.alive(), worker.log()
            time.sleep(0.2)
        found = workers.workers_for("training")
        assert found, worker.log()
        assert set(found[0].queues) == set(processes.WORKER_QUEUES.split(","))
        first = found[0].seen_at
        time.sleep(workers.PRESENCE_INTERVAL_S + 1)
        assert workers.workers_for("training")[0].seen_at > first  # it keeps beating
    finally:
        worker.stop()
    assert workers.workers_for("training") == []  # removed on shutdown, not left to go stale
