"""Reward models under noisy labels: TRL's RewardTrainer with the soft and rDPO losses.

A reward model's Bradley-Terry loss is DPO's with the implicit reward margin β·Δ replaced
by r(chosen) − r(rejected), so the same per-pair loss functions (``losses.py``) apply with
β = 1: ``cdpo`` with each pair's own ε is the soft-label cross-entropy (method ``soft``),
``robust`` with one ε is rDPO's unbiased loss (method ``rdpo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from datasets import Dataset
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from .config import TrainingRecipe
from .losses import LOSSES, LossParams, PairLogratios
from .noise import pair_flip_rates
from .pairs import PreferencePair

# The loss each method trains a reward model with; a method absent here keeps TRL's loss.
METHOD_LOSSES = {"soft": "cdpo", "rdpo": "robust"}


@dataclass
class FlipRateCollator(DataCollatorForPreference):
    """TRL's collator, plus each pair's ε (``flip_rate``) as a tensor of shape (n_pairs,)."""

    def torch_call(self, examples):
        batch = super().torch_call(examples)
        batch["flip_rate"] = torch.tensor([example["flip_rate"] for example in examples], dtype=torch.float)
        return batch


def reward_trainer(train_pairs: Sequence[PreferencePair], recipe: TrainingRecipe, rows: list[dict], **kwargs):
    """The reward trainer for the recipe's method, on the tokenized ``rows`` of ``train_pairs``;
    its ``flip_rate`` is rdpo's ε (None for the other methods)."""
    method = recipe.training.method
    if method not in METHOD_LOSSES:
        trainer = RewardTrainer(train_dataset=Dataset.from_list(rows), **kwargs)
        trainer.flip_rate = None
        return trainer
    flip_rate = None
    if method == "soft":
        flip_rates = pair_flip_rates(train_pairs)  # each pair's own ε
    else:
        from .noise import resolve_flip_rate

        flip_rate = resolve_flip_rate(train_pairs, recipe)  # one ε, the quality report's unless set
        flip_rates = [flip_rate] * len(train_pairs)
    rows = [{**row, "flip_rate": float(rate)} for row, rate in zip(rows, flip_rates, strict=True)]
    trainer = NoisyLabelRewardTrainer(train_dataset=Dataset.from_list(rows), loss_name=METHOD_LOSSES[method],
                                      pad_token_id=kwargs["processing_class"].pad_token_id, **kwargs)  # fmt: skip
    trainer.flip_rate = flip_rate
    return trainer


class NoisyLabelRewardTrainer(RewardTrainer):
    """RewardTrainer whose loss is ``loss_name`` from the registry, with ε per pair."""

    def __init__(self, *args, loss_name: str, pad_token_id: int, **kwargs):
        self.loss_name = loss_name
        super().__init__(*args, data_collator=FlipRateCollator(pad_token_id=pad_token_id), **kwargs)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "flip_rate" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "flip_rate"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        flip_rate = inputs.pop("flip_rate")
        margin = inputs.pop("margin", None)
        outputs = model(**inputs, use_cache=False)
        chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        if margin is not None:
            chosen = chosen - margin
        ones = torch.ones_like(chosen)
        pairs = PairLogratios(chosen=chosen, rejected=rejected, chosen_tokens=ones, rejected_tokens=ones)
        loss = LOSSES[self.loss_name](pairs, LossParams(beta=1.0, flip_rate=flip_rate.to(chosen.dtype))).mean()
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
        with torch.no_grad():
            self._metrics[mode]["accuracy"].append((chosen > rejected).float().mean().item())
            self._metrics[mode]["margin"].append((chosen - rejected).mean().item())
        return (loss, outputs) if return_outputs else loss
