import math

import numpy as np
import pytest

from arena.ratings import (
    POINTS_PER_LOGIT,
    BattleCounts,
    BootstrapIntervals,
    BradleyTerry,
    NoIntervals,
    Normaliser,
    SandwichIntervals,
    component_labels,
    compute_leaderboard,
)

from .simulation import simulate_battles


def two_system_counts() -> BattleCounts:
    return BattleCounts.from_records([("A", "B", "a")] * 30 + [("A", "B", "b")] * 10 + [("B", "A", "tie")] * 10)


def test_sandwich_matches_the_hand_computed_two_system_variance():
    # given A: 30 wins, B: 10 wins, 10 ties; MLE p = 0.7 on all 50 battles
    # bread = 50 p (1 - p) = 10.5
    # meat = 30 (1 - 0.7)^2 + 10 (0 - 0.7)^2 + 10 (0.5 - 0.7)^2 = 2.7 + 4.9 + 0.4 = 8.0
    # var(gap) = meat / bread^2; each centred rating carries half the gap
    sd_gap = math.sqrt(8.0 / 10.5**2)
    expected_half_width = 1.959963985 * sd_gap / 2 * POINTS_PER_LOGIT
    # when
    board = compute_leaderboard(two_system_counts(), ci="sandwich", confidence=0.95)
    # then
    for s in board.systems:
        assert s.ci_high - s.rating == pytest.approx(expected_half_width, rel=1e-6)
        assert s.rating - s.ci_low == pytest.approx(expected_half_width, rel=1e-6)


def test_bootstrap_is_seeded_and_agrees_with_sandwich_roughly():
    counts = two_system_counts()
    first = compute_leaderboard(counts, ci="bootstrap", rounds=400, seed=5)
    again = compute_leaderboard(counts, ci="bootstrap", rounds=400, seed=5)
    other = compute_leaderboard(counts, ci="bootstrap", rounds=400, seed=6)
    sandwich = compute_leaderboard(counts, ci="sandwich")
    assert first == again
    assert first != other
    width = {b.ci: b.systems[0].ci_high - b.systems[0].ci_low for b in (first, sandwich)}
    assert width["bootstrap"] == pytest.approx(width["sandwich"], rel=0.2)


def test_no_intervals_gives_none_and_ranks_by_rating():
    board = compute_leaderboard(two_system_counts(), ci="none")
    assert [(s.ci_low, s.ci_high, s.rank) for s in board.systems] == [(None, None, 1), (None, None, 2)]


def coverage(estimator, reps: int, n_battles: int, seed: int) -> float:
    """Share of intervals, over `reps` simulated arenas of 6 systems, that contain the
    centred true strength."""
    rng = np.random.default_rng(seed)
    strengths = np.array([-0.6, -0.3, 0.0, 0.1, 0.4, 0.8])
    truth = strengths - strengths.mean()
    hits = []
    for _ in range(reps):
        counts = simulate_battles(strengths, n_battles, rng, both_bad_share=0.3).aggregate()
        model = BradleyTerry(counts)
        params = model.fit()
        intervals = estimator.estimate(model, params, Normaliser(component_labels(counts)), 0.95)
        hits.append((intervals.low <= truth) & (truth <= intervals.high))
    return float(np.mean(hits))


def test_sandwich_intervals_cover_the_truth_at_the_nominal_rate():
    # 1,200 intervals: a 95% rate should land within about +-2 points of 95%
    assert 0.925 <= coverage(SandwichIntervals(), reps=200, n_battles=1500, seed=1) <= 0.975


def test_bootstrap_intervals_cover_the_truth_at_the_nominal_rate():
    # fewer, costlier replications: 240 intervals, so a wider band
    assert 0.9 <= coverage(BootstrapIntervals(rounds=200, seed=2), reps=40, n_battles=1500, seed=3) <= 0.99


def test_no_intervals_strategy_returns_nothing():
    counts = two_system_counts()
    model = BradleyTerry(counts)
    result = NoIntervals().estimate(model, model.fit(), Normaliser(component_labels(counts)), 0.95)
    assert result.low is None and result.high is None


def test_bootstrap_needs_rounds():
    with pytest.raises(ValueError):
        BootstrapIntervals(rounds=1)
    with pytest.raises(ValueError):
        compute_leaderboard(two_system_counts(), ci="bootstrap", rounds=0)
