"""The categories a voter may tag a comparison with while voting: the arena's categories,
i.e. those of the pool's prompts in the modality and those the operator lists in
DUET_ARENA_CATEGORIES. A vote's tag becomes its battle's category
(`arena.board.snapshots.battle_for`), so the per-category boards count it."""

from __future__ import annotations

from django.conf import settings

from arena import errors
from arena.hotcache import Memo
from arena.models import POOL_ORIGINS, Prompt

# Read on every tagged vote: kept per process until a prompt changes (arena.hotcache).
_choices: Memo[tuple[str, ...]] = Memo("arena categories", invalidated_by=("arena.Prompt",))

MAX_CATEGORY_LENGTH = 100  # Battle.category's max_length


def _compute(modality: str) -> tuple[str, ...]:
    found = set(settings.ARENA_CATEGORIES)
    for categories in Prompt.objects.filter(modality=modality, origin__in=POOL_ORIGINS).values_list(
        "categories", flat=True
    ):
        found.update(c for c in categories or [] if isinstance(c, str))
    return tuple(sorted(c.strip() for c in found if c and c.strip() and len(c.strip()) <= MAX_CATEGORY_LENGTH))


def category_choices(modality: str) -> tuple[str, ...]:
    return _choices.get(modality, lambda: _compute(modality))


def check_category(raw, modality: str) -> str:
    """The category a voter tagged ("" for none), or InvalidInput naming the choices."""
    if raw in (None, ""):
        return ""
    if not isinstance(raw, str):
        raise errors.InvalidInput("category must be a string")
    category = raw.strip()
    choices = category_choices(modality)
    if category not in choices:
        listed = ", ".join(choices) if choices else "none: this arena has no categories"
        raise errors.InvalidInput(f"unknown category {category!r} for {modality}; choose one of {listed}")
    return category
