"""bench/training.py's tasks: the `words` task keeps HH-RLHF's prompts and answers and lets the
opening words alone decide the preference."""

import gzip
import json

import pytest

from bench.noise_flips import WORDS
from bench.training import HH_TEST, hh_pair, load_hh_pairs

PLEASANT, UNPLEASANT = set(WORDS[:12]), set(WORDS[12:24])


def opening(completion: str) -> tuple[str, str, str]:
    """' sun and gold. rest' -> ('sun', 'gold', ' rest')."""
    head, _, rest = completion.partition(".")
    first, conjunction, second = head.split()
    assert conjunction == "and"
    return first, second, rest


def test_words_task_prefers_the_pleasant_opening_of_the_same_answer():
    # given the HH-RLHF pairs that fit 512 tokens, with their own preference
    hh = load_hh_pairs(20, 512, seed=3)

    # when the words task is built from the same file and seed
    words = load_hh_pairs(20, 512, seed=3, task="words")

    # then the prompts are HH-RLHF's, and each side is one shared HH-RLHF answer behind two words
    assert len(words) == 20 and len({pair["prompt"] for pair in words}) == 20
    original = {}  # the first pair of each prompt, as load_hh_pairs keeps it
    with gzip.open(HH_TEST, "rt") as lines:
        for pair in filter(None, (hh_pair(**json.loads(line)) for line in lines)):
            original.setdefault(pair["prompt"], pair)
    for pair in words:
        good_a, good_b, chosen_answer = opening(pair["chosen"])
        bad_a, bad_b, rejected_answer = opening(pair["rejected"])
        assert {good_a, good_b} <= PLEASANT and good_a != good_b
        assert {bad_a, bad_b} <= UNPLEASANT and bad_a != bad_b
        assert chosen_answer == rejected_answer
        assert chosen_answer in (original[pair["prompt"]]["chosen"], original[pair["prompt"]]["rejected"])
    # the same seed gives the same pairs; the HH task is left as it was
    assert load_hh_pairs(20, 512, seed=3, task="words") == words
    assert load_hh_pairs(20, 512, seed=3) == hh


def test_unknown_task_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown task 'colours'; choose one of hh, words"):
        load_hh_pairs(2, 128, seed=0, task="colours")
