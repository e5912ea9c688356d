"""The training recipe: one grouped, validated dataclass that a TrainingRun stores as JSON.

Imports nothing heavy, so the web process can validate a recipe a researcher submits
without loading torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODEL = "smollm2-135m-instruct"  # arena.providers.localmodel.DEFAULT_MODEL, not imported to stay light

# Losses TRL's DPOTrainer computes itself (trl 1.16 `loss_type`); anything else, or any per-pair
# weighting, runs through Duet's loss registry in `WeightedDPOTrainer`.
TRL_LOSSES = frozenset({"sigmoid", "robust", "ipo", "hinge"})
DPO_LOSSES = ("sigmoid", "robust", "ipo", "hinge", "cdpo")
FLIP_RATE_LOSSES = frozenset({"robust", "cdpo"})
DEFAULT_RELIABILITY = 0.8  # an annotator's prior reliability when nothing says otherwise
ADAPTERS = ("auto", "lora", "full")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
PAIR_WEIGHTING = ("none", "fixed", "posterior", "em")

# Learning rates when the recipe leaves it unset. LoRA trains ~1% of the weights from a zero
# start, so it needs a rate two orders of magnitude above full fine-tuning's.
DEFAULT_LEARNING_RATES = {
    ("dpo", "lora"): 5e-4,
    ("dpo", "full"): 5e-6,
    ("reward", "lora"): 1e-3,
    ("reward", "full"): 1e-5,
}


class RecipeError(ValueError):
    """A recipe value is out of range or unknown; the message names the field."""


@dataclass
class ModelSettings:
    name_or_path: str = DEFAULT_MODEL  # the default model's name, or a local checkpoint folder
    adapter: str = "auto"  # auto: LoRA on CPU, full fine-tuning on CUDA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    device: str = "auto"
    # auto: bf16 autocast (float32 master weights) where the device does bf16 natively (a CUDA
    # GPU, a CPU with avx512_bf16 or AMX), float32 elsewhere.
    precision: str = "auto"
    # Data-parallel processes (torch.distributed: gloo on CPUs, NCCL on GPUs); None: the
    # worker's DUET_TRAINING_PROCESSES.
    processes: int | None = None
    # Off by default everywhere: it recomputes the forward during backward (~30% slower) to save
    # activation memory that a 135M model does not need. TRL's default is on.
    gradient_checkpointing: bool = False

    def __post_init__(self):
        if isinstance(self.lora_target_modules, list):
            self.lora_target_modules = tuple(self.lora_target_modules)
        _check_choice("model.adapter", self.adapter, ADAPTERS)
        _check_choice("model.device", self.device, DEVICES)
        _check_choice("model.precision", self.precision, PRECISIONS)
        _check(self.processes is None or self.processes >= 1, "model.processes must be at least 1")
        _check(self.lora_r >= 1, "model.lora_r must be at least 1")
        _check(self.lora_alpha > 0, "model.lora_alpha must be positive")
        _check(bool(self.name_or_path), "model.name_or_path is required")


@dataclass
class DataSettings:
    validation_fraction: float = 0.1  # of prompts, not pairs: no prompt is in both splits
    split_seed: int = 0
    # Memory on a CPU grows with the tokens of one micro-batch (about 1 GiB of peak RSS per
    # 512-token sequence with LoRA on SmolLM2, measured here), so every sequence is cut to
    # max_length tokens of prompt + completion. DPO keeps the END of a prompt longer than
    # max_prompt_length (a long dialogue's latest turns) and the START of each completion; a
    # reward model keeps the end of the whole dialogue (the reward is read at its last token).
    max_length: int = 512
    max_prompt_length: int | None = None  # None: half of max_length
    # Uncertainty filter (UPO): score pairs with a reward model under MC dropout and drop the
    # most uncertain fraction before DPO. 0 turns it off (the `upo` method: 0.25 unless set).
    uncertainty_filter_fraction: float = 0.0
    # A folder written by train_reward_model; None: one is trained inside the run, on the
    # same training split (noise.py's `upo`).
    uncertainty_reward_model: str | None = None
    mc_dropout_passes: int = 8
    mc_dropout_rate: float = 0.1

    def __post_init__(self):
        _check(0.0 <= self.validation_fraction < 1.0, "data.validation_fraction must be in [0, 1)")
        _check(self.max_length >= 8, "data.max_length must be at least 8 tokens")
        _check(
            self.max_prompt_length is None or 1 <= self.max_prompt_length < self.max_length,
            "data.max_prompt_length must be at least 1 and below data.max_length",
        )
        _check(0.0 <= self.uncertainty_filter_fraction < 1.0, "data.uncertainty_filter_fraction must be in [0, 1)")
        _check(self.mc_dropout_passes >= 2, "data.mc_dropout_passes must be at least 2")
        _check(0.0 < self.mc_dropout_rate < 1.0, "data.mc_dropout_rate must be in (0, 1)")

    @property
    def prompt_budget(self) -> int:
        """Tokens a DPO prompt keeps (its end); the completions get the rest of max_length."""
        return self.max_prompt_length or self.max_length // 2


@dataclass
class TrainingSettings:
    # What the run does with who judged what (noise.METHODS): majority, soft, em, rdpo, upo.
    # soft and rdpo set the loss, em the pair weighting.
    method: str = "majority"
    # DPO family: one loss or a weighted combination (TRL's loss_type list + loss_weights).
    losses: tuple[str, ...] = ("sigmoid",)
    loss_weights: tuple[float, ...] | None = None
    beta: float = 0.1
    # ε, the probability that a label is flipped, for `robust` (rDPO) and `cdpo`. None: estimated
    # from the pairs' weights (mean of 1 - weight).
    flip_rate: float | None = None
    # none: every pair counts once. fixed: each pair's loss times its weight from the data.
    # posterior: times the posterior that its label is right, from its annotator's reliability
    # and the model's current preference. em: posterior, with each annotator's reliability
    # re-estimated from the model's preferences every em_every_steps (LCPO-style EM).
    pair_weighting: str = "none"
    em_every_steps: int = 0  # 0: re-estimate once per epoch
    # Prior mean of an annotator's reliability; None: 1 - flip rate when one is set or
    # estimated from the weights, else 0.8.
    em_prior_reliability: float | None = None
    em_prior_strength: float = 4.0  # ... worth this many pairs
    # Reward model: margin = scale * (2 * weight - 1), so unanimous pairs must be won by more.
    reward_margin_scale: float = 0.0
    center_rewards_coefficient: float | None = None  # TRL's; 0.01 is the paper's value
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8  # pairs per optimiser step
    # Pairs per forward/backward: batch_size is reached by accumulating gradients over
    # micro-batches, so memory depends on this and data.max_length, never on batch_size.
    # None: 1 on a CPU (each pair is two sequences; one micro-batch of 8 pairs at 512 tokens
    # took a SmolLM2 worker past 15 GB), the whole batch on a GPU.
    micro_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.losses, str):
            self.losses = (self.losses,)
        self.losses = tuple(self.losses)
        if self.loss_weights is not None:
            self.loss_weights = tuple(float(w) for w in self.loss_weights)
        _check(len(self.losses) >= 1, "training.losses needs at least one loss")
        for name in self.losses:
            _check_choice("training.losses", name, DPO_LOSSES)
        self._apply_method()
        _check(len(set(self.losses)) == len(self.losses), "training.losses lists a loss twice")
        _check(
            self.loss_weights is None or len(self.loss_weights) == len(self.losses),
            "training.loss_weights must have one weight per loss",
        )
        _check(
            self.loss_weights is None or all(w >= 0 and math.isfinite(w) for w in self.loss_weights),
            "training.loss_weights must be finite and non-negative",
        )
        _check(self.beta > 0, "training.beta must be positive")
        # rDPO divides by 1 - 2ε, so ε = 0.5 is a division by zero and beyond it the loss inverts.
        _check(
            self.flip_rate is None or 0.0 <= self.flip_rate < 0.5, "training.flip_rate must be in [0, 0.5)"
        )
        _check_choice("training.pair_weighting", self.pair_weighting, PAIR_WEIGHTING)
        _check(self.em_every_steps >= 0, "training.em_every_steps must be >= 0")
        _check(
            self.em_prior_reliability is None or 0.5 < self.em_prior_reliability < 1.0,
            "training.em_prior_reliability must be in (0.5, 1)",
        )
        _check(self.em_prior_strength >= 0, "training.em_prior_strength must be >= 0")
        _check(self.reward_margin_scale >= 0, "training.reward_margin_scale must be >= 0")
        _check(
            self.center_rewards_coefficient is None or self.center_rewards_coefficient >= 0,
            "training.center_rewards_coefficient must be >= 0",
        )
        _check(self.learning_rate is None or self.learning_rate > 0, "training.learning_rate must be positive")
        _check(self.epochs > 0 or self.max_steps > 0, "training.epochs or training.max_steps must be positive")
        _check(self.batch_size >= 1, "training.batch_size must be at least 1")
        _check(self.gradient_accumulation_steps >= 1, "training.gradient_accumulation_steps must be at least 1")
        _check(
            self.micro_batch_size is None or 1 <= self.micro_batch_size <= self.batch_size,
            "training.micro_batch_size must be between 1 and training.batch_size",
        )
        _check(
            self.micro_batch_size is None or self.batch_size % self.micro_batch_size == 0,
            "training.batch_size must be a multiple of training.micro_batch_size",
        )
        _check(0.0 <= self.warmup_ratio < 1.0, "training.warmup_ratio must be in [0, 1)")

    def _apply_method(self) -> None:
        from .noise import MethodError, check_method, implied_losses

        try:
            check_method(self.method)
            if self.method in ("soft", "rdpo"):
                _check(self.loss_weights is None or len(self.loss_weights) == 1,
                       f"training.method {self.method!r} trains with one loss; drop training.loss_weights")
                self.losses = implied_losses(self.method, self.losses)
                self.loss_weights = None
        except MethodError as exc:
            raise RecipeError(f"training.method: {exc}") from None
        if self.method == "em":
            _check(self.pair_weighting in ("none", "em"),
                   f"training.method 'em' weights pairs itself; pair_weighting {self.pair_weighting!r} contradicts it")
            self.pair_weighting = "em"
        elif self.method == "soft":
            _check(self.pair_weighting == "none",
                   "training.method 'soft' sets each pair's target itself; leave training.pair_weighting at 'none'")

    def micro_batch(self, device: str) -> int:
        """Pairs per forward/backward on this device (see micro_batch_size)."""
        if self.micro_batch_size is not None:
            return self.micro_batch_size
        return 1 if device == "cpu" else self.batch_size

    def accumulation(self, device: str) -> int:
        """Micro-batches per optimiser step."""
        return self.batch_size // self.micro_batch(device) * self.gradient_accumulation_steps

    @property
    def weighted_terms(self) -> tuple[tuple[str, float], ...]:
        weights = self.loss_weights or (1.0,) * len(self.losses)
        return tuple(zip(self.losses, weights, strict=True))

    @property
    def uses_flip_rate(self) -> bool:
        return bool(FLIP_RATE_LOSSES & set(self.losses)) or self.pair_weighting in ("posterior", "em")

    def prior_reliability(self, flip_rate: float | None) -> float:
        if self.em_prior_reliability is not None:
            return self.em_prior_reliability
        return 1.0 - flip_rate if flip_rate else DEFAULT_RELIABILITY

    @property
    def needs_duet_loss(self) -> bool:
        """True when TRL's own loss cannot express the recipe (cDPO, soft labels, or per-pair weights)."""
        return self.pair_weighting != "none" or not set(self.losses) <= TRL_LOSSES


