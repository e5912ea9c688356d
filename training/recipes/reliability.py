"""EM estimate of per-annotator reliability from the model's own preferences (LCPO-style).

Each pair i has a label from annotator a(i), right with probability ρ_a (the reliability).
The model under training says how likely the label is: p_i = σ(β·Δ_i), its implicit
Bradley-Terry probability that the chosen completion is the better one. Then

    E-step   w_i = ρ_a p_i / (ρ_a p_i + (1 - ρ_a)(1 - p_i))    posterior that label i is right
    M-step   ρ_a = (Σ_{i∈a} w_i + s·ρ0) / (n_a + s)            with a Beta prior worth s pairs

and w_i becomes pair i's loss weight. With p fixed the two steps are iterated to a fixed
point; the model's training between updates is the other half of the alternation.

The E-step assumes p_i does not already reflect label i. That holds for a pair the model has
not trained on yet, i.e. within the first epoch; from the second epoch on the model has
partly memorised the labels, flipped ones included, and ρ drifts toward 1 (bench/noise.py:
0.95 estimated for a true 0.6 after five epochs). A flip rate set by hand (prior 1 - ε)
anchors it; a strong prior (em_prior_strength of the order of the pair count) pins it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ρ stays inside (0, 1): at exactly 1 the posterior is 1 whatever the model says, and EM can
# never move again.
RELIABILITY_FLOOR = 0.01
RELIABILITY_CEILING = 0.99


@dataclass(frozen=True)
class ReliabilityEstimate:
    reliability: np.ndarray  # shape (n_annotators,)
    pair_weights: np.ndarray  # shape (n_pairs,)


def estimate_reliability(
    preference_prob: np.ndarray,  # shape (n_pairs,): p_i; NaN where the model has not seen the pair
    annotator: np.ndarray,  # shape (n_pairs,): annotator code per pair
    n_annotators: int,
    prior_reliability: float | np.ndarray = 0.8,
    prior_strength: float = 4.0,
    iterations: int = 20,
) -> ReliabilityEstimate:
    p = np.clip(np.asarray(preference_prob, dtype=np.float64), 1e-6, 1 - 1e-6)
    annotator = np.asarray(annotator)
    seen = ~np.isnan(p)
    counts = np.bincount(annotator[seen], minlength=n_annotators)
    # One prior mean for all, or one per annotator (shape (n_annotators,)).
    prior_reliability = np.broadcast_to(np.asarray(prior_reliability, dtype=np.float64), (n_annotators,))
    reliability = prior_reliability.copy()
    for _ in range(iterations):
        weights = label_posterior(p, reliability[annotator])
        totals = np.bincount(annotator[seen], weights=weights[seen], minlength=n_annotators)
        reliability = (totals + prior_strength * prior_reliability) / (counts + prior_strength)
        reliability = np.clip(reliability, RELIABILITY_FLOOR, RELIABILITY_CEILING)
    weights = label_posterior(p, reliability[annotator])
    # An unseen pair has no model opinion yet: its weight is its annotator's reliability.
    weights = np.where(seen, weights, reliability[annotator])
    return ReliabilityEstimate(reliability=reliability, pair_weights=weights)


def label_posterior(p, rho):
    """P(label right | model's preference p, annotator reliability ρ); numpy or torch alike."""
    right = rho * p
    return right / (right + (1 - rho) * (1 - p))
