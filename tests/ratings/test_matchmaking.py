import numpy as np
import pytest

from arena.ratings import (
    POINTS_PER_LOGIT,
    BattleCounts,
    MatchState,
    choose_pair,
    compute_leaderboard,
    pair_weights,
    uniform_pair_weights,
)
from arena.ratings.pairing import misordering_gain


def state(ratings, sd, votes=None, components=None) -> MatchState:
    n = len(ratings)
    return MatchState(
        ratings=np.asarray(ratings, dtype=float),
        covariance=np.diag(np.asarray(sd, dtype=float) ** 2),
        votes=np.full(n, 100) if votes is None else np.asarray(votes),
        components=np.zeros(n, dtype=np.int64) if components is None else np.asarray(components),
    )


def test_weights_are_a_distribution_over_pairs_with_an_exploration_floor():
    s = state([1000, 1010, 1200, 1500], [20, 20, 20, 20])
    weights = pair_weights(s, exploration=0.1)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(np.tril(weights) == 0)
    upper = weights[np.triu_indices(4, 1)]
    assert upper.min() >= 0.1 / 6 - 1e-12


def test_close_pairs_with_overlapping_intervals_come_first():
    # given 0 and 1 close, 2 far above, equally well measured
    weights = pair_weights(state([1000, 1010, 1400], [25, 25, 25]))
    assert weights[0, 1] > 5 * weights[0, 2]


def test_systems_with_few_votes_are_preferred():
    # given the same rating gaps, but system 2 barely measured
    s = state([1000, 1050, 950], [10, 10, 60], votes=[500, 500, 20])
    weights = pair_weights(s)
    assert weights[0, 2] > weights[0, 1]


def test_pairs_across_components_get_the_top_score():
    # given A clearly above B, C clearly above D, and no battle between the two groups
    rows = [("A", "B", "a")] * 36 + [("B", "A", "a")] * 4 + [("C", "D", "a")] * 36 + [("D", "C", "a")] * 4
    board = compute_leaderboard(BattleCounts.from_records(rows), ci="sandwich", min_votes=0)
    s = MatchState.from_leaderboard(board)
    weights = pair_weights(s)
    names = s.systems
    across = weights[names.index("A"), names.index("C")] + weights[names.index("C"), names.index("A")]
    within = weights[min(names.index("A"), names.index("B")), max(names.index("A"), names.index("B"))]
    # then a vote joining the groups is worth more than one more A-B vote
    assert across > 3 * within


def test_exclusions_are_respected():
    s = state([1000, 1010, 1020, 1030], [30] * 4)
    weights = pair_weights(s, exclude={1}, exclude_pairs={(3, 0)})
    assert weights[1, :].sum() == 0 and weights[:, 1].sum() == 0 and weights[0, 3] == 0
    rng = np.random.default_rng(0)
    for _ in range(50):
        i, j = choose_pair(s, rng, exclude={1}, exclude_pairs={(0, 3)})
        assert 1 not in (i, j) and {i, j} != {0, 3} and i != j
    with pytest.raises(ValueError, match="no pair"):
        pair_weights(state([1000, 1010], [30, 30]), exclude={0})


def test_choose_pair_follows_the_weights_and_randomises_sides():
    s = state([1000, 1010, 1300], [30, 30, 30])
    weights = pair_weights(s)
    rng = np.random.default_rng(1)
    drawn = [choose_pair(s, rng) for _ in range(4000)]
    share_01 = np.mean([{i, j} == {0, 1} for i, j in drawn])
    assert share_01 == pytest.approx(weights[0, 1], abs=0.03)
    assert 0.4 < np.mean([i < j for i, j in drawn]) < 0.6


def test_uniform_baseline_is_uniform():
    weights = uniform_pair_weights(state([1000, 1500, 2000], [1, 1, 1]))
    np.testing.assert_allclose(weights[np.triu_indices(3, 1)], 1 / 3)
    rng = np.random.default_rng(2)
    assert choose_pair(state([1000, 1500], [1, 1]), rng, weights=uniform_pair_weights) in {(0, 1), (1, 0)}


def test_state_from_counts_works_before_any_vote_and_learns_from_votes():
    systems = ("x", "y", "z")
    empty = BattleCounts(systems, *(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.int8, np.int64, float, float)))
    fresh = MatchState.from_counts(empty)
    np.testing.assert_allclose(fresh.ratings, 1000.0)
    np.testing.assert_allclose(pair_weights(fresh)[np.triu_indices(3, 1)], 1 / 3)
    # once x has beaten y often, z (never seen) is the one to learn about
    learned = MatchState.from_counts(BattleCounts.from_arrays(systems, [0] * 40, [1] * 40, ["a"] * 30 + ["b"] * 10))
    assert learned.ratings[0] > learned.ratings[1]
    weights = pair_weights(learned)
    assert weights[0, 1] < min(weights[0, 2], weights[1, 2])
    sd = np.sqrt(np.diag(learned.covariance)) / POINTS_PER_LOGIT
    assert sd[2] > sd[0]


def test_stored_state_comes_back_in_the_callers_order_with_unknown_systems_wide_open():
    # given a state fitted on x, y, z where x beat y and y beat z
    systems = ("x", "y", "z")
    fitted = MatchState.from_counts(
        BattleCounts.from_arrays(systems, [0] * 20 + [1] * 20, [1] * 20 + [2] * 20, ["a"] * 40)
    )
    # when it is stored and read back over z, w (never voted on), x
    back = MatchState.from_dict(fitted.to_dict(), ["z", "w", "x"])
    # then z and x keep their ratings and their covariance, cross terms included
    np.testing.assert_allclose(back.ratings[[0, 2]], fitted.ratings[[2, 0]], atol=1e-3)
    np.testing.assert_allclose(back.covariance[0, 2], fitted.covariance[2, 0], atol=1e-3)
    np.testing.assert_allclose(back.covariance[2, 2], fitted.covariance[0, 0], atol=1e-3)
    assert list(back.votes) == [20, 0, 20] and back.systems == ("z", "w", "x")
    # w: the prior's rating, an sd of 10 logits, no covariance, a component of its own
    assert back.ratings[1] == 1000.0
    assert np.sqrt(back.covariance[1, 1]) == pytest.approx(10 * POINTS_PER_LOGIT)
    assert back.covariance[1, 0] == back.covariance[1, 2] == 0.0
    assert back.components[1] not in (back.components[0], back.components[2])
    # and so a pair with w is the one matchmaking most wants
    weights = pair_weights(back)
    assert weights[0, 1] > weights[0, 2] and weights[1, 2] > weights[0, 2]


def test_weights_follow_the_cube_of_the_gain():
    # given three systems, two close and one far, no exploration
    s = state([1000, 1030, 1200], [150, 150, 150])
    gain = misordering_gain(s)
    assert gain[0, 1] > gain[1, 2] > gain[0, 2] > 0
    weights = pair_weights(s, exploration=0.0)
    # then each pair's weight is its gain cubed, normalised (the power the benchmark chose)
    cubes = np.array([gain[0, 1], gain[0, 2], gain[1, 2]]) ** 3
    np.testing.assert_allclose([weights[0, 1], weights[0, 2], weights[1, 2]], cubes / cubes.sum())
    assert weights[0, 1] / weights[1, 2] == pytest.approx((gain[0, 1] / gain[1, 2]) ** 3)  # not squared
