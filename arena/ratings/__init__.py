"""Duet's rating engine: plain functions over numpy arrays, no Django.

    counts = BattleCounts.from_records(rows)          # identical rows merged into counts
    board = compute_leaderboard(counts, ci="sandwich")
    board.to_dict()                                   # JSON-ready

Building blocks, for callers that need one piece: the models (`BradleyTerry`,
`OnlineElo`, `online_elo`), the interval strategies (`BootstrapIntervals`,
`SandwichIntervals`, `NoIntervals`), pairwise matrices and active matchmaking.
"""

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
from .matrices import battle_count_matrix, predicted_win_rate_matrix, win_rate_matrix
from .pair_weights import MatchState, choose_pair, draw_pair, pair_weights, uniform_pair_weights
from .rating_models import BradleyTerry, LogisticDesign, OnlineElo, RatingModel, online_elo, online_elo_resampled
from .scale import BASE, INITIAL_RATING, POINTS_PER_LOGIT, SCALE, Normaliser, win_probability
from .style import TEXT_STYLE_FEATURES, style_covariates

__all__ = [
    "BASE",
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
    "RatingModel",
    "SandwichIntervals",
    "StyleCoefficient",
    "SystemRating",
    "battle_count_matrix",
    "choose_pair",
    "component_labels",
    "draw_pair",
    "components_without_finite_mle",
    "compute_leaderboard",
    "online_elo",
    "online_elo_resampled",
    "pair_weights",
    "predicted_win_rate_matrix",
    "rank_from_intervals",
    "style_covariates",
    "uniform_pair_weights",
    "win_probability",
    "win_rate_matrix",
]
