import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arena.ratings import (
    Battles,
    BattleCounts,
    compute_leaderboard,
    rank_from_intervals,
    style_covariates,
)

from .simulation import centred_points, draw_outcomes, random_pairs, simulate_battles


def test_to_dict_has_the_agreed_shape_and_is_strict_json():
    # given a small connected arena
    counts = simulate_battles(np.array([0.5, 0.0, -0.5]), 300, np.random.default_rng(0)).aggregate()
    # when
    out = compute_leaderboard(counts, ci="bootstrap", rounds=50, min_votes=150).to_dict()
    # then
    json.dumps(out, allow_nan=False)
    assert {"method", "n_battles", "components", "systems"} <= out.keys()
    assert out["method"] == "bt" and out["n_battles"] == 300
    assert out["components"] == [["s0", "s1", "s2"]]
    row = out["systems"][0]
    assert {"system", "rating", "ci_low", "ci_high", "rank", "votes", "component"} <= row.keys()
    assert all(type(r["rating"]) is float and type(r["votes"]) is int for r in out["systems"])
    assert sum(r["votes"] for r in out["systems"]) == 2 * 300


def test_rank_counts_systems_surely_above():
    # given intervals: A [10, 20], B [5, 15], C [0, 4], D [-10, 3]
    low = np.array([10, 5, 0, -10])
    high = np.array([20, 15, 4, 3])
    # then A and B overlap (both rank 1); C is below A and B; D overlaps C but not A, B
    assert rank_from_intervals(low, high).tolist() == [1, 1, 3, 3]


def test_disconnected_components_are_rated_separately_and_said_to_be():
    # given A-B battles and C-D battles, and E seen only in a both_bad battle
    rows = (
        [("A", "B", "a")] * 6 + [("A", "B", "b")] * 2
        + [("C", "D", "a")] * 3 + [("C", "D", "b")] * 3 + [("D", "C", "tie")] * 2
        + [("E", "A", "both_bad")]
    )
    # when both_bad battles are dropped
    board = compute_leaderboard(BattleCounts.from_records(rows), ci="sandwich", both_bad="drop", min_votes=0)
    # then there are three components, each on its own scale
    assert [set(c) for c in board.components] == [{"A", "B"}, {"C", "D"}, {"E"}]
    by_name = {s.system: s for s in board.systems}
    assert by_name["A"].component == by_name["B"].component != by_name["C"].component
    assert by_name["A"].rating + by_name["B"].rating == pytest.approx(2000)
    assert by_name["C"].rating == pytest.approx(1000) and by_name["D"].rating == pytest.approx(1000)
    assert by_name["C"].rank == by_name["A"].rank == 1  # ranks are per component
    assert by_name["E"].rating == 1000 and by_name["E"].ci_low is None and by_name["E"].votes == 1
    assert any("3 components" in w for w in board.warnings)
    predicted = board.predicted_win_rates()
    order = [s.system for s in board.systems]
    assert np.isnan(predicted[order.index("A"), order.index("C")])
    assert predicted[order.index("A"), order.index("B")] == pytest.approx(0.75)


def test_both_bad_as_tie_can_join_components():
    rows = [("A", "B", "a"), ("B", "A", "a"), ("B", "C", "both_bad")]
    assert len(compute_leaderboard(BattleCounts.from_records(rows), ci="none", both_bad="tie").components) == 1
    assert len(compute_leaderboard(BattleCounts.from_records(rows), ci="none", both_bad="drop").components) == 2


def test_systems_below_min_votes_are_flagged():
    rows = [("A", "B", "a")] * 5 + [("B", "A", "a")] * 5 + [("A", "C", "a"), ("C", "A", "a")]
    board = compute_leaderboard(BattleCounts.from_records(rows), ci="none", min_votes=5)
    flagged = {s.system: s.flagged_low_votes for s in board.systems}
    assert flagged == {"A": False, "B": False, "C": True}
    assert board.to_dict()["systems"][-1]["flagged_low_votes"] is True


