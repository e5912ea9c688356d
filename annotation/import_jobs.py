"""Imports in the worker: the upload is stored (`arena.storage`, ``imports/<uuid>``, where
every host reaches it), a job is queued, and the worker copies it to a scratch file of its
own host and runs the same all-or-nothing import a request does.

    job = queue_import(project, upload, upload.name, "hh-rlhf", user=request.user)

The work has three steps (read the upload, import, done); a cancel is honoured before the
import starts writing, never halfway through it (the import is one transaction).

The stored upload is deleted once imported. A failed or cancelled import keeps it for a
retry, ANNOTATION_IMPORT_KEEP_DAYS days after it ended; then the beat's hourly sweep
(`sweep_import_uploads`) deletes it, and a retry asks for the file again.

An import in the request (the project page's form, the API without `background`) takes the
same path without a job (`import_now`): the upload is stored, read back from the storage
through a scratch copy as a worker reads it, imported all or nothing, and deleted whatever
the outcome.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from arena import storage
from arena.errors import DuetError
from arena.jobs import lifecycle
from arena.jobs.lifecycle import JobContext, JobFailed
from arena.jobs.models import JobStatus

from .models import ImportJob, Project

UPLOAD_NAME = "upload"  # in the folder of an import queued before uploads were stored
MEDIA_NAME = "media.zip"
MEDIA_SUFFIX = ".media.zip"  # beside a stored upload: imports/<uuid>.media.zip


def scratch_root() -> Path:
    """This host's scratch folder, where a worker copies an upload to read it."""
    return Path(getattr(settings, "ANNOTATION_IMPORT_DIR", Path(settings.VAR_DIR) / "import-work"))


def upload_refs(job: ImportJob) -> list[str]:
    """The stored upload and, with one, its media zip ([] for an upload no longer kept)."""
    if not storage.is_stored(job.folder):
        return []
    return _with_media(job.folder, job.has_media_zip)


def _with_media(ref: str, has_media_zip: bool) -> list[str]:
    """A stored upload's reference and, with one, its media zip's beside it."""
    return [ref] + ([ref + MEDIA_SUFFIX] if has_media_zip else [])


def store_upload(source, media_zip=None) -> str:
    """Store the upload (and its media zip beside it) as ``imports/<uuid>``; returns its
    reference. Both or neither: a media zip the storage refuses takes the upload with it."""
    name = f"imports/{uuid.uuid4().hex}"
    ref = storage.store_file(source, name)
    if media_zip is not None:
        try:
            storage.store_file(media_zip, name + MEDIA_SUFFIX)
        except BaseException:
            storage.delete_stored(ref)
            raise
    return ref


def queue_import(project: Project, source, filename: str, fmt: str = "duet", media_zip=None, seed: int = 0,
                 user=None) -> ImportJob:
    """Store the upload (and its media zip) and queue its import once the transaction commits."""
    ref = store_upload(source, media_zip)
    job = ImportJob.objects.create(
        project=project, filename=Path(filename).name[:300], format=fmt, seed=seed, folder=ref,
        has_media_zip=media_zip is not None, requested_by=user if user is not None and user.is_authenticated else None,
    )  # fmt: skip
    lifecycle.queue(job)
    return job


def _local_copies(job: ImportJob, stack: ExitStack) -> tuple[Path, Path | None]:
    """Local paths of the upload and its media zip: copied out of the storage into a scratch
    folder (deleted when `stack` closes), or the folder of an import queued before uploads
    were stored."""
    if not storage.is_stored(job.folder):
        folder = Path(job.folder)
        if not job.folder or not (folder / UPLOAD_NAME).is_file():
            raise JobFailed(f"nothing was imported: {job.upload_gone_message()}")
        return folder / UPLOAD_NAME, (folder / MEDIA_NAME if job.has_media_zip else None)
    try:
        return _copy_out(job.folder, job.has_media_zip, f"import-{job.pk}-", stack)
    except storage.StoredFileMissing:
        raise JobFailed(f"nothing was imported: {job.upload_gone_message()}") from None


def _copy_out(ref: str, has_media_zip: bool, prefix: str, stack: ExitStack) -> tuple[Path, Path | None]:
    """The stored upload `ref` and its media zip copied into a scratch folder of this host
    (deleted when `stack` closes): a zip is read by seeking, which an object store's
    stream does not do well."""
    scratch_root().mkdir(parents=True, exist_ok=True)
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix, dir=scratch_root())))
    upload = storage.copy_stored(ref, scratch / UPLOAD_NAME)
    media = storage.copy_stored(ref + MEDIA_SUFFIX, scratch / MEDIA_NAME) if has_media_zip else None
    return upload, media


