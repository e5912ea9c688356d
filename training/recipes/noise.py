"""Training methods for noisy judgments: what a run does with who judged what.

A run's snapshot holds one pair per comparison, labelled by its aggregated verdict, with
every judgment on it (``PreferencePair.judgments``: annotator, human or judge, what it
prefers, the quality report's reliability of the annotator) and the quality report's
probability that the label is wrong (``label_error``). Each method is a named choice:

    majority   hard labels, plain loss
    soft       Dawid-Skene posterior as a soft target (cDPO with each pair's own ε)
    em         every judgment a pair; per-annotator reliability by EM (LCPO-style)
    rdpo       hard labels, rDPO's unbiased loss with ε from the quality report
    upo        hard labels, the pairs an in-run reward model is least sure of dropped

Plain Python, no torch: the web process validates a method with the recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .pairs import PreferencePair, estimate_flip_rate

if TYPE_CHECKING:
    from .config import TrainingRecipe

DEFAULT_METHOD = "majority"
# UPO's share of the most uncertain training pairs dropped when the method leaves it unset.
DEFAULT_UPO_FRACTION = 0.25
# rDPO divides by 1 - 2ε: an ε near ½ would multiply every gradient by tens.
FLIP_RATE_CEILING = 0.45


@dataclass(frozen=True)
class Method:
    name: str
    help: str  # one sentence, shown by the form, the API schema and `train --help`
    kinds: tuple[str, ...]  # the run kinds it applies to
    use: str  # when to use it (the README's table)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("majority", "Hard labels: each comparison's aggregated verdict (Dawid-Skene or majority vote, as "
               "chosen) counts once with the plain loss.", ("dpo", "reward"),
               "clean or near-unanimous labels; the baseline"),
        Method("soft", "Soft labels: each pair's target is Dawid-Skene's posterior that its label is right, so a "
               "doubtful comparison pulls less and never past its odds.", ("dpo", "reward"),
               "several judgments per comparison, annotators of mixed skill"),
        Method("em", "Every judgment is a pair with its annotator; each annotator's reliability starts at the quality "
               "report's and is re-estimated by EM from the model's own preferences (LCPO), and each pair is "
               "weighted by the posterior that its label is right.", ("dpo",),
               "a few annotators with many judgments each, some careless or adversarial"),
        Method("rdpo", "Hard labels with rDPO's unbiased loss; the flip rate is the quality report's expected share "
               "of wrong labels unless set by hand.", ("dpo", "reward"),
               "labels wrong at a known, roughly uniform rate"),
        Method("upo", "Hard labels, minus the pairs that a reward model trained inside the run on the same split is "
               "least sure of under MC dropout (UPO); drops 25% unless set.", ("dpo",),
               "few judgments per comparison and no reliable annotator estimates"),
    )
}


class MethodError(ValueError):
    """A method that is unknown, or does not apply to this kind of run or this recipe."""


def check_method(name: str, kind: str | None = None) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise MethodError(f"method must be one of {', '.join(METHODS)}; got {name!r}")
    if kind is not None and kind not in method.kinds:
        applies = ", ".join(m.name for m in METHODS.values() if kind in m.kinds)
        raise MethodError(f"method {name!r} applies to {' and '.join(method.kinds)} runs only; "
                          f"a {kind} run takes {applies}")
    return method


def implied_losses(name: str, losses: tuple[str, ...]) -> tuple[str, ...]:
    """The DPO losses a method trains with; the recipe's own for majority, em and upo.

    soft and rdpo fix the loss: asking for another one with them is a contradiction, not a
    combination, so it is refused (plain `sigmoid` is the default and gives way).
    """
    fixed = {"soft": "cdpo", "rdpo": "robust"}.get(name)
    if fixed is None:
        return losses
    if set(losses) - {"sigmoid", fixed}:
        raise MethodError(f"method {name!r} trains with the {fixed!r} loss; it cannot be combined with "
                          f"{', '.join(losses)}")
    return (fixed,)


def method_pairs(pairs: Sequence[PreferencePair], name: str) -> list[PreferencePair]:
    """The pairs the loss sees: em makes one pair per judgment that prefers a side, oriented
    as that judgment says and named by its annotator; every other method trains on the
    comparisons' labels. A pair whose snapshot carries no judgments stays as it is."""
    if name != "em":
        return list(pairs)
    expanded = []
    for pair in pairs:
        votes = [vote for vote in pair.label_judgments if vote.prefers in ("chosen", "rejected")]
        if not votes:
            expanded.append(pair)
            continue
        for index, vote in enumerate(votes):
            swap = vote.prefers == "rejected"
            expanded.append(dataclasses.replace(
                pair, chosen=pair.rejected if swap else pair.chosen, rejected=pair.chosen if swap else pair.rejected,
                weight=1.0, annotator=vote.annotator, pair_id=f"{pair.pair_id}/{index}",
            ))  # fmt: skip
    return expanded


def pair_flip_rates(pairs: Sequence[PreferencePair]) -> list[float]:
    """soft: each pair's ε, 1 - the posterior that its label is right (label_error from the
    quality report; else 1 - the export's weight, which is that posterior under Dawid-Skene)."""
    return [min(pair.label_error if pair.label_error is not None else 1.0 - pair.weight, 0.5) for pair in pairs]


def report_flip_rate(pairs: Sequence[PreferencePair]) -> float | None:
    """rdpo: the expected share of wrong labels among the pairs, by the quality report;
    None when the pairs carry no estimate (a file, not a run's snapshot)."""
    errors = [pair.label_error for pair in pairs if pair.label_error is not None]
    if not errors or len(errors) < len(pairs):
        return None
    return min(sum(errors) / len(errors), FLIP_RATE_CEILING)


def starting_reliability(pairs: Sequence[PreferencePair]) -> dict[str, float]:
    """em: each annotator's reliability by the quality report, where the snapshot has it."""
    found: dict[str, float] = {}
    for pair in pairs:
        for vote in pair.judgments:
            if vote.reliability is not None:
                found.setdefault(vote.annotator, vote.reliability)
    return found


def resolve_flip_rate(train_pairs: Sequence[PreferencePair], recipe: TrainingRecipe) -> float | None:
    """ε as set by hand, else the quality report's expected share of wrong labels (else
    estimated from the pairs' weights); None when nothing uses it."""
    settings = recipe.training
    if not settings.uses_flip_rate:
        return None
    if settings.flip_rate is not None:
        return settings.flip_rate
    # A run's snapshot carries the quality report's estimate; a plain file only its weights.
    from_report = report_flip_rate(train_pairs)
    return from_report if from_report is not None else estimate_flip_rate(train_pairs)
