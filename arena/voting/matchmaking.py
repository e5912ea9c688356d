"""Which comparison a voter is served next: a prompt and the outputs of two different
systems, never a pair of outputs this voter has judged.

Two ways to the same answer:

- The fast path, every request: draw a few candidates (a pair of systems by the pair
  weights, then a prompt both answered) from the per-process `MatchIndex` and keep the
  first the voter has not judged, checked with one indexed query. A voter has judged a
  small share of what an arena holds, so the first candidate almost always stands.
- The exact path, when every candidate was judged already: read all the voter's judged
  pairs, leave out the system pairs they have exhausted, and draw from what is left; or
  say that nothing is left.

Both draw the system pair from the same weights (uniform, or DUET_MATCHMAKING=active:
toward the pairs whose order the board is least sure of). The fast path gives a pair the
voter has partly judged slightly less than its weight (it rejects and draws again), which
matters only to a voter who has judged a large share of one pair's prompts.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from arena import hotcache
from arena.hotcache import Memo
from arena.models import POOL_ORIGINS, Comparison, Judgment, Modality, Output
from arena import fastpath as rows

# Candidates checked in one query. Rejections are rare until a voter has judged a large
# share of the arena; 8 keeps that query small and the fall-back to the exact path rare.
CANDIDATES = 8
PROMPT_TRIES = 16


def eligible_outputs(modality: str):
    queryset = Output.objects.filter(
        system__is_active=True, system__retired_at__isnull=True, system__modality=modality, prompt__modality=modality,
        prompt__origin__in=POOL_ORIGINS, turn=0,
    )  # fmt: skip
    if modality == Modality.TEXT:
        return queryset.exclude(text="")
    return queryset.exclude(media="")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a memo key
class MatchIndex:
    """The eligible outputs of one modality, arranged for drawing: per system, the output
    answering each prompt; per pair of systems, how many prompts both answered."""

    systems: tuple[int, ...]  # system ids, ascending
    outputs: tuple[dict[int, int], ...]  # per system: prompt id -> output id
    prompts: tuple[tuple[int, ...], ...]  # per system: its prompt ids, ascending
    common: np.ndarray  # shape (n_systems, n_systems): prompts both answered
    pairs: tuple[tuple[int, int], ...]  # system pairs (lower id first) with a prompt in common
    output_ids: frozenset[int]  # every eligible output

    @classmethod
    def build(cls, modality: str) -> MatchIndex:
        rows = eligible_outputs(modality).order_by("system_id", "prompt_id").values_list("system_id", "prompt_id", "id")
        by_system: dict[int, dict[int, int]] = {}
        for system_id, prompt_id, output_id in rows:
            by_system.setdefault(system_id, {})[prompt_id] = output_id
        systems = tuple(sorted(by_system))
        outputs = tuple(by_system[s] for s in systems)
        all_prompts = sorted({p for answers in outputs for p in answers})
        column = {p: k for k, p in enumerate(all_prompts)}
        presence = np.zeros((len(systems), len(all_prompts)), dtype=np.float32)  # float: BLAS matmul
        for i, answers in enumerate(outputs):
            presence[i, [column[p] for p in answers]] = 1.0
        common = np.rint(presence @ presence.T).astype(np.int64)
        np.fill_diagonal(common, 0)
        i, j = np.nonzero(np.triu(common, 1))
        pairs = tuple((systems[a], systems[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True))
        output_ids = frozenset(o for answers in outputs for o in answers.values())
        return cls(systems, outputs, tuple(tuple(answers) for answers in outputs), common, pairs, output_ids)

    def triples(self, pair: tuple[int, int]) -> list[tuple[int, int, int]]:
        """Every (prompt, output of the first, output of the second) of a system pair."""
        first, second = (self.outputs[self.systems.index(s)] for s in pair)
        return [(p, first[p], second[p]) for p in sorted(first.keys() & second.keys())]

    def draw_triple(self, pair: tuple[int, int], rng: random.Random) -> tuple[int, int, int]:
        """A prompt both systems answered, uniformly, and their two outputs."""
        i, j = (self.systems.index(s) for s in pair)
        if len(self.prompts[j]) < len(self.prompts[i]):
            i, j = j, i
        mine, theirs = self.outputs[i], self.outputs[j]
        # In a seeded arena every system answers every prompt, so the first draw stands.
        for _ in range(PROMPT_TRIES):
            prompt = rng.choice(self.prompts[i])
            if prompt in theirs:
                break
        else:
            prompt = rng.choice(sorted(mine.keys() & theirs.keys()))
        return prompt, mine[prompt], theirs[prompt]


_INDEX_SOURCES = ("arena.Output", "arena.Prompt", "arena.System")
_indexes: Memo[MatchIndex] = Memo("matchmaking index", invalidated_by=_INDEX_SOURCES)
# Per index and board: its pairs and their probabilities. A process reweighs when the
# index changes, and for a new board at most every DUET_MATCHMAKING_REWEIGH_SECONDS
# (`_board_epoch`); the key's index keeps an entry from outliving its index.
_weights: Memo[tuple[list, list[float] | None]] = Memo("matchmaking weights", invalidated_by=_INDEX_SOURCES)
_SNAPSHOTS = "arena.LeaderboardSnapshot"


@dataclass
class _Epoch:
    """Which board this process weighs pairs by: a number that moves when the boards'
    change stamp has moved and the last move is old enough."""

    stamp: int | None = None
    number: int = 0
    moved_at: float = float("-inf")
    weighed: int = 0  # the epoch `_weights` holds entries of


_epoch = _Epoch()


def _board_epoch() -> int:
    now = time.monotonic()
    wait = settings.MATCHMAKING_REWEIGH_SECONDS
    if now - _epoch.moved_at < wait:
        return _epoch.number
    # While the counters cannot be read (None), the memo's lifetime still renews weights.
    stamp = hotcache.seen_stamp(_SNAPSHOTS)
    if stamp != _epoch.stamp:
        _epoch.stamp, _epoch.number, _epoch.moved_at = stamp, _epoch.number + 1, now
    return _epoch.number


def match_index(modality: str, *, fresh: bool = False) -> MatchIndex:
    if fresh:
        _indexes.forget(modality)
    return _indexes.get(modality, lambda: MatchIndex.build(modality))


def still_eligible(modality: str, *output_ids: int) -> bool:
    """Whether these outputs can still be served (their systems active, their prompts in
    the pool): this process's index says so, or a fresh one does."""
    if match_index(modality).output_ids.issuperset(output_ids):
        return True
    return match_index(modality, fresh=True).output_ids.issuperset(output_ids)


