"""A reward-model and a DPO run in bf16 on one CUDA GPU: steps/s, peak memory and model FLOPs
utilisation (MFU), for a short device session.

Both runs go through Duet's entry points as the worker calls them (train_reward_model,
train_dpo) with the recipe's CUDA defaults: full fine-tuning, bf16 autocast over float32
master weights, the whole batch in one micro-batch. Pairs: Anthropic HH-RLHF harmless-base
(test split), truncated to --max-length as a run would.

MFU is an estimate: 6 x parameters x tokens per optimiser step (forward + backward, unpadded
tokens of both sequences of every pair), over the steady-state step time (steps 2+), against
--peak-tflops (H200 dense bf16: 989). DPO's reference log-probs are computed before training
and are not in the training loop's FLOPs.

    .venv/bin/python bench/gpu_training.py [--steps 20] [--batch-size 16] [--max-length 512]
        [--peak-tflops 989] [--model var/models/smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_training.py needs a CUDA GPU, and torch.cuda.is_available() is False here "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
    if not torch.cuda.is_bf16_supported():
        raise SystemExit(f"{torch.cuda.get_device_name()} has no bf16 support; this benchmark measures bf16")


def tokens_per_pair(pairs, model_dir: Path, max_length: int) -> float:
    """Mean unpadded tokens of a pair's two sequences, each cut to max_length."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    total = 0
    for pair in pairs:
        for side in ("chosen", "rejected"):
            total += min(max_length, len(tokenizer(pair["prompt"] + pair[side])["input_ids"]) + 1)
    return total / len(pairs)


def timed_run(kind: str, pairs, args, model_dir: Path, workdir: Path) -> dict:
    import torch

    from training.recipes import TrainingRecipe, train_dpo, train_reward_model

    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": str(model_dir), "device": "cuda", "precision": "bf16"},
        "data": {"max_length": args.max_length, "validation_fraction": 0.0},
        "training": {"batch_size": args.batch_size, "max_steps": args.steps, "seed": 0},
    })
    step_times: list[float] = []
    phase_starts: dict[str, float] = {}
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    train = train_dpo if kind == "dpo" else train_reward_model
    result = train(pairs, recipe, workdir / kind,
                   on_progress=lambda progress: step_times.append(time.perf_counter()),
                   on_phase=lambda phase, done, total: phase_starts.setdefault(phase, time.perf_counter()))
    torch.cuda.synchronize()
    total_s = time.perf_counter() - started
    steady = (len(step_times) - 1) / (step_times[-1] - step_times[0]) if len(step_times) > 1 else float("nan")
    loop_end = phase_starts.get("saving", time.perf_counter())
    return {
        "kind": kind, "steps": result.steps, "adapter": result.adapter, "total_s": total_s,
        "loop_steps_per_s": result.steps / (loop_end - phase_starts["training"]),
        "steady_steps_per_s": steady,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per optimiser step")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak (H200/H100 SXM: 989)")
    parser.add_argument("--model", help="a model folder (default: the converted SmolLM2-135M-Instruct)")
    args = parser.parse_args()
    require_cuda()

    import torch

    from arena.providers.localmodel import ensure_converted
    from bench.training import load_hh_pairs

    model_dir = Path(args.model) if args.model else ensure_converted(REPO / "var" / "models")
    pairs = load_hh_pairs(args.steps * args.batch_size, None, seed=0)
    tokens_per_step = tokens_per_pair(pairs, model_dir, args.max_length) * args.batch_size
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(model_dir))).parameters())
    print(f"{torch.cuda.get_device_name()}; {model_dir.name}, {n_params / 1e6:.0f}M parameters; {args.steps} steps "
          f"of {args.batch_size} pairs, max_length {args.max_length} (~{tokens_per_step:,.0f} tokens a step); "
          f"peak {args.peak_tflops:g} TFLOP/s", flush=True)
    print(f"{'run':<8}{'steps/s (loop)':>16}{'steps/s (2+)':>14}{'tokens/s':>11}{'MFU':>8}{'peak GiB':>10}{'total s':>9}")
    with tempfile.TemporaryDirectory(prefix="duet-gpu-bench-") as workdir:
        for kind in ("reward", "dpo"):
            row = timed_run(kind, pairs, args, model_dir, Path(workdir))
            tokens_per_s = row["steady_steps_per_s"] * tokens_per_step
            mfu = 6 * n_params * tokens_per_s / (args.peak_tflops * 1e12)
            print(f"{kind:<8}{row['loop_steps_per_s']:>16.2f}{row['steady_steps_per_s']:>14.2f}{tokens_per_s:>11,.0f}"
                  f"{mfu:>8.1%}{row['peak_gib']:>10.2f}{row['total_s']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
