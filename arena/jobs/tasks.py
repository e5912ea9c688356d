"""The base task of every job, and the beat's sweep of jobs whose worker died."""

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.worker.request import Request
from django.apps import apps

from . import lifecycle


class JobRequest(Request):
    """The worker's main process hears when the pool process running a job died (most often
    the kernel's out-of-memory killer); the job is failed there, at once, with the cause."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        exc = exc.exc if isinstance(exc, ExceptionWithTraceback) else exc  # as Celery's own on_failure
        if isinstance(exc, WorkerLostError) and self.args:
            lifecycle.record_worker_lost(self.task.model(), self.args[0], exc)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class JobTask(Task):
    """Base of every job's task: `@shared_task(base=JobTask, bind=True, job_model="app.Model")`,
    whose body is `return self.run_job(job_id, attempt, work)`.

    Late acknowledgement: a message is acknowledged when its job has ended, so a worker that
    dies leaves it to be delivered again; that delivery finds the job no longer queued and
    runs nothing (the main process or the sweep has failed it, with the reason).
    """

    Request = JobRequest
    acks_late = True
    reject_on_worker_lost = True
    job_model = ""  # "app_label.ModelName" of a Job subclass

    def model(self):
        return apps.get_model(self.job_model)

    def run_job(self, job_id, attempt, work: lifecycle.Work) -> str:
        worker = lifecycle.this_worker(getattr(self.request, "hostname", None))
        return lifecycle.run_job(self.model(), job_id, work, worker=worker, attempt=attempt)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # run_job keeps the work's own failures; this catches what escaped it (retries spent,
        # an import error in the worker).
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            lifecycle.fail(self.model(), job_id, f"{type(exc).__name__}: {exc}\n{einfo}")


@shared_task(name="arena.jobs.tasks.sweep_stale_jobs", acks_late=True, expires=120)
def sweep_stale_jobs() -> int:
    """Every minute on the beat (config/celery.py)."""
    return lifecycle.sweep_stale_jobs()
