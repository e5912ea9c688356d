"""Active matchmaking: which two systems to show next.

A vote teaches most about the ranking when it goes to a pair whose order the current fit
is unsure of, and whose difference one more vote would still sharpen (few votes so far).
`misordering_gain` scores each pair by how many misordered pairs one more vote on it is
expected to fix. An exploration floor keeps every pair sampled, so a wrong early fit
cannot starve the pairs that would correct it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtr
from scipy.stats import norm

from .battles import BattleCounts
from .graph import component_labels
from .leaderboard import Leaderboard
from .rating_models import BradleyTerry
from .scale import INITIAL_RATING, POINTS_PER_LOGIT, Normaliser

# Share of probability spread uniformly over all allowed pairs.
EXPLORATION = 0.1
# Pairs are drawn with probability proportional to gain ** SHARPNESS. Gains differ by only
# ~10x between the best and the worst pairs, so drawing in proportion to the gain itself
# is close to uniform. bench/matchmaking.py --model-path (mean votes to a stable tau of
# 0.9, exploration 0.1): on the ladder truth, seeds 0-7, 1,080 at power 2 and 1,378 at
# power 3 against 2,242 for uniform; on the near-tied normal truth, seeds 4-9, 3,730 at
# power 2 and 2,743 at power 3 against 4,447 (16% and 38% fewer; seeds 0-3: 33%, 61%).
# Power 3 clears 30% on both; sampling still spreads a batch of voters over several
# pairs, unlike a greedy argmax.
SHARPNESS = 3.0
# Prior for the fit behind matchmaking: early on most pairs have a handful of votes and
# the plain MLE is often infinite. l2 = 1 is a N(0, 1) prior on logit strengths.
MATCHMAKING_L2 = 1.0


@dataclass(frozen=True, eq=False)
class MatchState:
    """What matchmaking knows about the current fit."""

    ratings: np.ndarray  # shape (n_systems,) points
    covariance: np.ndarray  # shape (n_systems, n_systems) points^2
    # Not read by the score, whose variances already say how well measured each system
    # is; kept for callers' own rules (e.g. serve new systems until they reach min_votes).
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

    def to_dict(self, digits: int = 3) -> dict:
        """JSON-ready: what a leaderboard snapshot stores for matchmaking (points, rounded)."""
        return {
            "systems": list(self.systems),
            "ratings": np.round(self.ratings, digits).tolist(),
            "covariance": np.round(self.covariance, digits).tolist(),
            "votes": self.votes.tolist(),
            "components": self.components.tolist(),
        }

    @classmethod
    def from_dict(cls, stored: dict, systems: Sequence[str]) -> MatchState:
        """The stored state (`to_dict`) over `systems`, in that order. A system the state
        does not hold (no votes when it was computed) gets the prior's rating and a very
        wide variance, alone in a component: nothing is known about its order yet."""
        position = {name: k for k, name in enumerate(stored["systems"])}
        known = np.array([position.get(name, -1) for name in systems])
        have = known >= 0
        n = len(systems)
        ratings = np.full(n, INITIAL_RATING)
        covariance = np.diag(np.full(n, (10 * POINTS_PER_LOGIT) ** 2))
        votes = np.zeros(n, dtype=np.int64)
        components = np.arange(n, dtype=np.int64) + len(stored["systems"])
        if have.any():
            rows = known[have]
            ratings[have] = np.asarray(stored["ratings"], dtype=float)[rows]
            covariance[np.ix_(have, have)] = np.asarray(stored["covariance"], dtype=float)[np.ix_(rows, rows)]
            votes[have] = np.asarray(stored["votes"], dtype=np.int64)[rows]
            components[have] = np.asarray(stored["components"], dtype=np.int64)[rows]
        return cls(ratings, covariance, votes, components, tuple(systems))

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
    def from_leaderboard(cls, leaderboard: Leaderboard) -> MatchState:
        """Systems in the leaderboard's order. Missing bounds (ci="none", or a system never
        compared) count as very wide: nothing is known about that order yet."""
        rows = leaderboard.systems
        return cls.from_intervals(
            np.array([r.rating for r in rows]),
            np.array([np.nan if r.ci_low is None else r.ci_low for r in rows]),
            np.array([np.nan if r.ci_high is None else r.ci_high for r in rows]),
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


# Gauss-Hermite rule for expectations over a standard normal; 10 nodes put the
# look-ahead's integral within ~1e-6 of its value, far below the sampling noise.
_NODES, _NODE_WEIGHTS = np.polynomial.hermite_e.hermegauss(10)
_NODE_WEIGHTS = _NODE_WEIGHTS / _NODE_WEIGHTS.sum()
# Pairs whose order is already this sure cannot gain from any vote; skipping them keeps
# the look-ahead cheap once the board has settled.
_SETTLED = 1e-4
# Variance (logits^2) of a component's unknown offset: an sd of 2 logits (~350 points)
# is as wide as a whole leaderboard.
COMPONENT_OFFSET_VAR = 4.0
# Bounds the look-ahead's working array (candidates x watched pairs x nodes) to ~32 MB.
_BLOCK_ELEMENTS = 4_000_000


def misordering_gain(state: MatchState) -> np.ndarray:
    """Expected drop in the number of misordered pairs after one more vote on each pair
    (i < j), upper-triangular, shape (n, n): a one-step look-ahead (knowledge gradient).

    A pair is misordered with probability Phi(-|d| / s) under the fit (d the rating
    difference in logits, s its sd). A vote on (i, j) carries information q = p (1 - p)
    about d_ij; it shrinks the covariance by q c c^T / (1 + q s_ij^2), c = C (e_i - e_j),
    and so the variance of every difference (k, l), not only (i, j). Before the vote the
    new estimate of d_kl is uncertain: it moves by N(0, drop in variance). The gain sums,
    over all pairs (k, l), today's misordering probability minus its expectation after.
    Pairs with many votes gain little (their variance barely drops), pairs far apart gain
    little (their order is already sure): both fall out of the same quantity.
    """
    n = len(state.ratings)
    i, j = np.triu_indices(n, 1)  # shape (n_pairs,): candidates and watched pairs alike
    r = state.ratings / POINTS_PER_LOGIT
    cov = state.covariance / POINTS_PER_LOGIT**2
    # Across components the ratings share no scale. Give each component an unknown offset,
    # so an order across them is a coin flip that only a vote across them can settle
    # (a vote inside a component leaves the offsets as unknown as before).
    same_component = state.components[:, None] == state.components[None, :]
    if not same_component.all():
        cov = cov + COMPONENT_OFFSET_VAR * same_component
    same = same_component[i, j]
    diff = np.where(same, r[i] - r[j], 0.0)
    var = np.clip(cov[i, i] + cov[j, j] - 2 * cov[i, j], 1e-12, None)
    p = expit(diff)
    info = p * (1 - p)
    misordered = ndtr(-np.abs(diff) / np.sqrt(var))

    watched = np.flatnonzero(misordered > _SETTLED)
    gain = np.zeros(len(i))
    if len(watched):
        c = cov[i] - cov[j]  # shape (n_pairs, n): C (e_i - e_j) per candidate
        block = max(1, _BLOCK_ELEMENTS // (len(watched) * len(_NODES)))
        for start in range(0, len(i), block):
            rows = slice(start, start + block)
            drop = (c[rows][:, i[watched]] - c[rows][:, j[watched]]) ** 2 * (
                info[rows] / (1 + info[rows] * var[rows])
            )[:, None]  # shape (block, n_watched)
            after_sd = np.sqrt(np.clip(var[watched] - drop, 1e-12, None))[..., None]
            moved = diff[watched][None, :, None] + np.sqrt(drop)[..., None] * _NODES  # (block, n_watched, nodes)
            expected_after = ndtr(-np.abs(moved) / after_sd) @ _NODE_WEIGHTS
            gain[rows] = np.clip(misordered[watched] - expected_after, 0.0, None).sum(axis=1)
    out = np.zeros((n, n))
    out[i, j] = gain
    return out


def pair_weights(
    state: MatchState,
    *,
    exploration: float = EXPLORATION,
    exclude: Collection[int] = frozenset(),
    exclude_pairs: Collection[tuple[int, int]] = frozenset(),
) -> np.ndarray:
    """Probability of showing each pair (i < j), upper-triangular, shape (n, n), sums to 1:
    proportional to `misordering_gain` ** SHARPNESS, mixed with a uniform share
    `exploration`."""
    if not 0 <= exploration <= 1:
        raise ValueError("exploration must be in [0, 1]")
    allowed = _allowed(len(state.ratings), exclude, exclude_pairs)
    uniform = allowed / allowed.sum()
    score = misordering_gain(state) ** SHARPNESS * allowed
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
