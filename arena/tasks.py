"""Arena Celery tasks: thin wrappers that reload rows by key and call a domain function."""

from celery import shared_task
from django.conf import settings

from .providers.generation import generate_missing_outputs
from .models import Provider, System


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


@shared_task(acks_late=True)
def generate_all_missing() -> int:
    """Queue generation for every active system that can generate."""
    systems = System.objects.filter(is_active=True).exclude(provider=Provider.UPLOADED)
    for system in systems:
        generate_outputs.delay(system.pk)
    return systems.count()


@shared_task(acks_late=True, reject_on_worker_lost=True, expires=600)
def refresh_leaderboards(arena_id: int) -> int:
    """Recompute an arena's boards (debounced: see arena.board.snapshots.request_refresh)."""
    from .board.snapshots import refresh_arena
    from .models import Arena

    arena = Arena.objects.filter(pk=arena_id).first()
    return 0 if arena is None else len(refresh_arena(arena))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def generate_live_turn(self, generation_id: int) -> str:
    """Answer one side of one live-battle turn, streaming into its row (`generation` queue).
    Waits for a free slot of its system by retrying shortly; gives up at the timeout."""
    from .live.battles import run_live_generation

    status = run_live_generation(generation_id)
    if status == "wait":
        raise self.retry(countdown=0.25)
    return status
