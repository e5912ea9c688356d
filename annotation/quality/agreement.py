"""Chance-corrected agreement between annotators, for nominal verdicts.

Each coefficient is a function of a small count array (so tests can feed published worked
examples straight in) plus a wrapper over a `JudgmentTable`. Undefined values (no pairable
judgments, or everyone always gave one and the same verdict, so chance agreement is
already perfect) are NaN rather than an exception: a project's first hour has them.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from .table import JudgmentTable


def cohen_kappa(contingency: np.ndarray) -> float:
    """Cohen's kappa from a (n_verdicts, n_verdicts) table of one annotator's verdicts
    (rows) against another's (columns) on the comparisons both judged."""
    contingency = np.asarray(contingency, dtype=float)
    n = contingency.sum()
    if n == 0:
        return float("nan")
    observed = np.trace(contingency) / n
    expected = float(contingency.sum(axis=1) @ contingency.sum(axis=0)) / n**2
    if np.isclose(expected, 1.0):
        return float("nan")
    return float((observed - expected) / (1.0 - expected))


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from verdict counts per comparison, shape (n_comparisons, n_verdicts).

    Fleiss (1971) assumes every comparison has the same number of judgments m. Projects
    rarely do (leases expire, annotators skip), so this is the usual generalisation: each
    comparison's agreement is the share of agreeing ordered pairs among its own m_i
    judgments, averaged over comparisons with m_i >= 2, and chance agreement comes from the
    pooled verdict shares. With constant m it is exactly Fleiss' formula.
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if len(m) == 0:
        return float("nan")
    per_comparison = ((counts**2).sum(axis=1) - m) / (m * (m - 1))  # shape (n_comparisons,)
    observed = per_comparison.mean()
    shares = counts.sum(axis=0) / m.sum()
    expected = float(shares @ shares)
    if np.isclose(expected, 1.0):
        return float("nan")
    return float((observed - expected) / (1.0 - expected))


def krippendorff_alpha(counts: np.ndarray) -> float:
    """Krippendorff's alpha for nominal data from verdict counts per comparison, shape
    (n_comparisons, n_verdicts).

    For nominal data alpha depends only on these counts: with o the coincidence matrix and
    n_c its margins, alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k.
    Each comparison contributes sum_{c != k} o_ck = (m^2 - sum_c count_c^2) / (m - 1), so
    the coincidence matrix is never built. Comparisons with one judgment are not pairable
    and drop out, which is how alpha handles missing data.
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    n = m.sum()
    if n == 0:
        return float("nan")
    disagreeing = ((m**2 - (counts**2).sum(axis=1)) / (m - 1)).sum()
    margins = counts.sum(axis=0)
    expected_disagreeing = n**2 - float(margins @ margins)
    if expected_disagreeing == 0:
        return float("nan")
    return float(1.0 - (n - 1) * disagreeing / expected_disagreeing)


@dataclass(frozen=True)
class PairKappa:
    a: Hashable
    b: Hashable
    kappa: float  # NaN when undefined
    n: int  # comparisons both judged
    agreement: float  # observed share of those on which they agreed

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "kappa": json_float(self.kappa), "n": self.n, "agreement": self.agreement}


@dataclass(frozen=True)
class AnnotatorAgreement:
    """How one annotator agrees with the others on the comparisons they shared."""

    annotator: Hashable
    n_pairs: int  # (co-annotator, comparison) pairs
    agreement: float  # share of those pairs with the same verdict; NaN when none
    mean_kappa: float  # Cohen's kappa with each co-annotator, weighted by comparisons shared


@dataclass(frozen=True)
class AgreementReport:
    krippendorff_alpha: float
    fleiss_kappa: float
    cohen_kappa: tuple[PairKappa, ...]
    annotators: tuple[AnnotatorAgreement, ...]

    def to_dict(self) -> dict:
        return {
            "krippendorff_alpha": json_float(self.krippendorff_alpha),
            "fleiss_kappa": json_float(self.fleiss_kappa),
            "cohen_kappa": [pair.to_dict() for pair in self.cohen_kappa],
        }


def pairwise_cohen_kappa(judgments: JudgmentTable) -> tuple[PairKappa, ...]:
    """Cohen's kappa for every pair of annotators who judged at least one comparison in
    common, in annotator order."""
    return _pair_kappas(judgments, *judgments.joint_counts())


def annotator_agreement(judgments: JudgmentTable) -> tuple[AnnotatorAgreement, ...]:
    """Per annotator: agreement with co-annotators, and their mean pairwise kappa."""
    pairs, tables = judgments.joint_counts()
    return _annotator_agreement(judgments, pairs, tables, _pair_kappas(judgments, pairs, tables))


def agreement(judgments: JudgmentTable) -> AgreementReport:
    counts = judgments.counts()
    pairs, tables = judgments.joint_counts()
    pair_kappas = _pair_kappas(judgments, pairs, tables)
    return AgreementReport(
        krippendorff_alpha=krippendorff_alpha(counts),
        fleiss_kappa=fleiss_kappa(counts),
        cohen_kappa=pair_kappas,
        annotators=_annotator_agreement(judgments, pairs, tables, pair_kappas),
    )


def _pair_kappas(judgments: JudgmentTable, pairs: np.ndarray, tables: np.ndarray) -> tuple[PairKappa, ...]:
    return tuple(
        PairKappa(
            a=judgments.annotators[a],
            b=judgments.annotators[b],
            kappa=cohen_kappa(table),
            n=int(table.sum()),
            agreement=float(np.trace(table) / table.sum()),
        )
        for (a, b), table in zip(pairs, tables)
    )


def _annotator_agreement(
    judgments: JudgmentTable, pairs: np.ndarray, tables: np.ndarray, pair_kappas: tuple[PairKappa, ...]
) -> tuple[AnnotatorAgreement, ...]:
    n_annotators = judgments.n_annotators
    shared = tables.sum(axis=(1, 2))  # shape (n_pairs,)
    agreeing = np.trace(tables, axis1=1, axis2=2)  # shape (n_pairs,)
    kappas = np.array([pair.kappa for pair in pair_kappas], dtype=float)
    defined = ~np.isnan(kappas)
    # Each pair counts for both of its annotators.
    members = np.concatenate([pairs[:, 0], pairs[:, 1]])

    def per_annotator(values: np.ndarray) -> np.ndarray:
        return np.bincount(members, weights=np.concatenate([values, values]), minlength=n_annotators)

    n_pairs = per_annotator(shared)
    n_agreeing = per_annotator(agreeing)
    kappa_weight = per_annotator(np.where(defined, shared, 0.0))
    kappa_sum = per_annotator(np.where(defined, np.nan_to_num(kappas) * shared, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        share_agreeing = n_agreeing / n_pairs
        mean_kappa = kappa_sum / kappa_weight
    return tuple(
        AnnotatorAgreement(
            annotator=judgments.annotators[i],
            n_pairs=int(n_pairs[i]),
            agreement=float(share_agreeing[i]),
            mean_kappa=float(mean_kappa[i]),
        )
        for i in range(n_annotators)
    )


def json_float(value: float) -> float | None:
    # JSON has no NaN; an undefined coefficient is null.
    return None if value is None or np.isnan(value) else float(value)
