"""Simulated crowds with known truth, for the recovery tests and the benchmark.

Each simulated annotator is a confusion matrix over the verdicts; every comparison is
judged by `per_comparison` annotators drawn without replacement, so overlap is uneven
across pairs of annotators, as in a real project.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .table import JudgmentTable

VERDICTS = ("a", "b", "tie")
PRIOR = (0.45, 0.45, 0.10)


def accurate(accuracy: float, n_verdicts: int = len(VERDICTS)) -> np.ndarray:
    """Right with probability `accuracy`, otherwise any other verdict uniformly."""
    error = (1.0 - accuracy) / (n_verdicts - 1)
    return np.full((n_verdicts, n_verdicts), error) + np.eye(n_verdicts) * (accuracy - error)


def random_clicker(shares: Sequence[float] = (0.5, 0.5, 0.0)) -> np.ndarray:
    """Verdicts drawn from `shares` whatever the truth: every row the same."""
    return np.tile(np.asarray(shares, dtype=float), (len(shares), 1))


def side_flipper(n_verdicts: int = len(VERDICTS)) -> np.ndarray:
    """Says b when a is better and a when b is better; other verdicts kept."""
    confusion = np.eye(n_verdicts)
    confusion[[0, 1]] = confusion[[1, 0]]
    return confusion


@dataclass(frozen=True, eq=False)
class SimulatedCrowd:
    judgments: JudgmentTable
    truth: np.ndarray  # shape (n_comparisons,), verdict codes
    confusions: np.ndarray  # shape (n_annotators, n_verdicts, n_verdicts)
    prior: np.ndarray  # shape (n_verdicts,)

    @property
    def true_accuracy(self) -> np.ndarray:
        return np.einsum("k,akk->a", self.prior, self.confusions)


def simulate_crowd(
    confusions: Sequence[np.ndarray],
    n_comparisons: int,
    per_comparison: int,
    prior: Sequence[float] = PRIOR,
    verdicts: Sequence[str] = VERDICTS,
    names: Sequence[str] | None = None,
    seed: int = 0,
) -> SimulatedCrowd:
    rng = np.random.default_rng(seed)
    confusions = np.asarray(confusions, dtype=float)
    prior = np.asarray(prior, dtype=float)
    n_annotators = len(confusions)
    truth = rng.choice(len(prior), size=n_comparisons, p=prior)
    # Each comparison's annotators: the first `per_comparison` of a random permutation.
    chosen = np.argsort(rng.random((n_comparisons, n_annotators)), axis=1)[:, :per_comparison]
    comparison = np.repeat(np.arange(n_comparisons), per_comparison)
    annotator = chosen.ravel()
    rows = confusions[annotator, truth[comparison]]  # shape (n_judgments, n_verdicts)
    verdict = (rng.random(len(rows))[:, None] > np.cumsum(rows, axis=1)).sum(axis=1)
    verdict = np.minimum(verdict, len(verdicts) - 1)  # guard against cumsum rounding below 1
    judgments = JudgmentTable(
        comparisons=tuple(range(n_comparisons)),
        annotators=tuple(names) if names is not None else tuple(f"annotator-{i}" for i in range(n_annotators)),
        verdicts=tuple(verdicts),
        comparison=comparison,
        annotator=annotator,
        verdict=verdict,
    )
    return SimulatedCrowd(judgments=judgments, truth=truth, confusions=confusions, prior=prior)
