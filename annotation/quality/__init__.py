"""Judgment quality: agreement, annotator reliability and aggregation. Plain functions and
dataclasses over numpy arrays, no Django; `annotation.export.selection` builds their input
from the database.

    judgments = JudgmentTable.from_records((comparison_id, annotator, verdict) for ...)
    report = assess(judgments)                  # agreement, Dawid-Skene, flags, aggregates
    report.to_dict()                            # JSON-ready

Building blocks: `krippendorff_alpha`, `fleiss_kappa`, `cohen_kappa` over count arrays;
`pairwise_cohen_kappa`, `agreement` over a table; `majority_vote`; `DawidSkene().fit`;
`annotator_reliability`.
"""

from .aggregation import Aggregate, majority_vote
from .agreement import (
    AgreementReport,
    AnnotatorAgreement,
    PairKappa,
    agreement,
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    json_float,
    krippendorff_alpha,
    pairwise_cohen_kappa,
)
from .dawid_skene import DawidSkene, DawidSkeneResult
from .reliability import (
    ADVERSARIAL,
    FLIPS_SIDES,
    SPAMMER,
    AnnotatorReliability,
    ReliabilityThresholds,
    annotator_reliability,
    gold_accuracy_counts,
    gold_codes,
)
from .report import QualityReport, assess
from .table import MISSING, JudgmentTable

__all__ = [
    "ADVERSARIAL",
    "FLIPS_SIDES",
    "MISSING",
    "SPAMMER",
    "Aggregate",
    "AgreementReport",
    "AnnotatorAgreement",
    "AnnotatorReliability",
    "DawidSkene",
    "DawidSkeneResult",
    "JudgmentTable",
    "PairKappa",
    "QualityReport",
    "ReliabilityThresholds",
    "agreement",
    "annotator_agreement",
    "annotator_reliability",
    "assess",
    "cohen_kappa",
    "fleiss_kappa",
    "gold_accuracy_counts",
    "gold_codes",
    "json_float",
    "krippendorff_alpha",
    "majority_vote",
    "pairwise_cohen_kappa",
]
