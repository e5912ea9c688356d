"""Synthetic battles with known strengths, shared by the rating tests."""

from __future__ import annotations

import numpy as np

from arena.ratings import Battles

# P(tie) = TIE_FACTOR * p * (1 - p), split so that E[win credit of a] = p exactly: the
# tie-as-half-a-win Bradley-Terry fit is then consistent for the planted strengths.
TIE_FACTOR = 0.6


def draw_outcomes(p_a: np.ndarray, rng: np.random.Generator, both_bad_share: float = 0.0) -> np.ndarray:
    p_tie = TIE_FACTOR * p_a * (1 - p_a)
    u = rng.random(len(p_a))
    a_wins = u < p_a - p_tie / 2
    tie = ~a_wins & (u < p_a + p_tie / 2)
    both_bad = tie & (rng.random(len(p_a)) < both_bad_share)
    return np.where(a_wins, 0, np.where(tie, np.where(both_bad, 3, 2), 1)).astype(np.int8)


def random_pairs(n_systems: int, n_battles: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(0, n_systems, n_battles)
    b = (a + rng.integers(1, n_systems, n_battles)) % n_systems
    return a, b


def simulate_battles(
    strengths: np.ndarray, n_battles: int, rng: np.random.Generator, both_bad_share: float = 0.0
) -> Battles:
    """Battles among systems with the given logit strengths, uniformly random pairs."""
    a, b = random_pairs(len(strengths), n_battles, rng)
    p_a = 1 / (1 + np.exp(-(strengths[a] - strengths[b])))
    names = [f"s{i}" for i in range(len(strengths))]
    return Battles.from_arrays(names, a, b, draw_outcomes(p_a, rng, both_bad_share))


def centred_points(strengths: np.ndarray) -> np.ndarray:
    from arena.ratings import INITIAL_RATING, POINTS_PER_LOGIT

    return INITIAL_RATING + (strengths - strengths.mean()) * POINTS_PER_LOGIT