@dataclass
class TrainingRecipe:
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    def __post_init__(self):
        for name, kind in (("model", ModelSettings), ("data", DataSettings), ("training", TrainingSettings)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _build(kind, value, name))
            elif not isinstance(value, kind):
                raise RecipeError(f"{name} must be a {kind.__name__} or a dict")
        if self.training.method == "upo" and self.data.uncertainty_filter_fraction == 0.0:
            from .noise import DEFAULT_UPO_FRACTION

            self.data.uncertainty_filter_fraction = DEFAULT_UPO_FRACTION

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainingRecipe:
        """Build from stored JSON; unknown groups or fields are errors, not silently dropped."""
        data = dict(data or {})
        unknown = set(data) - {"model", "data", "training"}
        if unknown:
            raise RecipeError(f"unknown recipe groups: {sorted(unknown)}")
        return cls(**{name: dict(value or {}) for name, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    def learning_rate(self, kind: str, adapter: str) -> float:
        return self.training.learning_rate or DEFAULT_LEARNING_RATES[(kind, adapter)]


def _build(kind, values: dict[str, Any], group: str):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise RecipeError(f"unknown {group} fields: {sorted(unknown)}")
    return kind(**values)


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RecipeError(message)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise RecipeError(f"{name}: {value!r} is not one of {list(choices)}")
