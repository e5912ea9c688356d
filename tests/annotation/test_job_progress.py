"""Long jobs report on their page without a reload: the export page (in the site's layout)
follows each running export through its JSON status, and the import form gets its result
as JSON for import.js to show in place."""

import io
import re

import pytest
from django.test import Client

from annotation.export import jobs
from annotation.export_tasks import export_dataset_task

from .conftest import jsonl, text_rows

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def export_row(html: str, job_id: str) -> str:
    return re.search(rf'<tr data-job="{job_id}".*?</tr>', html, re.S).group(0)


def test_the_export_page_follows_a_queued_export_to_its_files(make_project, make_user, researcher, monkeypatch,
                                                               django_capture_on_commit_callbacks, settings, tmp_path):
    settings.ANNOTATION_EXPORT_DIR = str(tmp_path / "exports")
    rows = text_rows(4)
    for row in rows:
        row["judgments"] = [{"annotator": "vendor-1", "verdict": "a"}, {"annotator": "vendor-2", "verdict": "a"}]
    make_project("Exported", rows=rows)
    client = logged_in(researcher)
    queued = []
    monkeypatch.setattr(export_dataset_task, "delay", lambda job_id: queued.append(job_id))
    # given an export queued from the page, not yet run by the worker
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/projects/export/", {"target": "project:Exported", "format": "jsonl", "aggregate": "none",
                                          "source": "human", "min_confidence": "0"})  # fmt: skip
    (job_id,) = queued
    page = client.get("/projects/export/").content.decode()
    # then the page is one of the site's, and its script follows the queued export
    assert 'class="topbar"' in page and "breadcrumbs" not in page
    assert re.search(r'<script src="[^"]*annotation/export\.js" defer>', page)
    row = export_row(page, job_id)
    assert 'data-status="queued"' in row and f'data-job-url="/api/annotation/exports/{job_id}/"' in row
    status_url = f"/api/annotation/exports/{job_id}/"
    assert client.get(status_url).json()["status"] == "queued"
    # when the worker runs it, the status the script polls ends with the result and its files
    export_dataset_task.apply(args=[job_id])
    status = client.get(status_url).json()
    assert (status["status"], status["result"]["n_rows"], status["parts"]) == ("succeeded", 8, ["rows"])
    assert status["progress"] == 1.0
    assert f'href="?download={job_id}&amp;part=rows"' in export_row(client.get("/projects/export/").content.decode(),
                                                                     job_id)
    assert jobs.load_job(job_id).status == jobs.DONE


def test_the_import_form_answers_json_for_its_script(make_project, researcher):
    project = make_project("Imported")
    client = logged_in(researcher)
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert 'id="import-form"' in page and 'id="import-job"' in page
    assert re.search(r'<script src="[^"]*annotation/import\.js" defer>', page)
    # a good file: the summary and the project's new counts
    upload = io.BytesIO(jsonl(text_rows(3)))
    upload.name = "items.jsonl"
    answer = client.post(f"/projects/{project.pk}/import/", {"file": upload, "format": "duet"},
                         HTTP_ACCEPT="application/json")  # fmt: skip
    assert answer.status_code == 200
    data = answer.json()
    assert data["ok"] and data["summary"]["items_created"] == 3 and data["items"] == 3
    assert data["message"].startswith("Imported items.jsonl: 3 rows: 3 items created")
    # a bad one: nothing imported, and the line and field that stopped it
    rows = text_rows(2, start=10)
    rows[1]["a"] = {"system": "m"}
    bad = io.BytesIO(jsonl(rows))
    bad.name = "bad.jsonl"
    refused = client.post(f"/projects/{project.pk}/import/", {"file": bad, "format": "duet"},
                          HTTP_ACCEPT="application/json")  # fmt: skip
    assert refused.status_code == 400
    assert refused.json() == {**refused.json(), "ok": False,
                              "message": "Nothing was imported. line 2: field 'a.text' is missing"}
    assert project.items.count() == 3
