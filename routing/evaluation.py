"""How good is a judge: its verdicts on labelled pairs against the gold (or human majority) labels."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, replace

from routing.judges.base import A, B, NO_VERDICT, TIE, UNPARSABLE, UNSUPPORTED, VERDICTS, AutomaticJudge, JudgeVerdict
from routing.judges.files import LabelledPair

CONFUSION_COLUMNS = (*VERDICTS, UNPARSABLE, UNSUPPORTED)


@dataclass(frozen=True)
class JudgeReport:
    """``accuracy``: verdict equals the gold label, over every item with one (no verdict is
    wrong). ``accuracy_no_ties``: the same over items whose gold is not a tie (a judge's tie
    is then wrong). ``chance_accuracy``: always answering the most common gold label.
    ``order_consistency``: share of items whose two orders agreed (None for judges that see
    one order). A judge that says "tie" in every order is consistent without judging
    anything, so ``preference_consistency`` asks only whether P(a) > P(b) held in both
    orders (over items with probabilities in both): a pure position bias scores 0.
    ``confusion[gold][verdict]``: counts.
    """

    judge: str
    judge_version: str
    n: int
    accuracy: float | None
    accuracy_no_ties: float | None
    chance_accuracy: float | None
    order_consistency: float | None
    preference_consistency: float | None
    pairs_per_second: float | None
    seconds: float
    unparsable: int
    skipped_without_gold: int
    confusion: dict[str, dict[str, int]]
    # routing.calibration: raw and cross-fitted calibrated scores; flip rates per category.
    calibration: dict | None = None
    position_bias: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def evaluate_judge(judge: AutomaticJudge, pairs: list[LabelledPair], calibrate: bool = False,
                   allow_ties: bool = True) -> JudgeReport:
    """Judge every pair that has a gold label and score the verdicts.

    Without ties (a schema that has none), pairs whose gold is a tie are left out and the
    judge's tie mass is dropped. With ``calibrate``, the report adds the raw and calibrated
    Brier score, log loss, ECE and accuracy, the calibrated figures cross-fitted (each fold
    calibrated on the others) so that they are what a later verdict would get.
    """
    from routing.calibration import without_ties

    labelled = [pair for pair in pairs if pair.gold is not None and (allow_ties or pair.gold != TIE)]
    started = time.perf_counter()
    verdicts = judge.judge([pair.item for pair in labelled]) if labelled else []
    seconds = time.perf_counter() - started
    raw = verdicts
    if not allow_ties:
        verdicts = [without_ties(verdict) for verdict in verdicts]
    report = score_verdicts(judge, labelled, verdicts, seconds, skipped=len(pairs) - len(labelled))
    return replace(report, calibration=calibration_summary(labelled, raw, allow_ties) if calibrate else None,
                   position_bias=_bias(labelled, raw))


def _bias(pairs: list[LabelledPair], verdicts: list[JudgeVerdict]) -> dict | None:
    from routing.calibration import position_bias

    bias = position_bias(verdicts, [pair.item.category for pair in pairs])
    return bias.to_dict() if bias.overall is not None else None


def calibration_summary(pairs: list[LabelledPair], verdicts: list[JudgeVerdict], allow_ties: bool = True) -> dict:
    """The calibration fitted on these pairs' gold labels, and how it scores (see Calibration)."""
    from routing.calibration import CalibrationError, fit_calibration

    try:
        calibration = fit_calibration(verdicts, [pair.gold for pair in pairs], allow_ties=allow_ties)
    except CalibrationError as error:
        return {"error": str(error)}
    golds = [pair.gold for pair in pairs if pair.gold in (A, B)]
    return {
        "n": calibration.n,
        "allow_ties": allow_ties,
        "human_tie_rate": calibration.human_tie_rate,
        "always_a_accuracy": _share(sum(g == A for g in golds), calibration.n),
        "before": asdict(calibration.before),
        "after": asdict(calibration.after),
        "calibration": calibration.to_dict(),
    }


def score_verdicts(judge: AutomaticJudge, pairs: list[LabelledPair], verdicts: list[JudgeVerdict], seconds: float,
                   skipped: int = 0) -> JudgeReport:
    golds = [pair.gold for pair in pairs]
    said = [verdict.verdict for verdict in verdicts]
    confusion = {gold: dict.fromkeys(CONFUSION_COLUMNS, 0) for gold in VERDICTS}
    for gold, verdict in zip(golds, said, strict=True):
        confusion[gold][verdict] += 1
    no_ties = [(gold, verdict) for gold, verdict in zip(golds, said) if gold != TIE]
    consistency = [v.order_consistent for v in verdicts if v.order_consistent is not None]
    preferences = [len({o.p_a > o.p_b for o in v.orders}) == 1 for v in verdicts
                   if len(v.orders) == 2 and all(o.p_a is not None for o in v.orders)]
    most_common = Counter(golds).most_common(1)
    return JudgeReport(
        judge=judge.name,
        judge_version=judge.version,
        n=len(pairs),
        accuracy=_share(sum(g == v for g, v in zip(golds, said)), len(pairs)),
        accuracy_no_ties=_share(sum(g == v for g, v in no_ties), len(no_ties)),
        chance_accuracy=_share(most_common[0][1], len(pairs)) if most_common else None,
        order_consistency=_share(sum(consistency), len(consistency)),
        preference_consistency=_share(sum(preferences), len(preferences)),
        pairs_per_second=len(pairs) / seconds if seconds > 0 and pairs else None,
        seconds=seconds,
        unparsable=sum(v in NO_VERDICT for v in said),
        skipped_without_gold=skipped,
        confusion=confusion,
    )
