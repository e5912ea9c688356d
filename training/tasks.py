"""Training on the `training` queue: one task, thin; the bookkeeping is the job lifecycle's
(`arena.jobs`), the work `training.actions`."""

from celery import shared_task

from arena.jobs.tasks import JobTask


@shared_task(base=JobTask, bind=True, job_model="training.TrainingRun")
def run_training(self, run_id: int, attempt: int | None = None) -> str:
    from .actions import train_run

    return self.run_job(run_id, attempt, train_run)
