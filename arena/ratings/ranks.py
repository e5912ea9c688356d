"""How far two boards over the same systems agree on their order: Spearman's rho and
Kendall's tau-b (scipy.stats) between the ratings, and the systems whose rank moves most."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RankShift:
    system: str
    rank_x: float  # 1 = best; tied ratings share the average rank
    rank_y: float
    rating_x: float
    rating_y: float

    @property
    def shift(self) -> float:
        """Positive when the system ranks better on board y than on board x."""
        return self.rank_x - self.rank_y


@dataclass(frozen=True)
class RankAgreement:
    n: int  # systems on both boards
    spearman: float | None  # None below 3 systems, or when a board rates every system alike
    spearman_p: float | None
    kendall: float | None
    kendall_p: float | None
    systems: tuple[RankShift, ...]  # by |shift|, largest first, then by name

    def biggest_shifts(self, limit: int = 3) -> tuple[RankShift, ...]:
        """The systems whose rank differs most (only those whose rank differs at all)."""
        return tuple(s for s in self.systems if s.shift != 0)[:limit]

    def to_dict(self, limit: int = 3, names: tuple[str, str] = ("x", "y")) -> dict[str, Any]:
        """JSON-ready; `names` label the two boards in the per-system keys (rank_x, rating_x, ...)."""
        x, y = names

        def row(s: RankShift) -> dict[str, Any]:
            return {"system": s.system, f"rank_{x}": s.rank_x, f"rank_{y}": s.rank_y, "shift": s.shift,
                    f"rating_{x}": s.rating_x, f"rating_{y}": s.rating_y}  # fmt: skip

        return {
            "n": self.n,
            "spearman": self.spearman,
            "spearman_p": self.spearman_p,
            "kendall": self.kendall,
            "kendall_p": self.kendall_p,
            "biggest_shifts": [row(s) for s in self.biggest_shifts(limit)],
            "systems": [row(s) for s in self.systems],
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def rank_agreement(ratings_x: Mapping[str, float], ratings_y: Mapping[str, float]) -> RankAgreement:
    """Agreement between two boards given as system -> rating, over the systems on both."""
    from scipy.stats import kendalltau, rankdata, spearmanr

    common = sorted(set(ratings_x) & set(ratings_y))
    x = np.array([ratings_x[s] for s in common], dtype=np.float64)  # shape (n,)
    y = np.array([ratings_y[s] for s in common], dtype=np.float64)
    # Rank 1 for the highest rating, as boards are read.
    rank_x, rank_y = rankdata(-x), rankdata(-y)
    spearman = spearman_p = kendall = kendall_p = None
    if len(common) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        rho = spearmanr(x, y)
        tau = kendalltau(x, y)
        spearman, spearman_p = _finite(rho.statistic), _finite(rho.pvalue)
        kendall, kendall_p = _finite(tau.statistic), _finite(tau.pvalue)
    shifts = [
        RankShift(name, float(rx), float(ry), float(vx), float(vy))
        for name, rx, ry, vx, vy in zip(common, rank_x, rank_y, x, y)
    ]
    shifts.sort(key=lambda s: (-abs(s.shift), s.system))
    return RankAgreement(len(common), spearman, spearman_p, kendall, kendall_p, tuple(shifts))
