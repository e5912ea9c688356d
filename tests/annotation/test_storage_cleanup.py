"""What the storage (`arena.storage`, STORAGES["duet"]) is left holding: nothing of an export
attempt that failed or was cancelled, nothing of a deleted project's uploads, nothing the
page's synchronous import stored once it answered; and the sweep of what older versions
left behind. The storage is Django's InMemoryStorage, standing in for an object store."""

import io
import re

import pytest
from django.core.management import call_command
from django.db.models.signals import post_delete
from django.utils import timezone

from annotation import actions, import_jobs, stored_files
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
    """The storage refuses a media zip (an export's second file, an upload's zip) after taking the first file."""
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
    assert storage.list_files(f"exports/{media_export.pk}") == []
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
    assert storage.list_files(f"exports/{job.pk}") == [
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
    assert storage.list_files(f"exports/{media_export.pk}") == []
    job = jobs.load_job(media_export.pk)
    assert job.files == {} and "this attempt had stored were deleted" in job.error


# --- 2. uploads of deleted projects, and the sweep of orphans ------------------------------------


def upload(rows, name="items.jsonl"):
    handle = io.BytesIO(jsonl(rows))
    handle.name = name
    return handle


def failed_import(project) -> ImportJob:
    """A failed import, which keeps its upload (and its media zip) for a retry."""
    images = make_zip({"images/0-x.png": png_bytes()})
    job = import_jobs.queue_import(project, upload(text_rows(2)), "items.jsonl", media_zip=images)
    lifecycle.fail(ImportJob, job.pk, "the database was down")
    return ImportJob.objects.get(pk=job.pk)


def test_deleting_a_project_deletes_its_stored_uploads_once_the_deletion_commits(
    object_store, make_project, admin_user, client_for, django_capture_on_commit_callbacks
):
    # given a project whose failed import keeps its upload and media zip, and another project's
    project, other = make_project("Doomed"), make_project("Kept")
    job, kept = failed_import(project), failed_import(other)
    upload_name = storage.stored_name(job.folder)
    assert storage.list_files("imports") == sorted(
        [upload_name, upload_name + ".media.zip", storage.stored_name(kept.folder),
         storage.stored_name(kept.folder) + ".media.zip"])  # fmt: skip
    # when the project is deleted through the API
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(admin_user).delete(f"/api/projects/{project.pk}/")
        assert response.status_code == 204, response.content
        # then before the deletion commits, the files are still there
        assert object_store.exists(upload_name) and object_store.exists(upload_name + ".media.zip")
    for callback in callbacks:
        callback()
    # and once it commits, its upload and media zip are gone, the other project's stay
    assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert storage.list_files("imports") == sorted(
        [storage.stored_name(kept.folder), storage.stored_name(kept.folder) + ".media.zip"])  # fmt: skip


def test_a_deletion_rolled_back_keeps_the_uploads(object_store, make_project, django_capture_on_commit_callbacks):
    from django.db import transaction

    project = make_project("Saved")
    job = failed_import(project)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            Project.objects.filter(pk=project.pk).delete()
            raise RuntimeError("changed my mind")
    assert callbacks == [] and ImportJob.objects.filter(pk=job.pk).exists()
    assert object_store.exists(storage.stored_name(job.folder))


def test_deleting_an_export_job_deletes_its_stored_files(media_export, object_store,
                                                         django_capture_on_commit_callbacks):
    assert export_dataset_task.apply(args=[media_export.pk]).get() == "succeeded"
    assert len(storage.list_files(f"exports/{media_export.pk}")) == 2
    with django_capture_on_commit_callbacks(execute=True):
        ExportJob.objects.filter(pk=media_export.pk).delete()
    assert storage.list_files(f"exports/{media_export.pk}") == []


def orphans(object_store, make_project, media_export):
    """What an older version left: the upload of a project deleted before uploads were swept,
    the files of an export job deleted since, a failed attempt's leftover file; beside the
    files that still have owners."""
    # an upload whose project (with its import job) was deleted before uploads went with it
    gone = make_project("Gone")
    gone_job = failed_import(gone)
    post_delete.disconnect(sender=ImportJob, dispatch_uid="duet.annotation.import_upload")
    try:
        gone.delete()
    finally:
        stored_files.connect()
    # an export whose job row is gone
    storage.store_file(io.BytesIO(b"rows"), "exports/0123456789abcdef0123456789abcdef/judgments.csv")
    # a failed export job with its first attempt's file left over
    storage.store_file(io.BytesIO(b"half"), f"exports/{media_export.pk}/judgments.jsonl")
    lifecycle.fail(ExportJob, media_export.pk, "the worker stopped")
    # an upload of an older version, in a folder of its own under the storage's imports/,
    # once with its job and once without
    ImportJob.objects.create(project=make_project("Legacy"), filename="items.jsonl",
                             folder="/srv/duet/var/imports/" + "a" * 32)  # fmt: skip
    storage.store_file(io.BytesIO(b"kept"), f"imports/{'a' * 32}/upload")
    storage.store_file(io.BytesIO(b"lost"), f"imports/{'b' * 32}/upload")
    # owned: a kept upload of a failed import, and a succeeded export's files
    live = failed_import(make_project("Live"))
    done = jobs.create_job({"format": "jsonl", "project": "Pictures", "aggregate": "none"})
    assert export_dataset_task.apply(args=[done.pk]).get() == "succeeded"
    stale = sorted([storage.stored_name(gone_job.folder), storage.stored_name(gone_job.folder) + ".media.zip",
                    "exports/0123456789abcdef0123456789abcdef/judgments.csv",
                    f"exports/{media_export.pk}/judgments.jsonl", f"imports/{'b' * 32}/upload"])  # fmt: skip
    owned = sorted([storage.stored_name(live.folder), storage.stored_name(live.folder) + ".media.zip",
                    f"imports/{'a' * 32}/upload",
                    f"exports/{done.pk}/judgments.jsonl", f"exports/{done.pk}/judgments.jsonl.media.zip"])  # fmt: skip
    return stale, owned


def all_stored():
    return storage.list_files("imports") + storage.list_files("exports")


def test_the_sweep_command_removes_orphans_and_reports_them_with_a_dry_run_first(
    object_store, make_project, media_export, capsys
):
    # given files without owners beside files with owners
    stale, owned = orphans(object_store, make_project, media_export)
    # when the command runs with --dry-run (no grace: every file here is a moment old)
    call_command("sweep_storage", "--dry-run", "--grace-minutes", "0")
    # then it lists the orphans and removes nothing
    out = capsys.readouterr().out.splitlines()
    assert sorted(line.removeprefix("would remove ") for line in out[:-1]) == stale
    assert out[-1] == "would remove 5 orphaned file(s); kept 0 younger than the grace (or of unknown age)"
    assert sorted(all_stored()) == sorted(stale + owned)
    # when it runs for real
    call_command("sweep_storage", "--grace-minutes", "0")
    out = capsys.readouterr().out.splitlines()
    # then it names what it removed, only files with owners are left, and a second sweep finds nothing
    assert sorted(line.removeprefix("removed ") for line in out[:-1]) == stale
    assert sorted(all_stored()) == owned
    call_command("sweep_storage", "--grace-minutes", "0")
    assert capsys.readouterr().out.startswith("removed 0 orphaned file(s)")


def test_the_sweep_keeps_orphans_younger_than_its_grace(object_store, make_project, media_export):
    from annotation.stored_files import sweep_orphans

    stale, owned = orphans(object_store, make_project, media_export)
    # an hour of grace: everything here was stored a moment ago
    report = sweep_orphans()
    assert report.removed == [] and sorted(report.recent) == stale
    # an hour later they go
    later = sweep_orphans(now=timezone.now() + timezone.timedelta(hours=1, minutes=1))
    assert sorted(later.removed) == stale and sorted(all_stored()) == sorted(owned)


def test_the_sweep_command_refuses_a_negative_grace():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--grace-minutes must be 0 or more, not -5"):
        call_command("sweep_storage", "--grace-minutes", "-5")


# --- 3. the page's import in the request, through the storage ------------------------------------


@pytest.fixture
def storage_trail(monkeypatch):
    """What went into the storage (names) and what was copied out of it (references)."""
    trail = {"stored": [], "copied": []}
    store_file, copy_stored = storage.store_file, storage.copy_stored

    def recording_store(source, name):
        trail["stored"].append(name)
        return store_file(source, name)

    def recording_copy(ref, target):
        trail["copied"].append(ref)
        return copy_stored(ref, target)

    monkeypatch.setattr(storage, "store_file", recording_store)
    monkeypatch.setattr(storage, "copy_stored", recording_copy)
    return trail


def page_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_the_page_import_stores_the_upload_reads_it_back_and_deletes_it(object_store, make_project, researcher,
                                                                       storage_trail, settings, tmp_path):
    # given the project page's import form, with a media zip
    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = make_project("Paged")
    images = make_zip({f"images/{i}-{s}.png": png_bytes() for i in range(2) for s in "xy"})
    images.name = "media.zip"
    # when a file is posted to it, the page's script asking for JSON
    answer = page_client(researcher).post(
        f"/projects/{project.pk}/import/", {"file": upload(media_rows("image")), "format": "duet", "media_zip": images},
        HTTP_ACCEPT="application/json")  # fmt: skip
    # then it answers as before: imported, in the request
    assert answer.status_code == 200, answer.content
    assert answer.json()["ok"] and answer.json()["summary"]["media_files"] == 4 and answer.json()["items"] == 2
    # and the upload and its zip went into the storage as imports/<uuid>, were read back from it,
    (name, media_name) = storage_trail["stored"]
    assert re.fullmatch(r"imports/[0-9a-f]{32}", name) and media_name == name + ".media.zip"
    assert storage_trail["copied"] == [f"stored:{name}", f"stored:{name}.media.zip"]
    # and are gone once imported, leaving no job and no scratch copy
    assert storage.list_files("imports") == [] and not ImportJob.objects.exists()
    assert list(settings.ANNOTATION_IMPORT_DIR.iterdir()) == []


def test_a_bad_row_in_the_page_import_names_it_writes_nothing_and_leaves_nothing_stored(
    object_store, make_project, researcher, storage_trail
):
    project = make_project("Refused")
    rows = text_rows(3)
    rows[2]["a"] = {"system": "m"}
    # without script: the page redirects back with the message
    response = page_client(researcher).post(f"/projects/{project.pk}/import/",
                                            {"file": upload(rows, "bad.jsonl"), "format": "duet"}, follow=True)  # fmt: skip
    assert "Nothing was imported. line 3: field &#x27;a.text&#x27; is missing" in response.content.decode()
    assert len(storage_trail["stored"]) == 1 and storage_trail["copied"] == [f"stored:{storage_trail['stored'][0]}"]
    assert not ProjectItem.objects.filter(project=project).exists() and storage.list_files("imports") == []


def test_the_page_import_imports_the_stored_bytes(object_store, make_project, researcher, monkeypatch):
    # given a storage that holds other bytes than the request sent (as another host's
    # storage would, if the import read the request's file instead, the counts would differ)
    real = storage.store_file

    def store_five_rows(source, name):
        return real(io.BytesIO(jsonl(text_rows(5, prefix="stored"))), name)

    monkeypatch.setattr(storage, "store_file", store_five_rows)
    project = make_project("Read back")
    answer = page_client(researcher).post(f"/projects/{project.pk}/import/",
                                          {"file": upload(text_rows(2)), "format": "duet"},
                                          HTTP_ACCEPT="application/json")  # fmt: skip
    assert answer.json()["summary"]["items_created"] == 5
    assert sorted(ProjectItem.objects.filter(project=project).values_list("external_id", flat=True)) == [
        f"stored-{i}" for i in range(5)]  # fmt: skip


def test_an_upload_over_the_limit_is_refused_before_it_is_stored(object_store, make_project, researcher,
                                                                  storage_trail, settings):
    settings.ANNOTATION_IMPORT_MAX_BYTES = 100
    project = make_project("Small")
    answer = page_client(researcher).post(f"/projects/{project.pk}/import/",
                                          {"file": upload(text_rows(3)), "format": "duet"},
                                          HTTP_ACCEPT="application/json")  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["message"] == "Nothing was imported. items.jsonl is larger than the import limit of 100 bytes"
    assert storage_trail["stored"] == []


def test_the_api_import_in_the_request_goes_through_the_storage_too(object_store, make_project, researcher,
                                                                    client_for, storage_trail):
    project = make_project("Api")
    response = client_for(researcher).post(f"/api/projects/{project.pk}/import/", {"file": upload(text_rows(3))},
                                           format="multipart")  # fmt: skip
    assert response.status_code == 201 and response.json()["items_created"] == 3
    assert len(storage_trail["stored"]) == 1 and storage_trail["copied"] == [f"stored:{storage_trail['stored'][0]}"]
    assert storage.list_files("imports") == []


def test_an_upload_whose_media_zip_the_storage_refuses_is_not_kept_alone(object_store, make_project, monkeypatch):
    # given a storage that takes the upload and refuses its media zip
    fail_on_media(monkeypatch)
    project = make_project("Half")
    # when a background import is queued, then it fails with the storage's error, no job, nothing stored
    with pytest.raises(OSError, match="503"):
        import_jobs.queue_import(project, upload(text_rows(2)), "items.jsonl", media_zip=make_zip({"a.png": b"x"}))
    assert storage.list_files("imports") == [] and not ImportJob.objects.exists()
