"""Pairwise matrices for inspecting a leaderboard: how often systems met, how often each
won, and how often the model says each should win."""

from __future__ import annotations

import numpy as np

from .battles import WIN_CREDIT_A, BattleCounts, BothBadPolicy
from .scale import win_probability


def battle_count_matrix(counts: BattleCounts) -> np.ndarray:
    """Battles between i and j, shape (n_systems, n_systems), symmetric, zero diagonal."""
    n = counts.n_systems
    upper = np.bincount(counts.a * n + counts.b, counts.count, n * n).reshape(n, n)
    return (upper + upper.T).astype(np.int64)


def win_rate_matrix(counts: BattleCounts, both_bad: BothBadPolicy = "tie") -> np.ndarray:
    """Share of weighted win credit i took from j (ties count half), shape
    (n_systems, n_systems); NaN where the two never met. W[i, j] + W[j, i] = 1."""
    counts = counts.resolve_both_bad(both_bad)
    n = counts.n_systems
    key = counts.a * n + counts.b
    credit = np.bincount(key, counts.weight * WIN_CREDIT_A[counts.outcome], n * n).reshape(n, n)
    total = np.bincount(key, counts.weight, n * n).reshape(n, n)
    won = credit + (total - credit).T
    total = total + total.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, won / total, np.nan)


def predicted_win_rate_matrix(ratings: np.ndarray, components: np.ndarray | None = None) -> np.ndarray:
    """P(i beats j) from ratings in points, shape (n_systems, n_systems). With component
    labels, pairs from different components are NaN: their ratings share no scale."""
    ratings = np.asarray(ratings, dtype=np.float64)
    predicted = win_probability(ratings[:, None], ratings[None, :])
    if components is not None:
        components = np.asarray(components)
        predicted = np.where(components[:, None] == components[None, :], predicted, np.nan)
    return predicted
