"""Judging jobs through the job lifecycle (tests/job_contract.py)."""

import pytest

from routing import actions
from routing.models import JobKind, ProjectRouting
from routing.tasks import run_judging_job
from tests.job_contract import JobContract, finished_events  # noqa: F401 - the contract's fixture

from .test_integration_support import ScriptedJudge, make_routed_project, scripted_rows

pytestmark = pytest.mark.django_db


class TestJudgingJobs(JobContract):
    @pytest.fixture
    def job(self, monkeypatch):
        # the scripted judge (the Judge contract, no model to load) judges every item anew
        monkeypatch.setattr(actions, "build_judge", lambda spec, **options: ScriptedJudge())
        rows = scripted_rows([("a", 0.8, False)] * 4)
        project = make_routed_project("jobs", judge_spec="smollm2", human_budget_fraction=0.5, rows=rows)
        ProjectRouting.objects.filter(project=project).update(batch_size=1)  # one step per item
        return actions.create_job(project, JobKind.JUDGE, trigger="test")

    @pytest.fixture
    def task(self):
        return run_judging_job

    def api_url(self, job) -> str:
        return f"/api/routing/jobs/{job.pk}/"

    def page_url(self, job) -> str:
        return f"/routing/projects/{job.project_id}/"

    def page_action(self, job, action: str) -> tuple[str, dict]:
        return f"/routing/jobs/{job.pk}/{action}/", {}

    def assert_stopped_early(self, job) -> None:
        assert job.total == 4 and job.done < 4, (job.done, job.total)
