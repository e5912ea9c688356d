"""Everything the quality page and `project_quality` show, from one call:

    report = assess(JudgmentTable.from_records(rows), gold=gold_codes(...))
    report.to_dict()          # JSON-ready
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass, field

import numpy as np

from .aggregation import Aggregate, majority_vote
from .agreement import AgreementReport, json_float, agreement
from .dawid_skene import DawidSkene, DawidSkeneResult
from .reliability import AnnotatorReliability, ReliabilityThresholds, annotator_reliability
from .table import JudgmentTable


@dataclass(frozen=True, eq=False)
class QualityReport:
    judgments: JudgmentTable = field(repr=False)
    agreement: AgreementReport
    annotators: tuple[AnnotatorReliability, ...]
    majority: Aggregate = field(repr=False)
    dawid_skene: DawidSkeneResult = field(repr=False)

    @property
    def aggregate(self) -> Aggregate:
        return self.dawid_skene.aggregate()

    @property
    def n_aggregated(self) -> int:
        return self.aggregate.n_decided

    def to_dict(self) -> dict:
        aggregate = self.aggregate
        agreement_by_annotator = {row.annotator: row for row in self.agreement.annotators}
        both = aggregate.decided & self.majority.decided
        return {
            "n_judgments": self.judgments.n_judgments,
            "n_comparisons": self.judgments.n_comparisons,
            "n_annotators": self.judgments.n_annotators,
            **self.agreement.to_dict(),
            "annotators": [
                {
                    **row.to_dict(),
                    "agreement": json_float(agreement_by_annotator[row.annotator].agreement),
                    "mean_kappa": json_float(agreement_by_annotator[row.annotator].mean_kappa),
                }
                for row in self.annotators
            ],
            "n_aggregated": self.n_aggregated,
            "label_distribution": {str(k): v for k, v in aggregate.label_distribution().items()},
            "prior": {str(v): round(float(p), 6) for v, p in zip(self.judgments.verdicts, self.dawid_skene.prior)},
            "majority": {
                "n_decided": self.majority.n_decided,
                # How often the two aggregations agree where both decide: low values mean
                # Dawid-Skene is overruling the crowd, usually because of flagged annotators.
                "agrees_with_dawid_skene": json_float(
                    float(np.mean(aggregate.label[both] == self.majority.label[both])) if both.any() else float("nan")
                ),
            },
            "dawid_skene": {"n_iter": self.dawid_skene.n_iter, "converged": self.dawid_skene.converged},
        }


def assess(
    judgments: JudgmentTable,
    *,
    gold: np.ndarray | None = None,
    model: DawidSkene = DawidSkene(),
    thresholds: ReliabilityThresholds = ReliabilityThresholds(),
    automatic: Collection[Hashable] = (),
) -> QualityReport:
    """Agreement, Dawid-Skene reliability with flags, and both aggregations. `gold` (verdict
    codes per comparison, MISSING where unknown) pins those comparisons in Dawid-Skene and
    gives each annotator a gold accuracy; `automatic` names the automatic judges."""
    fitted = model.fit(judgments, gold=gold)
    return QualityReport(
        judgments=judgments,
        agreement=agreement(judgments),
        annotators=annotator_reliability(fitted, thresholds, gold=gold, automatic=automatic),
        majority=majority_vote(judgments),
        dawid_skene=fitted,
    )
