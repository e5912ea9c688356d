"""The leaderboard: battles in, one typed result out, with every choice that shaped the
numbers (method, intervals, both_bad policy, components, penalties) recorded in it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .battles import Battles, BattleCounts, BothBadPolicy
from .graph import component_labels, components_without_finite_mle
from .intervals import BootstrapIntervals, IntervalEstimator, NoIntervals, SandwichIntervals
from .matrices import predicted_win_rate_matrix
from .rating_models import BradleyTerry, OnlineElo, RatingModel
from .scale import INITIAL_RATING, POINTS_PER_LOGIT, Normaliser

Method = Literal["bt", "elo"]
IntervalMethod = Literal["bootstrap", "sandwich", "none"]

# Used only when some component's unpenalised MLE is infinite (a group never lost to the
# rest). l2 = 1 is a N(0, 1) prior on logit strengths, i.e. about one pseudo-battle: it
# keeps those ratings finite and moves well-measured ones by a negligible amount.
FALLBACK_L2 = 1.0


@dataclass(frozen=True)
class LeaderboardOptions:
    # model
    method: Method = "bt"
    both_bad: BothBadPolicy = "tie"
    l2: float = 0.0
    style_control: bool = False
    style_l2: float = 1.0
    elo_k: float = 4.0
    # intervals
    ci: IntervalMethod = "bootstrap"
    rounds: int = 1000
    confidence: float = 0.95
    seed: int = 0
    # presentation
    min_votes: int = 50
    anchor: str | None = None

    def __post_init__(self) -> None:
        if self.method not in MODELS:
            raise ValueError(f"method must be one of {sorted(MODELS)}, got {self.method!r}")
        if self.ci not in INTERVALS:
            raise ValueError(f"ci must be one of {sorted(INTERVALS)}, got {self.ci!r}")
        if self.both_bad not in ("tie", "drop"):
            raise ValueError(f"both_bad must be 'tie' or 'drop', got {self.both_bad!r}")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be strictly between 0 and 1")
        if self.ci == "bootstrap" and self.rounds < 2:
            raise ValueError("a bootstrap needs at least 2 rounds")
        if self.l2 < 0 or self.style_l2 < 0:
            raise ValueError("penalties must be non-negative")
        if self.min_votes < 0:
            raise ValueError("min_votes must be non-negative")
        if self.method == "elo" and self.style_control:
            raise ValueError("style control needs a likelihood; use method='bt'")
        if self.method == "elo" and self.ci == "sandwich":
            raise ValueError("online Elo has no likelihood, so no sandwich intervals; use ci='bootstrap'")


def _bradley_terry(data: Battles | BattleCounts, options: LeaderboardOptions, l2: float, style: bool) -> RatingModel:
    counts = data.aggregate() if isinstance(data, Battles) else data
    if counts.has_style and not style:
        # Style values make nearly every row unique; without them rows merge back into
        # at most four per pair, which is what keeps the bootstrap cheap.
        counts = counts.without_style()
    return BradleyTerry(counts.resolve_both_bad(options.both_bad), l2=l2, style=style, style_l2=options.style_l2)


def _online_elo(data: Battles | BattleCounts, options: LeaderboardOptions, l2: float, style: bool) -> RatingModel:
    if not isinstance(data, Battles):
        raise ValueError("online Elo needs battles in time order: pass Battles, not BattleCounts")
    return OnlineElo(data.resolve_both_bad(options.both_bad), k=options.elo_k)


MODELS: Mapping[str, Callable[[Battles | BattleCounts, LeaderboardOptions, float, bool], RatingModel]] = {
    "bt": _bradley_terry,
    "elo": _online_elo,
}
INTERVALS: Mapping[str, Callable[[LeaderboardOptions], IntervalEstimator]] = {
    "bootstrap": lambda options: BootstrapIntervals(options.rounds, options.seed),
    "sandwich": lambda options: SandwichIntervals(),
    "none": lambda options: NoIntervals(),
}


@dataclass(frozen=True)
class SystemRating:
    system: str
    rating: float
    ci_low: float | None  # None without intervals, or for a system compared with no one
    ci_high: float | None
    rank: int  # within its component
    votes: int
    component: int  # index into Leaderboard.components
    flagged_low_votes: bool
    rating_without_style: float | None = None  # set when style control is on
    # Share of the system's battles that ended both_bad, counted before the both_bad
    # policy (so also when they are dropped from the fit); None with no battles.
    both_bad_rate: float | None = None


@dataclass(frozen=True)
class StyleCoefficient:
    """Effect of one style covariate on the log-odds of winning, per standard deviation
    of the covariate (multiply by ~173.7 for rating points)."""

    feature: str
    coefficient: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Leaderboard:
    method: str
    ci: str
    confidence: float
    both_bad: str
    n_battles: int  # battles given, both_bad ones included
    n_battles_used: int  # after the both_bad policy
    min_votes: int
    anchor: str | None
    components: tuple[tuple[str, ...], ...]  # largest first
    systems: tuple[SystemRating, ...]  # by component, then rating, best first
    style_coefficients: tuple[StyleCoefficient, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "ci": self.ci,
            "confidence": self.confidence,
            "both_bad": self.both_bad,
            "n_battles": self.n_battles,
            "n_battles_used": self.n_battles_used,
            "min_votes": self.min_votes,
            "anchor": self.anchor,
            "components": [list(c) for c in self.components],
            "systems": [
                {
                    "system": s.system,
                    "rating": s.rating,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "rank": s.rank,
                    "votes": s.votes,
                    "component": s.component,
                    "flagged_low_votes": s.flagged_low_votes,
                    "both_bad_rate": s.both_bad_rate,
                    **({"rating_without_style": s.rating_without_style} if s.rating_without_style is not None else {}),
                }
                for s in self.systems
            ],
            "warnings": list(self.warnings),
        }
        if self.style_coefficients:
            out["style_coefficients"] = {
                c.feature: {"coefficient": c.coefficient, "ci_low": c.ci_low, "ci_high": c.ci_high}
                for c in self.style_coefficients
            }
        return out

    def predicted_win_rates(self) -> np.ndarray:
        """P(row beats column) in the order of `systems`; NaN across components."""
        return predicted_win_rate_matrix(
            np.array([s.rating for s in self.systems]), np.array([s.component for s in self.systems])
        )


def rank_from_intervals(low: np.ndarray, high: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """1 + the number of systems (in the same component) whose lower bound is above this
    system's upper bound, shape (n_systems,). Systems whose intervals overlap share a rank."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    above = low[None, :] > high[:, None]  # shape (n, n): [i, j] = j is surely above i
    if labels is not None:
        above &= np.asarray(labels)[:, None] == np.asarray(labels)[None, :]
    return 1 + above.sum(axis=1)


