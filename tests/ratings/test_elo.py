import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.ratings import Battles, compute_leaderboard, online_elo, online_elo_resampled

FLIP = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}

battle_lists = st.lists(
    st.tuples(
        st.integers(0, 3), st.integers(1, 3), st.sampled_from(["a", "b", "tie", "both_bad"]), st.sampled_from([1.0, 2.0])
    ),
    min_size=1,
    max_size=40,
)


def as_battles(rows, swap=False):
    names = ["w", "x", "y", "z"]
    records = []
    for i, step, outcome, weight in rows:
        a, b = names[i], names[(i + step) % 4]
        records.append((b, a, FLIP[outcome], weight) if swap else (a, b, outcome, weight))
    # Fix the system list so both versions index systems alike.
    return Battles.from_arrays(
        names,
        [names.index(r[0]) for r in records],
        [names.index(r[1]) for r in records],
        [r[2] for r in records],
        [r[3] for r in records],
    )


def test_elo_after_three_battles_matches_hand_computation():
    # given A beats B, then A ties B, then C beats A
    battles = Battles.from_records([("A", "B", "a"), ("A", "B", "tie"), ("C", "A", "a")])
    # when played in order with K=4, scale 400, base 10, start 1000
    ratings = dict(zip(battles.systems, online_elo(battles)))
    # then, by hand:
    #   1: E_A = 0.5                                  -> A 1002, B 998
    #   2: E_A = 1 / (1 + 10^(-4/400)) = 0.505756208 -> A 1001.976975166, B 998.023024834
    #   3: E_C = 1 / (1 + 10^(1.976975166/400)) = 0.497154935 -> C += 4 * 0.502845065
    assert ratings["A"] == pytest.approx(999.965594905, abs=1e-8)
    assert ratings["B"] == pytest.approx(998.023024834, abs=1e-8)
    assert ratings["C"] == pytest.approx(1002.011380261, abs=1e-8)


def test_elo_depends_on_order_and_is_zero_sum():
    forward = Battles.from_records([("A", "B", "a"), ("B", "C", "a"), ("C", "A", "b")])
    backward = Battles.from_records([("C", "A", "b"), ("B", "C", "a"), ("A", "B", "a")])
    assert not np.allclose(online_elo(forward), online_elo(backward))
    assert online_elo(forward).mean() == pytest.approx(1000.0)


def test_weight_scales_k():
    once = online_elo(Battles.from_records([("A", "B", "a", 2.0)]))
    assert once.tolist() == pytest.approx([1004.0, 996.0])


@settings(max_examples=40, deadline=None)
@given(battle_lists)
def test_swapping_sides_and_flipping_outcomes_changes_no_elo_rating(rows):
    assert online_elo(as_battles(rows, swap=True)) == pytest.approx(online_elo(as_battles(rows)), abs=1e-9)


def test_resampled_elo_is_seeded_and_centred():
    battles = Battles.from_records([("A", "B", "a")] * 30 + [("B", "C", "a")] * 20 + [("A", "C", "tie")] * 10)
    first = online_elo_resampled(battles, np.random.default_rng(3), rounds=25)
    again = online_elo_resampled(battles, np.random.default_rng(3), rounds=25)
    assert first.shape == (25, 3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first.mean(axis=1), 1000.0)
    assert first[:, 0].mean() > first[:, 2].mean()  # A beat B, B beat C


def test_elo_leaderboard_reports_the_online_ratings():
    battles = Battles.from_records([("A", "B", "a"), ("A", "B", "tie"), ("C", "A", "a")])
    board = compute_leaderboard(battles, method="elo", ci="none", min_votes=0)
    by_name = {s.system: s.rating for s in board.systems}
    assert by_name["C"] == pytest.approx(1002.011380261, abs=1e-6)
    assert [s.system for s in board.systems] == ["C", "A", "B"]


def test_elo_refuses_what_it_cannot_do():
    battles = Battles.from_records([("A", "B", "a"), ("B", "A", "a")])
    with pytest.raises(ValueError, match="sandwich"):
        compute_leaderboard(battles, method="elo", ci="sandwich")
    with pytest.raises(ValueError, match="time order"):
        compute_leaderboard(battles.aggregate(), method="elo", ci="none")
