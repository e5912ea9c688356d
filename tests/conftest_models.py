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
