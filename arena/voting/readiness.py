"""Which modalities of the open arena have a comparison to serve, and how far generation
has got in the others.

Right after `make run`, image and audio comparisons exist within seconds while the worker
spends minutes on the text answers: the arena page opens on a modality that is ready,
says where the others stand, and polls this (GET /api/arena/readiness/) to load a
comparison as soon as one exists.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from django.db.models import Count

from arena.hotcache import Memo
from arena.models import POOL_ORIGINS, Modality, Prompt, Provider, System
from arena.voting.matchmaking import match_index

READY, GENERATING, EMPTY = "ready", "generating", "empty"


@dataclass(frozen=True)
class ModalityReadiness:
    modality: str
    label: str
    answers: int  # outputs of active systems to pool prompts, ready to serve
    expected: int  # active systems x pool prompts
    comparable_prompts: int  # pool prompts answered by two or more active systems
    generating: bool  # a system that generates (not uploads) still lacks answers

    @property
    def state(self) -> str:
        if self.comparable_prompts:
            return READY
        return GENERATING if self.generating else EMPTY

    def as_json(self) -> dict:
        return {**asdict(self), "state": self.state}


def _modality_readiness(modality: str, label: str, systems: dict, n_prompts: int) -> ModalityReadiness:
    index = match_index(modality)
    answered = dict(zip(index.systems, (len(answers) for answers in index.outputs), strict=True))
    generators = [pk for pk, provider in systems.items() if provider != Provider.UPLOADED]
    systems_per_prompt = Counter(prompt for answers in index.outputs for prompt in answers)
    return ModalityReadiness(
        modality=modality,
        label=label,
        answers=sum(answered.get(pk, 0) for pk in systems),
        expected=len(systems) * n_prompts,
        comparable_prompts=sum(1 for n in systems_per_prompt.values() if n >= 2),
        generating=len(systems) >= 2 and any(answered.get(pk, 0) < n_prompts for pk in generators),
    )


def _compute() -> dict[str, ModalityReadiness]:
    systems: dict[str, dict[int, str]] = {value: {} for value in Modality.values}
    current = System.objects.filter(is_active=True, retired_at__isnull=True)
    for pk, modality, provider in current.values_list("pk", "modality", "provider"):
        systems[modality][pk] = provider
    prompts = dict(
        Prompt.objects.filter(origin__in=POOL_ORIGINS).values_list("modality").annotate(n=Count("id"))
    )  # fmt: skip
    return {
        value: _modality_readiness(value, label, systems[value], prompts.get(value, 0))
        for value, label in Modality.choices
    }


# Polled by every open arena page while answers are generated: computed once per change of
# outputs, prompts or systems in any process (arena.hotcache), not once per poll.
_readiness: Memo[dict[str, ModalityReadiness]] = Memo(
    "arena readiness", invalidated_by=("arena.Output", "arena.Prompt", "arena.System")
)


def arena_readiness() -> dict[str, ModalityReadiness]:
    """Per modality (in Modality's order), whether the pool has a comparison to serve."""
    return _readiness.get("all", _compute)


def first_ready(readiness: dict[str, ModalityReadiness]) -> str:
    """The modality the arena opens on: text when it is ready, else the first that is."""
    return next((m for m, r in readiness.items() if r.state == READY), Modality.TEXT)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def readiness_note(readiness: dict[str, ModalityReadiness], current: str) -> str:
    """One sentence on the modalities that are not ready, and where comparisons are, e.g.
    "Text answers are being generated (12 of 60 ready); image and audio comparisons are
    ready now." Empty when every modality with systems is ready."""
    parts = [f"{r.label.lower()} answers are being generated ({r.answers} of {r.expected} ready)"
             for r in readiness.values() if r.state == GENERATING]  # fmt: skip
    ready = [r.label.lower() for r in readiness.values() if r.state == READY]
    if not parts and readiness[current].state == READY:
        return ""
    if ready:
        parts.append(f"{_join(ready)} comparisons are ready now")
    if not parts:
        return ""
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


def readiness_json(readiness: dict[str, ModalityReadiness], current: str) -> dict:
    return {
        "current": current,
        "first": first_ready(readiness),
        "note": readiness_note(readiness, current),
        "modalities": {m: r.as_json() for m, r in readiness.items()},
    }
