"""An export's end as an event: the job lifecycle ends an export in one place (`arena.jobs`,
`arena.events.job_finished`); a succeeded export becomes `arena.events.export_finished` (webhooks).
The deletion of an import or export job (a project's deletion too) deletes its stored files
(`annotation.stored_files`)."""

from arena import events
from arena.jobs.models import JobStatus

from .models import ExportJob, Project


def announce_export_finished(sender, job_id, status, **kwargs) -> None:
    if status != JobStatus.SUCCEEDED:
        return
    job = ExportJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    name = job.options.get("project")
    project_id = Project.objects.filter(name=name).values_list("pk", flat=True).first() if name else None
    events.send(events.export_finished, ExportJob, {"job_id": job_id, "result": job.result, "project_id": project_id})


def connect() -> None:
    from . import stored_files

    stored_files.connect()
    events.job_finished.connect(announce_export_finished, sender=ExportJob, dispatch_uid="duet.annotation.export_finished")
