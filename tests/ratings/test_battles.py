import pandas as pd
import pytest

from arena.ratings import Battles, BattleCounts, Outcome


def test_from_records_accepts_mappings_and_tuples_alike():
    # given the same three battles written two ways
    as_mappings = [
        {"system_a": "x", "system_b": "y", "outcome": "a"},
        {"system_a": "y", "system_b": "x", "outcome": "tie", "weight": 2.0},
        {"system_a": "x", "system_b": "z", "outcome": "both_bad"},
    ]
    as_tuples = [("x", "y", "a"), ("y", "x", "tie", 2.0), ("x", "z", "both_bad")]
    # when parsed
    first, second = Battles.from_records(as_mappings), Battles.from_records(as_tuples)
    # then both keep order, names sorted into indices, and weights
    for battles in (first, second):
        assert battles.systems == ("x", "y", "z")
        assert battles.a.tolist() == [0, 1, 0]
        assert battles.b.tolist() == [1, 0, 2]
        assert battles.outcome.tolist() == [Outcome.A, Outcome.TIE, Outcome.BOTH_BAD]
        assert battles.weight.tolist() == [1.0, 2.0, 1.0]


def test_aggregation_merges_identical_rows_in_canonical_orientation():
    # given x beating y from both sides of the screen, and a tie
    rows = [("x", "y", "a"), ("y", "x", "b"), ("y", "x", "b"), ("x", "y", "tie"), ("y", "x", "a")]
    # when aggregated
    counts = BattleCounts.from_records(rows)
    # then "y on the left lost" is the same row as "x on the left won"
    table = {(int(a), int(b), int(o)): int(c) for a, b, o, c in zip(counts.a, counts.b, counts.outcome, counts.count)}
    assert table == {(0, 1, Outcome.A): 3, (0, 1, Outcome.TIE): 1, (0, 1, Outcome.B): 1}
    assert counts.n_battles == 5
    assert counts.votes().tolist() == [5, 5]


def test_aggregated_weights_and_squared_weights_are_sums():
    counts = BattleCounts.from_records([("x", "y", "a", 2.0), ("x", "y", "a", 3.0)])
    assert counts.count.tolist() == [2]
    assert counts.weight.tolist() == [5.0]
    assert counts.weight_sq.tolist() == [13.0]


def test_from_pandas_reads_lmarena_spellings_and_style_columns():
    df = pd.DataFrame(
        {
            "system_a": ["m1", "m2", "m1"],
            "system_b": ["m2", "m1", "m2"],
            "outcome": ["model_a", "tie (bothbad)", "B"],
            "length_a": [10, 20, 10],
            "length_b": [30, 40, 30],
        }
    )
    battles = Battles.from_pandas(df, style_features=["length"])
    assert battles.outcome.tolist() == [Outcome.A, Outcome.BOTH_BAD, Outcome.B]
    assert battles.style_a[:, 0].tolist() == [10, 20, 10]
    counts = battles.aggregate()
    # the second battle is swapped into canonical order, its style columns with it
    swapped = counts.outcome == Outcome.BOTH_BAD
    assert counts.style_a[swapped, 0].tolist() == [40] and counts.style_b[swapped, 0].tolist() == [20]
    assert counts.n_battles == 3 and len(counts.a) == 3


def test_both_bad_becomes_a_tie_or_is_dropped():
    counts = BattleCounts.from_records([("x", "y", "tie"), ("x", "y", "both_bad"), ("x", "y", "a")])
    as_tie = counts.resolve_both_bad("tie")
    assert sorted(zip(as_tie.outcome.tolist(), as_tie.count.tolist())) == [(Outcome.A, 1), (Outcome.TIE, 2)]
    dropped = counts.resolve_both_bad("drop")
    assert dropped.n_battles == 2 and Outcome.BOTH_BAD not in dropped.outcome
    with pytest.raises(ValueError):
        counts.resolve_both_bad("ignore")


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("x", "y", "maybe")], "unknown outcome"),
        ([("x", "x", "a")], "battle itself"),
        ([("x", "y", "a", -1.0)], "non-negative"),
    ],
)
def test_invalid_battles_are_refused(rows, message):
    with pytest.raises(ValueError, match=message):
        Battles.from_records(rows)


def test_style_features_come_from_the_first_record_when_not_named():
    battles = Battles.from_records(
        [{"system_a": "x", "system_b": "y", "outcome": "a", "style_a": {"length": 3}, "style_b": {"length": 5}}]
    )
    assert battles.style_features == ("length",)
    assert battles.style_b.tolist() == [[5.0]]


def test_dense_and_sparse_aggregation_give_the_same_rows():
    # given the same 2,000 battles among 10 systems, once alone (counted: the key space is
    # small) and once with 300 systems that never play listed after them (sorted by np.unique)
    import numpy as np

    rng = np.random.default_rng(3)
    a = rng.integers(0, 10, 2000)
    b = (a + rng.integers(1, 10, 2000)) % 10
    outcome, weight = rng.integers(0, 4, 2000), rng.random(2000)
    names = [f"s{i}" for i in range(10)]
    dense = Battles.from_arrays(names, a, b, outcome, weight).aggregate()
    sparse = Battles.from_arrays(names + [f"z{i:03d}" for i in range(300)], a, b, outcome, weight).aggregate()
    # then every row, count and sum is the same, in the same order
    for field in ("a", "b", "outcome", "count", "weight", "weight_sq"):
        np.testing.assert_array_equal(getattr(dense, field), getattr(sparse, field), err_msg=field)
    assert dense.a.dtype == sparse.a.dtype and dense.outcome.dtype == sparse.outcome.dtype
    # and the counts are those of the battles: every battle is in one row, each key once
    assert dense.count.sum() == 2000 and len(set(zip(dense.a, dense.b, dense.outcome))) == len(dense.a)
