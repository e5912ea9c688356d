"""Rating models.

A model is bound to its battles and promises what the interval strategies in
`intervals.py` need: a point fit, refits on resampled battles, and, where there is a
likelihood, a robust covariance. Parameters are in logits: one strength per system, then
any covariate coefficients. Strengths are identified only up to one shift per component of
the comparison graph; `scale.Normaliser` fixes it.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.special import expit

from .battles import WIN_CREDIT_A, Battles, BattleCounts
from .graph import component_labels
from .scale import BASE, INITIAL_RATING, POINTS_PER_LOGIT, SCALE
from .style import style_covariates


class RatingModel(ABC):
    """Contract for every rating model.

    Subclasses set `systems` and `coefficient_names` and implement `fit` and `bootstrap`;
    `robust_covariance` is optional (interval strategies that need it say so).
    """

    systems: tuple[str, ...]
    coefficient_names: tuple[str, ...] = ()

    @property
    def n_systems(self) -> int:
        return len(self.systems)

    @property
    def n_params(self) -> int:
        return self.n_systems + len(self.coefficient_names)

    @abstractmethod
    def fit(self) -> np.ndarray:
        """Point estimate, shape (n_params,)."""

    @abstractmethod
    def bootstrap(self, params: np.ndarray, rng: np.random.Generator, rounds: int) -> np.ndarray:
        """Estimates on `rounds` resamples of the battles, shape (rounds, n_params).
        `params` is the point estimate, for warm starts."""

    def robust_covariance(self, params: np.ndarray) -> np.ndarray:
        """Sandwich covariance of the estimate, shape (n_params, n_params), valid for any
        contrast the normaliser takes (its value along the free shifts is arbitrary)."""
        raise NotImplementedError(f"{type(self).__name__} has no likelihood, so no sandwich covariance")


# ---------------------------------------------------------------------------------------
# Bradley-Terry as a weighted logistic regression over rows (a, b, z):
#     P(a beats b) = sigmoid(theta[a] - theta[b] + z @ beta)


@dataclass(frozen=True, eq=False)
class LogisticDesign:
    """The design matrix X, one row e_a - e_b (+ z) per row, never built densely."""

    n_systems: int
    a: np.ndarray  # shape (n_rows,)
    b: np.ndarray  # shape (n_rows,)
    z: np.ndarray  # shape (n_rows, n_features); n_features may be 0

    def margins(self, params: np.ndarray) -> np.ndarray:
        """X @ params, shape (n_rows,)."""
        d = params[self.a] - params[self.b]
        if self.z.shape[1]:
            d = d + self.z @ params[self.n_systems :]
        return d

    def backprop(self, r: np.ndarray) -> np.ndarray:
        """X.T @ r, shape (n_params,)."""
        n = self.n_systems
        g = np.bincount(self.a, r, n) - np.bincount(self.b, r, n)
        if self.z.shape[1]:
            g = np.concatenate([g, self.z.T @ r])
        return g

    def gram(self, s: np.ndarray) -> np.ndarray:
        """X.T @ diag(s) @ X, shape (n_params, n_params)."""
        n, k = self.n_systems, self.z.shape[1]
        out = np.zeros((n + k, n + k))
        # a != b on every row, so the (a, b) cells never touch the diagonal.
        off = np.bincount(self.a * n + self.b, s, n * n).reshape(n, n)
        out[:n, :n] = np.diag(np.bincount(self.a, s, n) + np.bincount(self.b, s, n)) - off - off.T
        if k:
            sz = s[:, None] * self.z  # shape (n_rows, k)
            cross = np.stack([np.bincount(self.a, sz[:, j], n) - np.bincount(self.b, sz[:, j], n) for j in range(k)], 1)
            out[:n, n:] = cross
            out[n:, :n] = cross.T
            out[n:, n:] = self.z.T @ sz
        return out


def neg_log_likelihood(
    params: np.ndarray, design: LogisticDesign, w: np.ndarray, wy: np.ndarray, penalty: np.ndarray
) -> tuple[float, np.ndarray]:
    """Penalised negative log-likelihood and its gradient. `w` is the weight of each row,
    `wy` the win credit of side a in it (a tie gives half), both shape (n_rows,)."""
    d = design.margins(params)
    # logaddexp(0, d) is log(1 + e^d) without overflow for the huge margins of a system
    # that never lost.
    loss = np.sum(w * np.logaddexp(0.0, d) - wy * d) + 0.5 * np.dot(penalty * params, params)
    grad = design.backprop(w * expit(d) - wy) + penalty * params
    return loss, grad


# Gradient tolerance on the loss divided by the total weight. Curvature per strength is
# about 0.25 x (share of battles the system is in), so 1e-10 puts the point fit within
# ~1e-7 logits (~1e-5 rating points) of the optimum for a few hundred systems; bootstrap
# rounds only feed quantiles and stop earlier.
POINT_GTOL = 1e-10
BOOTSTRAP_GTOL = 1e-7
MAX_ITER = 2000


_BLAS_CONTROLLER = None


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """L-BFGS-B makes a handful of BLAS calls per iteration on vectors of n_params. With
    OpenBLAS's thread pool each call pays a wake-up: measured on 2 cores, a 4-system fit
    took 50 ms threaded and 0.4 ms on one thread. threadpoolctl ships with scikit-learn;
    without it the fits are only slower, not wrong."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return contextlib.nullcontext()
        # Scanning the loaded libraries costs ~4 ms; limiting through a kept controller
        # costs ~0.03 ms, which matters for the many small fits of matchmaking.
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def minimise_nll(
    design: LogisticDesign,
    w: np.ndarray,
    wy: np.ndarray,
    penalty: np.ndarray,
    init: np.ndarray | None = None,
    gtol: float = POINT_GTOL,
) -> np.ndarray:
    x0 = np.zeros(len(penalty)) if init is None else np.array(init, dtype=np.float64)
    total = float(w.sum())
    if total <= 0:
        return x0

    def scaled(params: np.ndarray) -> tuple[float, np.ndarray]:
        # Dividing by the total weight keeps the gradient O(1) whatever the number of
        # votes, so one tolerance fits every data size.
        loss, grad = neg_log_likelihood(params, design, w, wy, penalty)
        return loss / total, grad / total

    result = minimize(
        scaled, x0, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER, "gtol": gtol, "ftol": 1e-15}
    )
    return result.x


