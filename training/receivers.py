"""Training's end as an event: the job lifecycle ends a run in one place (`arena.jobs`,
`arena.events.job_finished`); this turns that into `arena.events.training_run_finished` (webhooks)."""

from arena import events

from .models import TrainingRun


def announce_run_finished(sender, job_id, status, **kwargs) -> None:
    kind, project_id = TrainingRun.objects.filter(pk=job_id).values_list("kind", "project_id").first() or ("", None)
    events.send(events.training_run_finished, TrainingRun,
                {"run_id": job_id, "status": status, "kind": kind, "project_id": project_id})  # fmt: skip


def connect() -> None:
    events.job_finished.connect(announce_run_finished, sender=TrainingRun, dispatch_uid="duet.training.run_finished")
