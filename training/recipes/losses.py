"""DPO-family losses as a registry of small per-pair functions.

Each loss maps a batch of pairs to one loss per pair (shape ``(n_pairs,)``); the reduction,
the mix of several losses and the per-pair weights happen once, in ``preference_loss``.
``sigmoid``, ``robust``, ``ipo`` and ``hinge`` reproduce TRL 1.16's DPOTrainer numerics (a
test pins that); ``cdpo`` is Duet's, because TRL ignores ``label_smoothing`` for ``sigmoid``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PairLogratios:
    """Log-probability ratios against the reference, summed over each completion's tokens."""

    chosen: torch.Tensor  # shape (n_pairs,): log π(y_c|x) - log π_ref(y_c|x)
    rejected: torch.Tensor  # shape (n_pairs,): log π(y_r|x) - log π_ref(y_r|x)
    chosen_tokens: torch.Tensor  # shape (n_pairs,): completion lengths, for IPO's normalisation
    rejected_tokens: torch.Tensor  # shape (n_pairs,)

    @property
    def margin(self) -> torch.Tensor:
        """Δ; the implicit reward margin is β·Δ."""
        return self.chosen - self.rejected


@dataclass(frozen=True)
class LossParams:
    beta: float
    flip_rate: float = 0.0  # ε: probability that a pair's label is flipped (robust, cdpo)


LossFn = Callable[[PairLogratios, LossParams], torch.Tensor]
LOSSES: dict[str, LossFn] = {}


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    def register(fn: LossFn) -> LossFn:
        LOSSES[name] = fn
        return fn

    return register


@register_loss("sigmoid")
def sigmoid_loss(pairs: PairLogratios, params: LossParams) -> torch.Tensor:
    """DPO (Rafailov et al. 2023): the Bradley-Terry negative log-likelihood of the label."""
    return -F.logsigmoid(params.beta * pairs.margin)


@register_loss("cdpo")
def conservative_loss(pairs: PairLogratios, params: LossParams) -> torch.Tensor:
    """cDPO: the label is right with probability 1 - ε, so the target is smoothed toward ½."""
    logits = params.beta * pairs.margin
    eps = params.flip_rate
    return -(1 - eps) * F.logsigmoid(logits) - eps * F.logsigmoid(-logits)


@register_loss("robust")
def robust_loss(pairs: PairLogratios, params: LossParams) -> torch.Tensor:
    """rDPO (Chowdhury et al. 2024): an unbiased estimate of the clean loss under flip rate ε.

    Unlike cDPO it subtracts the flipped term, so its gradient is the clean gradient in
    expectation; the 1 / (1 - 2ε) factor makes it large as ε nears ½.
    """
    logits = params.beta * pairs.margin
    eps = params.flip_rate
    return (-(1 - eps) * F.logsigmoid(logits) + eps * F.logsigmoid(-logits)) / (1 - 2 * eps)


@register_loss("ipo")
def ipo_loss(pairs: PairLogratios, params: LossParams) -> torch.Tensor:
    """IPO (Azar et al. 2023), Eq. 17 with β as τ, on per-token mean log-ratios as in TRL.

    The squared loss would otherwise grow with completion length.
    """
    chosen = pairs.chosen / pairs.chosen_tokens.clamp(min=1)
    rejected = pairs.rejected / pairs.rejected_tokens.clamp(min=1)
    return (chosen - rejected - 1 / (2 * params.beta)) ** 2


@register_loss("hinge")
def hinge_loss(pairs: PairLogratios, params: LossParams) -> torch.Tensor:
    """SLiC (Zhao et al. 2023): zero once the implicit reward margin exceeds 1."""
    return torch.relu(1 - params.beta * pairs.margin)


def preference_loss(
    pairs: PairLogratios,
    params: LossParams,
    terms: Sequence[tuple[str, float]],
    pair_weights: torch.Tensor | None = None,  # shape (n_pairs,)
) -> torch.Tensor:
    """Σ_k w_k · mean_i(weight_i · loss_k(pair_i)), TRL's way of combining several losses.

    The mean is over all pairs of the batch, not over the weights' sum: a batch of doubtful
    pairs moves the model less, and a pair of weight 0 contributes nothing.
    """
    per_pair = sum(weight * LOSSES[name](pairs, params) for name, weight in terms)
    if pair_weights is not None:
        per_pair = per_pair * pair_weights.to(per_pair.dtype)
    return per_pair.mean()
