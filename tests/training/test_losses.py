import math

import pytest
import torch

from training.recipes.losses import LOSSES, LossParams, PairLogratios, preference_loss


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x))


@pytest.fixture
def pairs():
    # two pairs: the first preferred by Δ = 3, the second dispreferred by Δ = -2
    return PairLogratios(
        chosen=torch.tensor([1.0, -1.5]),
        rejected=torch.tensor([-2.0, 0.5]),
        chosen_tokens=torch.tensor([4, 2]),
        rejected_tokens=torch.tensor([2, 5]),
    )


BETA, EPS = 0.5, 0.2
MARGINS = [3.0, -2.0]


def test_sigmoid_is_the_bradley_terry_negative_log_likelihood(pairs):
    expected = [-_log_sigmoid(BETA * m) for m in MARGINS]
    assert LOSSES["sigmoid"](pairs, LossParams(BETA)).tolist() == pytest.approx(expected)


def test_cdpo_smooths_the_label_by_the_flip_rate(pairs):
    expected = [-(1 - EPS) * _log_sigmoid(BETA * m) - EPS * _log_sigmoid(-BETA * m) for m in MARGINS]
    assert LOSSES["cdpo"](pairs, LossParams(BETA, EPS)).tolist() == pytest.approx(expected)


def test_robust_is_unbiased_for_the_clean_loss(pairs):
    expected = [(-(1 - EPS) * _log_sigmoid(BETA * m) + EPS * _log_sigmoid(-BETA * m)) / (1 - 2 * EPS)
                for m in MARGINS]
    loss = LOSSES["robust"](pairs, LossParams(BETA, EPS))
    assert loss.tolist() == pytest.approx(expected)
    # averaged over the label's flip (right with 1 - ε, flipped with ε) it is the clean DPO loss
    flipped = PairLogratios(pairs.rejected, pairs.chosen, pairs.rejected_tokens, pairs.chosen_tokens)
    average = (1 - EPS) * loss + EPS * LOSSES["robust"](flipped, LossParams(BETA, EPS))
    assert average.tolist() == pytest.approx(LOSSES["sigmoid"](pairs, LossParams(BETA)).tolist())


def test_ipo_regresses_the_per_token_margin_to_half_over_beta(pairs):
    expected = [(1.0 / 4 - (-2.0) / 2 - 1 / (2 * BETA)) ** 2, (-1.5 / 2 - 0.5 / 5 - 1 / (2 * BETA)) ** 2]
    assert LOSSES["ipo"](pairs, LossParams(BETA)).tolist() == pytest.approx(expected)


def test_hinge_is_zero_past_a_margin_of_one(pairs):
    expected = [max(0.0, 1 - BETA * m) for m in MARGINS]
    assert LOSSES["hinge"](pairs, LossParams(BETA)).tolist() == pytest.approx(expected)


def test_robust_and_cdpo_with_no_flips_are_dpo(pairs):
    dpo = LOSSES["sigmoid"](pairs, LossParams(BETA))
    for name in ("robust", "cdpo"):
        assert torch.allclose(LOSSES[name](pairs, LossParams(BETA, 0.0)), dpo)


def test_weighted_loss_scales_each_pair_and_ignores_weight_zero(pairs):
    params = LossParams(BETA)
    per_pair = LOSSES["sigmoid"](pairs, params)
    weighted = preference_loss(pairs, params, [("sigmoid", 1.0)], torch.tensor([0.5, 0.0]))
    # the mean is over the batch, so a weight-0 pair still counts in the denominator
    assert weighted.item() == pytest.approx(0.5 * per_pair[0].item() / 2)
    assert preference_loss(pairs, params, [("sigmoid", 1.0)], torch.zeros(2)).item() == 0.0


def test_weight_zero_pairs_get_no_gradient(pairs):
    chosen = pairs.chosen.clone().requires_grad_()
    weighted = PairLogratios(chosen, pairs.rejected, pairs.chosen_tokens, pairs.rejected_tokens)
    preference_loss(weighted, LossParams(BETA), [("sigmoid", 1.0)], torch.tensor([1.0, 0.0])).backward()
    assert chosen.grad[0] != 0 and chosen.grad[1] == 0


def test_combined_losses_add_their_weighted_means(pairs):
    params = LossParams(BETA, EPS)
    combined = preference_loss(pairs, params, [("robust", 1.0), ("ipo", 0.25)])
    expected = LOSSES["robust"](pairs, params).mean() + 0.25 * LOSSES["ipo"](pairs, params).mean()
    assert combined.item() == pytest.approx(expected.item())
