"""Arena Celery tasks: thin wrappers that reload rows by key and call a domain function.

Celery finds every arena task here. The board's refresh and the live battles' turn are
defined beside the code that queues them (so neither imports this module back) and are
listed here under the names the settings route by.
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from .board.snapshots import refresh_leaderboards
from .live.battles import generate_live_turn
from .models import Provider, System
from .providers.generation import generate_missing_outputs


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=3,
)
def generate_outputs(self, system_id: int, prompt_ids: list[int] | None = None) -> int:
    """Fill in a system's missing outputs (runs on the `generation` queue). Idempotent: only
    prompts still without an output are generated."""
    system = System.objects.filter(pk=system_id, is_active=True).first()
    if system is None or system.provider == Provider.UPLOADED:
        return 0
    return generate_missing_outputs(system, prompt_ids, batch_size=settings.GENERATION_BATCH_SIZE)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=24 * 3600,
)
def embed_prompts(limit: int | None = None) -> int:
    """Embed the prompts that have no embedding yet (runs on the `generation` queue, beside
    other model work). Idempotent: it selects by what is missing, so a repeated or duplicate
    delivery finds nothing left to do."""
    from .similar.vectors import embed_missing_prompts

    return embed_missing_prompts(limit=limit)


@shared_task(acks_late=True)
def generate_all_missing() -> int:
    """Queue generation for every active system that can generate."""
    systems = System.objects.filter(is_active=True).exclude(provider=Provider.UPLOADED)
    for system in systems:
        generate_outputs.delay(system.pk)
    return systems.count()


__all__ = ["embed_prompts", "generate_all_missing", "generate_live_turn", "generate_outputs", "refresh_leaderboards"]
