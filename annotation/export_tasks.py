"""The export as a Celery task, for exports too large for a request.

    job = queue_export({"format": "trl", "project": "helpfulness"}, requested_by="alice")

The task takes a job id, claims the job (so a redelivered message does nothing), runs
`export_dataset` with progress written to the job after every chunk, and records the
result; `ExportTask` records failures once for every export task.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import OperationalError, transaction

from annotation.export import jobs
from annotation.models import Project
from arena import events
from annotation.export.options import ExportOptions
from annotation.export.service import export_dataset

logger = logging.getLogger(__name__)


class ExportTask(Task):
    """Job bookkeeping: a failure is written to the job, whatever raised it."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job_id = args[0] if args else kwargs.get("job_id")
        job = jobs.load_job(job_id)
        if job is not None:
            jobs.update_job(job, status=jobs.FAILED, error=f"{type(exc).__name__}: {exc}")
        logger.error("export job %s failed: %s", job_id, exc)


@shared_task(
    bind=True,
    base=ExportTask,
    name="annotation.export_tasks.export_dataset_task",
    acks_late=True,
    reject_on_worker_lost=True,
    # A locked SQLite database or a dropped PostgreSQL connection passes; nothing else
    # an export raises would go differently the second time.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # An export nobody started within a day is stale: its options name data as it was.
    expires=24 * 3600,
)
def export_dataset_task(self, job_id: str) -> dict | None:
    job = jobs.claim_job(job_id)
    if job is None:
        return None

    def progress(done: int, total: int) -> None:
        jobs.update_job(job, done=done, total=total)
        if self.app.conf.result_backend and self.request.id:
            self.update_state(state="PROGRESS", meta={"job": job_id, "done": done, "total": total})

    try:
        result = export_dataset(ExportOptions.from_dict(job.options), progress=progress).to_dict()
    except OperationalError:
        # Let the retry claim the job again.
        (job.folder / "claimed").unlink(missing_ok=True)
        jobs.update_job(job, status=jobs.QUEUED)
        raise
    jobs.finish_job(job, result)
    project = job.options.get("project")
    project_id = Project.objects.filter(name=project).values_list("pk", flat=True).first() if project else None
    events.send_on_commit(events.export_finished, jobs.ExportJob, job_id=job.id, result=result, project_id=project_id)
    return result


def queue_export(options: dict, requested_by: str = "") -> jobs.ExportJob:
    """Create a job and queue it once the surrounding transaction commits."""
    job = jobs.create_job(options, requested_by=requested_by)
    transaction.on_commit(lambda: export_dataset_task.delay(job.id))
    return job
