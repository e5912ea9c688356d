"""Training runs through the job lifecycle (tests/job_contract.py), on the tiny model."""

import pytest

from training import actions
from training.tasks import run_training
from tests.job_contract import JobContract, finished_events  # noqa: F401 - the contract's fixture

from .test_jobs import request_for, voted_arena  # noqa: F401 - fixtures

STEPS = 4


class TestTrainingRuns(JobContract):
    @pytest.fixture
    def job(self, voted_arena):  # noqa: F811
        return actions.do_create_run(request_for(voted_arena, max_steps=STEPS), queue=False)

    @pytest.fixture
    def task(self):
        return run_training

    def api_url(self, job) -> str:
        return f"/api/training/runs/{job.pk}/"

    def page_url(self, job) -> str:
        return f"/training/runs/{job.pk}/"

    def page_action(self, job, action: str) -> tuple[str, dict]:
        return f"/training/runs/{job.pk}/{action}/", {}

    def assert_stopped_early(self, job) -> None:
        assert job.progress["step"] < STEPS and job.produced_system is None, job.progress

    def test_a_worker_killed_under_the_job_fails_it_saying_so(self, job):
        super().test_a_worker_killed_under_the_job_fails_it_saying_so(job)
        # a run says what to change: it is most often the model's memory
        assert "lower data.max_length" in type(job).objects.get(pk=job.pk).error

    def test_a_retry_starts_from_a_clean_slate(self, job, task, staff):
        # given a run that trained and then failed (as when registering its model went wrong)
        assert task.apply(args=[job.pk]).get() == "succeeded"
        run = type(job).objects.get(pk=job.pk)
        type(job).objects.filter(pk=job.pk).update(status="failed")
        # then its retry starts without the last attempt's curves and results
        retried = staff.post(self.api_url(job) + "retry/").json()
        assert run.history and run.metrics
        assert (retried["history"], retried["metrics"], retried["produced_system"]) == ([], {}, None)
