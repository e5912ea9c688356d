"""Calibration of judges against people, and position bias: the pure functions."""

import math
import random
from pathlib import Path

import pytest

from routing.calibration import (
    Calibration,
    CalibrationError,
    features,
    fit_calibration,
    position_bias,
    score_probabilities,
    without_ties,
)
from routing.judges import JudgeVerdict, OrderResult
from routing.judges.files import judge_for_pairs, read_labelled_pairs
from routing.judges.protocol import combine_orders

REAL = Path(__file__).parent.parent / "data" / "real"


def _tie_loving_verdict(item_id, strength, first_bias=0.25):
    """A SmolLM2-like judge: most of its mass on tie, a weak true signal ``strength`` for a
    (negative: for b), and a pull towards whichever answer is shown first."""
    orders = []
    for order, toward_a in (("ab", first_bias), ("ba", -first_bias)):
        lean = strength + toward_a
        p_a, p_b = 0.15 + 0.1 * lean, 0.15 - 0.1 * lean
        orders.append(OrderResult(order, "tie", p_a=p_a, p_b=p_b, p_tie=1 - p_a - p_b, source="logits"))
    return JudgeVerdict(item_id, **{k: v for k, v in combine_orders(tuple(orders)).items()})


def _synthetic(n, seed=0):
    rng = random.Random(seed)
    verdicts, labels = [], []
    for i in range(n):
        strength = rng.uniform(-1, 1)
        verdicts.append(_tie_loving_verdict(str(i), strength))
        p_a = 1 / (1 + math.exp(-4 * strength))
        draw = rng.random()
        labels.append("tie" if draw < 0.05 else ("a" if rng.random() < p_a else "b"))
    return verdicts, labels


def test_calibration_turns_a_tie_loving_judge_into_one_that_agrees_with_people():
    # given: a judge that says tie everywhere but whose a-vs-b lean carries the signal
    verdicts, labels = _synthetic(400)
    assert all(v.verdict == "tie" for v in verdicts)
    # when
    calibration = fit_calibration(verdicts, labels)
    # then: cross-fitted scores improve on every measure and the tie rate is people's
    assert calibration.after.brier < calibration.before.brier
    assert calibration.after.log_loss < calibration.before.log_loss
    assert calibration.after.ece < 0.1 < calibration.before.ece
    assert calibration.after.accuracy > 0.7 > calibration.before.accuracy
    calibrated = [calibration.apply(v) for v in verdicts]
    assert sum(v.verdict == "tie" for v in calibrated) < 10
    assert sum(v.p_tie for v in calibrated) / len(calibrated) == pytest.approx(calibration.human_tie_rate, abs=0.03)
    # the raw verdict is kept beside the calibrated one
    assert calibrated[0].uncalibrated["verdict"] == "tie" and calibrated[0].calibration


def test_calibration_is_symmetric_in_a_and_b():
    verdicts, labels = _synthetic(200, seed=1)
    calibration = fit_calibration(verdicts, labels)
    verdict = verdicts[0]
    swapped = JudgeVerdict("s", **combine_orders(tuple(
        OrderResult("ab" if o.order == "ba" else "ba", "tie", p_a=o.p_b, p_b=o.p_a, p_tie=o.p_tie)
        for o in reversed(verdict.orders))))
    p_a, p_b, p_tie = calibration.probabilities(verdict)
    s_a, s_b, s_tie = calibration.probabilities(swapped)
    assert (p_a, p_b, p_tie) == pytest.approx((s_b, s_a, s_tie), abs=2e-3)  # up to the solver's tolerance
    assert p_a != pytest.approx(p_b, abs=0.05)  # not symmetric by saying nothing


def test_without_ties_in_the_schema_the_calibrated_judge_never_answers_tie():
    verdicts, labels = _synthetic(300, seed=2)
    calibration = fit_calibration(verdicts, labels, allow_ties=False)
    assert calibration.classes == ("a", "b") and calibration.n == sum(label != "tie" for label in labels)
    for verdict in verdicts:
        calibrated = calibration.apply(verdict)
        assert calibrated.verdict in ("a", "b") and calibrated.p_tie == 0.0
        assert calibrated.p_a + calibrated.p_b == pytest.approx(1.0)
    # and before any calibration exists, the tie mass is dropped
    dropped = without_ties(verdicts[0])
    assert dropped.verdict in ("a", "b") and dropped.p_tie == 0.0 and dropped.uncalibrated["verdict"] == "tie"


