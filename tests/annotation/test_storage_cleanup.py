"""What the storage (`arena.storage`, STORAGES["duet"]) is left holding: nothing of an export
attempt that failed or was cancelled, nothing of a deleted project's uploads, nothing the
page's synchronous import stored once it answered; and the sweep of what older versions
left behind. The storage is Django's InMemoryStorage, standing in for an object store."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation import actions, import_jobs
from annotation.export import jobs
from annotation.export_tasks import export_dataset_task
from annotation.models import ExportJob, ImportJob, Project, ProjectItem
from arena import storage
from arena.jobs import lifecycle
from tests.conftest import png_bytes

from .conftest import jsonl, text_rows
from .test_import import make_zip, media_rows
from .test_job_storage import object_store  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def stored_names(store, prefix: str) -> list[str]:
    return storage.list_files(prefix)


# --- 1. a failed or cancelled export attempt -----------------------------------------------------


@pytest.fixture
def media_export(object_store, make_project, settings, tmp_path):
    """An export job of a project of two image items, each with a judgment: it writes two
    files, the rows and the media zip."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = make_project("Pictures")
    rows = media_rows("image")
    for row in rows:
        row["judgments"] = [{"annotator": "vendor-1", "verdict": "a"}]
    images = make_zip({f"images/{i}-{s}.png": png_bytes() for i in range(2) for s in "xy"})
    actions.import_comparisons(project, io.BytesIO(jsonl(rows)), "items.jsonl", media_zip=images)
    return jobs.create_job({"format": "jsonl", "project": "Pictures", "aggregate": "none"}, requested_by="res")


def fail_on_media(monkeypatch):
    """The storage refuses the export's second file (the media zip) after taking the first."""
    real = storage.store_file

    def store_file(source, name):
        if name.endswith(".media.zip"):
            raise OSError("the object store answered 503")
        return real(source, name)

    monkeypatch.setattr(storage, "store_file", store_file)


def test_an_export_that_fails_while_storing_deletes_what_it_stored_and_says_so(media_export, object_store,
                                                                              monkeypatch):
    # given a storage that takes the rows file and then fails on the media zip
    fail_on_media(monkeypatch)
    # when the worker runs the export
    assert export_dataset_task.apply(args=[media_export.pk]).get() == "failed"
    # then the rows file it had stored is gone too, and the job's error says so, naming it
    assert stored_names(object_store, f"exports/{media_export.pk}") == []
    job = jobs.load_job(media_export.pk)
    assert "the object store answered 503" in job.error
    assert f"the 1 file(s) this attempt had stored were deleted: exports/{media_export.pk}/judgments.jsonl" in job.error
    assert job.files == {}


def test_a_retry_of_a_failed_export_starts_clean_and_stores_only_its_own_files(media_export, object_store,
                                                                             monkeypatch):
    # given a failed attempt whose worker died while storing, leaving a stray file behind
    name = f"exports/{media_export.pk}/judgments.csv"
    storage.store_file(io.BytesIO(b"left by attempt 1"), name)
    lifecycle.fail(ExportJob, media_export.pk, "the worker stopped")
    # when the export is retried and succeeds
    job = lifecycle.retry(jobs.load_job(media_export.pk))
    assert export_dataset_task.apply(args=[job.pk, job.attempts]).get() == "succeeded"
    # then the storage holds exactly the two files of the attempt that succeeded
    assert stored_names(object_store, f"exports/{job.pk}") == [
        f"exports/{job.pk}/judgments.jsonl", f"exports/{job.pk}/judgments.jsonl.media.zip"]  # fmt: skip
    job.refresh_from_db()
    assert sorted(job.files) == ["media", "rows"]


def test_an_export_cancelled_while_storing_deletes_what_it_stored(media_export, object_store, monkeypatch):
    # given a cancel that arrives once the rows file is stored
    real = storage.store_file

    def store_file(source, name):
        stored = real(source, name)
        ExportJob.objects.filter(pk=media_export.pk).update(cancel_requested=True)
        return stored

    monkeypatch.setattr(storage, "store_file", store_file)
    # when the worker runs the export
    assert export_dataset_task.apply(args=[media_export.pk]).get() == "cancelled"
    # then nothing of it is left in the storage, and the job says what was deleted
    assert stored_names(object_store, f"exports/{media_export.pk}") == []
    job = jobs.load_job(media_export.pk)
    assert job.files == {} and "this attempt had stored were deleted" in job.error
