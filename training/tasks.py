"""Training on the `training` queue: one task, thin; the bookkeeping is in actions."""

from celery import Task, shared_task
from django.utils import timezone

from .models import RunStatus, TrainingRun


class TrainingTask(Task):
    """Late acknowledgement: a worker that dies mid-run leaves the message to be redelivered,
    and `execute_run` then marks the run failed instead of leaving it "running"."""

    acks_late = True
    reject_on_worker_lost = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # execute_run stores its own failures; this catches what escaped it (e.g. an import error).
        TrainingRun.objects.filter(pk=args[0], status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=str(einfo)[-20000:]
        )


@shared_task(base=TrainingTask, bind=True)
def run_training(self, run_id: int) -> str:
    from .actions import execute_run

    return execute_run(run_id)
