"""Similarity-weighted boards and rank agreement, against values computed by hand."""

import math

import numpy as np
import pytest

from arena.ratings import (
    POINTS_PER_LOGIT,
    Battles,
    cosine_similarities,
    kish_effective_n,
    rank_agreement,
    similar_board,
    similarity_weights,
)

Z95 = 1.959963984540054


def test_cosines_and_weights_by_hand():
    # given a query along x and prompts at 0, 60, 107.5 and 90 degrees from it
    query = np.array([1.0, 0.0])
    prompts = np.array([[2.0, 0.0], [1.0, math.sqrt(3)], [-0.3, math.sqrt(0.91)], [0.0, 5.0]])
    # when
    cosines = cosine_similarities(prompts, query)
    # then cos = 1, 0.5, -0.3, 0; squared and floored at 0: 1, 0.25, 0, 0
    assert cosines.tolist() == pytest.approx([1.0, 0.5, -0.3, 0.0])
    assert similarity_weights(cosines, power=2).tolist() == pytest.approx([1.0, 0.25, 0.0, 0.0])
    assert similarity_weights(cosines, power=4).tolist() == pytest.approx([1.0, 0.0625, 0.0, 0.0])


def test_a_zero_vector_has_cosine_zero():
    assert cosine_similarities(np.zeros((1, 3)), np.array([1.0, 2.0, 3.0])).tolist() == [0.0]


def test_cosines_name_a_dimension_mismatch():
    with pytest.raises(ValueError, match="cannot be compared with a query of 3 dims"):
        cosine_similarities(np.ones((2, 2)), np.ones(3))


@pytest.mark.parametrize("power", [0, -1, float("nan")])
def test_power_must_be_positive(power):
    with pytest.raises(ValueError, match="power must be a positive number"):
        similarity_weights(np.array([0.5]), power)


