import numpy as np
import pytest

from training.recipes.reliability import estimate_reliability


def test_em_lowers_the_reliability_and_weights_of_a_planted_flipping_annotator():
    # given three annotators; the model agrees with a and b (p ≈ 0.8) and disagrees with c,
    # who flips every label it gives
    rng = np.random.default_rng(0)
    annotator = np.repeat([0, 1, 2], 30)
    p = np.where(annotator == 2, rng.uniform(0.1, 0.35, 90), rng.uniform(0.65, 0.9, 90))
    # when re-estimated
    estimate = estimate_reliability(p, annotator, 3, prior_reliability=0.8, prior_strength=4)
    # then c is found unreliable and its pairs weigh less than anyone else's
    reliability = estimate.reliability
    assert reliability[2] < 0.3 < 0.8 < min(reliability[0], reliability[1])
    assert estimate.pair_weights[annotator == 2].max() < estimate.pair_weights[annotator != 2].min()


def test_posterior_weight_follows_bayes_rule():
    # with no prior pull and one pair per annotator, check one E-step by hand
    p = np.array([0.9, 0.5])
    estimate = estimate_reliability(p, np.array([0, 0]), 1, prior_reliability=0.8, prior_strength=1e9)
    rho = estimate.reliability[0]
    assert rho == pytest.approx(0.8)
    assert estimate.pair_weights[0] == pytest.approx(0.8 * 0.9 / (0.8 * 0.9 + 0.2 * 0.1))
    # the model has no opinion on the second pair, so its posterior is the prior
    assert estimate.pair_weights[1] == pytest.approx(0.8)


def test_pairs_the_model_has_not_seen_keep_their_annotators_reliability():
    p = np.array([0.9, 0.85, np.nan])
    estimate = estimate_reliability(p, np.array([0, 0, 0]), 1)
    assert estimate.pair_weights[2] == pytest.approx(estimate.reliability[0])
    assert not np.isnan(estimate.pair_weights).any()


def test_an_annotator_with_few_pairs_stays_near_the_prior():
    annotator = np.array([0] * 50 + [1])
    p = np.full(51, 0.2)
    estimate = estimate_reliability(p, annotator, 2, prior_reliability=0.8, prior_strength=4)
    assert estimate.reliability[1] > 0.5 > estimate.reliability[0]
