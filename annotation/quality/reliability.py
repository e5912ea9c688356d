"""Annotator reliability and flags from a fitted Dawid-Skene model.

Reliability is the annotator's expected accuracy, sum_k prior[k] * confusion[k, k]: the
probability that their verdict on a random comparison is the true one. Two more figures
separate the ways of being unreliable:

- chance: the accuracy of someone who answers independently of the truth with this
  annotator's verdict frequencies, sum_k prior[k] * marginal[k]. `skill` is
  (reliability - chance) / (1 - chance), Cohen's kappa between the annotator and the
  latent truth: ~0 for a random clicker, negative for one who contradicts the truth.
- informativeness: how different the confusion rows are, the prior-weighted total
  variation distance of each row from the annotator's marginal, scaled so a perfect
  annotator scores 1. A spammer's rows are identical (the verdict does not depend on the
  truth), so it is ~0 whatever their accuracy happens to be; an annotator who always
  swaps a and b has rows as distinct as a perfect one (1), and is caught by `skill`.

Evidence: Dawid-Skene learns an annotator's confusion from the comparisons someone else
(or a gold verdict) also labelled. Alone on a comparison, the annotator's verdict is the
estimated truth and they look perfect there. So the figures of an annotator with fewer
than `min_evidence` such judgments are withheld (`measured` is false) and they get no
flags. Automatic judges are never called spammers: a deterministic model that ignores
the content is already caught by its low reliability and skill, and "spammer" says
something about a person's effort.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass, field

import numpy as np

from .dawid_skene import DawidSkeneResult
from .table import MISSING, JudgmentTable

SPAMMER = "spammer"
ADVERSARIAL = "adversarial"
FLIPS_SIDES = "flips_sides"


@dataclass(frozen=True)
class ReliabilityThresholds:
    # Below this many judgments the estimates are too noisy to accuse anyone.
    min_judgments: int = 10
    # Below this many judgments on comparisons someone else (or a gold verdict) also
    # labelled, reliability is not shown at all: alone, an annotator agrees with themselves.
    min_evidence: int = 10
    # Random clickers measure ~0.05-0.15 at 50-200 judgments from sampling noise alone;
    # a careless but honest annotator at 65% accuracy on two sides measures ~0.3.
    spammer_informativeness: float = 0.2
    # Skill is kappa against the truth. Adversarial needs both a large effect and strong
    # evidence: accuracy this many binomial standard errors below chance. A random clicker
    # with 70 judgments lands 2 standard errors below chance one time in 40; 3, one in 700.
    adversarial_skill: float = -0.2
    adversarial_z: float = 3.0
    # The two verdicts whose systematic swap is flagged as `flips_sides`, and by how much
    # the swapped answer must be likelier than the right one on both sides: a random
    # clicker's rows differ by sampling noise alone, in either direction.
    sides: tuple[Hashable, Hashable] = field(default=("a", "b"))
    flip_margin: float = 0.2


@dataclass(frozen=True)
class AnnotatorReliability:
    annotator: Hashable
    n_judgments: int
    reliability: float  # expected accuracy, in [0, 1]
    chance: float
    skill: float
    informativeness: float
    flags: tuple[str, ...]
    gold_accuracy: float | None = None  # share of gold comparisons judged correctly
    n_gold: int = 0
    # Judgments on comparisons that another annotator or a gold verdict also labelled: what
    # the estimates above are learnt from. `measured`: enough of them to show the estimates.
    n_evidence: int = 0
    measured: bool = True

    def to_dict(self) -> dict:
        def shown(value: float) -> float | None:
            return round(value, 6) if self.measured else None

        return {
            "annotator": self.annotator,
            "n_judgments": self.n_judgments,
            "n_evidence": self.n_evidence,
            "measured": self.measured,
            "reliability": shown(self.reliability),
            "chance": shown(self.chance),
            "skill": shown(self.skill),
            "informativeness": shown(self.informativeness),
            "flags": list(self.flags),
            "gold_accuracy": None if self.gold_accuracy is None else round(self.gold_accuracy, 6),
            "n_gold": self.n_gold,
        }


def annotator_reliability(
    model: DawidSkeneResult,
    thresholds: ReliabilityThresholds = ReliabilityThresholds(),
    gold: np.ndarray | None = None,
    automatic: Collection[Hashable] = (),
) -> tuple[AnnotatorReliability, ...]:
    """One row per annotator of the fitted model. `automatic`: the annotators that are
    automatic judges (never flagged as spammers)."""
    judgments = model.judgments
    prior, confusion = model.prior, model.confusion  # (K,), (A, K, K)
    reliability = np.einsum("k,akk->a", prior, confusion)
    marginal = np.einsum("k,akl->al", prior, confusion)  # shape (A, K): how often a says l
    chance = marginal @ prior
    with np.errstate(invalid="ignore", divide="ignore"):
        skill = np.where(chance < 1, (reliability - chance) / (1 - chance), 0.0)
    row_distance = 0.5 * np.abs(confusion - marginal[:, None, :]).sum(axis=2)  # shape (A, K)
    perfect = 1.0 - float(prior @ prior)
    informativeness = np.clip(row_distance @ prior / perfect, 0.0, 1.0) if perfect > 0 else np.zeros(len(skill))
    n_judgments = judgments.judgments_per_annotator()
    flips = _flips_sides(confusion, judgments, thresholds.sides, thresholds.flip_margin)
    gold_correct, gold_seen = gold_accuracy_counts(judgments, gold)
    n_evidence = evidence_counts(judgments, gold)
    automatic = set(automatic)

    results = []
    for a, name in enumerate(judgments.annotators):
        flags = []
        measured = bool(n_evidence[a] >= thresholds.min_evidence)
        if measured and n_judgments[a] >= thresholds.min_judgments:
            # With a single verdict in the data every annotator's rows are alike:
            # informativeness says nothing there (perfect == 0).
            if (perfect > 0 and informativeness[a] < thresholds.spammer_informativeness
                    and name not in automatic):
                flags.append(SPAMMER)
            standard_error = np.sqrt(max(reliability[a] * (1 - reliability[a]), 1e-12) / n_judgments[a])
            below_chance = (reliability[a] - chance[a]) / standard_error
            if skill[a] < thresholds.adversarial_skill and below_chance < -thresholds.adversarial_z:
                flags.append(ADVERSARIAL)
            # A spammer's rows differ by noise alone, in any direction: not a swap.
            if flips[a] and SPAMMER not in flags:
                flags.append(FLIPS_SIDES)
        results.append(
            AnnotatorReliability(
                annotator=name,
                n_judgments=int(n_judgments[a]),
                reliability=float(np.clip(reliability[a], 0.0, 1.0)),
                chance=float(chance[a]),
                skill=float(skill[a]),
                informativeness=float(informativeness[a]),
                flags=tuple(flags),
                gold_accuracy=float(gold_correct[a] / gold_seen[a]) if gold_seen[a] else None,
                n_gold=int(gold_seen[a]),
                n_evidence=int(n_evidence[a]),
                measured=measured,
            )
        )
    return tuple(results)


def _flips_sides(confusion: np.ndarray, judgments: JudgmentTable, sides, margin: float) -> np.ndarray:
    """True where the annotator says b clearly more often than a when a is better, and a
    clearly more often than b when b is better: the signature of swapped buttons or of
    sabotage."""
    a, b = (judgments.verdict_code(side) for side in sides)
    if a is None or b is None:
        return np.zeros(judgments.n_annotators, dtype=bool)
    return (confusion[:, a, b] > confusion[:, a, a] + margin) & (confusion[:, b, a] > confusion[:, b, b] + margin)


def evidence_counts(judgments: JudgmentTable, gold: np.ndarray | None) -> np.ndarray:
    """Per annotator, shape (n_annotators,): their judgments on comparisons that at least one
    other annotator judged too, or that have a gold verdict."""
    shared = np.bincount(judgments.comparison, minlength=judgments.n_comparisons) >= 2
    if gold is not None:
        shared |= gold != MISSING
    return np.bincount(judgments.annotator, weights=shared[judgments.comparison],
                       minlength=judgments.n_annotators).astype(np.int64)


def gold_accuracy_counts(judgments: JudgmentTable, gold: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per annotator, (correct, judged) counts on comparisons with a gold verdict; `gold` has
    shape (n_comparisons,) with MISSING where there is none."""
    n = judgments.n_annotators
    if gold is None:
        return np.zeros(n), np.zeros(n)
    truth = gold[judgments.comparison]
    on_gold = truth != MISSING
    correct = on_gold & (truth == judgments.verdict)
    return (
        np.bincount(judgments.annotator, weights=correct, minlength=n),
        np.bincount(judgments.annotator, weights=on_gold, minlength=n),
    )


def gold_codes(judgments: JudgmentTable, gold: dict[Hashable, Hashable]) -> np.ndarray:
    """A {comparison id: verdict} mapping as codes, shape (n_comparisons,), MISSING where a
    comparison has no gold verdict (or one outside the table's verdicts)."""
    codes = np.full(judgments.n_comparisons, MISSING, dtype=np.int64)
    verdict_index = {verdict: code for code, verdict in enumerate(judgments.verdicts)}
    for index, comparison in enumerate(judgments.comparisons):
        verdict = gold.get(comparison)
        if verdict is not None and verdict in verdict_index:
            codes[index] = verdict_index[verdict]
    return codes
