"""Duet's rating engine: plain functions over numpy arrays, no Django.

    counts = BattleCounts.from_records(rows)          # identical rows merged into counts
    board = compute_leaderboard(counts, ci="sandwich")
    board.to_dict()                                   # JSON-ready

Building blocks, for callers that need one piece: the models (`BradleyTerry`,
`OnlineElo`, `online_elo`), the interval strategies (`BootstrapIntervals`,
`SandwichIntervals`, `NoIntervals`), pairwise matrices and active matchmaking.
"""

# The names below load with their module on first use (PEP 562), so importing the package,
# or one light part of it,
# does not load scipy: Django's start-up and every management command import the vote
# path, and scipy's optimiser and sparse graphs cost them about half a second.
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .battles import OUTCOME_CODES, Battles, BattleCounts, BothBadPolicy, Outcome
    from .graph import component_labels, components_without_finite_mle
    from .intervals import BootstrapIntervals, IntervalEstimator, Intervals, NoIntervals, SandwichIntervals
    from .leaderboard import (
        Leaderboard,
        LeaderboardOptions,
        StyleCoefficient,
        SystemRating,
        compute_leaderboard,
        rank_from_intervals,
    )
    from .ranks import RankAgreement, RankShift, rank_agreement
    from .similarity import DEFAULT_POWER, SimilarBoard, cosine_similarities, kish_effective_n, similar_board, similarity_weights
    from .pairing import MatchState, choose_pair, draw_pair, pair_weights, uniform_pair_weights
    from .matrices import battle_count_matrix, predicted_win_rate_matrix, win_rate_matrix
    from .rating_models import BradleyTerry, LogisticDesign, OnlineElo, RatingModel, online_elo, online_elo_resampled
    from .scale import BASE, INITIAL_RATING, POINTS_PER_LOGIT, SCALE, Normaliser, win_probability
    from .style import TEXT_STYLE_FEATURES, style_covariates

__all__ = [
    "BASE",
    "DEFAULT_POWER",
    "INITIAL_RATING",
    "OUTCOME_CODES",
    "POINTS_PER_LOGIT",
    "SCALE",
    "TEXT_STYLE_FEATURES",
    "BattleCounts",
    "Battles",
    "BootstrapIntervals",
    "BothBadPolicy",
    "BradleyTerry",
    "IntervalEstimator",
    "Intervals",
    "Leaderboard",
    "LeaderboardOptions",
    "LogisticDesign",
    "MatchState",
    "NoIntervals",
    "Normaliser",
    "OnlineElo",
    "Outcome",
    "RankAgreement",
    "RankShift",
    "RatingModel",
    "SandwichIntervals",
    "SimilarBoard",
    "StyleCoefficient",
    "SystemRating",
    "battle_count_matrix",
    "choose_pair",
    "component_labels",
    "draw_pair",
    "components_without_finite_mle",
    "compute_leaderboard",
    "cosine_similarities",
    "kish_effective_n",
    "online_elo",
    "online_elo_resampled",
    "pair_weights",
    "predicted_win_rate_matrix",
    "rank_agreement",
    "rank_from_intervals",
    "similar_board",
    "similarity_weights",
    "style_covariates",
    "uniform_pair_weights",
    "win_probability",
    "win_rate_matrix",
]


_MODULES = {
    "battles": ("OUTCOME_CODES", "Battles", "BattleCounts", "BothBadPolicy", "Outcome"),
    "graph": ("component_labels", "components_without_finite_mle"),
    "intervals": ("BootstrapIntervals", "IntervalEstimator", "Intervals", "NoIntervals", "SandwichIntervals"),
    "leaderboard": ("Leaderboard", "LeaderboardOptions", "StyleCoefficient", "SystemRating", "compute_leaderboard",
                    "rank_from_intervals"),
    "pairing": ("MatchState", "choose_pair", "draw_pair", "pair_weights", "uniform_pair_weights"),
    "ranks": ("RankAgreement", "RankShift", "rank_agreement"),
    "similarity": ("DEFAULT_POWER", "SimilarBoard", "cosine_similarities", "kish_effective_n", "similar_board",
                   "similarity_weights"),
    "matrices": ("battle_count_matrix", "predicted_win_rate_matrix", "win_rate_matrix"),
    "rating_models": ("BradleyTerry", "LogisticDesign", "OnlineElo", "RatingModel", "online_elo", "online_elo_resampled"),
    "scale": ("BASE", "INITIAL_RATING", "POINTS_PER_LOGIT", "SCALE", "Normaliser", "win_probability"),
    "style": ("TEXT_STYLE_FEATURES", "style_covariates"),
}  # fmt: skip
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str):
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))
