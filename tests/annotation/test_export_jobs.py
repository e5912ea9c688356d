"""Exports through the job lifecycle (tests/job_contract.py), and the move of the jobs
from `job.json` files into the database."""

import json

import pytest

from annotation.export import jobs, service
from annotation.export_tasks import export_dataset_task
from tests.job_contract import JobContract, finished_events  # noqa: F401 - the contract's fixture

from .conftest import text_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported_project(make_project, settings, tmp_path, monkeypatch):
    settings.ANNOTATION_EXPORT_DIR = str(tmp_path / "exports")
    monkeypatch.setattr(service, "CHUNK_SIZE", 2)  # several chunks, so a cancel lands between two
    rows = text_rows(4)
    for row in rows:
        row["judgments"] = [{"annotator": "vendor-1", "verdict": "a"}, {"annotator": "vendor-2", "verdict": "b"}]
    return make_project("Exported", rows=rows)


class TestExportJobs(JobContract):
    @pytest.fixture
    def job(self, exported_project):
        return jobs.create_job({"format": "jsonl", "project": "Exported", "aggregate": "none"}, requested_by="res")

    @pytest.fixture
    def task(self):
        return export_dataset_task

    def api_url(self, job) -> str:
        return f"/api/annotation/exports/{job.pk}/"

    def page_url(self, job) -> str:
        return "/projects/export/"

    def page_action(self, job, action: str) -> tuple[str, dict]:
        return "/projects/export/", {action: job.pk}

    def page_button(self, job, action: str) -> str:
        return f'name="{action}" value="{job.pk}"'

    def assert_stopped_early(self, job) -> None:
        assert job.total == 8 and job.done < 8, (job.done, job.total)
        assert job.files == {} and job.result is None

    def test_a_succeeded_export_serves_its_rows(self, job, task, staff):
        deliver_status = task.apply(args=[job.pk]).get()
        assert deliver_status == "succeeded"
        status = staff.get(self.api_url(job)).json()
        assert status["result"]["n_rows"] == 8 and status["parts"] == ["rows"] and status["progress"] == 1.0


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_job_files_into_rows(settings, tmp_path):
    """Exports made before jobs were rows keep their state, with "done" read as "succeeded"."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    settings.ANNOTATION_EXPORT_DIR = str(tmp_path / "exports")
    done_id, running_id = "a" * 32, "b" * 32
    for job_id, status in ((done_id, "done"), (running_id, "running")):
        folder = tmp_path / "exports" / job_id
        folder.mkdir(parents=True)
        (folder / "judgments.csv").write_text("judgment_id\n1\n")
        (folder / "job.json").write_text(json.dumps({
            "id": job_id, "options": {"format": "csv", "project": "p"}, "status": status, "done": 1, "total": 1,
            "result": {"n_rows": 1}, "error": "", "requested_by": "res", "created_at": "2026-11-30T10:00:00+00:00",
            "updated_at": "2026-11-30T10:01:00+00:00", "files": {"rows": str(folder / "judgments.csv")},
        }))  # fmt: skip
    # given the database as it was before exports were rows
    executor = MigrationExecutor(connection)
    executor.migrate([("annotation", "0002_routing_policy_choices")])
    # when it migrates
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    # then each folder is a row, its status in the lifecycle's words
    done, running = jobs.load_job(done_id), jobs.load_job(running_id)
    assert (done.status, done.result, done.requested_by) == ("succeeded", {"n_rows": 1}, "res")
    assert done.files["rows"].endswith("judgments.csv") and done.created_at.isoformat().startswith("2026-11-30T10:00")
    assert running.status == "failed" and "retry it" in running.error
