"""Duet's training core: reward models and DPO-family tuning on preference pairs, through TRL.

Plain Python, no Django. The recipe and pair helpers import nothing heavy; the entry points
load torch, transformers and TRL on first use, so ``from training.recipes import train_dpo``
costs nothing until it is called.

    result = train_dpo(pairs, TrainingRecipe(), "var/runs/42", on_progress=..., should_stop=...)
"""

from __future__ import annotations

import importlib

from .config import DataSettings, ModelSettings, RecipeError, TrainingRecipe, TrainingSettings
from .pairs import PairSplit, PreferencePair, estimate_flip_rate, normalise_pairs, split_by_prompt

_LAZY = {
    "train_dpo": ".dpo",
    "train_reward_model": ".reward",
    "TrainResult": ".results",
    "PreferenceMetrics": ".evaluation",
    "Progress": ".results",
    "drop_uncertain_pairs": ".uncertainty",
    "to_dataset": ".pairs",
}

__all__ = [
    "DataSettings", "ModelSettings", "PairSplit", "PreferencePair", "RecipeError", "TrainingRecipe",
    "TrainingSettings", "estimate_flip_rate", "normalise_pairs", "split_by_prompt", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
