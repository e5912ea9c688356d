"""TRL trainers as Duet uses them: a progress/cancel callback and a weighted DPOTrainer."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import TrainerCallback
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from .evaluation import batch_completion_logps, peft_base
from .losses import LossParams, PairLogratios, preference_loss
from .reliability import RELIABILITY_CEILING, RELIABILITY_FLOOR, estimate_reliability, label_posterior
from .results import Progress


class ProgressCallback(TrainerCallback):
    """Reports every logged step and stops training when ``should_stop()`` returns True.

    ``should_stop`` is called once per optimiser step (seconds apart on CPU), so it may read
    the database.
    """

    def __init__(self, on_progress: Callable[[Progress], None] | None,
                 should_stop: Callable[[], bool] | None, accuracy_key: str):
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.accuracy_key = accuracy_key
        self.cancelled = False
        self.losses: list[float] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        self.losses.append(float(logs["loss"]))
        if self.on_progress is not None:
            accuracy = logs.get(self.accuracy_key)
            self.on_progress(Progress(
                step=state.global_step,
                total_steps=state.max_steps,
                loss=float(logs["loss"]),
                reward_accuracy=None if accuracy is None else float(accuracy),
                epoch=float(state.epoch or 0.0),
            ))

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            control.should_training_stop = True


@dataclass
class PairIndexCollator:
    """TRL's preference collator, plus each pair's row in the training set (to look up its weight)."""

    base: DataCollatorForPreference

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.base(examples)
        if "pair_index" in examples[0]:
            batch["pair_index"] = torch.tensor([example["pair_index"] for example in examples])
        return batch


class FixedWeights:
    """Each pair's weight is given up front (Duet's export: the posterior that its label is right)."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights.float()  # shape (n_train_pairs,)

    def __call__(self, pair_index: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        return self.weights[pair_index].to(margins.device)


class PosteriorWeights:
    """EM's weights: the posterior that each label is right, given its annotator's reliability
    and the model's preference for it when the pair is trained on.

    Computing the posterior at training time rather than at the last re-estimation matters:
    a pair is weighted by what the model, trained on the other pairs, thinks of it now, not
    by a margin from an epoch ago (or none at all, in a one-epoch run). The reliabilities (the
    M-step) are re-estimated every few steps by ``ReliabilityCallback``.
    """

    def __init__(self, annotator_names: Sequence[str], annotator: Sequence[int],
                 prior_reliability: float | Sequence[float], prior_strength: float):
        """``prior_reliability``: one for all, or one per annotator (the quality report's)."""
        self.names = list(annotator_names)
        self.annotator = torch.as_tensor(annotator, dtype=torch.long)  # shape (n_train_pairs,)
        prior = np.broadcast_to(np.clip(np.asarray(prior_reliability, dtype=np.float64),
                                        RELIABILITY_FLOOR, RELIABILITY_CEILING), (len(self.names),)).copy()
        self.reliability = torch.from_numpy(prior).float()  # shape (n_annotators,)
        self.prior = (prior, prior_strength)
        self.updates = 0

    def __call__(self, pair_index: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        rho = self.reliability[self.annotator[pair_index]].to(margins.device)
        return label_posterior(torch.sigmoid(margins.detach().float()), rho)

    def update(self, pair_margins: torch.Tensor) -> None:
        p = torch.sigmoid(pair_margins).double().numpy()
        estimate = estimate_reliability(p, self.annotator.numpy(), len(self.names), *self.prior)
        self.reliability = torch.from_numpy(estimate.reliability).float()
        self.updates += 1

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, map(float, self.reliability), strict=True))


class DuetDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer with two changes: a prompt longer than ``max_prompt_length`` tokens keeps
    its end instead of the pair being dropped, and the reference pass reports its progress.

    TRL (1.16) truncates prompt + completion to ``max_length`` keeping the start, and drops a
    pair whose prompt alone fills it: a long HH-RLHF dialogue would either vanish or lose the
    answer. Cutting the prompt to its latest turns first leaves every completion at least
    ``max_length - max_prompt_length`` tokens, and chosen and rejected the same prompt.
    """

    def __init__(self, *args, max_prompt_length: int, on_reference_start: Callable[[], None] | None = None,
                 on_reference_batch: Callable[[int], None] | None = None, **kwargs):
        self.max_prompt_length = max_prompt_length
        # The reference pass over the training set (TRL runs it inside __init__, hence set before
        # it) calls these: once before it starts, then with the number of pairs of each batch.
        self.on_reference_start = on_reference_start
        self.on_reference_batch = on_reference_batch
        self._precomputing = False
        super().__init__(*args, **kwargs)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        untruncated = copy.copy(args)
        untruncated.max_length = None  # TRL's filter of long prompts off: they are cut below instead
        dataset = super()._prepare_dataset(dataset, processing_class, untruncated, dataset_name)
        budget = self.max_prompt_length
        return dataset.map(lambda row: {"prompt_ids": row["prompt_ids"][-budget:]},
                           desc=f"Keeping the last {budget} prompt tokens")

    def _precompute_ref_logps(self, dataset, name, batch_size):
        self._precomputing = True
        if self.on_reference_start is not None:
            self.on_reference_start()
        try:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        finally:
            self._precomputing = False

    def compute_ref_log_probs(self, model, inputs):
        if self._precomputing and self.ref_model is None and adapter_is_identity(self.model):
            chosen, rejected = self._untouched_policy_logps(model, inputs)
        else:
            chosen, rejected = super().compute_ref_log_probs(model, inputs)
        if self._precomputing and self.on_reference_batch is not None:
            self.on_reference_batch(len(chosen))
        return chosen, rejected

    def _untouched_policy_logps(self, model, inputs):
        """The reference log-probs as the policy's own, while its LoRA adapters add exactly zero.

        TRL runs the reference with the adapters disabled, and toggling them costs PEFT a walk
        over every module each batch (0.4 s of a 2.7 s SmolLM2 reference batch here). Before
        the first step LoRA's B matrices are zero, so the adapted model is the base. The LM
        head scores only the completion tokens (``batch_completion_logps``).
        """
        with torch.no_grad(), self.accelerator.autocast():
            logps = batch_completion_logps(peft_base(self.accelerator.unwrap_model(model)), inputs)
        return logps.chunk(2, dim=0)


def adapter_is_identity(model) -> bool:
    """True for a PEFT model whose LoRA adapters are all still at their initial zero update."""
    lora_b = [param for name, param in model.named_parameters() if "lora_B" in name]
    return bool(lora_b) and not any(param.detach().any() for param in lora_b)


class WeightedDPOTrainer(DuetDPOTrainer):
    """DPOTrainer with Duet's loss registry and a weight per training pair.

    Only the loss changes: tokenization, the reference (precomputed, or the base with LoRA
    disabled), optimisation and logging are TRL's. ``pair_weighting`` maps a batch's
    ``pair_index`` (its rows in the training set) and margins to one weight per pair.
    """

    def __init__(self, *args, loss_terms: Sequence[tuple[str, float]], loss_params: LossParams,
                 pair_weighting: FixedWeights | PosteriorWeights, n_pairs: int,
                 pair_flip_rates: torch.Tensor | None = None, **kwargs):
        self.loss_terms = tuple(loss_terms)
        self.loss_params = loss_params
        self.pair_weighting = pair_weighting
        self.pair_flip_rates = pair_flip_rates  # shape (n_pairs,): soft labels' ε per pair, else None
        # β·Δ of each pair when last trained on; NaN until then. Read by the EM update.
        self.pair_margins = torch.full((n_pairs,), float("nan"))
        super().__init__(*args, **kwargs)
        self.data_collator = PairIndexCollator(self.data_collator)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "pair_index" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "pair_index"]

    def compute_ref_log_probs(self, model, inputs):
        inputs = {key: value for key, value in inputs.items() if key != "pair_index"}
        return super().compute_ref_log_probs(model, inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pair_index = inputs.pop("pair_index").cpu()
        pairs = self._pair_logratios(model, inputs)
        margins = (self.beta * pairs.margin).detach()  # the implicit reward margins
        weights = self.pair_weighting(pair_index, margins)
        params = self.loss_params
        if self.pair_flip_rates is not None:
            params = dataclasses.replace(params, flip_rate=self.pair_flip_rates[pair_index].to(margins.device))
        loss = preference_loss(pairs, params, self.loss_terms, weights)

        self.pair_margins[pair_index] = margins.float().cpu()
        metrics = self._metrics["train" if model.training else "eval"]
        metrics["rewards/accuracies"].append((margins > 0).float().mean().item())
        metrics["rewards/margins"].append(margins.mean().item())
        metrics["pair_weight"].append(weights.mean().item())
        return loss

    def _pair_logratios(self, model, inputs) -> PairLogratios:
        completion_mask = inputs["completion_mask"]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                        labels=labels, use_cache=False, fused_lm_head=True)
        shift_mask = completion_mask[:, 1:]
        # The fused head scores only labelled positions and leaves 0 elsewhere.
        logps = outputs.log_probs[:, -shift_mask.size(1):].sum(dim=1)
        if "ref_chosen_logps" in inputs:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = self.compute_ref_log_probs(self.ref_model or model, inputs)
        chosen, rejected = logps.chunk(2)
        chosen_tokens, rejected_tokens = shift_mask.sum(dim=1).chunk(2)
        return PairLogratios(
            chosen=chosen - ref_chosen.to(chosen.device),
            rejected=rejected - ref_rejected.to(rejected.device),
            chosen_tokens=chosen_tokens,
            rejected_tokens=rejected_tokens,
        )


class ReliabilityCallback(TrainerCallback):
    """The M-step: re-estimates annotator reliability every ``every_steps`` steps, or after
    each epoch when 0, from the margins the trainer recorded."""

    def __init__(self, trainer: WeightedDPOTrainer, every_steps: int):
        self.trainer = trainer
        self.every_steps = every_steps

    def on_step_end(self, args, state, control, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            self.trainer.pair_weighting.update(self.trainer.pair_margins)

    def on_epoch_end(self, args, state, control, **kwargs):
        if not self.every_steps:
            self.trainer.pair_weighting.update(self.trainer.pair_margins)