def test_kish_effective_n_by_hand():
    # (1 + 1 + 0.5)^2 / (1 + 1 + 0.25) = 6.25 / 2.25
    assert kish_effective_n(np.array([1.0, 1.0, 0.5])) == pytest.approx(6.25 / 2.25)
    # equal weights: n itself, whatever the weight
    assert kish_effective_n(np.full(7, 0.3)) == pytest.approx(7.0)
    assert kish_effective_n(np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        kish_effective_n(np.array([1.0, -1.0]))


def three_systems_on_a_path():
    """A-B and B-C battles (a tree, so each gap has a closed form) on three prompts with
    cosines 1, 0.5 and -0.3 to the query, and a fourth system D met only on the last one."""
    rows = (
        [("A", "B", "a", 1.0)] * 3 + [("A", "B", "b", 1.0)] * 1  # prompt 1
        + [("A", "B", "b", 0.5)] * 4  # prompt 2
        + [("B", "C", "a", 1.0)] * 2 + [("B", "C", "b", 1.0)] * 2  # prompt 1
        + [("B", "C", "a", 0.5)] * 4  # prompt 2
        + [("C", "B", "a", -0.3)] * 10 + [("D", "C", "a", -0.3)] * 5  # prompt 3: weight 0
    )  # fmt: skip
    systems = ["A", "B", "C", "D"]
    battles = Battles.from_arrays(
        systems,
        [systems.index(r[0]) for r in rows],
        [systems.index(r[1]) for r in rows],
        [r[2] for r in rows],
    )
    return battles, np.array([r[3] for r in rows])


def test_weighted_bradley_terry_on_three_systems_by_hand():
    # given power 2: prompt 1 weighs 1, prompt 2 weighs 0.25, prompt 3 nothing
    battles, cosines = three_systems_on_a_path()
    # when
    result = similar_board(battles, cosines, power=2)
    # then A-B: A's weighted wins 3, B's 1 + 4 x 0.25 = 2, so theta_A - theta_B = ln(3/2);
    # B-C: B's 2 + 1 = 3, C's 2, so theta_B - theta_C = ln(3/2). Centred: A = +ln 1.5, B = 0, C = -ln 1.5
    gap = math.log(1.5) * POINTS_PER_LOGIT
    ratings = {row.system: row for row in result.board.systems}
    assert sorted(ratings) == ["A", "B", "C"]  # D only met C on a prompt of weight 0
    assert ratings["A"].rating == pytest.approx(1000 + gap, abs=1e-4)
    assert ratings["B"].rating == pytest.approx(1000, abs=1e-4)
    assert ratings["C"].rating == pytest.approx(1000 - gap, abs=1e-4)
    # and the sandwich, per gap (the edges of a tree decouple): p = 0.6 on both, bread
    # W p (1 - p) = 5 x 0.24 = 1.2; meat sum w^2 (y - p)^2:
    #   A-B: 3 x 0.16 + 1 x 0.36 + 4 x 0.0625 x 0.36 = 0.93    -> v1 = 0.93 / 1.44
    #   B-C: 2 x 0.16 + 2 x 0.36 + 4 x 0.0625 x 0.16 = 1.08    -> v2 = 1.08 / 1.44
    v1, v2 = 0.93 / 1.44, 1.08 / 1.44
    # centring: A = (2 d1 + d2) / 3, B = (d2 - d1) / 3, C = -(d1 + 2 d2) / 3
    variances = {"A": (4 * v1 + v2) / 9, "B": (v1 + v2) / 9, "C": (v1 + 4 * v2) / 9}
    for name, variance in variances.items():
        half = Z95 * math.sqrt(variance) * POINTS_PER_LOGIT
        assert ratings[name].ci_low == pytest.approx(ratings[name].rating - half, abs=1e-3)
        assert ratings[name].ci_high == pytest.approx(ratings[name].rating + half, abs=1e-3)
    # and Kish: weights 8 x 1 and 8 x 0.25: (8 + 2)^2 / (8 + 0.5)
    assert result.effective_n == pytest.approx(100 / 8.5)
    assert result.n_battles == 31 and result.n_battles_weighted == 16
    assert result.total_weight == pytest.approx(10.0)
    # per system, over its own battles: A and C (4 x 1, 4 x 0.25) 25 / 4.25; B all of them
    assert result.effective_votes == pytest.approx({"A": 25 / 4.25, "B": 100 / 8.5, "C": 25 / 4.25})
    assert result.board.ci == "sandwich"


def test_the_same_prompt_alone_is_the_plain_board():
    # given every battle on the query prompt itself (cos 1): weights stay 1
    battles, _ = three_systems_on_a_path()
    cosines = np.ones(len(battles))
    # when / then the board and its Kish n are those of the unweighted battles
    result = similar_board(battles, cosines)
    assert result.effective_n == pytest.approx(len(battles))
    from arena.ratings import compute_leaderboard

    plain = compute_leaderboard(battles.aggregate(), ci="sandwich", min_votes=0)
    assert [(r.system, round(r.rating, 6)) for r in result.board.systems] == [
        (r.system, round(r.rating, 6)) for r in plain.systems
    ]


def test_similar_board_names_a_cosine_shape_mismatch():
    battles, cosines = three_systems_on_a_path()
    with pytest.raises(ValueError, match="one cosine per battle"):
        similar_board(battles, cosines[:-1])


def test_similar_board_to_dict_carries_the_weighting():
    battles, cosines = three_systems_on_a_path()
    data = similar_board(battles, cosines, power=2).to_dict()
    assert data["similarity"]["weighting"] == "max(0, cos)^power"
    assert data["similarity"]["effective_n"] == pytest.approx(100 / 8.5)
    assert {row["system"]: row["effective_votes"] for row in data["systems"]}["B"] == pytest.approx(100 / 8.5)


def test_rank_agreement_by_hand():
    # given two boards that swap the top two of four systems
    x = {"A": 1040.0, "B": 1030.0, "C": 990.0, "D": 940.0}
    y = {"B": 1100.0, "A": 1050.0, "C": 1000.0, "D": 900.0, "E": 800.0}  # E only on y
    # when
    agreement = rank_agreement(x, y)
    # then rho = 1 - 6 x (1 + 1) / (4 x 15) = 0.8; tau = (5 - 1) / 6
    assert agreement.n == 4
    assert agreement.spearman == pytest.approx(0.8)
    assert agreement.kendall == pytest.approx(4 / 6)
    # and the systems whose rank moved most, A down one and B up one
    moved = agreement.biggest_shifts()
    assert [(s.system, s.rank_x, s.rank_y, s.shift) for s in moved] == [("A", 1, 2, -1), ("B", 2, 1, 1)]
    # and the boards named in the JSON
    row = agreement.to_dict(names=("people", "judge"))["biggest_shifts"][0]
    assert row == {"system": "A", "rank_people": 1.0, "rank_judge": 2.0, "shift": -1.0, "rating_people": 1040.0,
                   "rating_judge": 1050.0}


def test_rank_agreement_is_undefined_below_three_systems_or_for_a_flat_board():
    assert rank_agreement({"A": 1.0, "B": 2.0}, {"A": 2.0, "B": 1.0}).spearman is None
    flat = rank_agreement({"A": 1.0, "B": 1.0, "C": 1.0}, {"A": 1.0, "B": 2.0, "C": 3.0})
    assert flat.spearman is None and flat.kendall is None
