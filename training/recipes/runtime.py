"""Hardware choices and model loading for training.

Every load goes through ``arena.providers.localmodel.resolve_model_dir``, so the default model is the
converted safetensors copy of SmolLM2, never the GGUF file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

from .config import ModelSettings, RecipeError, TrainingRecipe, TrainingSettings


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu" or "cuda"
    adapter: str  # "lora" or "full"
    bf16: bool
    # Data-parallel processes in this run (WORLD_SIZE, set by torch.distributed.run) and this
    # one's rank; 1 and 0 in a run of one process.
    processes: int = 1
    rank: int = 0

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def is_main(self) -> bool:
        """The process that evaluates, saves and reports (rank 0)."""
        return self.rank == 0

    def micro_batch(self, settings: TrainingSettings) -> int:
        """Pairs per forward/backward in each process. On a GPU the default, the whole batch,
        is shared out between the processes."""
        if settings.micro_batch_size is None and self.device == "cuda":
            return max(1, settings.batch_size // self.processes)
        return settings.micro_batch(self.device)

    def accumulation(self, settings: TrainingSettings) -> int:
        """Micro-batches per optimiser step in each process, so that a step sees batch_size
        pairs whatever the number of processes."""
        per_step = self.micro_batch(settings) * self.processes
        if settings.batch_size % per_step:
            raise RecipeError(
                f"training.batch_size ({settings.batch_size}) must be a multiple of the micro-batch "
                f"({self.micro_batch(settings)}) times the {self.processes} training processes"
            )
        return settings.batch_size // per_step * settings.gradient_accumulation_steps

    def trainer_kwargs(self, gradient_checkpointing: bool) -> dict:
        """TrainingArguments that TRL defaults differently from what this machine wants.

        Both set explicitly. TRL defaults bf16=True, which on a CPU is an error without
        `use_cpu`; Duet uses bf16 autocast on a CPU only where the CPU has bf16 instructions
        (see ``select_runtime``). And TRL defaults gradient checkpointing on, which recomputes
        every forward in the backward pass to save activation memory a 135M model does not need.
        """
        return {
            "use_cpu": self.use_cpu,
            "bf16": self.bf16,
            "fp16": False,
            # transformers 5 renamed it; TRL still defaults the old name to True, and setting the
            # new one is what decides (the old one then mirrors it) without a deprecation warning.
            "activation_checkpointing": gradient_checkpointing,
            "dataloader_pin_memory": not self.use_cpu,
            "dataloader_num_workers": 0,
            # Several processes: gloo between CPU processes, NCCL between GPUs.
            "ddp_backend": None if self.processes == 1 else ("gloo" if self.use_cpu else "nccl"),
        }


def trainer_arguments(recipe: TrainingRecipe, kind: str, runtime: Runtime, output_dir: Path) -> dict:
    """The TrainingArguments every Duet run shares, DPO and reward alike (each config adds its own)."""
    settings = recipe.training
    micro_batch = runtime.micro_batch(settings)
    return {
        "output_dir": str(Path(output_dir) / "trainer"),
        "per_device_train_batch_size": micro_batch,
        "per_device_eval_batch_size": micro_batch,
        "gradient_accumulation_steps": runtime.accumulation(settings),
        "learning_rate": recipe.learning_rate(kind, runtime.adapter),
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "warmup_steps": settings.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "seed": settings.seed,
        "data_seed": settings.seed,
        "logging_steps": 1,  # one progress report (heartbeat) per optimiser step
        "save_strategy": "no",  # the run saves its artifacts itself, once, at the end
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        **runtime.trainer_kwargs(recipe.model.gradient_checkpointing),
    }


# glibc raises its mmap threshold each time a large block is freed, up to 32 MiB, so the
# activations of every later step come from the heap, whose freed holes it rarely gives back.
# Pinning the threshold at 1 MiB (which also stops the raising) returns each large tensor to
# the system when it is freed. Measured here, a LoRA step on two 512-token SmolLM2 sequences
# peaked at 3.3 GiB of RSS without it and 2.5 GiB with it.
MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def release_freed_tensors() -> bool:
    """Make large freed blocks go back to the system (glibc only); True when it applied."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, macOS): leave the allocator alone
        return False