def _board_state(system_ids: list[int], modality: str):
    """The latest board as the ratings engine's MatchState over these systems, or None."""
    from arena.board.snapshots import MATCHMAKING_KEY, Scope, default_arena, latest_snapshot
    from arena.models import System
    from arena.ratings import MatchState

    snapshot = latest_snapshot(default_arena(), Scope(modality))
    if snapshot is None:
        return None
    names = dict(System.objects.filter(id__in=system_ids).values_list("id", "name"))
    stored = snapshot.payload.get(MATCHMAKING_KEY)
    if stored is not None:
        return MatchState.from_dict(stored, [names.get(s, "") for s in system_ids])
    # A snapshot from before the board stored matchmaking's state: its intervals.
    rows = {row["system"]: row for row in snapshot.payload.get("systems", [])}
    nan = float("nan")

    def column(key, default):
        return np.array([(rows.get(names.get(s)) or {}).get(key, default) for s in system_ids], dtype=float)

    return MatchState.from_intervals(
        column("rating", 1000.0),
        column("ci_low", nan),
        column("ci_high", nan),
        column("votes", 0).astype(np.int64),
        # Systems not on the board yet sit in a component of their own.
        np.array([(rows.get(names.get(s)) or {}).get("component", 1000 + k) for k, s in enumerate(system_ids)]),
    )


