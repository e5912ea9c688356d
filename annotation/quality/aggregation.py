"""One verdict per comparison from several judgments: the shared result type and majority
vote. Dawid-Skene (`dawid_skene.py`) returns the same `Aggregate`, so the export and the
dashboard take either."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from .table import MISSING, JudgmentTable


@dataclass(frozen=True, eq=False)
class Aggregate:
    method: str
    comparisons: tuple[Hashable, ...]
    verdicts: tuple[Hashable, ...]
    label: np.ndarray  # shape (n_comparisons,), verdict code, MISSING when undecided
    confidence: np.ndarray  # shape (n_comparisons,), in [0, 1]; 0 when undecided
    n_judgments: np.ndarray  # shape (n_comparisons,)

    @property
    def decided(self) -> np.ndarray:
        return self.label != MISSING

    @property
    def n_decided(self) -> int:
        return int(self.decided.sum())

    def verdict_of(self, index: int) -> Hashable | None:
        code = self.label[index]
        return None if code == MISSING else self.verdicts[code]

    def label_distribution(self) -> dict[Hashable, int]:
        counts = np.bincount(self.label[self.decided], minlength=len(self.verdicts))
        return {verdict: int(count) for verdict, count in zip(self.verdicts, counts)}


def majority_vote(judgments: JudgmentTable, weights: np.ndarray | None = None) -> Aggregate:
    """The verdict with the most judgments (or weight) on each comparison; confidence is
    its share. A tie for the most is undecided rather than broken at random: an export
    would otherwise train on a coin flip presented as a label."""
    n_verdicts = judgments.n_verdicts
    flat = judgments.comparison * n_verdicts + judgments.verdict
    totals = np.bincount(flat, weights=weights, minlength=judgments.n_comparisons * n_verdicts)
    totals = totals.reshape(judgments.n_comparisons, n_verdicts)
    best = totals.max(axis=1, initial=0.0)
    n_best = (np.isclose(totals, best[:, None]) & (best[:, None] > 0)).sum(axis=1)
    total = totals.sum(axis=1)
    decided = (n_best == 1) & (total > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, best / total, 0.0)
    return Aggregate(
        method="majority",
        comparisons=judgments.comparisons,
        verdicts=judgments.verdicts,
        label=np.where(decided, totals.argmax(axis=1) if n_verdicts else MISSING, MISSING),
        confidence=np.where(decided, share, 0.0),
        n_judgments=np.bincount(judgments.comparison, minlength=judgments.n_comparisons),
    )
