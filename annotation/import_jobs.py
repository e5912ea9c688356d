"""Imports in the worker: the upload is saved to a folder of its own, a job is queued, and
the worker runs the same all-or-nothing import a request does.

    job = queue_import(project, upload, upload.name, "hh-rlhf", user=request.user)

The work has three steps (read the upload, import, done); a cancel is honoured before the
import starts writing, never halfway through it (the import is one transaction).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings

from arena.errors import DuetError
from arena.jobs import lifecycle
from arena.jobs.lifecycle import JobContext, JobFailed

from .models import ImportJob, Project

UPLOAD_NAME = "upload"
MEDIA_NAME = "media.zip"


def imports_root() -> Path:
    return Path(getattr(settings, "ANNOTATION_IMPORT_DIR", Path(settings.VAR_DIR) / "imports"))


def _save(source, path: Path) -> None:
    source.seek(0)
    with open(path, "wb") as handle:
        shutil.copyfileobj(source, handle, length=1024 * 1024)


def queue_import(project: Project, source, filename: str, fmt: str = "duet", media_zip=None, seed: int = 0,
                 user=None) -> ImportJob:
    """Keep the upload (and its media zip) and queue its import once the transaction commits."""
    folder = imports_root() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    _save(source, folder / UPLOAD_NAME)
    if media_zip is not None:
        _save(media_zip, folder / MEDIA_NAME)
    job = ImportJob.objects.create(
        project=project, filename=Path(filename).name[:300], format=fmt, seed=seed, folder=str(folder),
        has_media_zip=media_zip is not None, requested_by=user if user is not None and user.is_authenticated else None,
    )  # fmt: skip
    lifecycle.queue(job)
    return job


def run_import(job: ImportJob, context: JobContext) -> dict:
    """The work of an import job: its expected failures (a bad row, a missing media file)
    end it with their message, naming the line and field."""
    from .actions import import_comparisons

    folder = Path(job.folder)
    context.progress(phase="reading", done=0, total=2)
    context.stop_if_cancelled()
    with open(folder / UPLOAD_NAME, "rb") as source:
        media = open(folder / MEDIA_NAME, "rb") if job.has_media_zip else None
        try:
            context.progress(phase="importing", done=1, total=2)
            summary = import_comparisons(job.project, source, job.filename, job.format, media_zip=media, seed=job.seed)
        except DuetError as failure:
            raise JobFailed(f"nothing was imported: {failure.message}") from None
        finally:
            if media is not None:
                media.close()
    return {"result": summary.as_dict(), "phase": "imported", "done": 2, "total": 2}


def job_payload(job: ImportJob) -> dict:
    return {
        "id": job.pk, "project": job.project_id, "filename": job.filename, "format": job.format,
        "status": job.status, "phase": job.phase, "done": job.done, "total": job.total, "result": job.result,
        "error": job.error, "attempts": job.attempts, "cancel_requested": job.cancel_requested,
        "claimed_by": job.claimed_by, "created_at": job.created_at, "started_at": job.started_at,
        "heartbeat_at": job.heartbeat_at, "finished_at": job.finished_at,
    }  # fmt: skip
