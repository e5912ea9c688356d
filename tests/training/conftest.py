"""Tiny-model fixtures for the training tests: easy data and recipes sized for 2 shared cores."""

from __future__ import annotations

import pytest

from training.recipes import TrainingRecipe

# A high rate so the ~3 M parameter random model learns the marker in a handful of steps.
TINY_LEARNING_RATE = 1e-2


def easy_pairs(n: int, annotators: str = "ab", flipped: str = "") -> list[dict]:
    """Chosen answers always contain the marker " good", rejected ones " bad".

    Annotators named in ``flipped`` report every label the wrong way round.
    """
    pairs = []
    for i in range(n):
        annotator = annotators[i % len(annotators)]
        good, bad = f" good {i % 5}", f" bad {i % 5}"
        if annotator in flipped:
            good, bad = bad, good
        pairs.append({"prompt": f"Question {i}?", "chosen": good, "rejected": bad, "annotator": annotator})
    return pairs


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models on one thread: on the shared 2-core test machine a tiny Llama's step took
    ~20 ms on one thread and ~1 s on two, which spin against the other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_recipe(tiny_model_dir):
    def make(adapter: str = "lora", validation_fraction: float = 0.0, max_length: int = 32,
             **training) -> TrainingRecipe:
        training = {"batch_size": 4, "learning_rate": TINY_LEARNING_RATE, "warmup_ratio": 0.0, **training}
        return TrainingRecipe.from_dict({
            "model": {"name_or_path": str(tiny_model_dir), "adapter": adapter, "device": "cpu", "lora_r": 4},
            "data": {"validation_fraction": validation_fraction, "max_length": max_length},
            "training": training,
        })

    return make
