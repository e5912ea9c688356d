"""The files annotation keeps in the storage (`arena.storage`) go with the rows that own them:
an import's upload (``imports/<uuid>``, its media zip beside it) with its `ImportJob`, an
export's files (``exports/<job id>/``) with its `ExportJob`. A project's deletion deletes its
import jobs, so its uploads go too.

The files are deleted once the deletion commits (`transaction.on_commit`), never before: a
rolled-back deletion keeps rows and files together. What older versions left behind, and
what a process that died between the two steps leaves, `sweep_orphans` finds
(``manage.py sweep_storage``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePath

from django.db import transaction
from django.db.models.signals import post_delete
from django.utils import timezone

from arena import storage
from arena.jobs.models import JobStatus

from .export import jobs as export_jobs
from .import_jobs import MEDIA_SUFFIX, upload_refs
from .models import ExportJob, ImportJob

# A file younger than this is never swept: a request stores an upload a moment before the
# row that owns it commits (and the page's import holds its upload while it imports).
SWEEP_GRACE = timezone.timedelta(hours=1)


def _delete_refs(refs: list[str], local_folder: str = "") -> None:
    for ref in refs:
        storage.delete_stored(ref)
    if local_folder:  # an import queued before uploads were stored kept a folder of its own
        shutil.rmtree(local_folder, ignore_errors=True)


def import_job_deleted(sender, instance: ImportJob, using=None, **kwargs) -> None:
    """post_delete: the job's upload is deleted once the deletion commits."""
    refs = upload_refs(instance)
    local = instance.folder if instance.folder and not storage.is_stored(instance.folder) else ""
    if refs or local:
        transaction.on_commit(partial(_delete_refs, refs, local), using=using)


def export_job_deleted(sender, instance: ExportJob, using=None, **kwargs) -> None:
    """post_delete: the job's stored files are deleted once the deletion commits."""
    transaction.on_commit(partial(export_jobs.delete_stored_files, instance.pk), using=using)


def connect() -> None:
    post_delete.connect(import_job_deleted, sender=ImportJob, dispatch_uid="duet.annotation.import_upload")
    post_delete.connect(export_job_deleted, sender=ExportJob, dispatch_uid="duet.annotation.export_files")


# --- the sweep of orphans -------------------------------------------------------------------------


@dataclass
class SweepReport:
    removed: list[str] = field(default_factory=list)  # deleted (with dry_run: that would be)
    recent: list[str] = field(default_factory=list)  # orphans kept because they are younger than the grace


def _orphan_uploads() -> list[str]:
    """Stored files under imports/ that no import job names (its project or itself deleted).
    An import queued before uploads were stored kept a folder, ``<DUET_VAR_DIR>/imports/<uuid>/``,
    which is inside the default storage: its job names that folder's path."""
    stems, folders = set(), set()
    for folder in ImportJob.objects.exclude(folder="").values_list("folder", flat=True):
        if storage.is_stored(folder):
            stems.add(storage.stored_name(folder).removeprefix("imports/"))
        else:
            folders.add(PurePath(folder).name)
    orphans = []
    for name in storage.list_files("imports"):
        parts = name.split("/")
        if len(parts) == 2:
            owned = parts[1].removesuffix(MEDIA_SUFFIX) in stems
        else:
            owned = parts[1] in folders
        if not owned:
            orphans.append(name)
    return orphans


def _orphan_export_files() -> list[str]:
    """Stored files under exports/<id>/ whose job is gone, or whose job failed or was
    cancelled and does not name them (an attempt's leftovers, from before attempts cleaned up)."""
    by_job: dict[str, list[str]] = {}
    for name in storage.list_files("exports"):
        parts = name.split("/")
        by_job.setdefault(parts[1] if len(parts) > 2 else "", []).append(name)
    jobs = {job.pk: job for job in ExportJob.objects.filter(pk__in=[pk for pk in by_job if pk])}
    orphans = []
    for pk, names in by_job.items():
        job = jobs.get(pk)
        if job is None:
            orphans.extend(names)
        elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            named = {storage.stored_name(ref) for ref in job.files.values() if storage.is_stored(ref)}
            orphans.extend(name for name in names if name not in named)
    return orphans


def _modified(name: str):
    try:
        return storage.storage().get_modified_time(name)
    except (NotImplementedError, FileNotFoundError):
        return None


def sweep_orphans(*, dry_run: bool = False, grace=SWEEP_GRACE, now=None) -> SweepReport:
    """Delete (with `dry_run`, only list) the stored uploads and export files whose owner no
    longer exists. Files younger than `grace`, or whose age the storage cannot tell, stay.
    Tuned models (``tuned/``) are never swept: a system may use one after its run is gone."""
    now = now or timezone.now()
    report = SweepReport()
    for name in _orphan_uploads() + _orphan_export_files():
        modified = _modified(name)
        if modified is None or modified > now - grace:
            report.recent.append(name)
            continue
        if not dry_run:
            storage.delete_stored(storage.PREFIX + name)
        report.removed.append(name)
    return report
