import numpy as np
import pytest

from training.recipes.evaluation import SequenceLogps, accuracy, dpo_metrics, reward_metrics
from training.recipes.uncertainty import preference_uncertainty


def _logps(chosen, rejected, chosen_tokens, rejected_tokens):
    return SequenceLogps(*(np.array(values, dtype=float) for values in (chosen, rejected, chosen_tokens,
                                                                          rejected_tokens)))


def test_ties_count_half():
    assert accuracy(np.array([1.0, -1.0, 0.0, 2.0])) == 0.625
    assert np.isnan(accuracy(np.array([])))


def test_dpo_metrics_on_a_hand_made_case():
    # given a reference and a policy over three held-out pairs
    reference = _logps([-10, -20, -5], [-12, -15, -5], [5, 10, 2], [2, 10, 2])
    policy = _logps([-9, -18, -6], [-13, -16, -4], [5, 10, 2], [2, 10, 2])
    # when scored with β = 0.1
    metrics = dpo_metrics(policy, reference, beta=0.1)
    # then the implicit reward margins are β·[(π−ref)(c) − (π−ref)(r)] = 0.1·[2, 3, -2]
    assert metrics.n_pairs == 3
    assert metrics.preference_accuracy == pytest.approx(2 / 3)
    assert metrics.mean_reward_margin == pytest.approx(0.1 * (2 + 3 - 2) / 3)
    # ranking: summed log-probs, policy c>r in pairs 1 and 2 (−9>−13, −18<−16, −6<−4)
    assert metrics.ranking_accuracy == pytest.approx(1 / 3)
    assert metrics.base_ranking_accuracy == pytest.approx(1 / 3 + 0.5 / 3)  # −10>−12, −20<−15, tie
    # length-normalised: pair 1 −1.8 vs −6.5, pair 2 −1.8 vs −1.6, pair 3 −3 vs −2
    assert metrics.ranking_accuracy_normalised == pytest.approx(1 / 3)
    # reference per token: −2 > −6, −2 < −1.5, a tie
    assert metrics.base_ranking_accuracy_normalised == pytest.approx(1 / 3 + 0.5 / 3)


def test_an_unchanged_policy_has_no_preference_yet():
    reference = _logps([-1, -2], [-3, -1], [1, 1], [1, 1])
    assert dpo_metrics(reference, reference, beta=0.1).preference_accuracy == 0.5


def test_reward_metrics_compare_tuned_and_base_margins():
    metrics = reward_metrics(np.array([0.5, 1.0, -0.2, 0.1]), base_margins=np.array([-1.0, 0.3, 0.0, -0.1]))
    assert metrics.preference_accuracy == 0.75
    assert metrics.base_preference_accuracy == pytest.approx(1.5 / 4)
    assert metrics.ranking_accuracy is None


def test_uncertainty_is_the_spread_of_the_preference_probability_over_passes():
    margins = np.array([[3.0, 0.1, 8.0], [3.0, -0.1, 12.0], [3.0, 0.4, 10.0]])  # (passes, pairs)
    uncertainty = preference_uncertainty(margins)
    assert uncertainty[0] == 0.0
    # a pair near the decision boundary is uncertain; one far from it is not, whatever its margin
    assert uncertainty[1] > 10 * uncertainty[2]
