"""Judging and routing on the `judging` queue (config.settings routes routing.tasks.*
there): one task, thin; the bookkeeping is the job lifecycle's (`arena.jobs`), the work
`routing.actions.run_judging`."""

from celery import shared_task
from django.db import OperationalError

from arena.jobs.tasks import JobTask


@shared_task(
    bind=True,
    base=JobTask,
    job_model="routing.JudgingJob",
    name="routing.tasks.run_judging_job",
    # A locked SQLite database or a dropped PostgreSQL connection passes (the job goes back
    # to the queue and this retry claims it); a judge that cannot run fails the same way the
    # second time, so it is not retried.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # A job nobody started within a day is stale: the project has moved on.
    expires=24 * 3600,
)
def run_judging_job(self, job_id: int, attempt: int | None = None) -> str:
    from .actions import run_judging

    return self.run_job(job_id, attempt, run_judging)


@shared_task(
    name="routing.tasks.recalibrate_judge",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=3600,
)
def recalibrate_judge(project_id: int, judge_id: int) -> int | None:
    """Refit the judge's calibration on the project (`routing.receivers`): the fitted n, or None."""
    from annotation.models import Project
    from arena.models import Judge

    from .actions import calibrate_judge

    project, judge = Project.objects.filter(pk=project_id).first(), Judge.objects.filter(pk=judge_id).first()
    if project is None or judge is None:
        return None
    stored = calibrate_judge(project, judge)
    return stored.n if stored is not None else None
