"""The board of an arena for prompts like one prompt: its battles weighted by how close
each battle's prompt is to the query (`arena.similar.vectors` holds the embeddings), the
math in `arena.ratings.similar_board`.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings

from arena import ratings
from arena.board.snapshots import battles_for
from arena.errors import DuetError, InvalidInput, NotFound
from arena.models import Arena, PromptEmbedding
from arena.similar import embedding
from arena.similar.vectors import check_query, query_vector, vector_of


def _empty(power: float, warnings: list[str]) -> dict:
    return {"method": None, "systems": [], "components": [], "warnings": warnings, "similarity": {
        "weighting": "max(0, cos)^power", "power": power, "n_battles": 0, "n_battles_weighted": 0,
        "effective_n": 0.0, "total_weight": 0.0}}  # fmt: skip


def similar_board_for(arena: Arena, scope, *, text: str | None = None, prompt_id=None,
                      power: float | None = None) -> dict:  # fmt: skip
    """The arena's board in `scope` (`arena.board.snapshots.Scope`) for prompts like the
    query, as a JSON-ready dict: the board, the weighting, Kish's n, and notes on the
    battles that could not be weighted (imported ones have no prompt; prompts the worker has
    not embedded yet)."""
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
