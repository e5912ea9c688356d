import pytest

from training.recipes import estimate_flip_rate, normalise_pairs, split_by_prompt
from training.recipes.pairs import NO_ANNOTATOR, to_dataset


def _pairs(n_prompts, per_prompt=3):
    return [
        {"prompt": f"prompt {p}", "chosen": f" good {k}", "rejected": f" bad {k}", "annotator": f"ann{k}"}
        for p in range(n_prompts) for k in range(per_prompt)
    ]


def test_split_keeps_every_prompt_on_one_side():
    # given 50 prompts with three pairs each
    pairs = normalise_pairs(_pairs(50))
    # when split
    split = split_by_prompt(pairs, validation_fraction=0.2, seed=3)
    # then no prompt is in both, nothing is lost, and about 20% of prompts are held out
    train_prompts = {pair.prompt_key for pair in split.train}
    validation_prompts = {pair.prompt_key for pair in split.validation}
    assert not train_prompts & validation_prompts
    assert len(split.train) + len(split.validation) == len(pairs)
    assert 5 <= len(validation_prompts) <= 15


def test_split_is_seeded_and_stable_as_the_data_grows():
    small, large = normalise_pairs(_pairs(40)), normalise_pairs(_pairs(400))
    held_out = {pair.prompt_key for pair in split_by_prompt(small, 0.25, seed=1).validation}
    held_out_again = {pair.prompt_key for pair in split_by_prompt(small, 0.25, seed=1).validation}
    held_out_other_seed = {pair.prompt_key for pair in split_by_prompt(small, 0.25, seed=2).validation}
    held_out_large = {pair.prompt_key for pair in split_by_prompt(large, 0.25, seed=1).validation}
    assert held_out == held_out_again != held_out_other_seed
    # a prompt held out of the small snapshot stays held out of the grown one
    assert held_out <= held_out_large


def test_split_holds_out_at_least_one_prompt_and_keeps_one():
    two = normalise_pairs(_pairs(2))
    split = split_by_prompt(two, 0.01, seed=0)
    assert len({p.prompt_key for p in split.validation}) == len({p.prompt_key for p in split.train}) == 1
    assert split_by_prompt(two, 0.0).validation == []


def test_conversational_prompts_split_by_their_messages_and_completions_become_assistant_turns():
    rows = [
        {"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello", "rejected": "go away"},
        {"prompt": [{"content": "hi", "role": "user"}], "chosen": "hey", "rejected": "no"},
        {"prompt": [{"role": "user", "content": "bye"}], "chosen": [{"role": "assistant", "content": "bye!"}],
         "rejected": "what"},
    ]
    pairs = normalise_pairs(rows)
    assert pairs[0].chosen == [{"role": "assistant", "content": "hello"}]
    assert pairs[0].prompt_key == pairs[1].prompt_key != pairs[2].prompt_key
    split = split_by_prompt(pairs, 0.5, seed=0)
    assert {len(split.train), len(split.validation)} == {1, 2}


def test_export_rows_normalise_weight_annotator_and_id():
    pairs = normalise_pairs([
        {"prompt": "p", "chosen": "a", "rejected": "b", "weight": 0.75, "source": "judge-v1", "id": 7,
         "confidence": 0.9, "n_judgments": 4},
        {"prompt": "q", "chosen": "a", "rejected": "b", "weight": None},
    ])
    assert (pairs[0].weight, pairs[0].annotator, pairs[0].pair_id) == (0.75, "judge-v1", "7")
    assert (pairs[1].weight, pairs[1].annotator, pairs[1].pair_id) == (1.0, NO_ANNOTATOR, "1")
    dataset = to_dataset(pairs)
    assert dataset.column_names == ["prompt", "chosen", "rejected", "weight", "annotator", "pair_id", "pair_index"]
    assert dataset["pair_index"] == [0, 1]


@pytest.mark.parametrize("rows, message", [
    ([], "no preference pairs"),
    ([{"prompt": "p", "chosen": "a"}], "missing"),
    ([{"prompt": "p", "chosen": "a", "rejected": "b", "weight": 1.5}], "probability"),
    ([{"prompt": "p", "chosen": "a", "rejected": "b"},
      {"prompt": [{"role": "user", "content": "p"}], "chosen": "a", "rejected": "b"}], "mixed formats"),
])
def test_bad_rows_are_rejected(rows, message):
    with pytest.raises(ValueError, match=message):
        normalise_pairs(rows)


def test_flip_rate_is_the_expected_share_of_wrong_labels_capped_below_half():
    rows = [{"prompt": str(i), "chosen": "a", "rejected": "b", "weight": w} for i, w in enumerate([1.0, 0.8, 0.6])]
    assert estimate_flip_rate(normalise_pairs(rows)) == pytest.approx(0.2)
    coin_flips = [{"prompt": str(i), "chosen": "a", "rejected": "b", "weight": 0.3} for i in range(3)]
    assert estimate_flip_rate(normalise_pairs(coin_flips)) == 0.45
