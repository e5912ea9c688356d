import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.ratings import (
    POINTS_PER_LOGIT,
    Battles,
    BattleCounts,
    BradleyTerry,
    Normaliser,
    component_labels,
    compute_leaderboard,
    predicted_win_rate_matrix,
    win_probability,
)

from .simulation import centred_points, simulate_battles


def fit_points(counts: BattleCounts, anchor: int | None = None, **kwargs) -> np.ndarray:
    model = BradleyTerry(counts, **kwargs)
    return 1000 + Normaliser(component_labels(counts), anchor)(model.fit()) * POINTS_PER_LOGIT


def test_two_systems_have_the_closed_form_rating_gap():
    # given A: 30 wins, B: 10 wins, 10 ties -> A's share p = (30 + 5) / 50 = 0.7
    counts = BattleCounts.from_records([("A", "B", "a")] * 30 + [("A", "B", "b")] * 10 + [("B", "A", "tie")] * 10)
    # when fitted
    ratings = fit_points(counts)
    # then the gap is 400 log10(p / (1 - p)) = 147.19, split evenly around 1000
    gap = 400 * math.log10(0.7 / 0.3)
    assert ratings[0] - ratings[1] == pytest.approx(gap, abs=1e-5)
    assert ratings.tolist() == pytest.approx([1000 + gap / 2, 1000 - gap / 2], abs=1e-5)


def test_both_bad_is_a_tie_or_dropped():
    # given A: 30 wins, B: 10 wins, 20 both_bad
    counts = BattleCounts.from_records([("A", "B", "a")] * 30 + [("A", "B", "b")] * 10 + [("A", "B", "both_bad")] * 20)
    # when both_bad is a tie, p = (30 + 10) / 60; when dropped, p = 30 / 40
    as_tie = compute_leaderboard(counts, ci="none", both_bad="tie")
    dropped = compute_leaderboard(counts, ci="none", both_bad="drop")
    # then
    gap = {b.both_bad: b.systems[0].rating - b.systems[1].rating for b in (as_tie, dropped)}
    assert gap["tie"] == pytest.approx(400 * math.log10((40 / 60) / (20 / 60)), abs=1e-5)
    assert gap["drop"] == pytest.approx(400 * math.log10(0.75 / 0.25), abs=1e-5)
    assert (as_tie.n_battles_used, dropped.n_battles_used) == (60, 40)


def test_anchor_gets_1000_and_keeps_the_gaps():
    counts = BattleCounts.from_records([("A", "B", "a")] * 30 + [("A", "B", "b")] * 10 + [("B", "A", "tie")] * 10)
    board = compute_leaderboard(counts, ci="sandwich", anchor="B")
    by_name = {s.system: s for s in board.systems}
    assert by_name["B"].rating == pytest.approx(1000.0)
    assert by_name["A"].rating == pytest.approx(1000 + 400 * math.log10(0.7 / 0.3), abs=1e-5)
    assert by_name["B"].ci_low == pytest.approx(1000.0) and by_name["B"].ci_high == pytest.approx(1000.0)


def expanded_design(battles: Battles):
    """One row per battle, x = e_a - e_b without the first system (the reference),
    y = win credit of a: what an off-the-shelf logistic regression sees."""
    n = len(battles.systems)
    x = np.zeros((len(battles), n))
    x[np.arange(len(battles)), battles.a] = 1.0
    x[np.arange(len(battles)), battles.b] = -1.0
    y = np.array([1.0, 0.0, 0.5, 0.5])[battles.outcome]
    return x[:, 1:], y


def test_matches_statsmodels_logistic_regression_and_its_robust_covariance():
    import statsmodels.api as sm

    # given 600 battles among 5 systems, ties included
    rng = np.random.default_rng(7)
    battles = simulate_battles(np.array([0.0, 0.4, -0.3, 0.9, -0.8]), 600, rng)
    x, y = expanded_design(battles)
    # when statsmodels fits the same model on one row per battle, with HC0 (per-battle)
    # robust errors, and we fit on aggregated counts anchored to the same reference
    reference = sm.GLM(y, x, family=sm.families.Binomial()).fit(cov_type="HC0", tol=1e-12)
    counts = battles.aggregate()
    model = BradleyTerry(counts)
    params = model.fit()
    normalise = Normaliser(component_labels(counts), anchor=0)
    # then the strengths agree, and so does the sandwich covariance
    np.testing.assert_allclose(normalise(params)[1:], reference.params, atol=1e-6)
    np.testing.assert_allclose(normalise.covariance(model.robust_covariance(params))[1:, 1:], reference.cov_params(), rtol=1e-5)


