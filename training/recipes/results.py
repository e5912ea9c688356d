"""What a training entry point returns: a typed record the Django task stores as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
    # A complete checkpoint + tokenizer: for DPO a causal LM that arena.localmodel.load_causal_lm
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
