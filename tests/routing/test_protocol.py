"""The judging protocol: parsing verdicts, mapping the swapped order back, combining the two orders."""

import pytest

from routing.judges import UNPARSABLE, ImportedJudge, PairItem, normalise_verdict
from routing.judges.protocol import (
    combine_orders,
    letter_to_verdict,
    messages,
    order_from_letter_probs,
    order_from_text,
    parse_letter,
)


@pytest.mark.parametrize(("text", "letter"), [
    ("A is more accurate. [[A]]", "A"),
    ("Final verdict: [[ B ]]", "B"),
    ("They are equally good [[C]]", "C"),
    ("I prefer the first one.", None),
    # Echoing the instructions names every verdict: ambiguous, so no verdict.
    ('"[[A]]" if assistant A is better, "[[B]]" if assistant B is better', None),
    ("[[A]] ... on reflection [[A]]", "A"),
])
def test_parse_letter(text, letter):
    assert parse_letter(text) == letter


def test_letters_map_back_to_the_item_in_the_swapped_order():
    assert [letter_to_verdict(x, "ab") for x in "ABC"] == ["a", "b", "tie"]
    assert [letter_to_verdict(x, "ba") for x in "ABC"] == ["b", "a", "tie"]


def test_swapped_order_shows_b_first():
    item = PairItem("1", "Q?", a="ALPHA", b="BETA")
    user = messages(item, "ba")[1]["content"]
    assert user.index("BETA") < user.index("ALPHA")
    assert "[[C]]" in messages(item, "ab")[0]["content"]


def test_a_pure_position_bias_cancels_to_a_tie():
    # given: a judge that says "the first one" with 0.8 whatever it is shown
    biased = {"A": 0.8, "B": 0.1, "C": 0.1}
    orders = (order_from_letter_probs("ab", biased, "logits"), order_from_letter_probs("ba", biased, "logits"))
    # when
    combined = combine_orders(orders)
    # then
    assert combined["p_a"] == pytest.approx(0.45) and combined["p_b"] == pytest.approx(0.45)
    assert combined["verdict"] == "tie"
    assert combined["order_consistent"] is False


def test_consistent_orders_average_their_probabilities():
    orders = (order_from_letter_probs("ab", {"A": 0.7, "B": 0.2, "C": 0.1}, "logits"),
              order_from_letter_probs("ba", {"A": 0.1, "B": 0.5, "C": 0.4}, "logits"))
    combined = combine_orders(orders)
    assert combined["verdict"] == "a"
    assert combined["p_a"] == pytest.approx(0.6) and combined["p_tie"] == pytest.approx(0.25)
    assert combined["confidence"] == combined["p_a"]
    assert combined["order_consistent"] is True
    assert sum(combined[k] for k in ("p_a", "p_b", "p_tie")) == pytest.approx(1.0)


def test_one_unparsable_order_makes_the_verdict_unparsable_not_a_guess():
    orders = (order_from_text("ab", "Clearly [[A]]"), order_from_text("ba", "Both are fine really."))
    combined = combine_orders(orders)
    assert combined["verdict"] == UNPARSABLE
    assert "p_a" not in combined and combined["order_consistent"] is False
    assert orders[1].raw_text == "Both are fine really."


def test_imported_verdicts_keep_garbage_as_unparsable():
    judge = ImportedJudge("gpt", {"1": {"verdict": "2"}, "2": {"verdict": "Tie", "confidence": 0.4},
                                  "3": {"verdict": "garbage"}})
    items = [PairItem(str(i), "q", "x", "y") for i in (1, 2, 3, 4)]
    verdicts = judge.judge(items)
    assert [v.verdict for v in verdicts] == ["b", "tie", UNPARSABLE, UNPARSABLE]
    assert verdicts[1].confidence == 0.4 and verdicts[0].order_consistent is None
    assert "no verdict imported" in verdicts[3].detail
    assert normalise_verdict(" A ") == "a" and normalise_verdict("both") == UNPARSABLE


def test_a_verdict_survives_a_round_trip_through_json():
    import json

    from routing.judges import JudgeVerdict

    orders = (order_from_letter_probs("ab", {"A": 0.7, "B": 0.2, "C": 0.1}, "logits", verdict_mass=0.4),
              order_from_text("ba", "so [[B]]"))
    verdict = JudgeVerdict(item_id="7", judge="j", judge_version="v", **combine_orders(orders))
    assert JudgeVerdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict
