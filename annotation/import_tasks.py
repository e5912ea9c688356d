"""Imports as a Celery task, on the `export` queue (the `files` lane); the
bookkeeping is the job lifecycle's (`arena.jobs`), the work `annotation.import_jobs`."""

from celery import shared_task
from django.db import OperationalError

from arena.jobs.tasks import JobTask


@shared_task(
    bind=True,
    base=JobTask,
    job_model="annotation.ImportJob",
    name="annotation.import_tasks.import_comparisons_task",
    # A locked SQLite database passes; the import is one transaction, so a retry starts clean.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=24 * 3600,
)
def import_comparisons_task(self, job_id: int, attempt: int | None = None) -> str:
    from .import_jobs import run_import

    return self.run_job(job_id, attempt, run_import)


@shared_task(name="annotation.import_tasks.sweep_import_uploads", acks_late=True, expires=3000)
def sweep_import_uploads() -> int:
    """Every hour on the beat (config/celery.py): uploads kept past their days are deleted."""
    from .import_jobs import sweep_import_uploads as sweep

    return sweep()
