"""Fixtures for tests that run language models (a pytest plugin: ``pytest_plugins`` or ``-p``).

``tiny_model_dir``: a randomly initialised ~3 M parameter Llama with SmolLM2's tokenizer,
built once per session (~0.3 s when SmolLM2's converted copy exists, ~6 s otherwise).
``smollm2_dir``: the real SmolLM2-135M-Instruct converted to safetensors in the repo's
``var/models``, which outlives the run: the first run converts (~30 s), later ones reuse it.
Tests using it are marked ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_MODEL_CACHE = Path(__file__).resolve().parent.parent / "var" / "models"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from arena.providers.localmodel import ensure_converted

    return ensure_converted(REPO_MODEL_CACHE)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from arena.providers.localmodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A randomly initialised two-layer BERT (hidden size 16) and a word-level vocabulary:
    a stand-in for all-MiniLM-L6-v2 that loads in milliseconds."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-encoder")
    words = ("write a poem about the sea sky cat dog code python function sort list explain "
             "quantum physics recipe for bread cake how do i what is capital of france paris").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *list("abcdefghijklmnopqrstuvwxyz0123456789"), *words]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=300)  # fmt: skip
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
