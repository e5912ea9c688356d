"""Uncertainty filter before DPO, after UPO (Wang et al. 2024): drop the pairs a reward model
is least sure about under MC dropout.

The reward model is a folder (``data.uncertainty_reward_model``) or, by default, trained
inside the run on the same training pairs with the run's own model settings: no pair of
the held-out split ever reaches the estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .config import DataSettings, TrainingRecipe
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


def train_estimator(pairs: list[PreferencePair], recipe: TrainingRecipe, directory: str | Path,
                    should_stop: Callable[[], bool] | None = None) -> Path:
    """A reward model on these pairs, with the run's model, length, step budget and (when the
    recipe sets one) learning rate; its folder.

    Hard labels and the plain Bradley-Terry loss: the estimator's doubt, not a method's
    weighting, is what the filter reads.
    """
    from .reward import train_reward_model

    settings = TrainingRecipe.from_dict({
        "model": recipe.to_dict()["model"],
        "data": {"validation_fraction": 0.0, "max_length": recipe.data.max_length},
        "training": {key: getattr(recipe.training, key) for key in (
            "epochs", "max_steps", "batch_size", "micro_batch_size", "seed", "warmup_ratio", "learning_rate")},
    })  # fmt: skip
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    result = train_reward_model(rows, settings, directory, should_stop=should_stop)
    return Path(result.output_dir)


def drop_uncertain_pairs(pairs: list[PreferencePair], settings: DataSettings,
                         estimator: Callable[[list[PreferencePair]], Path] | None = None,
                         ) -> tuple[list[PreferencePair], int]:
    """(kept pairs, number dropped): the ``uncertainty_filter_fraction`` most uncertain go.
    ``estimator(pairs)`` trains the reward model when ``uncertainty_reward_model`` is unset."""
    n_drop = int(settings.uncertainty_filter_fraction * len(pairs))
    if n_drop == 0:
        return list(pairs), 0
    reward_model = settings.uncertainty_reward_model
    if reward_model is None:
        if estimator is None:
            raise ValueError("no data.uncertainty_reward_model and no estimator to train one")
        reward_model = estimator(pairs)
    uncertainty = score_uncertainty(pairs, reward_model, settings.mc_dropout_passes,
                                    settings.mc_dropout_rate, settings.max_length)
    keep = np.sort(np.argsort(uncertainty, kind="stable")[: len(pairs) - n_drop])
    return [pairs[i] for i in keep], n_drop
