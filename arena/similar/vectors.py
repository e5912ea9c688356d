"""Prompt embeddings in the database, and the vector of a query.

`embed_missing_prompts` is the only writer of `PromptEmbedding` (the worker's task and the
`embed_prompts` command call it); `query_vector` embeds typed text or reads a stored
prompt's vector. The board for prompts like one is the board's (`arena.board.similar`):
it reads these, this module reads no battles.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.db import transaction

from arena.errors import InvalidInput, NotFound
from arena.models import Prompt, PromptEmbedding

from . import embedding

logger = logging.getLogger(__name__)

# Prompts embedded per database round trip; the encoder batches within it.
EMBED_BATCH = 256
QUERY_MAX_CHARS = 4000


def _to_row(prompt_id: int, vector: np.ndarray, model: str) -> PromptEmbedding:
    vector = np.asarray(vector, dtype=np.float32)
    return PromptEmbedding(prompt_id=prompt_id, model=model, dim=len(vector), vector=vector.tobytes())


def vector_of(row: PromptEmbedding) -> np.ndarray:
    return np.frombuffer(bytes(row.vector), dtype=np.float32)


def embed_missing_prompts(limit: int | None = None, prompt_ids: list[int] | None = None) -> int:
    """Embed prompts that have no embedding from the configured model, in batches; returns
    how many were written. Idempotent: a second run finds nothing to do, and two workers on
    the same prompts write the same rows (an upsert on the prompt)."""
    model = embedding.configured_model()
    written = 0
    while limit is None or written < limit:
        pending = Prompt.objects.exclude(embedding__model=model).order_by("id")
        if prompt_ids is not None:
            pending = pending.filter(pk__in=prompt_ids)
        size = EMBED_BATCH if limit is None else min(EMBED_BATCH, limit - written)
        batch = list(pending.values_list("id", "text")[:size])
        if not batch:
            break
        vectors = embedding.embed_texts([text for _, text in batch], model)
        rows = [_to_row(pk, vector, model) for (pk, _), vector in zip(batch, vectors)]
        PromptEmbedding.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["prompt"], update_fields=["model", "dim", "vector"]
        )
        written += len(rows)
    return written


def queue_embedding() -> None:
    """After the current transaction commits, ask the worker to embed new prompts (by task
    name: the vote path and imports must not import the task module's heavy neighbours)."""
    if not settings.PROMPT_EMBEDDINGS_ON_CREATE:
        return

    def send():
        from celery import current_app

        try:
            current_app.send_task("arena.tasks.embed_prompts", retry=False)
        except Exception:  # noqa: BLE001 - a broker away must not fail the request that made a prompt
            logger.warning("could not queue the embedding of new prompts; `manage.py embed_prompts` catches up",
                           exc_info=True)  # fmt: skip

    send.embeds_prompts = True
    transaction.on_commit(send, robust=True)


def prompt_created(sender, instance, created, raw=False, **kwargs) -> None:
    """post_save of Prompt (connected in ArenaConfig.ready); bulk imports call `queue_embedding`."""
    if created and not raw:
        queue_embedding()


def check_query(text: str | None = None, prompt_id: str | int | None = None) -> tuple[str, Prompt | None]:
    """The query as given: (typed text, "") or ("", the stored prompt); names what is wrong."""
    text = (text or "").strip()
    if bool(text) == (prompt_id not in (None, "")):
        raise InvalidInput("give either the text of a prompt (like / prompt) or a prompt id (prompt_id), not both")
    if text:
        if len(text) > QUERY_MAX_CHARS:
            raise InvalidInput(f"the prompt text is {len(text)} characters; at most {QUERY_MAX_CHARS} are compared")
        return text, None
    try:
        pk = int(prompt_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"prompt_id must be a whole number, got {prompt_id!r}") from None
    # Beyond a 64-bit key no prompt exists, and SQLite refuses to bind such a number.
    prompt = Prompt.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if prompt is None:
        raise NotFound(f"there is no prompt {prompt_id}")
    return "", prompt


def query_vector(text: str | None = None, prompt_id: str | int | None = None) -> tuple[np.ndarray, dict]:
    """The query's embedding and how it is described: typed text, or a stored prompt (whose
    embedding is computed and stored now if the worker has not yet)."""
    text, prompt = check_query(text, prompt_id)
    model = embedding.configured_model()
    if prompt is None:
        return embedding.embed_texts([text], model)[0], {"text": text, "prompt_id": None}
    stored = PromptEmbedding.objects.filter(prompt=prompt, model=model).first()
    if stored is None:
        embed_missing_prompts(prompt_ids=[prompt.pk])
        stored = PromptEmbedding.objects.get(prompt=prompt)
    return vector_of(stored), {"text": prompt.text, "prompt_id": prompt.pk}
