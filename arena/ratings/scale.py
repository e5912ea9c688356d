"""The rating scale: LMArena's convention, so Duet's numbers read like the public
leaderboards. A gap of 400 points means 10:1 odds; ratings centre on 1000."""

from __future__ import annotations

import math

import numpy as np

SCALE = 400.0
BASE = 10.0
INITIAL_RATING = 1000.0
# Models work in natural log-odds ("logits"); one logit is 400 / ln 10 ~ 173.7 points.
POINTS_PER_LOGIT = SCALE / math.log(BASE)


def to_points(logits: np.ndarray | float) -> np.ndarray | float:
    """Logit strength -> rating points (without the 1000 offset)."""
    return np.asarray(logits) * POINTS_PER_LOGIT


def win_probability(rating_i: np.ndarray | float, rating_j: np.ndarray | float) -> np.ndarray:
    """P(i beats j) for ratings on the points scale; ties count as half a win."""
    from scipy.special import expit

    return expit((np.asarray(rating_i, dtype=float) - np.asarray(rating_j, dtype=float)) / POINTS_PER_LOGIT)


class Normaliser:
    """Fixes the one free shift per component of the comparison graph: strengths get mean
    zero in each component, or zero at the anchor in the anchor's component. It is linear,
    so it applies alike to a point estimate, bootstrap samples and a covariance."""

    def __init__(self, labels: np.ndarray, anchor: int | None = None) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)  # shape (n_systems,)
        self.anchor = anchor
        n_components = int(self.labels.max()) + 1 if len(self.labels) else 0
        self._one_hot = np.zeros((len(self.labels), n_components))  # shape (n_systems, n_components)
        self._one_hot[np.arange(len(self.labels)), self.labels] = 1.0
        self._sizes = self._one_hot.sum(axis=0)  # shape (n_components,)

    def __call__(self, params: np.ndarray) -> np.ndarray:
        """params: shape (..., n_params), strengths first; covariate coefficients pass through."""
        n = len(self.labels)
        theta = params[..., :n]
        reference = (theta @ self._one_hot) / self._sizes  # shape (..., n_components)
        if self.anchor is not None:
            reference[..., self.labels[self.anchor]] = theta[..., self.anchor]
        out = np.array(params, dtype=np.float64, copy=True)
        out[..., :n] = theta - reference[..., self.labels]
        return out

    def covariance(self, cov: np.ndarray) -> np.ndarray:
        """Covariance of the normalised parameters, given that of the raw ones."""
        matrix = self(np.eye(cov.shape[0])).T  # shape (n_params, n_params): normalised = matrix @ raw
        return matrix @ cov @ matrix.T