def compute_leaderboard(
    battles: Battles | BattleCounts,
    method: Method = "bt",
    ci: IntervalMethod = "bootstrap",
    rounds: int = 1000,
    both_bad: BothBadPolicy = "tie",
    style_control: bool = False,
    min_votes: int = 50,
    anchor: str | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    *,
    l2: float = 0.0,
    style_l2: float = 1.0,
    elo_k: float = 4.0,
) -> Leaderboard:
    """Ratings, intervals and ranks. Systems in different components of the comparison
    graph are rated separately (each centred on 1000, or on the anchor) and listed with
    their component, never silently put on one scale."""
    options = LeaderboardOptions(
        method=method,
        both_bad=both_bad,
        l2=l2,
        style_control=style_control,
        style_l2=style_l2,
        elo_k=elo_k,
        ci=ci,
        rounds=rounds,
        confidence=confidence,
        seed=seed,
        min_votes=min_votes,
        anchor=anchor,
    )
    counts = battles.aggregate() if isinstance(battles, Battles) else battles
    systems = counts.systems
    if anchor is not None and anchor not in systems:
        raise ValueError(f"anchor {anchor!r} is not among the systems")
    used = counts.resolve_both_bad(both_bad)
    if not systems:
        return Leaderboard(method, ci, confidence, both_bad, 0, 0, min_votes, anchor, (), ())

    labels = component_labels(used)  # shape (n_systems,)
    normalise = Normaliser(labels, None if anchor is None else systems.index(anchor))
    warnings: list[str] = []
    n_components = int(labels.max()) + 1
    if n_components > 1:
        warnings.append(
            f"the comparison graph has {n_components} components; each is rated on its own scale "
            "and ratings are comparable only within a component"
        )
    if method == "bt":
        infinite = components_without_finite_mle(used, labels)
        if infinite and l2 == 0:
            l2 = FALLBACK_L2
            warnings.append(
                f"in component(s) {infinite} some systems never lost (or never won) against the rest, so "
                f"unpenalised ratings would be infinite; fitted with an L2 penalty of {FALLBACK_L2}"
            )

    # Elo needs the battles in order; Bradley-Terry only their counts, aggregated once.
    data = battles if method == "elo" else counts
    model = MODELS[method](data, options, l2, style_control)
    params = model.fit()
    intervals = INTERVALS[ci](options).estimate(model, params, normalise, confidence)
    estimate = normalise(params)
    n = len(systems)
    ratings = INITIAL_RATING + estimate[:n] * POINTS_PER_LOGIT

    without_style = None
    if style_control:
        plain = MODELS[method](data, options, l2, False)
        without_style = INITIAL_RATING + normalise(plain.fit())[:n] * POINTS_PER_LOGIT

    sizes = np.bincount(labels)
    compared = sizes[labels] > 1  # a system alone in its component has no interval
    if intervals.low is None:
        low = high = None
        rank = rank_from_intervals(ratings, ratings, labels)
    else:
        low = INITIAL_RATING + intervals.low[:n] * POINTS_PER_LOGIT
        high = INITIAL_RATING + intervals.high[:n] * POINTS_PER_LOGIT
        rank = rank_from_intervals(low, high, labels)

    votes = counts.votes()
    both_bad_share = counts.both_bad() / np.maximum(votes, 1)
    flagged = votes < min_votes
    if flagged.any():
        warnings.append(f"{int(flagged.sum())} system(s) have fewer than {min_votes} votes")

    order = np.lexsort((np.array(systems), -ratings, labels))
    rows = tuple(
        SystemRating(
            system=systems[i],
            rating=float(ratings[i]),
            ci_low=float(low[i]) if low is not None and compared[i] else None,
            ci_high=float(high[i]) if high is not None and compared[i] else None,
            rank=int(rank[i]),
            votes=int(votes[i]),
            component=int(labels[i]),
            flagged_low_votes=bool(flagged[i]),
            rating_without_style=None if without_style is None else float(without_style[i]),
            both_bad_rate=float(both_bad_share[i]) if votes[i] else None,
        )
        for i in order
    )
    coefficients = tuple(
        StyleCoefficient(
            feature=name,
            coefficient=float(estimate[n + k]),
            ci_low=None if intervals.low is None else float(intervals.low[n + k]),
            ci_high=None if intervals.high is None else float(intervals.high[n + k]),
        )
        for k, name in enumerate(model.coefficient_names)
    )
    components = tuple(tuple(systems[i] for i in order if labels[i] == c) for c in range(n_components))
    return Leaderboard(
        method=method,
        ci=ci,
        confidence=confidence,
        both_bad=both_bad,
        n_battles=counts.n_battles,
        n_battles_used=used.n_battles,
        min_votes=min_votes,
        anchor=anchor,
        components=components,
        systems=rows,
        style_coefficients=coefficients,
        warnings=tuple(warnings),
    )