class BradleyTerry(RatingModel):
    """Bradley-Terry maximum likelihood on aggregated counts, optionally contextual (style
    control). A both_bad row still present counts as a tie; call
    `BattleCounts.resolve_both_bad("drop")` first to drop them."""

    def __init__(self, counts: BattleCounts, *, l2: float = 0.0, style: bool = False, style_l2: float = 1.0) -> None:
        if l2 < 0 or style_l2 < 0:
            raise ValueError("penalties must be non-negative")
        if style and not counts.has_style:
            raise ValueError("style control needs style features on the battles")
        self.systems = counts.systems
        self.counts = counts
        n = counts.n_systems
        if style:
            self.coefficient_names = counts.style_features
            z = style_covariates(counts.style_a, counts.style_b, counts.count)
        else:
            self.coefficient_names = ()
            z = np.zeros((len(counts.a), 0))
        self.l2 = l2
        self.penalty = np.concatenate([np.full(n, l2), np.full(len(self.coefficient_names), style_l2)])
        self.y = WIN_CREDIT_A[counts.outcome]  # shape (n_rows,)
        # The resampling unit is one battle; a row's weight per battle lets a resampled
        # count become a resampled weight.
        self.weight_per_battle = counts.weight / np.maximum(counts.count, 1)  # shape (n_rows,)
        self.rows = LogisticDesign(n, counts.a, counts.b, z)
        self.labels = component_labels(counts)  # shape (n_systems,)
        if style:
            self.fit_rows, self._to_fit_rows = self.rows, None
        else:
            # Without covariates the likelihood only sees, per pair, the total weight and
            # the total win credit: fitting on pairs instead of (pair, outcome) rows is
            # the same optimum with up to 4x fewer rows.
            pair_key, pair_of_row = np.unique(counts.a * n + counts.b, return_inverse=True)
            pair_of_row = pair_of_row.reshape(-1)
            self.fit_rows = LogisticDesign(n, pair_key // n, pair_key % n, np.zeros((len(pair_key), 0)))
            self._to_fit_rows = csr_matrix(
                (np.ones(len(pair_of_row)), (pair_of_row, np.arange(len(pair_of_row)))),
                shape=(len(pair_key), len(pair_of_row)),
            )

    def _collapse(self, row_values: np.ndarray) -> np.ndarray:
        """Row-level values of shape (..., n_rows) -> fit-row totals of shape (..., n_fit_rows)."""
        if self._to_fit_rows is None:
            return row_values
        return np.asarray((self._to_fit_rows @ row_values.T).T)

    def fit(self) -> np.ndarray:
        w = self.counts.weight
        with single_threaded_blas():
            return minimise_nll(self.fit_rows, self._collapse(w), self._collapse(w * self.y), self.penalty)

    def bootstrap(self, params: np.ndarray, rng: np.random.Generator, rounds: int) -> np.ndarray:
        n_battles = int(self.counts.count.sum())
        share = self.counts.count / max(n_battles, 1)
        out = np.empty((rounds, self.n_params))
        # Draw counts for a block of rounds at once, bounding the block to ~32 MB of int64.
        block = max(1, min(rounds, 2**22 // max(len(share), 1)))
        for start in range(0, rounds, block):
            m = min(block, rounds - start)
            weights = rng.multinomial(n_battles, share, size=m) * self.weight_per_battle  # shape (m, n_rows)
            fit_w = self._collapse(weights)  # shape (m, n_fit_rows)
            fit_wy = self._collapse(weights * self.y)
            with single_threaded_blas():
                for i in range(m):
                    out[start + i] = minimise_nll(
                        self.fit_rows, fit_w[i], fit_wy[i], self.penalty, params, BOOTSTRAP_GTOL
                    )
        return out

    def robust_covariance(self, params: np.ndarray) -> np.ndarray:
        p = expit(self.rows.margins(params))  # shape (n_rows,)
        bread = self.rows.gram(self.counts.weight * p * (1 - p)) + np.diag(self.penalty)
        # Each battle is an independent unit; all battles in a row share y and p, so the
        # row's outer-product sum is its summed squared weight times (y - p)^2. Ties make
        # y - p small, which is why this differs from the model-based covariance.
        meat = self.rows.gram(self.counts.weight_sq * (self.y - p) ** 2)
        # Matrices of a few hundred rows: BLAS threads cost more than they save, and on
        # a busy machine OpenBLAS's spinning threads made this step 50x slower.
        with single_threaded_blas():
            bread_inv = self._invert(bread)
            return bread_inv @ meat @ bread_inv

    def model_covariance(self, params: np.ndarray) -> np.ndarray:
        """Inverse Fisher information (same conventions as `robust_covariance`). Matchmaking
        uses it: with a handful of votes per pair the sandwich's meat is itself noisy."""
        p = expit(self.rows.margins(params))
        info = self.rows.gram(self.counts.weight * p * (1 - p)) + np.diag(self.penalty)
        with single_threaded_blas():
            return self._invert(info)

    def _invert(self, information: np.ndarray) -> np.ndarray:
        if self.l2 == 0:
            # Unpenalised strengths are free along one shift per component (singletons
            # included), so the information is singular there. Adding those directions
            # makes it invertible; the inverse then differs from the pseudo-inverse only
            # along them, which the normaliser removes.
            shifts = np.zeros((self.n_params, self.labels.max() + 1))
            shifts[np.arange(self.n_systems), self.labels] = 1.0
            shifts /= np.sqrt(shifts.sum(axis=0))
            information = information + shifts @ shifts.T
        return np.linalg.inv(information)


# ---------------------------------------------------------------------------------------
# Online Elo


def online_elo(
    battles: Battles,
    *,
    k: float = 4.0,
    scale: float = SCALE,
    base: float = BASE,
    initial: float = INITIAL_RATING,
) -> np.ndarray:
    """Elo ratings after playing the battles in order, shape (n_systems,). LMArena's
    convention: K=4, both_bad and tie score half a win, a weight multiplies K."""
    ratings = [initial] * len(battles.systems)
    credit = WIN_CREDIT_A[battles.outcome]
    # Plain Python floats: per-battle numpy calls would cost ~10x more for scalars.
    for a, b, s, w in zip(battles.a.tolist(), battles.b.tolist(), credit.tolist(), battles.weight.tolist()):
        ra, rb = ratings[a], ratings[b]
        expected_a = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        delta = k * w * (s - expected_a)
        ratings[a] = ra + delta
        ratings[b] = rb - delta
    return np.array(ratings)


def online_elo_resampled(
    battles: Battles,
    rng: np.random.Generator,
    rounds: int,
    *,
    k: float = 4.0,
    initial: float = INITIAL_RATING,
    steps_per_draw: int = 4096,
) -> np.ndarray:
    """Elo on `rounds` bootstrap resamples (battles drawn with replacement, in random
    order, as LMArena's notebook does), all rounds advanced together, shape
    (rounds, n_systems). Cost grows with the number of battles, not the rounds."""
    n_battles = len(battles)
    ratings = np.full((rounds, len(battles.systems)), initial)
    if n_battles == 0:
        return ratings
    credit = WIN_CREDIT_A[battles.outcome]
    row = np.arange(rounds)
    for start in range(0, n_battles, steps_per_draw):
        picks = rng.integers(0, n_battles, size=(min(steps_per_draw, n_battles - start), rounds))
        for pick in picks:
            a, b = battles.a[pick], battles.b[pick]
            expected_a = 1.0 / (1.0 + BASE ** ((ratings[row, b] - ratings[row, a]) / SCALE))
            delta = k * battles.weight[pick] * (credit[pick] - expected_a)
            ratings[row, a] += delta
            ratings[row, b] -= delta
    return ratings


class OnlineElo(RatingModel):
    """Online Elo, in battle order. No likelihood, so no sandwich intervals."""

    def __init__(self, battles: Battles, *, k: float = 4.0) -> None:
        self.systems = battles.systems
        self.battles = battles
        self.k = k

    def fit(self) -> np.ndarray:
        return (online_elo(self.battles, k=self.k) - INITIAL_RATING) / POINTS_PER_LOGIT

    def bootstrap(self, params: np.ndarray, rng: np.random.Generator, rounds: int) -> np.ndarray:
        return (online_elo_resampled(self.battles, rng, rounds, k=self.k) - INITIAL_RATING) / POINTS_PER_LOGIT
