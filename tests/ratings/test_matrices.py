import numpy as np
import pytest

from arena.ratings import BattleCounts, battle_count_matrix, predicted_win_rate_matrix, win_rate_matrix


def counts() -> BattleCounts:
    # A-B: A wins 3, B wins 1, 1 tie, 1 both_bad; B-C: C wins 2
    rows = (
        [("A", "B", "a")] * 3 + [("B", "A", "a")] + [("A", "B", "tie"), ("B", "A", "both_bad")]
        + [("B", "C", "b")] * 2
    )
    return BattleCounts.from_records(rows)


def test_battle_counts_are_symmetric():
    np.testing.assert_array_equal(battle_count_matrix(counts()), [[0, 6, 0], [6, 0, 2], [0, 2, 0]])


def test_empirical_win_rates_count_ties_half_and_follow_the_both_bad_policy():
    as_tie = win_rate_matrix(counts(), both_bad="tie")
    dropped = win_rate_matrix(counts(), both_bad="drop")
    # A over B: (3 + 0.5 + 0.5) / 6 with both_bad a tie; (3 + 0.5) / 5 without it
    assert as_tie[0, 1] == pytest.approx(4 / 6) and as_tie[1, 0] == pytest.approx(2 / 6)
    assert dropped[0, 1] == pytest.approx(3.5 / 5)
    assert as_tie[2, 1] == 1.0 and as_tie[1, 2] == 0.0
    assert np.isnan(as_tie[0, 2]) and np.isnan(as_tie[0, 0])


def test_predicted_win_rates_follow_the_rating_gap():
    predicted = predicted_win_rate_matrix(np.array([1400.0, 1000.0, 1000.0]), components=np.array([0, 0, 1]))
    assert predicted[0, 1] == pytest.approx(10 / 11) and predicted[1, 0] == pytest.approx(1 / 11)
    assert np.isnan(predicted[0, 2]) and np.isnan(predicted[2, 1])
    assert predicted[2, 2] == pytest.approx(0.5)
