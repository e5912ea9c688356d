"""The export as a Celery task, for exports too large for a request. Queued by name
(`annotation.export.jobs.queue_export`), so the export package never imports this module.

The task takes a job id and runs it through the job lifecycle (`arena.jobs`): claimed once
(a redelivered message does nothing), progress and heartbeat after every chunk, cancel
between chunks, and its end recorded in one place.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from annotation.export import jobs
from arena.jobs.tasks import JobTask


@shared_task(
    bind=True,
    base=JobTask,
    job_model="annotation.ExportJob",
    name="annotation.export_tasks.export_dataset_task",
    # A locked SQLite database or a dropped PostgreSQL connection passes (the job goes back
    # to the queue and this retry claims it); nothing else an export raises would go
    # differently the second time.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # An export nobody started within a day is stale: its options name data as it was.
    expires=24 * 3600,
)
def export_dataset_task(self, job_id: str, attempt: int | None = None) -> str:
    return self.run_job(job_id, attempt, jobs.run_export)

