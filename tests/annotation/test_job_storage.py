"""Exports and import uploads through the storage every host reaches (`arena.storage`,
STORAGES["duet"]), here Django's InMemoryStorage standing in for an object store: the files
land there, never in a folder another host could not read."""

import io
import json
import shutil

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from annotation import import_jobs
from annotation.export import jobs
from annotation.export_tasks import export_dataset_task
from annotation.import_tasks import import_comparisons_task, sweep_import_uploads
from annotation.models import ImportJob, ProjectItem
from arena import storage
from arena.jobs import lifecycle

from .conftest import jsonl, text_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def object_store(settings, tmp_path):
    """The storage as an object store, and this host's scratch folders."""
    settings.STORAGES = {**settings.STORAGES, "duet": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    settings.VAR_DIR = tmp_path / "host-1"
    settings.ANNOTATION_EXPORT_DIR = tmp_path / "host-1" / "export-work"
    settings.ANNOTATION_IMPORT_DIR = tmp_path / "host-1" / "import-work"
    return storages["duet"]


def other_host(settings, tmp_path):
    """The settings of a second host: the same storage, scratch folders of its own, and
    nothing left of the first host's."""
    shutil.rmtree(tmp_path / "host-1", ignore_errors=True)
    settings.VAR_DIR = tmp_path / "host-2"
    settings.ANNOTATION_EXPORT_DIR = tmp_path / "host-2" / "export-work"
    settings.ANNOTATION_IMPORT_DIR = tmp_path / "host-2" / "import-work"


# --- exports ---------------------------------------------------------------------------------


@pytest.fixture
def export_job(object_store, make_project):
    rows = text_rows(3)
    for row in rows:
        row["judgments"] = [{"annotator": "vendor-1", "verdict": "a"}, {"annotator": "vendor-2", "verdict": "b"}]
    make_project("Stored", rows=rows)
    return jobs.create_job({"format": "jsonl", "project": "Stored", "aggregate": "none"}, requested_by="res")


def test_an_export_is_stored_under_its_job_and_its_scratch_folder_deleted(export_job, object_store, settings):
    # when the worker runs the export
    assert export_dataset_task.apply(args=[export_job.pk]).get() == "succeeded"
    # then its file is in the storage under exports/<job id>/, and the job refers to it there
    done = jobs.load_job(export_job.pk)
    name = f"exports/{export_job.pk}/judgments.jsonl"
    assert done.files == {"rows": f"stored:{name}"}
    assert done.result["path"] == f"stored:{name}"  # what export.finished announces, not a scratch path
    with object_store.open(name, "rb") as stored:
        lines = stored.read().decode().splitlines()
    assert len(lines) == 6  # 3 items × 2 judgments, none aggregated
    assert {json.loads(line)["verdict"] for line in lines} == {"a", "b"}
    # and nothing is left in the worker's scratch folder
    assert not (settings.ANNOTATION_EXPORT_DIR / export_job.pk).exists()


def test_another_host_downloads_the_export_a_worker_stored(export_job, object_store, researcher, client_for,
                                                           settings, tmp_path):
    # given an export written on host 1
    export_dataset_task.apply(args=[export_job.pk]).get()
    expected = object_store.open(f"exports/{export_job.pk}/judgments.jsonl", "rb").read()
    # when a web process on host 2, with a var folder of its own, serves it
    other_host(settings, tmp_path)
    page = client_for(researcher)
    page.force_login(researcher)
    for get, url in ((client_for(researcher).get, f"/api/annotation/exports/{export_job.pk}/download/"),
                     (page.get, f"/projects/export/?download={export_job.pk}")):  # fmt: skip
        response = get(url)
        # then both the API and the page answer the stored bytes, as an attachment named after the file
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == expected
        assert 'filename="judgments.jsonl"' in response["Content-Disposition"]


def test_an_export_file_gone_from_the_storage_is_a_404_saying_so(export_job, object_store, researcher, client_for):
    export_dataset_task.apply(args=[export_job.pk]).get()
    object_store.delete(f"exports/{export_job.pk}/judgments.jsonl")
    response = client_for(researcher).get(f"/api/annotation/exports/{export_job.pk}/download/")
    assert response.status_code == 404
    assert "no longer in the storage" in response.json()["detail"]
    client = client_for(researcher)
    client.force_login(researcher)
    page = client.get(f"/projects/export/?download={export_job.pk}")
    assert page.status_code == 404 and "no longer in the storage" in page.content.decode()


def test_an_export_made_before_files_were_stored_is_served_from_its_path(export_job, researcher, client_for,
                                                                        tmp_path):
    # given a job of an older version, whose file lies in a local folder
    legacy = tmp_path / "exports" / export_job.pk / "judgments.csv"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("judgment_id\n1\n")
    lifecycle.finish(type(export_job), export_job.pk, jobs.DONE, files={"rows": str(legacy)})
    response = client_for(researcher).get(f"/api/annotation/exports/{export_job.pk}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"judgment_id\n1\n"
    legacy.unlink()
    gone = client_for(researcher).get(f"/api/annotation/exports/{export_job.pk}/download/")
    assert gone.status_code == 404 and "no longer on this server" in gone.json()["detail"]


# --- import uploads --------------------------------------------------------------------------


def upload(rows, name="items.jsonl"):
    handle = io.BytesIO(jsonl(rows))
    handle.name = name
    return handle


def post_import(client, project, rows, sent, django_capture_on_commit_callbacks) -> ImportJob:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/import/",
                               {"file": upload(rows), "background": "true"}, format="multipart")  # fmt: skip
    assert response.status_code == 202, response.content
    return ImportJob.objects.get(pk=response.json()["id"])


@pytest.fixture
def sent(monkeypatch):
    queued = []
    monkeypatch.setattr(import_comparisons_task, "delay", lambda *args: queued.append(args))
    return queued


def test_an_upload_is_stored_read_by_a_worker_on_another_host_and_deleted_once_imported(
    object_store, make_project, researcher, client_for, sent, settings, tmp_path, django_capture_on_commit_callbacks
):
    # given a file posted to the API for a background import on host 1
    project = make_project("Uploads")
    job = post_import(client_for(researcher), project, text_rows(4), sent, django_capture_on_commit_callbacks)
    # then the upload is in the storage, byte for byte, and the job names it there
    assert job.folder.startswith("stored:imports/") and sent == [(job.pk,)]
    name = storage.stored_name(job.folder)
    assert object_store.open(name, "rb").read() == jsonl(text_rows(4))
    # when a worker on host 2 imports it
    other_host(settings, tmp_path)
    assert import_comparisons_task.apply(args=[job.pk]).get() == "succeeded"
    # then every row is in, the upload is deleted and the worker's scratch copy is gone
    job.refresh_from_db()
    assert ProjectItem.objects.filter(project=project).count() == 4 and job.result["items_created"] == 4
    assert not object_store.exists(name) and job.folder == ""
    assert list((tmp_path / "host-2" / "import-work").iterdir()) == []


def test_a_failed_import_keeps_its_upload_and_a_cancelled_one_retries_from_it(
    object_store, make_project, researcher, client_for, sent, django_capture_on_commit_callbacks
):
    # given an import whose file has a bad row, and one cancelled before it ran
    project = make_project("Kept")
    bad = text_rows(2)
    del bad[1]["a"]["text"]
    client = client_for(researcher)
    failed = post_import(client, project, bad, sent, django_capture_on_commit_callbacks)
    cancelled = post_import(client, project, text_rows(3), sent, django_capture_on_commit_callbacks)
    lifecycle.cancel(cancelled)
    assert import_comparisons_task.apply(args=[failed.pk]).get() == "failed"
    # then both uploads are still kept
    failed.refresh_from_db()
    cancelled.refresh_from_db()
    assert "line 2: field 'a.text'" in failed.error
    assert object_store.exists(storage.stored_name(failed.folder))
    assert object_store.exists(storage.stored_name(cancelled.folder))
    # and a retry imports the kept bytes, then deletes them
    response = client.post(f"/api/annotation/imports/{cancelled.pk}/retry/")
    assert response.status_code == 202, response.content
    assert import_comparisons_task.apply(args=[cancelled.pk, 2]).get() == "succeeded"
    name = storage.stored_name(cancelled.folder)
    cancelled.refresh_from_db()
    assert cancelled.folder == "" and not object_store.exists(name)
    assert ProjectItem.objects.filter(project=project).count() == 3


def test_the_hourly_sweep_deletes_uploads_kept_past_their_days_and_a_retry_asks_for_the_file(
    object_store, make_project, researcher, client_for, settings
):
    # given imports that failed 8 and 6 days ago, with 7 days of keeping
    settings.ANNOTATION_IMPORT_KEEP_DAYS = 7
    project = make_project("Swept")
    old, recent = (import_jobs.queue_import(project, upload(text_rows(2)), "items.jsonl") for _ in range(2))
    now = timezone.now()
    for job, days in ((old, 8), (recent, 6)):
        lifecycle.fail(ImportJob, job.pk, "the database was down")
        ImportJob.objects.filter(pk=job.pk).update(finished_at=now - timezone.timedelta(days=days))
    old_name, recent_name = storage.stored_name(old.folder), storage.stored_name(recent.folder)
    # when the beat's sweep runs
    assert sweep_import_uploads.apply().get() == 1
    # then only the older upload is deleted, and the job records it
    assert not object_store.exists(old_name) and object_store.exists(recent_name)
    old.refresh_from_db()
    assert old.folder == ""
    assert sweep_import_uploads.apply().get() == 0
    # and retrying that import, from the API or the page, asks for the file again
    client = client_for(researcher)
    response = client.post(f"/api/annotation/imports/{old.pk}/retry/")
    assert response.status_code == 400
    assert "the upload is no longer kept (a failed or cancelled import keeps it 7 days); upload it again" in (
        response.json()["detail"])  # fmt: skip
    page = client_for(researcher)
    page.force_login(researcher)
    answer = page.post(f"/projects/{project.pk}/imports/{old.pk}/retry/", follow=True)
    assert "the upload is no longer kept" in answer.content.decode()
    old.refresh_from_db()
    assert old.status == "failed" and old.attempts == 1


def test_an_upload_deleted_before_the_worker_reads_it_fails_the_import_saying_so(object_store, make_project):
    project = make_project("Raced")
    job = import_jobs.queue_import(project, upload(text_rows(2)), "items.jsonl")
    storage.delete_stored(job.folder)
    assert import_comparisons_task.apply(args=[job.pk]).get() == "failed"
    job.refresh_from_db()
    assert "nothing was imported: the upload is no longer kept" in job.error and "upload it again" in job.error
    assert not ProjectItem.objects.filter(project=project).exists()


def test_a_successful_import_whose_upload_remained_is_swept(object_store, make_project):
    project = make_project("Leftover")
    job = import_jobs.queue_import(project, upload(text_rows(2)), "items.jsonl")
    lifecycle.finish(ImportJob, job.pk, "succeeded")
    assert import_jobs.sweep_import_uploads() == 1 and not object_store.exists(storage.stored_name(job.folder))


def test_a_media_zip_is_stored_beside_its_upload_and_both_are_deleted_once_imported(object_store, make_project,
                                                                                     settings, tmp_path):
    from tests.conftest import png_bytes

    from .test_import import make_zip, media_rows

    # given a background import of image rows with their media zip
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = make_project("Pictures")
    images = make_zip({f"images/{i}-{s}.png": png_bytes() for i in range(2) for s in "xy"})
    job = import_jobs.queue_import(project, upload(media_rows("image")), "items.jsonl", media_zip=images)
    upload_name = storage.stored_name(job.folder)
    assert object_store.exists(upload_name) and object_store.exists(upload_name + ".media.zip")
    # when a worker imports it
    assert import_comparisons_task.apply(args=[job.pk]).get() == "succeeded"
    # then the images came from the stored zip, and both stored files are gone
    job.refresh_from_db()
    assert job.result["media_files"] == 4
    assert not object_store.exists(upload_name) and not object_store.exists(upload_name + ".media.zip")
