"""Background export jobs: an `annotation.models.ExportJob` row per job (its state, through
the job lifecycle of `arena.jobs`) and a folder per job under the export root (its files).

On several machines the export root is shared storage (like the media root), so whichever
worker writes the export, every web process can serve it; the state is in the database,
which every host shares too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from annotation.models import ExportJob
from arena.jobs.lifecycle import JobContext
from arena.jobs.models import JobStatus

from .options import ExportOptions

QUEUED, RUNNING, DONE, FAILED = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED
FILE_NAMES = {"trl": "preferences.jsonl", "jsonl": "judgments.jsonl", "csv": "judgments.csv",
              "parquet": "judgments.parquet", "hf": "dataset"}  # fmt: skip
__all__ = ["DONE", "FAILED", "QUEUED", "RUNNING", "ExportJob", "create_job", "load_job", "recent_jobs", "run_export"]


def export_root() -> Path:
    return Path(getattr(settings, "ANNOTATION_EXPORT_DIR", settings.VAR_DIR / "exports"))


def job_folder(job: ExportJob) -> Path:
    return export_root() / job.pk


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
    chooses inside its own folder). Raises ExportError for bad options."""
    job = ExportJob(requested_by=requested_by)
    output = job_folder(job) / FILE_NAMES.get(options.get("format"), "export")
    job.options = ExportOptions.from_dict({**options, "output": str(output)}).to_dict()
    job_folder(job).mkdir(parents=True)
    job.save(force_insert=True)
    return job


def load_job(job_id) -> ExportJob | None:
    return ExportJob.objects.filter(pk=str(job_id)).first()


def recent_jobs(limit: int = 20) -> list[ExportJob]:
    return list(ExportJob.objects.all()[:limit])


def run_export(job: ExportJob, context: JobContext) -> dict:
    """The work of an export job: progress after every chunk, a cancel checked between
    chunks; an `hf` folder is also zipped, so it downloads as one file."""
    from .service import export_dataset

    def progress(done: int, total: int) -> None:
        context.progress(phase="rows", done=done, total=total)
        context.stop_if_cancelled()

    result = export_dataset(ExportOptions.from_dict(job.options), progress=progress).to_dict()
    files = {"rows": result["path"]}
    if job.options["format"] == "hf":
        files["rows"] = shutil.make_archive(result["path"], "zip", root_dir=result["path"])
    if result.get("media_path"):
        files["media"] = result["media_path"]
    return {"result": result, "files": files}
