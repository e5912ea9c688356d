"""Periodic upkeep for the annotation queue."""

from celery import shared_task

from .export_tasks import export_dataset_task  # noqa: F401 - registered for the worker's autodiscovery
from .import_tasks import import_comparisons_task  # noqa: F401 - registered for the worker's autodiscovery


@shared_task(acks_late=True, expires=300)
def reclaim_expired_leases() -> int:
    """Mark expired leases across all projects. Safe to run any time and in parallel: the
    queue never counts an expired lease whatever this task has done, so it only tidies
    the table for progress pages and the admin."""
    from .actions import reclaim_expired_leases as reclaim

    return reclaim()
