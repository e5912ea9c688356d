"""Judge evaluation figures on hand-made verdicts, where every number can be checked by eye."""

import pytest

from routing.judges import ImportedJudge, JudgeVerdict, PairItem
from routing.evaluation import score_verdicts
from routing.judges.files import LabelledPair
from routing.judges.protocol import combine_orders, order_from_letter_probs


def _verdict(item_id, first, second):
    orders = (order_from_letter_probs("ab", dict(zip("ABC", first)), "logits"),
              order_from_letter_probs("ba", dict(zip("ABC", second)), "logits"))
    return JudgeVerdict(item_id=item_id, **combine_orders(orders))


def _pairs(golds):
    return [LabelledPair(PairItem(str(i), "q", "x", "y"), (gold,), gold) for i, gold in enumerate(golds)]


def test_a_tie_sayer_is_order_consistent_but_keeps_no_preference_from_position_bias():
    # given: a judge that says tie in both orders, leaning to whichever answer is shown first
    leaning_tie = [_verdict(str(i), (0.3, 0.2, 0.5), (0.3, 0.2, 0.5)) for i in range(4)]
    # when
    report = score_verdicts(ImportedJudge("j", {}), _pairs(["a", "b", "a", "tie"]), leaning_tie, seconds=2.0)
    # then
    assert report.order_consistency == 1.0
    assert report.preference_consistency == 0.0
    assert report.accuracy == 0.25 and report.accuracy_no_ties == 0.0
    assert report.chance_accuracy == 0.5 and report.pairs_per_second == 2.0
    assert report.confusion["tie"]["tie"] == 1 and report.confusion["a"]["tie"] == 2


def test_a_real_preference_survives_the_swap():
    prefers_a = [_verdict("0", (0.7, 0.2, 0.1), (0.2, 0.7, 0.1))]
    report = score_verdicts(ImportedJudge("j", {}), _pairs(["a"]), prefers_a, seconds=1.0)
    assert report.order_consistency == report.preference_consistency == report.accuracy == pytest.approx(1.0)