def pair_probabilities(pairs: list[tuple[int, int]], modality: str) -> np.ndarray | None:
    """Probability of each pair (same order), or None for uniform."""
    if settings.MATCHMAKING != "active" or len(pairs) < 2:
        return None
    from arena.ratings import pair_weights

    system_ids = sorted({system for pair in pairs for system in pair})
    state = _board_state(system_ids, modality)
    if state is None:
        return None
    position = {system: k for k, system in enumerate(system_ids)}
    allowed = {(position[i], position[j]) for i, j in pairs}
    excluded = {
        (i, j) for i in range(len(system_ids)) for j in range(i + 1, len(system_ids)) if (i, j) not in allowed
    }
    weights = pair_weights(state, exclude_pairs=excluded)
    probabilities = np.array([weights[position[i], position[j]] for i, j in pairs], dtype=float)
    return probabilities / probabilities.sum()


def choose_system_pair(pairs: list[tuple[int, int]], modality: str, rng: random.Random) -> tuple[int, int]:
    """One of `pairs` (lower id first): uniformly, or weighted by the board."""
    probabilities = pair_probabilities(pairs, modality)
    if probabilities is None:
        return rng.choice(pairs)
    return pairs[int(np.random.default_rng(rng.getrandbits(64)).choice(len(pairs), p=probabilities))]


def _draw_pairs(index: MatchIndex, modality: str, rng: random.Random, n: int) -> list[tuple[int, int]]:
    # Only the newest epoch's entry is ever read again: a new epoch clears the rest.
    epoch = _board_epoch()
    if _epoch.weighed != epoch:
        _weights.clear()
        _epoch.weighed = epoch
    pairs, cumulative = _weights.get((modality, index), lambda: _pairs_and_weights(index, modality))
    if not pairs:
        return []
    return rng.choices(pairs, cum_weights=cumulative, k=n)


def _pairs_and_weights(index: MatchIndex, modality: str) -> tuple[list, list[float] | None]:
    """The index's pairs and their cumulative probabilities (None: uniform), for
    `random.choices`, which draws in microseconds where numpy's generator takes 50."""
    pairs = list(index.pairs)
    probabilities = pair_probabilities(pairs, modality)
    return pairs, None if probabilities is None else np.cumsum(probabilities).tolist()


def judged_pair_keys(judge, modality: str) -> set[str]:
    """Every output pair ("low-high") this judge has judged in a modality."""
    judged = Judgment.objects.filter(judge=judge, comparison__prompt__modality=modality)
    return set(judged.values_list("comparison__pair_key", flat=True))


def candidates(modality: str, rng: random.Random) -> list[tuple[int, int, int]]:
    """A few (prompt, output, output) draws, for the caller to keep the first the voter
    has not judged (see `choose`)."""
    index = match_index(modality)
    if not index.pairs:
        # Nothing in this process's copy: outputs may have appeared since it was made.
        index = match_index(modality, fresh=True)
    return [index.draw_triple(pair, rng) for pair in _draw_pairs(index, modality, rng, CANDIDATES)]


def choose(judge, modality: str, drawn: list[tuple[int, int, int]], judged: set[str], rng: random.Random):
    """The first drawn triple whose pair of outputs is not in `judged`, or one from the
    exact path; None when the judge has judged every available pair."""
    for candidate in drawn:
        if Comparison.make_pair_key(candidate[1], candidate[2]) not in judged:
            return candidate
    return _draw_exact(judge, modality, match_index(modality, fresh=True), rng)


def _draw_exact(judge, modality: str, index: MatchIndex, rng: random.Random) -> tuple[int, int, int] | None:
    judged = judged_pair_keys(judge, modality)
    open_triples = {}
    for pair in index.pairs:
        triples = [t for t in index.triples(pair) if Comparison.make_pair_key(t[1], t[2]) not in judged]
        if triples:
            open_triples[pair] = triples
    if not open_triples:
        return None
    pair = choose_system_pair(sorted(open_triples), modality, rng)
    return rng.choice(open_triples[pair])
