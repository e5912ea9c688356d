"""Uncertainty filter before DPO, after UPO (Wang et al. 2024): drop the pairs a reward model
is least sure about under MC dropout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import DataSettings
from .pairs import PreferencePair


def preference_uncertainty(margins: np.ndarray) -> np.ndarray:
    """Std over MC-dropout passes of σ(r(c) − r(r)): margins shape (passes, n_pairs) -> (n_pairs,).

    On the probability scale, so a pair the model is sure about in every pass (σ near 0 or
    1 whatever the exact margin) counts as certain.
    """
    return (1 / (1 + np.exp(-margins))).std(axis=0)


def score_uncertainty(pairs: list[PreferencePair], reward_model_dir: str | Path, passes: int, rate: float,
                      max_length: int, batch_size: int = 8) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification

    from .evaluation import reward_margins
    from .reward import tokenize_for_reward
    from .runtime import load_tokenizer

    directory = Path(reward_model_dir)
    if (directory / "reward_model").is_dir():  # a train_reward_model output folder
        directory = directory / "reward_model"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(directory)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory), dtype=torch.float32, local_files_only=True
    ).to(device)
    rows = tokenize_for_reward(tokenizer, pairs, max_length)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    margins = reward_margins(model, rows, tokenizer.pad_token_id, batch_size, bf16, passes=passes, dropout=rate)
    return preference_uncertainty(margins)


def drop_uncertain_pairs(pairs: list[PreferencePair], settings: DataSettings) -> tuple[list[PreferencePair], int]:
    """(kept pairs, number dropped): the ``uncertainty_filter_fraction`` most uncertain go."""
    n_drop = int(settings.uncertainty_filter_fraction * len(pairs))
    if n_drop == 0:
        return list(pairs), 0
    uncertainty = score_uncertainty(pairs, settings.uncertainty_reward_model, settings.mc_dropout_passes,
                                    settings.mc_dropout_rate, settings.max_length)
    keep = np.sort(np.argsort(uncertainty, kind="stable")[: len(pairs) - n_drop])
    return [pairs[i] for i in keep], n_drop