def test_calibration_round_trips_through_a_dict_and_refuses_too_few_examples():
    verdicts, labels = _synthetic(100, seed=3)
    calibration = fit_calibration(verdicts, labels)
    again = Calibration.from_dict(calibration.to_dict())
    assert again.probabilities(verdicts[5]) == pytest.approx(calibration.probabilities(verdicts[5]))
    assert again.after.ece == calibration.after.ece
    with pytest.raises(CalibrationError, match="at least"):
        fit_calibration(verdicts[:5], labels[:5])


def test_gpt35_verdicts_on_pandalm_are_calibrated_against_the_three_annotators():
    # given: GPT-3.5's one-hot verdicts on the 999 real PandaLM items, gold = human majority
    pairs = read_labelled_pairs(REAL / "pandalm-testset-v1.json", REAL / "pandalm-gpt35-judge-v1.json",
                                judge_name="gpt-3.5-turbo")
    pairs = [p for p in pairs if p.gold is not None]
    verdicts = judge_for_pairs("gpt-3.5-turbo", pairs).judge([p.item for p in pairs])
    # when
    calibration = fit_calibration(verdicts, [p.gold for p in pairs])
    # then: a one-hot claims certainty it does not have; the map says how often it is right
    assert calibration.before.ece > 0.25 and calibration.after.ece < 0.05
    assert calibration.after.log_loss < 1.0 < calibration.before.log_loss
    assert calibration.after.accuracy >= calibration.before.accuracy
    calibrated = calibration.apply(next(v for v in verdicts if v.verdict == "a"))
    assert 0.6 < calibrated.confidence < 0.85  # GPT-3.5 said a: right about 3 times in 4


def test_scores_match_hand_computed_values():
    scores = score_probabilities([(1.0, 0.0, 0.0), (0.5, 0.5, 0.0)], ["a", "b"])
    assert scores.brier == pytest.approx((0 + 0.5) / 2)
    assert scores.log_loss == pytest.approx(-math.log(0.5) / 2)
    # top verdicts: a (confidence 1, right), a at 0.5 by argmax (wrong): ECE = (0 + 0.5) / 2
    assert scores.ece == pytest.approx(0.25) and scores.accuracy == 0.5


def test_position_bias_is_measured_per_category_and_cancels_when_orders_combine():
    # given: a judge that always prefers whichever answer is shown first, on balanced items
    verdicts = [_tie_loving_verdict(str(i), s, first_bias=0.5) for i, s in enumerate([-0.2, -0.1, 0.1, 0.2] * 5)]
    categories = ["code"] * 8 + ["chat"] * 12
    # when
    bias = position_bias(verdicts, categories)
    # then
    assert bias.overall.flip_rate == 1.0 and bias.overall.first_shown_rate == 1.0
    assert bias.overall.a_rate_one_order == 1.0  # the "ab" order alone calls everything a
    assert bias.overall.a_rate_combined == 0.5  # both orders: only the real signal is left
    assert set(bias.by_category) == {"code", "chat"} and bias.by_category["code"].n == 8
    # verdicts without two orders (a reward model, an import) carry no position
    assert position_bias([JudgeVerdict("x", "a", confidence=0.9)]).overall is None


def test_features_of_a_one_order_verdict_fill_both_slots():
    verdict = JudgeVerdict("r", "a", p_a=0.8, p_b=0.2, p_tie=0.0,
                           orders=(OrderResult("ab", "a", p_a=0.8, p_b=0.2, p_tie=0.0, source="reward"),))
    row = features(verdict)
    assert row[:3] == row[3:] and row[0] == pytest.approx(math.log(0.8))


def test_routing_simulation_calibrates_the_judge_on_the_human_verdicts_it_bought():
    from routing.judges import PairItem
    from routing.policies import RoutingCandidate, get_policy
    from routing.simulation import SimulationItem, accuracy, run_policy

    # given: the tie-loving judge on 300 items; people (first and majority alike) never tie
    verdicts, labels = _synthetic(300, seed=4)
    labels = ["a" if label == "tie" else label for label in labels]
    items = [SimulationItem(RoutingCandidate.build(PairItem(v.item_id, "q", "x", "y"), v), label, label)
             for v, label in zip(verdicts, labels)]
    # when
    raw = accuracy(items, run_policy(items, get_policy("random"), 0.2, batch_size=50, seed=0))
    calibrated = accuracy(items, run_policy(items, get_policy("random"), 0.2, batch_size=50, seed=0, calibrate=True))
    # then: the raw judge's ties are all wrong; calibrated from the second batch on, it is mostly right
    assert raw == pytest.approx(0.2, abs=0.02)
    assert calibrated > 0.6
