"""How good is a judge: its verdicts on labelled pairs against the gold (or human majority) labels."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass

from .base import NO_VERDICT, TIE, UNPARSABLE, UNSUPPORTED, VERDICTS, Judge, JudgeVerdict
from .files import LabelledPair

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

    def to_dict(self) -> dict:
        return asdict(self)


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def evaluate_judge(judge: Judge, pairs: list[LabelledPair]) -> JudgeReport:
    """Judge every pair that has a gold label and score the verdicts."""
    labelled = [pair for pair in pairs if pair.gold is not None]
    started = time.perf_counter()
    verdicts = judge.judge([pair.item for pair in labelled]) if labelled else []
    seconds = time.perf_counter() - started
    return score_verdicts(judge, labelled, verdicts, seconds, skipped=len(pairs) - len(labelled))


def score_verdicts(judge: Judge, pairs: list[LabelledPair], verdicts: list[JudgeVerdict], seconds: float,
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