def test_unknown_anchor_or_option_is_refused():
    counts = BattleCounts.from_records([("A", "B", "a"), ("B", "A", "a")])
    with pytest.raises(ValueError, match="anchor"):
        compute_leaderboard(counts, anchor="Z")
    with pytest.raises(ValueError, match="method"):
        compute_leaderboard(counts, method="glicko")
    with pytest.raises(ValueError, match="confidence"):
        compute_leaderboard(counts, confidence=1.5)


def verbose_arena(seed: int, n_battles: int = 20_000):
    """8 systems; s0 and s1 write long answers. Voters like length: the margin gains
    BETA_LENGTH per unit of the raw (a - b) / (a + b + 1) length covariate."""
    rng = np.random.default_rng(seed)
    strengths = np.array([0.0, -0.2, 0.3, 0.1, -0.4, 0.2, -0.1, 0.5])
    typical_length = np.array([900, 800, 300, 300, 300, 300, 300, 300])
    a, b = random_pairs(8, n_battles, rng)
    style_a = np.column_stack([typical_length[a] * rng.lognormal(0, 0.3, n_battles), rng.poisson(2, n_battles)])
    style_b = np.column_stack([typical_length[b] * rng.lognormal(0, 0.3, n_battles), rng.poisson(2, n_battles)])
    raw_length = (style_a[:, 0] - style_b[:, 0]) / (style_a[:, 0] + style_b[:, 0] + 1)
    margin = strengths[a] - strengths[b] + BETA_LENGTH * raw_length
    outcome = draw_outcomes(1 / (1 + np.exp(-margin)), rng)
    battles = Battles.from_arrays(
        [f"s{i}" for i in range(8)], a, b, outcome, None, style_a.round(), style_b.round(), ("length", "bold")
    )
    return battles, strengths


BETA_LENGTH = 1.5


def test_style_control_recovers_a_planted_length_effect():
    # given voters who reward length, and two verbose systems
    battles, strengths = verbose_arena(seed=4)
    counts = battles.aggregate()
    # when fitted with and without style control
    board = compute_leaderboard(battles, ci="sandwich", style_control=True)
    # then the length coefficient, rescaled from per-sd to per-unit, is the planted one,
    raw = (counts.style_a - counts.style_b) / (counts.style_a + counts.style_b + 1)
    rms = np.sqrt(np.average(raw**2, axis=0, weights=counts.count))
    length, bold = board.style_coefficients
    assert (length.feature, bold.feature) == ("length", "bold")
    assert length.coefficient / rms[0] == pytest.approx(BETA_LENGTH, rel=0.1)
    assert length.ci_low / rms[0] < BETA_LENGTH < length.ci_high / rms[0]
    assert bold.ci_low < 0 < bold.ci_high
    # the controlled ratings recover the truth, and the uncontrolled ones favour verbosity
    by_name = {s.system: s for s in board.systems}
    controlled = np.array([by_name[f"s{i}"].rating for i in range(8)])
    uncontrolled = np.array([by_name[f"s{i}"].rating_without_style for i in range(8)])
    truth = centred_points(strengths)
    assert np.abs(controlled - truth).max() < 20
    assert (uncontrolled - truth)[:2].min() > 40
    out = board.to_dict()
    assert set(out["style_coefficients"]) == {"length", "bold"}
    assert "rating_without_style" in out["systems"][0]


def test_style_covariates_are_antisymmetric_and_unit_rms():
    style_a = np.array([[10.0], [3.0], [0.0]])
    style_b = np.array([[30.0], [3.0], [2.0]])
    z = style_covariates(style_a, style_b, np.array([1, 1, 2]))
    np.testing.assert_allclose(style_covariates(style_b, style_a, np.array([1, 1, 2])), -z)
    # raw: (10 - 30) / 41, 0, (0 - 2) / 3; rms weights the third row twice
    raw = np.array([-20 / 41, 0.0, -2 / 3])
    np.testing.assert_allclose(z[:, 0], raw / np.sqrt((raw[0] ** 2 + 2 * raw[2] ** 2) / 4))


def test_style_control_needs_style_features():
    counts = BattleCounts.from_records([("A", "B", "a"), ("B", "A", "a")])
    with pytest.raises(ValueError, match="style"):
        compute_leaderboard(counts, style_control=True)


def test_the_rating_engine_never_imports_django():
    root = Path(__file__).resolve().parents[2]
    code = "import sys, arena.ratings; bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
