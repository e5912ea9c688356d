"""What a training entry point returns: a typed record the Django task stores as JSON."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .evaluation import PreferenceMetrics


@dataclass(frozen=True)
class Progress:
    """One optimiser step, as reported to ``on_progress``."""

    step: int
    total_steps: int
    loss: float
    reward_accuracy: float | None  # on this step's training batch
    epoch: float


@dataclass
class TrainResult:
    kind: str  # "dpo" or "reward"
    cancelled: bool
    output_dir: str
    # LoRA: the adapter folder; full fine-tuning: the model folder. None when cancelled.
    model_dir: str | None
    # A complete checkpoint + tokenizer: for DPO a causal LM that arena.providers.localmodel.load_causal_lm
    # loads; for a reward model an AutoModelForSequenceClassification with one label.
    merged_dir: str | None
    device: str
    adapter: str  # "lora" or "full"
    steps: int
    total_steps: int
    train_loss: float | None  # mean over the run's logged steps
    final_loss: float | None  # the last logged step
    metrics: PreferenceMetrics | None  # on the held-out split; None when cancelled or no split
    n_train: int
    n_validation: int
    n_filtered_uncertain: int = 0
    flip_rate: float | None = None  # ε used by robust / cdpo / posterior weights
    # Per annotator: the reliability the posterior weights used last (re-estimated by EM).
    reliability: dict[str, float] = field(default_factory=dict)
    runtime_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def result_after_training(kind: str, trainer, progress, runtime, output_dir: Path, started: float,
                          **fields) -> TrainResult:
    """What every run reports once ``trainer.train()`` returns, finished or cancelled."""
    losses = progress.losses
    return TrainResult(
        kind=kind, cancelled=progress.cancelled, output_dir=str(output_dir), model_dir=None, merged_dir=None,
        device=runtime.device, adapter=runtime.adapter, steps=trainer.state.global_step,
        total_steps=trainer.state.max_steps, train_loss=sum(losses) / len(losses) if losses else None,
        final_loss=losses[-1] if losses else None, metrics=None, n_train=len(trainer.train_dataset),
        runtime_s=time.monotonic() - started, **fields,
    )


def write_run_record(result: TrainResult, recipe, output_dir: Path, started: float) -> None:
    """recipe.json and result.json next to the artifacts, so a run folder explains itself."""
    result.runtime_s = time.monotonic() - started
    (output_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))
    (output_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=2))


class Phases:
    """What a run is doing, reported to ``on_phase(phase, done, total)``: loading, reference,
    training, evaluation, saving, each with a count of its work (pairs, or optimiser steps for
    training; 0 of 0 when a phase has nothing to count)."""

    def __init__(self, on_phase: Callable[[str, int, int], None] | None):
        self.on_phase = on_phase
        self.phase, self.done, self.total = "", 0, 0

    def start(self, phase: str, total: int = 0) -> None:
        self.phase, self.done, self.total = phase, 0, total
        self._report()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        self._report()

    def _report(self) -> None:
        if self.on_phase is not None:
            self.on_phase(self.phase, self.done, self.total)


def planned_steps(trainer) -> int:
    """Optimiser steps the trainer will take, before it starts (its state knows only after)."""
    args = trainer.args
    if args.max_steps > 0:
        return args.max_steps
    micro_batches = math.ceil(len(trainer.train_dataset) / args.per_device_train_batch_size)
    return math.ceil(math.ceil(micro_batches / args.gradient_accumulation_steps) * args.num_train_epochs)