def select_runtime(settings: ModelSettings) -> Runtime:
    import torch

    cuda = torch.cuda.is_available()
    if settings.device == "cuda" and not cuda:
        raise RuntimeError("model.device is 'cuda' but no CUDA device is visible")
    device = "cuda" if cuda and settings.device != "cpu" else "cpu"
    adapter = settings.adapter
    if adapter == "auto":
        # LoRA trains 4.9M of SmolLM2's 135M weights: no weight gradients or AdamW state for
        # the rest, which on a CPU is most of a step. A GPU trains them all in milliseconds.
        adapter = "full" if device == "cuda" else "lora"
    return Runtime(device=device, adapter=adapter, bf16=_uses_bf16(settings.precision, device),
                   processes=int(os.environ.get("WORLD_SIZE", "1")), rank=int(os.environ.get("RANK", "0")))


def _uses_bf16(precision: str, device: str) -> bool:
    """bf16 autocast over float32 master weights, where the hardware does bf16 matmuls natively.

    On a CPU that means avx512_bf16 or AMX (oneDNN's check). Measured on the shared 2-core
    avx512_bf16 machine, one thread: a SmolLM2 forward + backward of 2x128 tokens took 6.9-8.0 s
    under bf16 autocast and 9.7-12.2 s in float32. A CPU without them emulates bf16, slower.
    """
    import torch

    if precision != "auto":
        return precision == "bf16"
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def model_directory(name_or_path: str) -> Path:
    from arena.providers.localmodel import resolve_model_dir

    return resolve_model_dir(name_or_path)


def _load_config(directory: Path, **overrides):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
    # A checkpoint saved from a GGUF load carries a gguf quantization_config although its weights
    # are plain floats; with it, save_pretrained refuses and a reference copy cannot be built.
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def load_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(directory: Path):
    """(causal LM, tokenizer) in float32: bf16 on CUDA comes from autocast, keeping fp32 master weights."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _load_config(directory)
    model = AutoModelForCausalLM.from_pretrained(
        str(directory), config=config, dtype=torch.float32, local_files_only=True
    )
    return model, load_tokenizer(directory)


def load_reward_backbone(directory: Path):
    """A causal LM checkpoint as AutoModelForSequenceClassification with one output, the reward."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    tokenizer = load_tokenizer(directory)
    config = _load_config(directory, num_labels=1, pad_token_id=tokenizer.pad_token_id)
    # The new `score` head is missing from a causal LM checkpoint by design; don't warn about it.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(directory), config=config, dtype=torch.float32, local_files_only=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer


def lora_config(settings: ModelSettings, task_type: str):
    from peft import LoraConfig

    target = settings.lora_target_modules
    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        # TRL's disable_dropout zeroes it anyway; 0 says so.
        lora_dropout=0.0,
        target_modules=target if isinstance(target, str) else list(target),
        task_type=task_type,
        # The reward head is new and random: train it whole, not through a low-rank update.
        modules_to_save=["score"] if task_type == "SEQ_CLS" else None,
    )


def shared_on_disk(dataset, directory: Path):
    """The dataset saved by rank 0 and read back by every process.

    TRL caches the reference log-probs it precomputes in a file beside the dataset's own and
    has the other processes read it there; an in-memory dataset's files are in a temporary
    folder of each process, which the others cannot see.
    """
    from accelerate import PartialState
    from datasets import load_from_disk

    state = PartialState()
    with state.main_process_first():
        if state.is_main_process:
            dataset.save_to_disk(str(directory))
    return load_from_disk(str(directory))
