"""Dawid-Skene: each annotator's confusion matrix and each comparison's true verdict,
estimated together by EM.

    P(true verdict of c = k)                     = prior[k]
    P(annotator a says l | true verdict k)       = confusion[a, k, l]

Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
algorithm", Applied Statistics 28(1). Initialised, like crowd-kit's `DawidSkene`, from the
majority-vote shares, so the latent classes keep the meaning of the verdicts (EM is
otherwise free to permute them). Every step is array code over the judgments: one
iteration costs O(n_judgments x n_verdicts).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .aggregation import Aggregate
from .table import MISSING, JudgmentTable

# Floor for probabilities that go under a log (a verdict class nobody chose).
_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class DawidSkeneResult:
    judgments: JudgmentTable
    prior: np.ndarray  # shape (n_verdicts,)
    confusion: np.ndarray  # shape (n_annotators, n_verdicts (true), n_verdicts (said))
    posterior: np.ndarray  # shape (n_comparisons, n_verdicts)
    log_likelihood: float  # log P(judgments | prior, confusion), at the last E-step
    n_iter: int
    converged: bool

    @property
    def judgment_weight(self) -> np.ndarray:
        """Shape (n_judgments,): the posterior probability that each judgment's verdict is
        the true one. An export's per-judgment reliability weight."""
        return self.posterior[self.judgments.comparison, self.judgments.verdict]

    @property
    def reliability(self) -> np.ndarray:
        """Shape (n_annotators,): expected accuracy, sum_k prior[k] * confusion[a, k, k]."""
        return np.einsum("k,akk->a", self.prior, self.confusion)

    def aggregate(self) -> Aggregate:
        n_judgments = np.bincount(self.judgments.comparison, minlength=self.judgments.n_comparisons)
        judged = n_judgments > 0
        return Aggregate(
            method="dawid-skene",
            comparisons=self.judgments.comparisons,
            verdicts=self.judgments.verdicts,
            label=np.where(judged, self.posterior.argmax(axis=1), MISSING),
            confidence=np.where(judged, self.posterior.max(axis=1), 0.0),
            n_judgments=n_judgments,
        )

    def confusion_of(self, annotator: Hashable) -> np.ndarray:
        return self.confusion[self.judgments.annotators.index(annotator)]


@dataclass(frozen=True)
class DawidSkene:
    max_iter: int = 200
    # Stop when an iteration gains less log-likelihood than this per judgment.
    tol: float = 1e-8
    # Dirichlet pseudo-count added to every confusion cell. Without it an annotator with
    # three judgments, all agreeing with the majority, gets a confusion matrix of exact
    # zeros and ones, and their next judgment outvotes any number of others; 0.01 is small
    # enough to leave estimates from a few dozen judgments unchanged to two decimals.
    smoothing: float = 0.01

    def __post_init__(self):
        if self.max_iter < 1:
            raise ValueError("max_iter must be at least 1")
        if self.tol < 0 or self.smoothing < 0:
            raise ValueError("tol and smoothing must be non-negative")

    def fit(self, judgments: JudgmentTable, gold: np.ndarray | None = None) -> DawidSkeneResult:
        """`gold`, shape (n_comparisons,), holds known true verdict codes (MISSING where
        unknown); those comparisons' posteriors are pinned to them, as crowd-kit does with
        `true_labels`, so gold items calibrate the confusion matrices."""
        if judgments.n_judgments == 0:
            raise ValueError("no judgments to fit")
        n_verdicts = judgments.n_verdicts
        counts = judgments.counts().astype(float)
        judged = counts.sum(axis=1) > 0
        posterior = np.full_like(counts, 1.0 / n_verdicts)
        posterior[judged] = counts[judged] / counts[judged].sum(axis=1, keepdims=True)
        posterior = _pin_gold(posterior, gold)
        prior, confusion = self._m_step(judgments, posterior)

        log_likelihood = -np.inf
        converged = False
        for n_iter in range(1, self.max_iter + 1):
            posterior, new_log_likelihood = _e_step(judgments, prior, confusion)
            posterior = _pin_gold(posterior, gold)
            prior, confusion = self._m_step(judgments, posterior)
            gain = new_log_likelihood - log_likelihood
            log_likelihood = new_log_likelihood
            if gain < self.tol * judgments.n_judgments:
                converged = True
                break
        return DawidSkeneResult(
            judgments=judgments,
            prior=prior,
            confusion=confusion,
            posterior=posterior,
            log_likelihood=float(log_likelihood),
            n_iter=n_iter,
            converged=converged,
        )

    def _m_step(self, judgments: JudgmentTable, posterior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_annotators, n_verdicts = judgments.n_annotators, judgments.n_verdicts
        prior = posterior.mean(axis=0)
        # expected[a, l, k] = sum over a's judgments saying l of P(true = k): one bincount
        # per true class, keyed by (annotator, verdict said).
        key = judgments.annotator * n_verdicts + judgments.verdict
        truth = posterior[judgments.comparison]  # shape (n_judgments, n_verdicts)
        expected = np.stack(
            [np.bincount(key, weights=truth[:, k], minlength=n_annotators * n_verdicts) for k in range(n_verdicts)],
            axis=-1,
        ).reshape(n_annotators, n_verdicts, n_verdicts)
        expected = expected.transpose(0, 2, 1) + self.smoothing  # now [a, true k, said l]
        row_totals = expected.sum(axis=2, keepdims=True)
        # A true class with no mass for this annotator (and no smoothing) says nothing:
        # uniform keeps the row a distribution.
        confusion = np.divide(expected, row_totals, out=np.full_like(expected, 1.0 / n_verdicts), where=row_totals > 0)
        return prior, confusion


def _e_step(judgments: JudgmentTable, prior: np.ndarray, confusion: np.ndarray) -> tuple[np.ndarray, float]:
    n_verdicts = judgments.n_verdicts
    log_confusion = np.log(np.maximum(confusion, _EPS))
    # log P(verdict said | true = k) for each judgment, shape (n_judgments, n_verdicts).
    per_judgment = log_confusion[judgments.annotator, :, judgments.verdict]
    log_joint = np.stack(
        [np.bincount(judgments.comparison, weights=per_judgment[:, k], minlength=judgments.n_comparisons)
         for k in range(n_verdicts)],
        axis=-1,
    ) + np.log(np.maximum(prior, _EPS))
    log_evidence = logsumexp(log_joint, axis=1)  # shape (n_comparisons,)
    return np.exp(log_joint - log_evidence[:, None]), float(log_evidence.sum())


def _pin_gold(posterior: np.ndarray, gold: np.ndarray | None) -> np.ndarray:
    if gold is None:
        return posterior
    known = gold != MISSING
    if known.any():
        posterior = posterior.copy()
        posterior[known] = 0.0
        posterior[np.flatnonzero(known), gold[known]] = 1.0
    return posterior
