"""Imports in the worker, through the job lifecycle (tests/job_contract.py)."""

import io

import pytest

from annotation import import_jobs
from annotation.import_tasks import import_comparisons_task
from annotation.models import ImportJob, ProjectItem
from tests.job_contract import JobContract, finished_events  # noqa: F401 - the contract's fixture

from .conftest import jsonl, text_rows

pytestmark = pytest.mark.django_db


def upload(data: bytes, name="items.jsonl"):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    settings.ANNOTATION_IMPORT_DIR = str(tmp_path / "imports")


class TestImportJobs(JobContract):
    @pytest.fixture
    def job(self, make_project):
        project = make_project("Imported")
        return import_jobs.queue_import(project, upload(jsonl(text_rows(4))), "items.jsonl")

    @pytest.fixture
    def task(self):
        return import_comparisons_task

    def api_url(self, job) -> str:
        return f"/api/annotation/imports/{job.pk}/"

    def page_url(self, job) -> str:
        return f"/projects/{job.project_id}/"

    def page_action(self, job, action: str) -> tuple[str, dict]:
        return f"/projects/{job.project_id}/imports/{job.pk}/{action}/", {}

    def assert_stopped_early(self, job) -> None:
        assert job.done < job.total and not ProjectItem.objects.filter(project=job.project).exists()


def test_a_background_import_through_the_api(make_project, researcher, client_for, monkeypatch,
                                             django_capture_on_commit_callbacks):
    # given a project and a file too large to wait for
    project = make_project("Big")
    sent = []
    monkeypatch.setattr(import_comparisons_task, "delay", lambda *args: sent.append(args))
    client = client_for(researcher)
    # when it is posted with background
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/import/",
                               {"file": upload(jsonl(text_rows(5))), "background": "true"}, format="multipart")
    # then the answer is a queued job, and the worker imports every row
    assert response.status_code == 202, response.content
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.status == "queued" and sent == [(job.pk,)]
    assert import_comparisons_task.apply(args=[job.pk]).get() == "succeeded"
    status = client.get(f"/api/annotation/imports/{job.pk}/").json()
    assert status["status"] == "succeeded" and status["result"]["items_created"] == 5
    assert ProjectItem.objects.filter(project=project).count() == 5


def test_a_bad_row_fails_the_import_naming_it_and_writes_nothing(make_project):
    project = make_project("Broken")
    rows = text_rows(3)
    del rows[1]["a"]["text"]
    job = import_jobs.queue_import(project, upload(jsonl(rows)), "items.jsonl")
    assert import_comparisons_task.apply(args=[job.pk]).get() == "failed"
    job.refresh_from_db()
    assert "nothing was imported: line 2: field 'a.text'" in job.error
    assert not ProjectItem.objects.filter(project=project).exists()