def test_weights_act_as_repeated_battles():
    weighted = BattleCounts.from_records([("A", "B", "a", 3.0), ("A", "B", "b", 1.0), ("A", "C", "b", 2.0), ("B", "C", "a", 1.0), ("B", "C", "b", 1.0)])
    repeated = BattleCounts.from_records([("A", "B", "a")] * 3 + [("A", "B", "b")] + [("A", "C", "b")] * 2 + [("B", "C", "a"), ("B", "C", "b")])
    # a C-over-A sweep has no finite MLE; a small penalty keeps both fits comparable
    np.testing.assert_allclose(fit_points(weighted, l2=0.1), fit_points(repeated, l2=0.1), atol=1e-6)


def test_recovers_synthetic_ratings():
    # given 40,000 battles among 8 systems spread over ~500 points
    rng = np.random.default_rng(11)
    strengths = rng.normal(0.0, 0.8, 8)
    counts = simulate_battles(strengths, 40_000, rng).aggregate()
    # when fitted, then every rating is within 15 points (about 3 standard errors)
    np.testing.assert_allclose(fit_points(counts), centred_points(strengths), atol=15)


def test_l2_penalty_shrinks_toward_the_centre():
    counts = BattleCounts.from_records([("A", "B", "a")] * 8 + [("A", "B", "b")] * 2)
    free, shrunk = fit_points(counts), fit_points(counts, l2=5.0)
    assert 1000 < shrunk[0] < free[0]


def test_a_system_that_never_lost_gets_a_finite_rating_and_a_warning():
    counts = BattleCounts.from_records([("A", "B", "a")] * 5 + [("B", "C", "a")] * 3 + [("B", "C", "b")] * 3)
    board = compute_leaderboard(counts, ci="sandwich", min_votes=0)
    assert any("infinite" in w for w in board.warnings)
    ratings = {s.system: s.rating for s in board.systems}
    assert all(np.isfinite(list(ratings.values())))
    assert max(ratings, key=ratings.get) == "A"
    # l2 = 1 (a N(0, 1) logit prior) keeps A within a few hundred points, not at infinity
    assert ratings["A"] - min(ratings.values()) < 1000


battle_lists = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 3), st.sampled_from(["a", "b", "tie", "both_bad"])),
    min_size=1,
    max_size=30,
)
FLIP = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}


@settings(max_examples=40, deadline=None)
@given(battle_lists)
def test_swapping_sides_and_flipping_outcomes_changes_nothing(rows):
    names = ["w", "x", "y", "z"]
    straight = [(names[i], names[(i + s) % 4], o) for i, s, o in rows]
    swapped = [(b, a, FLIP[o]) for a, b, o in straight]
    boards = [compute_leaderboard(BattleCounts.from_records(r), ci="sandwich", min_votes=0) for r in (straight, swapped)]
    first, second = ({s.system: (s.rating, s.ci_low, s.ci_high, s.rank) for s in b.systems} for b in boards)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name][3] == second[name][3]
        for u, v in zip(first[name][:3], second[name][:3]):
            assert (u is None and v is None) or u == pytest.approx(v, abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-3000, 3000, allow_nan=False), min_size=2, max_size=8),
    st.floats(-1e4, 1e4, allow_nan=False),
)
def test_adding_a_constant_to_every_rating_changes_no_prediction(ratings, shift):
    ratings = np.array(ratings)
    np.testing.assert_allclose(predicted_win_rate_matrix(ratings + shift), predicted_win_rate_matrix(ratings), atol=1e-9)


def test_win_probability_uses_the_400_point_convention():
    assert float(win_probability(1400.0, 1000.0)) == pytest.approx(10 / 11)
    assert float(win_probability(1000.0, 1000.0)) == pytest.approx(0.5)
