"""Confidence-interval strategies. Each takes a fitted model and returns intervals for
the normalised parameters; adding one means adding a class, not a branch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from statistics import NormalDist
from typing import ClassVar

import numpy as np

from .rating_models import RatingModel
from .scale import Normaliser


@dataclass(frozen=True, eq=False)
class Intervals:
    """Bounds in logits for every parameter, or None when no interval was computed."""

    low: np.ndarray | None  # shape (n_params,)
    high: np.ndarray | None  # shape (n_params,)


class IntervalEstimator(ABC):
    name: ClassVar[str]

    @abstractmethod
    def estimate(
        self, model: RatingModel, params: np.ndarray, normalise: Normaliser, confidence: float
    ) -> Intervals:
        """Two-sided intervals at `confidence` for `normalise(params)`, where `params` is
        `model.fit()`."""


class NoIntervals(IntervalEstimator):
    name = "none"

    def estimate(self, model, params, normalise, confidence):
        return Intervals(None, None)


class SandwichIntervals(IntervalEstimator):
    """Wald intervals from the robust (sandwich) covariance: milliseconds, and valid when
    ties make the outcome under-dispersed relative to the Bernoulli model."""

    name = "sandwich"

    def estimate(self, model, params, normalise, confidence):
        try:
            cov = normalise.covariance(model.robust_covariance(params))
        except NotImplementedError as error:
            raise ValueError(f"sandwich intervals are not available: {error}") from None
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        centre = normalise(params)
        # The standard library's quantile: scipy.stats costs ~0.7 s to import for one number.
        half = NormalDist().inv_cdf(0.5 + confidence / 2) * sd
        return Intervals(centre - half, centre + half)


@dataclass(frozen=True)
class BootstrapIntervals(IntervalEstimator):
    """Percentile intervals over refits on resampled battles."""

    name: ClassVar[str] = "bootstrap"
    rounds: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 2:
            raise ValueError("a bootstrap needs at least 2 rounds")

    def estimate(self, model, params, normalise, confidence):
        samples = normalise(model.bootstrap(params, np.random.default_rng(self.seed), self.rounds))
        alpha = 1 - confidence
        low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
        return Intervals(low, high)
