"""Background export jobs: an `annotation.models.ExportJob` row per job (its state, through
the job lifecycle of `arena.jobs`) and its files in the storage (`arena.storage`).

The worker writes the export in a scratch folder of its own host (ANNOTATION_EXPORT_DIR,
a folder per job), then stores each file as ``exports/<job id>/<file>`` in the storage
every host reaches (STORAGES["duet"]: a folder by default, a shared folder or an object
store on several hosts) and deletes the scratch folder; the job's `files` hold the
``"stored:..."`` references, so whichever worker wrote the export, every web process
serves it. The state is in the database, which every host shares too.

An attempt that fails or is cancelled leaves nothing in the storage: what it had stored is
deleted (its error says so), and an attempt starts by deleting whatever an earlier one left
under ``exports/<job id>/`` (a worker killed while storing cannot clean up after itself).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings

from annotation.models import ExportJob
from arena import storage
from arena.jobs import lifecycle
from arena.jobs.lifecycle import JobCancelled, JobContext, JobFailed
from arena.jobs.models import JobStatus

from .options import ExportOptions

QUEUED, RUNNING, DONE, FAILED = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED
FILE_NAMES = {"trl": "preferences.jsonl", "jsonl": "judgments.jsonl", "csv": "judgments.csv",
              "parquet": "judgments.parquet", "hf": "dataset"}  # fmt: skip
__all__ = ["DONE", "FAILED", "QUEUED", "RUNNING", "ExportJob", "create_job", "load_job", "recent_jobs", "run_export"]

logger = logging.getLogger(__name__)


def export_root() -> Path:
    """This host's scratch folder for exports being written (not where they are kept)."""
    return Path(getattr(settings, "ANNOTATION_EXPORT_DIR", Path(settings.VAR_DIR) / "export-work"))


def job_folder(job: ExportJob) -> Path:
    return export_root() / job.pk


def stored_prefix(job: ExportJob) -> str:
    """Where the job's files are kept in the storage."""
    return f"exports/{job.pk}"


def job_payload(job: ExportJob) -> dict:
    """The job as the API shows it; server paths stay private."""
    result = {k: v for k, v in job.result.items() if k not in ("path", "media_path")} if job.result else None
    return {
        "id": job.pk, "status": job.status, "phase": job.phase, "done": job.done, "total": job.total,
        "progress": round(job.fraction, 4), "result": result, "error": job.error, "requested_by": job.requested_by,
        "options": {k: v for k, v in job.options.items() if k != "output"}, "parts": sorted(job.files),
        "attempts": job.attempts, "cancel_requested": job.cancel_requested, "claimed_by": job.claimed_by,
        "created_at": job.created_at.isoformat(), "started_at": job.started_at and job.started_at.isoformat(),
        "heartbeat_at": job.heartbeat_at and job.heartbeat_at.isoformat(),
        "finished_at": job.finished_at and job.finished_at.isoformat(),
    }  # fmt: skip


def create_job(options: dict, requested_by: str = "") -> ExportJob:
    """A queued job for `options` (ExportOptions fields without `output`, which the job
    chooses in the scratch folder of the host that runs it). Raises ExportError for bad options."""
    job = ExportJob(requested_by=requested_by)
    job.options = ExportOptions.from_dict({**options, "output": str(_output(job, options))}).to_dict()
    job.save(force_insert=True)
    return job


def queue_export(options: dict, requested_by: str = "") -> ExportJob:
    """Create a job and queue its task (`ExportJob.task_name`, by name) once the surrounding
    transaction commits."""
    job = create_job(options, requested_by=requested_by)
    lifecycle.queue(job)
    return job


def _output(job: ExportJob, options: dict) -> Path:
    return job_folder(job) / FILE_NAMES.get(options.get("format"), "export")


def load_job(job_id) -> ExportJob | None:
    return ExportJob.objects.filter(pk=str(job_id)).first()


def recent_jobs(limit: int = 20) -> list[ExportJob]:
    return list(ExportJob.objects.all()[:limit])


def run_export(job: ExportJob, context: JobContext) -> dict:
    """The work of an export job: progress after every chunk, a cancel checked between
    chunks; an `hf` folder is also zipped, so it downloads as one file. The files written
    in this host's scratch folder are stored, then the folder is deleted (also on failure).
    An attempt that ends otherwise than stored whole deletes what it stored."""
    from .service import export_dataset

    def progress(done: int, total: int) -> None:
        context.progress(phase="rows", done=done, total=total)
        context.stop_if_cancelled()

    # The output the web process chose names its own host's scratch folder: write in ours.
    options = ExportOptions.from_dict({**job.options, "output": str(_output(job, job.options))})
    delete_stored_files(job.pk)  # an earlier attempt's leftovers: this one starts clean
    files: dict[str, str] = {}
    try:
        result = export_dataset(options, progress=progress).to_dict()
        written = {"rows": result["path"]}
        if job.options["format"] == "hf":
            written["rows"] = shutil.make_archive(result["path"], "zip", root_dir=result["path"])
        if result.get("media_path"):
            written["media"] = result["media_path"]
        context.progress(phase="storing")
        for part, path in written.items():
            files[part] = storage.store_file(path, f"{stored_prefix(job)}/{Path(path).name}")
        context.stop_if_cancelled()  # a cancel that came while storing still wins
    except BaseException as error:
        _remove_attempt_files(job, error)
        raise
    finally:
        shutil.rmtree(job_folder(job), ignore_errors=True)
    # Where the files are now (the scratch paths are gone): what export.finished announces.
    result.update(path=files["rows"], media_path=files.get("media"))
    return {"result": result, "files": files}


def stored_files(job_id: str) -> list[str]:
    """The names in the storage under the job's prefix (``exports/<job id>/...``)."""
    return storage.list_files(f"exports/{job_id}")


def delete_stored_files(job_id: str) -> list[str]:
    """Delete every stored file of the job; returns their names."""
    names = stored_files(job_id)
    for name in names:
        storage.delete_stored(storage.PREFIX + name)
    return names


def _remove_attempt_files(job: ExportJob, error: BaseException) -> None:
    """Delete the files this attempt stored before it failed or was cancelled, and add that
    to what the job records: the failure's message, the cancel's error, or a note on the
    traceback."""
    removed = delete_stored_files(job.pk)
    if not removed:
        return
    note = f"the {len(removed)} file(s) this attempt had stored were deleted: {', '.join(sorted(removed))}"
    logger.warning("export %s: %s", job.pk, note)
    if isinstance(error, JobFailed):
        error.message = f"{error.message}\n{note}"
    elif isinstance(error, JobCancelled):
        error.fields.setdefault("error", note)
    else:
        error.add_note(note)  # traceback.format_exc(), which the job records, prints it last


class PartGone(Exception):
    """An export file that is not (or no longer) where the job says."""


def open_part(job: ExportJob, part: str):
    """The open file of a finished job's part ("rows", "media") and its download name.
    Stored parts are opened from the storage; exports made before files were stored
    name a local path, opened where it lies. PartGone when the file is not there."""
    ref = job.files[part]
    filename = ref.rsplit("/", 1)[-1]
    if storage.is_stored(ref):
        try:
            return storage.open_stored(ref), filename
        except storage.StoredFileMissing:
            raise PartGone(f"the {part} file of export {job.pk} is no longer in the storage") from None
    try:
        return open(ref, "rb"), filename
    except FileNotFoundError:
        raise PartGone(f"the {part} file of export {job.pk} is no longer on this server") from None