def import_now(project: Project, source, filename: str, fmt: str = "duet", media_zip=None, seed: int = 0):
    """Import an upload in this request, through the storage as a background import goes:
    stored, copied out and imported all or nothing, then deleted (also when the import
    fails). Raises what `actions.import_comparisons` raises (a bad row names its line)."""
    from .actions import import_comparisons
    from .errors import ImportFailed
    from .importers import import_max_bytes

    size, limit = getattr(source, "size", None), import_max_bytes()
    if size is not None and size > limit:  # refused before it is stored, as the import would
        raise ImportFailed(f"{filename} is larger than the import limit of {limit:,} bytes")
    ref = store_upload(source, media_zip)
    try:
        with ExitStack() as stack:
            upload, media_path = _copy_out(ref, media_zip is not None, "import-now-", stack)
            stored = stack.enter_context(open(upload, "rb"))
            media = stack.enter_context(open(media_path, "rb")) if media_path is not None else None
            return import_comparisons(project, stored, filename, fmt, media_zip=media, seed=seed)
    finally:
        for stored_ref in _with_media(ref, media_zip is not None):
            storage.delete_stored(stored_ref)


def run_import(job: ImportJob, context: JobContext) -> dict:
    """The work of an import job: its expected failures (a bad row, a missing media file)
    end it with their message, naming the line and field."""
    from .actions import import_comparisons

    context.progress(phase="reading", done=0, total=2)
    context.stop_if_cancelled()
    with ExitStack() as stack:
        upload, media_path = _local_copies(job, stack)
        source = stack.enter_context(open(upload, "rb"))
        media = stack.enter_context(open(media_path, "rb")) if media_path is not None else None
        try:
            context.progress(phase="importing", done=1, total=2)
            summary = import_comparisons(job.project, source, job.filename, job.format, media_zip=media, seed=job.seed)
        except DuetError as failure:
            raise JobFailed(f"nothing was imported: {failure.message}") from None
    delete_upload(job)
    return {"result": summary.as_dict(), "phase": "imported", "done": 2, "total": 2}


def delete_upload(job: ImportJob, statuses=None) -> bool:
    """Delete the job's stored upload (or old local folder) and record that it is gone; with
    `statuses`, only while the job is in one of them (a retry meanwhile keeps it)."""
    refs, folder = upload_refs(job), job.folder
    rows = ImportJob.objects.filter(pk=job.pk, folder=folder)
    if statuses is not None:
        rows = rows.filter(status__in=statuses)
    # Recorded first: a job never points at an upload half deleted.
    if not folder or not rows.update(folder=""):
        return False
    job.folder = ""
    for ref in refs:
        storage.delete_stored(ref)
    if not storage.is_stored(folder):
        shutil.rmtree(folder, ignore_errors=True)
    return True


def sweep_import_uploads(now=None) -> int:
    """Delete the uploads of imports that failed or were cancelled more than
    ANNOTATION_IMPORT_KEEP_DAYS ago (and of any succeeded import that still holds one);
    returns how many. Run by the beat every hour."""
    now = now or timezone.now()
    expired = now - timezone.timedelta(days=settings.ANNOTATION_IMPORT_KEEP_DAYS)
    ended = (JobStatus.FAILED, JobStatus.CANCELLED)
    held = ImportJob.objects.exclude(folder="")
    due = held.filter(status=JobStatus.SUCCEEDED) | held.filter(status__in=ended, finished_at__lt=expired)
    deleted = 0
    for job in due.order_by("pk")[:1000]:
        deleted += delete_upload(job, statuses=(JobStatus.SUCCEEDED, *ended))
    return deleted


def job_payload(job: ImportJob) -> dict:
    return {
        "id": job.pk, "project": job.project_id, "filename": job.filename, "format": job.format,
        "status": job.status, "phase": job.phase, "done": job.done, "total": job.total, "result": job.result,
        "error": job.error, "attempts": job.attempts, "cancel_requested": job.cancel_requested,
        "claimed_by": job.claimed_by, "created_at": job.created_at, "started_at": job.started_at,
        "heartbeat_at": job.heartbeat_at, "finished_at": job.finished_at,
    }  # fmt: skip
