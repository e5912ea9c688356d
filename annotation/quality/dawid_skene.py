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

from .aggregation import Aggregate
from .table import MISSING, JudgmentTable

# Floor for probabilities that go under a log, and for a confusion cell no judgment
# supports. EM started from unanimous majority votes meets exact zeros, and a zero cell
# stays zero for ever; the floor keeps every cell able to move. crowd-kit uses the same.
_EPS = 1e-10


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
            label=np.where(judged, self.posterior.argmax(axis=1) if self.posterior.shape[1] else MISSING, MISSING),
            confidence=np.where(judged, self.posterior.max(axis=1, initial=0.0), 0.0),
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
        n_verdicts = judgments.n_verdicts
        if judgments.n_judgments == 0:
            # A project before its first judgment: nothing to estimate, nothing to fail on.
            return DawidSkeneResult(
                judgments=judgments,
                prior=np.full(n_verdicts, 1.0 / max(n_verdicts, 1)),
                confusion=np.zeros((judgments.n_annotators, n_verdicts, n_verdicts)),
                posterior=np.full((judgments.n_comparisons, n_verdicts), 1.0 / max(n_verdicts, 1)),
                log_likelihood=0.0,
                n_iter=0,
                converged=True,
            )
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
        expected = expected.transpose(0, 2, 1)  # now [a, true k, said l]
        # Verdicts an annotator never gave keep probability zero (without smoothing): they
        # never enter the likelihood, and a zero there is simply the truth of the data.
        said = np.bincount(key, minlength=n_annotators * n_verdicts).reshape(n_annotators, 1, n_verdicts) > 0
        expected = np.where(said, np.maximum(expected, _EPS), 0.0) + self.smoothing
        return prior, expected / expected.sum(axis=2, keepdims=True)


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
    # log-sum-exp over the true verdict, shifted by the row maximum so exp never overflows
    # (a comparison with 20 agreeing judgments has log-odds in the hundreds).
    shift = log_joint.max(axis=1, keepdims=True)
    log_evidence = shift[:, 0] + np.log(np.exp(log_joint - shift).sum(axis=1))  # shape (n_comparisons,)
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
