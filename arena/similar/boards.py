"""Prompt embeddings in the database, and the board of an arena for prompts like one prompt.

`embed_missing_prompts` is the only writer of `PromptEmbedding` (the worker's task and the
`embed_prompts` command call it); `similar_board_for` reads battles and embeddings and hands
the math to `arena.ratings.similar_board`.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.db import transaction

from arena import ratings
from arena.errors import DuetError, InvalidInput, NotFound
from arena.models import Arena, Prompt, PromptEmbedding

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


def _empty(power: float, warnings: list[str]) -> dict:
    return {"method": None, "systems": [], "components": [], "warnings": warnings, "similarity": {
        "weighting": "max(0, cos)^power", "power": power, "n_battles": 0, "n_battles_weighted": 0,
        "effective_n": 0.0, "total_weight": 0.0}}  # fmt: skip


def similar_board_for(arena: Arena, scope, *, text: str | None = None, prompt_id=None,
                      power: float | None = None) -> dict:  # fmt: skip
    """The arena's board in `scope` (arena.board.snapshots.Scope) for prompts like the
    query, as a JSON-ready dict: the board, the weighting, Kish's n, and notes on the
    battles that could not be weighted (imported ones have no prompt; prompts the worker has
    not embedded yet)."""
    from arena.board.snapshots import battles_for

    power = settings.SIMILAR_BOARD_POWER if power is None else power
    try:
        power = float(power)
        ratings.similarity_weights(np.zeros(1), power)
    except (TypeError, ValueError):
        raise InvalidInput(f"power must be a positive number, got {power!r}") from None
    query, described = query_vector(text, prompt_id)
    model = embedding.configured_model()
    queryset = battles_for(arena, scope)
    rows = list(
        queryset.filter(judgment__isnull=False)
        .order_by("tstamp", "id")
        .values_list("system_a__name", "system_b__name", "outcome", "weight", "judgment__comparison__prompt_id")
    )  # fmt: skip
    without_prompt = queryset.filter(judgment__isnull=True).count()
    prompt_ids = sorted({row[4] for row in rows})
    vectors = {}
    for start in range(0, len(prompt_ids), 500):
        for row in PromptEmbedding.objects.filter(prompt_id__in=prompt_ids[start : start + 500], model=model,
                                                  dim=len(query)):  # fmt: skip
            vectors[row.prompt_id] = vector_of(row)
    cos_of_prompt = {}
    if vectors:
        ids = list(vectors)
        cos_of_prompt = dict(zip(ids, ratings.cosine_similarities(np.stack([vectors[i] for i in ids]), query)))
    notes = []
    not_embedded = sum(1 for row in rows if row[4] not in vectors)
    if not_embedded:
        notes.append(f"{not_embedded} battle(s) on prompts not embedded yet are left out "
                     "(the worker embeds new prompts; `manage.py embed_prompts` backfills)")  # fmt: skip
    if without_prompt:
        notes.append(f"{without_prompt} imported battle(s) carry no prompt and are left out")
    meta = {
        "arena": arena.name, "modality": scope.modality, "category": scope.category,
        "anonymous_only": scope.anonymous_only, "query": described, "model": model,
    }  # fmt: skip
    rows = [row for row in rows if row[4] in vectors]
    if not rows:
        return {**meta, **_empty(power, notes)}
    battles = ratings.Battles.from_records([row[:4] for row in rows])
    cosines = np.array([cos_of_prompt[row[4]] for row in rows], dtype=np.float64)
    result = ratings.similar_board(battles, cosines, power=power, min_votes=settings.LEADERBOARD_MIN_VOTES)
    data = result.to_dict()
    data["warnings"] = [*data["warnings"], *notes]
    return {**meta, **data}


def arena_named(name: str | None) -> Arena:
    arena = Arena.objects.filter(name=name or settings.DEFAULT_ARENA).first()
    if arena is None:
        raise NotFound(f"there is no arena named {name or settings.DEFAULT_ARENA!r}")
    return arena



def similar_board_from_params(params, scope, user) -> dict:
    """The board for prompts like a prompt, from query parameters (the API and the page):
    arena, prompt (text) or prompt_id, power; `scope` is the page's (modality, category)."""
    if not params.get("arena") and not Arena.objects.filter(name=settings.DEFAULT_ARENA).exists():
        # The built-in arena is made by the first vote: before it, an empty board, as the plain one answers.
        text, prompt = check_query(params.get("prompt"), params.get("prompt_id"))
        query = {"text": text if prompt is None else None, "prompt_id": None if prompt is None else prompt.pk}
        return {"arena": None, "modality": scope.modality, "category": scope.category, "query": query,
                "model": embedding.configured_model(), **_empty(settings.SIMILAR_BOARD_POWER, ["No votes yet."])}
    arena = arena_named(params.get("arena"))
    try:
        data = similar_board_for(arena, scope, text=params.get("prompt"), prompt_id=params.get("prompt_id"),
                                 power=params.get("power") or None)  # fmt: skip
    except embedding.EmbeddingModelError as error:
        raise DuetError(f"prompt embeddings are not available: {error}") from None
    if data["query"]["prompt_id"] is not None and not user.has_perm("arena.view_prompt"):
        data["query"]["text"] = None  # the id was given; its text is for those who may read prompts
    return data
