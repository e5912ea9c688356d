"""Judging and routing on the `judging` queue (config.settings routes routing.tasks.*
there): one task, thin; the bookkeeping is in `routing.actions.execute_job`."""

from celery import Task, shared_task
from django.db import OperationalError


class JudgingJobTask(Task):
    """Late acknowledgement: a worker that dies mid-job leaves the message to be redelivered,
    and the next delivery resumes the job (what was judged is skipped)."""

    acks_late = True
    reject_on_worker_lost = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # execute_job stores its own failures; this catches what escaped it (retries spent,
        # an import error in the worker).
        from .actions import fail_job

        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            fail_job(job_id, f"{type(exc).__name__}: {exc}\n{einfo}")


@shared_task(
    bind=True,
    base=JudgingJobTask,
    name="routing.tasks.run_judging_job",
    # A locked SQLite database or a dropped PostgreSQL connection passes; a judge that
    # cannot run fails the same way the second time, so it is not retried.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # A job nobody started within a day is stale: the project has moved on.
    expires=24 * 3600,
)
def run_judging_job(self, job_id: int) -> str:
    from .actions import execute_job

    return execute_job(job_id)


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
