"""Training on the `training` queue: one task, thin; the bookkeeping is in actions and jobs."""

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.worker.request import Request
from django.utils import timezone

from .models import RunStatus, TrainingRun


class TrainingRequest(Request):
    """The worker's main process handles a task whose pool process died; the run is failed
    there, at once, with the cause (most often the kernel's out-of-memory killer), rather than
    found later as a redelivered message that can only say the worker was lost."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        exc = exc.exc if isinstance(exc, ExceptionWithTraceback) else exc  # as Celery's own on_failure
        if isinstance(exc, WorkerLostError) and self.args:
            from .jobs import record_worker_lost

            record_worker_lost(self.args[0], exc)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class TrainingTask(Task):
    """Late acknowledgement: a worker that dies mid-run leaves the message to be redelivered,
    and `execute_run` then marks the run failed instead of leaving it "running"."""

    Request = TrainingRequest
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
