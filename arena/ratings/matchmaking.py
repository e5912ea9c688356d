"""Active matchmaking: which two systems to show next.

A vote teaches most about the ranking when it goes to a pair whose order the current fit
is unsure of, and whose difference one more vote would still sharpen (few votes so far).
An exploration floor keeps every pair sampled, so a wrong early fit cannot starve the
pairs that would correct it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from .battles import BattleCounts
from .graph import component_labels
from .models import BradleyTerry
from .scale import INITIAL_RATING, POINTS_PER_LOGIT, Normaliser

# Share of probability spread uniformly over all allowed pairs.
EXPLORATION = 0.1
# Prior for the fit behind matchmaking: early on most pairs have a handful of votes and
# the plain MLE is often infinite. l2 = 1 is a N(0, 1) prior on logit strengths.
MATCHMAKING_L2 = 1.0


@dataclass(frozen=True, eq=False)
class MatchState:
    """What matchmaking knows about the current fit."""

    ratings: np.ndarray  # shape (n_systems,) points
    covariance: np.ndarray  # shape (n_systems, n_systems) points^2
    votes: np.ndarray  # shape (n_systems,)
    components: np.ndarray  # shape (n_systems,) labels; pairs across them have no known order
    systems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.ratings)
        if self.covariance.shape != (n, n) or self.votes.shape != (n,) or self.components.shape != (n,):
            raise ValueError("ratings, covariance, votes and components disagree on the number of systems")

    @classmethod
    def from_counts(cls, counts: BattleCounts, *, l2: float = MATCHMAKING_L2) -> MatchState:
        """Fit Bradley-Terry with a weak prior and take its inverse-information covariance:
        one fit of a few milliseconds, cheap enough to redo after every batch of votes."""
        if l2 <= 0:
            raise ValueError("matchmaking's fit needs a prior (l2 > 0): early on most MLEs are infinite")
        model = BradleyTerry(counts.resolve_both_bad("tie").without_style(), l2=l2)
        params = model.fit()
        labels = component_labels(counts)
        # The prior ties every system to 0, so one centring serves all components; their
        # cross-component differences then carry the prior's wide variance, as they should.
        normalise = Normaliser(np.zeros(counts.n_systems, dtype=np.int64))
        return cls(
            ratings=INITIAL_RATING + normalise(params) * POINTS_PER_LOGIT,
            covariance=normalise.covariance(model.model_covariance(params)) * POINTS_PER_LOGIT**2,
            votes=counts.votes(),
            components=labels,
            systems=counts.systems,
        )

    @classmethod
    def from_intervals(
        cls,
        ratings: np.ndarray,
        ci_low: np.ndarray,
        ci_high: np.ndarray,
        votes: np.ndarray,
        components: np.ndarray | None = None,
        *,
        confidence: float = 0.95,
        systems: tuple[str, ...] = (),
    ) -> MatchState:
        """From a leaderboard's intervals (bootstrap ones carry no covariance): treats the
        systems as independent, with sd = interval width / (2 z). A NaN bound (a system
        never compared) becomes a very wide interval."""
        ratings = np.asarray(ratings, dtype=float)
        width = np.asarray(ci_high, dtype=float) - np.asarray(ci_low, dtype=float)
        sd = np.where(np.isfinite(width), width / (2 * norm.ppf(0.5 + confidence / 2)), 10 * POINTS_PER_LOGIT)
        return cls(
            ratings=ratings,
            covariance=np.diag(sd**2),
            votes=np.asarray(votes, dtype=np.int64),
            components=np.zeros(len(ratings), dtype=np.int64) if components is None else np.asarray(components),
            systems=systems,
        )

    @classmethod
    def from_leaderboard(cls, leaderboard) -> MatchState:  # arena.ratings.Leaderboard
        rows = leaderboard.systems

        def bound(value, rating):
            return rating if value is None and leaderboard.ci == "none" else (np.nan if value is None else value)

        return cls.from_intervals(
            np.array([r.rating for r in rows]),
            np.array([bound(r.ci_low, r.rating) for r in rows]),
            np.array([bound(r.ci_high, r.rating) for r in rows]),
            np.array([r.votes for r in rows]),
            np.array([r.component for r in rows]),
            confidence=leaderboard.confidence,
            systems=tuple(r.system for r in rows),
        )


def _allowed(n: int, exclude: Collection[int], exclude_pairs: Collection[tuple[int, int]]) -> np.ndarray:
    """Upper-triangle mask of pairs that may be shown, shape (n, n)."""
    allowed = np.triu(np.ones((n, n), dtype=bool), k=1)
    for system in exclude:
        allowed[system, :] = allowed[:, system] = False
    for i, j in exclude_pairs:
        allowed[min(i, j), max(i, j)] = False
    if not allowed.any():
        raise ValueError("no pair of systems is left to compare")
    return allowed


def uniform_pair_weights(
    state: MatchState,
    *,
    exclude: Collection[int] = frozenset(),
    exclude_pairs: Collection[tuple[int, int]] = frozenset(),
) -> np.ndarray:
    """Every allowed pair equally likely; upper-triangular, shape (n, n), sums to 1."""
    allowed = _allowed(len(state.ratings), exclude, exclude_pairs)
    return allowed / allowed.sum()


def pair_weights(
    state: MatchState,
    *,
    exploration: float = EXPLORATION,
    exclude: Collection[int] = frozenset(),
    exclude_pairs: Collection[tuple[int, int]] = frozenset(),
) -> np.ndarray:
    """Probability of showing each pair (i < j), upper-triangular, shape (n, n), sums to 1.

    Score of a pair = P(its order is wrong under the fit) x the share of its remaining
    variance one more vote removes. The first term is 1 when the two intervals coincide
    and vanishes as they separate; the second is near 1 for pairs with few votes and falls
    like 1 / votes. Pairs across components score 1: one vote there joins two scales.
    """
    if not 0 <= exploration <= 1:
        raise ValueError("exploration must be in [0, 1]")
    allowed = _allowed(len(state.ratings), exclude, exclude_pairs)
    r = state.ratings / POINTS_PER_LOGIT  # logits
    cov = state.covariance / POINTS_PER_LOGIT**2
    var = np.diag(cov)
    diff = r[:, None] - r[None, :]  # shape (n, n)
    diff_var = np.clip(var[:, None] + var[None, :] - 2 * cov, 1e-12, None)
    p = expit(diff)
    # Fisher information of one vote about the difference, and the share of the
    # difference's variance it would remove (a rank-one update along e_i - e_j).
    info = p * (1 - p)
    shrink = diff_var * info / (1 + diff_var * info)
    misordered = 2 * norm.sf(np.abs(diff) / np.sqrt(diff_var))
    same = state.components[:, None] == state.components[None, :]
    score = np.where(same, misordered * shrink, 1.0) * allowed
    uniform = allowed / allowed.sum()
    if score.sum() <= 0:
        return uniform
    return (1 - exploration) * score / score.sum() + exploration * uniform


PairWeights = Callable[..., np.ndarray]


def choose_pair(
    state: MatchState,
    rng: np.random.Generator,
    exclude: Collection[int] = frozenset(),
    *,
    exclude_pairs: Collection[tuple[int, int]] = frozenset(),
    weights: PairWeights = pair_weights,
) -> tuple[int, int]:
    """Draw a pair from `weights(state, ...)` (pass `uniform_pair_weights` for the
    baseline), in random left/right order so position bias averages out. `exclude` holds
    system indices that must not be shown, `exclude_pairs` index pairs (either order)."""
    return draw_pair(weights(state, exclude=exclude, exclude_pairs=exclude_pairs), rng)


def draw_pair(probs: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """One pair from pair probabilities of shape (n, n), sides in random order. Lets a
    caller serving a batch of voters compute the weights once per refit."""
    flat = rng.choice(probs.size, p=probs.ravel())
    i, j = divmod(int(flat), probs.shape[1])
    return (i, j) if rng.random() < 0.5 else (j, i)
