"""A real Celery worker whose pool process is killed with SIGKILL, as the kernel's
out-of-memory killer does, in the middle of a training run."""

import os
import signal
import time

import pytest
from django.conf import settings

from tests import processes
from tests.training.test_jobs import request_for, voted_arena  # noqa: F401 - a fixture
from training import actions
from training.models import TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def queue_on_worker_broker(run_id: int, var_dir) -> None:
    """Send the run to the worker's own broker folder (the test process has another)."""
    from training.tasks import run_training

    broker = var_dir / "broker"
    folders = {"data_folder_in": broker / "queue", "data_folder_out": broker / "queue",
               "processed_folder": broker / "processed", "control_folder": broker / "control"}  # fmt: skip
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, **{key: str(value) for key, value in folders.items()}}
    with run_training.app.connection_for_write("filesystem://", transport_options=options) as connection:
        run_training.apply_async(args=[run_id], producer=connection.Producer())


def wait_for(predicate, timeout: float, worker):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert worker.alive(), worker.log()
        time.sleep(0.5)
    raise AssertionError("timed out:\n" + worker.log())


def test_a_worker_killed_mid_run_fails_it_as_killed_for_memory(voted_arena, tmp_path,  # noqa: F811
                                                                django_capture_on_commit_callbacks):
    # given a long DPO run taken by a real worker, in training
    with django_capture_on_commit_callbacks(execute=False):
        run = actions.do_create_run(request_for(voted_arena, max_steps=400))
    env = processes.process_env(tmp_path, DUET_TRAINING_RUNS_DIR=str(tmp_path / "runs"))
    worker = processes.start_worker(env, tmp_path)
    try:
        # the filesystem broker routes through bindings the worker declares when it starts
        wait_for(lambda: "ready." in worker.log(), 120, worker)
        queue_on_worker_broker(run.pk, tmp_path / "var")

        def training_pid():
            progress = TrainingRun.objects.get(pk=run.pk).progress
            return progress.get("phase") == "training" and progress.get("step", 0) >= 1 and progress["worker"]["pid"]

        pid = wait_for(training_pid, 300, worker)
        # when the process running it is killed as the out-of-memory killer does
        os.kill(pid, signal.SIGKILL)
        # then the run fails at once, naming the cause and the setting to change
        failed = wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, status="failed").first(), 60, worker)
    finally:
        worker.stop()
    assert "killed by the operating system (SIGKILL), most likely for lack of memory" in failed.error
    assert "lower data.max_length" in failed.error and "in phase training" in failed.error
