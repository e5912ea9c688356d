"""Benchmarks of training on real preference pairs (Anthropic HH-RLHF, harmless-base test split).

Memory (the default): the worker's peak RSS, whole process, for a reward-model and a DPO run
on 200 and on 2,000 pairs with Duet's default recipe (SmolLM2-135M, LoRA on a CPU, batches
of 8 pairs in micro-batches of 1, max_length 512), every pair taken as it comes: long
dialogues are truncated, not skipped. Each run is a child process running train_reward_model
/ train_dpo as the Celery worker does, for --steps optimiser steps (memory is bounded per
micro-batch, so a step of 8 micro-batches shows the peak; the dataset is tokenized whole),
evaluated on --validation-pairs held-out pairs. Prints a table.

    .venv/bin/python bench/training.py [--sizes 200 2000] [--steps 1] [--validation-pairs 8]

Speed (--compare): DPO with Duet's default recipe against TRL's defaults, same model, same data.
Pairs come from Anthropic HH-RLHF (harmless-base, test split): each row holds two whole
dialogues; the prompt is their common prefix up to the last "\\n\\nAssistant:", the
completions what follows. Each configuration runs in its own subprocess (a clean peak RSS),
for the same number of optimiser steps over the same pairs in the same order:

  Duet   TrainingRecipe() defaults via build_dpo_trainer: LoRA on CPU (full on CUDA),
         reference log-probs precomputed, gradient checkpointing off, bf16 only on CUDA.
  TRL    DPOConfig() defaults: full fine-tuning, a reference model forward every step,
         gradient checkpointing on, bf16 autocast (on a CPU TRL's default bf16=True is an
         error without use_cpu=True, which is the one extra flag it gets).
Both get the same batch size, max_length, seed and step count. Reports the training loop's
steps/s, the setup time (model load, tokenization, reference precompute), peak memory, and
held-out implicit-reward (preference) and ranking accuracy of each after training.
Prints figures; not a test.

    .venv/bin/python bench/training.py --compare [--tiny] [--train-pairs 16] [--eval-pairs 32]
                                       [--batch-size 2] [--max-length 128] [--steps 8]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HH_TEST = REPO / "tests" / "data" / "real" / "hh-rlhf-harmless-base-test.jsonl.gz"
ASSISTANT = "\n\nAssistant:"
# Chars per token of SmolLM2's tokenizer on English dialogue, with margin: pairs longer than
# this many chars per token of max_length would be truncated, so they are not sampled.
CHARS_PER_TOKEN = 3.5


def hh_pair(chosen: str, rejected: str) -> dict | None:
    """Split two HH-RLHF dialogues into a shared prompt and two completions."""
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(ASSISTANT)
    if cut < 0:
        return None
    cut += len(ASSISTANT)
    pair = {"prompt": chosen[:cut], "chosen": chosen[cut:], "rejected": rejected[cut:]}
    if not pair["chosen"].strip() or not pair["rejected"].strip() or pair["chosen"] == pair["rejected"]:
        return None
    return pair


def load_hh_pairs(n: int, max_length: int | None, seed: int, path: Path = HH_TEST) -> list[dict]:
    """n pairs with distinct prompts, sampled with the seed; with max_length, only those that fit it."""
    pairs, prompts = [], set()
    with gzip.open(path, "rt") as lines:
        for line in lines:
            row = json.loads(line)
            pair = hh_pair(row["chosen"], row["rejected"])
            if pair is None or pair["prompt"] in prompts:
                continue
            longest = len(pair["prompt"]) + max(len(pair["chosen"]), len(pair["rejected"]))
            if max_length is None or longest <= CHARS_PER_TOKEN * max_length:
                prompts.add(pair["prompt"])
                pairs.append(pair)
    random.Random(seed).shuffle(pairs)
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} HH-RLHF pairs fit max_length={max_length}")
    return pairs[:n]


# --- memory: one run, in its own process --------------------------------------------------

def memory_run(kind: str, n_pairs: int, args: argparse.Namespace) -> dict:
    from training.recipes import TrainingRecipe, train_dpo, train_reward_model

    pairs = load_hh_pairs(n_pairs + args.validation_pairs, None, args.seed)
    recipe = TrainingRecipe.from_dict({"model": {"name_or_path": args.model_dir},
                                       "training": {"max_steps": args.steps, "seed": args.seed}})
    phases: dict[str, float] = {}
    clock = {"phase": None, "at": time.perf_counter()}

    def on_phase(phase, done, total):
        now = time.perf_counter()
        if clock["phase"] is not None:
            phases[clock["phase"]] = phases.get(clock["phase"], 0.0) + now - clock["at"]
        clock.update(phase=phase, at=now)

    train = train_dpo if kind == "dpo" else train_reward_model
    started = time.perf_counter()
    result = train(pairs[: n_pairs], recipe, Path(args.workdir) / f"{kind}-{n_pairs}",
                   validation_pairs=pairs[n_pairs:], on_phase=on_phase)
    on_phase("done", 0, 0)
    return {
        "kind": kind, "n_pairs": n_pairs, "steps": result.steps, "device": result.device,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        "total_s": time.perf_counter() - started, "phases_s": phases,
    }


def memory_main(args: argparse.Namespace) -> None:
    from arena.providers.localmodel import ensure_converted

    model_dir = ensure_converted(REPO / "var" / "models")
    print(f"SmolLM2-135M-Instruct, Duet's default recipe, {args.steps} optimiser step(s) of 8 pairs, "
          f"{args.validation_pairs} held-out pairs; HH-RLHF harmless-base test pairs as they come")
    print(f"{'run':<8}{'pairs':>7}{'peak RSS (MiB)':>16}{'time (s)':>10}  phases (s)")
    with tempfile.TemporaryDirectory(prefix="duet-bench-") as workdir:
        for n_pairs in args.sizes:
            for kind in ("reward", "dpo"):
                command = [sys.executable, __file__, "--memory-worker", kind, "--n", str(n_pairs), "--model-dir",
                           str(model_dir), "--workdir", workdir, "--steps", str(args.steps), "--validation-pairs",
                           str(args.validation_pairs), "--seed", str(args.seed), "--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    sys.stderr.write(done.stderr[-4000:])
                    raise SystemExit(f"{kind} run on {n_pairs} pairs failed (exit {done.returncode})")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                phases = ", ".join(f"{name} {seconds:.0f}" for name, seconds in row["phases_s"].items())
                print(f"{kind:<8}{n_pairs:>7,}{row['peak_rss_mb']:>16,.0f}{row['total_s']:>10.0f}  {phases}",
                      flush=True)


# --- speed: one configuration, in its own process ---------------------------------------

def run_config(config: str, args: argparse.Namespace) -> dict:
    from transformers import PrinterCallback, TrainerCallback

    from training.recipes import TrainingRecipe, normalise_pairs
    from training.recipes.dpo import build_dpo_trainer
    from training.recipes.evaluation import completion_logps, dpo_metrics
    from training.recipes.pairs import to_dataset
    from training.recipes.runtime import select_runtime

    pairs = load_hh_pairs(args.train_pairs + args.eval_pairs, args.max_length, args.seed)
    train_pairs = normalise_pairs(pairs[: args.train_pairs])
    eval_pairs = normalise_pairs(pairs[args.train_pairs:])

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.durations = []

        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.durations.append(time.perf_counter() - self.started)

    # Pay the imports before the clock starts: a worker process pays them once, not per run
    # (peft alone takes ~3.5 s here and only the LoRA configuration would be charged for it).
    import peft  # noqa: F401
    import trl  # noqa: F401

    timer = StepTimer()
    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": args.model_dir},
        "data": {"max_length": args.max_length, "validation_fraction": 0.0},
        "training": {"batch_size": args.batch_size, "max_steps": args.steps, "seed": args.seed},
    })
    started = time.perf_counter()
    out = Path(args.workdir) / config
    if config == "duet":
        trainer = build_dpo_trainer(train_pairs, recipe, out, callbacks=[timer])
    else:
        trainer = _trl_default_trainer(args, train_pairs, out, timer)
    setup_s = time.perf_counter() - started
    trainer.remove_callback(PrinterCallback)

    # The held-out reference log-probs: the base model is the same checkpoint in both runs,
    # so the first run computes them and the second reads them.
    validation = trainer._prepare_dataset(to_dataset(eval_pairs), trainer.processing_class, trainer.args, "eval")
    reference_file = Path(args.workdir) / "reference_logps.json"
    evaluate = lambda: completion_logps(  # noqa: E731
        trainer.model, validation, trainer.processing_class.pad_token_id, args.max_length, batch_size=8)
    if not reference_file.exists():
        reference = evaluate()
        reference_file.write_text(json.dumps({k: v.tolist() for k, v in vars(reference).items()}))
    reference = _logps_from(json.loads(reference_file.read_text()))

    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    metrics = dpo_metrics(evaluate(), reference, trainer.beta)

    import torch

    runtime = select_runtime(recipe.model)
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    steady = timer.durations[1:] or timer.durations  # the first step pays one-off allocation
    return {
        "config": config,
        "device": runtime.device,
        "setup_s": setup_s,
        "train_s": train_s,
        "steps": trainer.state.global_step,
        "steps_per_s": trainer.state.global_step / train_s,
        "steady_steps_per_s": len(steady) / sum(steady),
        "peak_mb": peak_mb,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "preference_accuracy": metrics.preference_accuracy,
        "ranking_accuracy": metrics.ranking_accuracy,
        "base_ranking_accuracy": metrics.base_ranking_accuracy,
        "n_eval": metrics.n_pairs,
    }


def _trl_default_trainer(args, train_pairs, out: Path, timer):
    import torch
    from trl import DPOConfig, DPOTrainer

    from training.recipes.runtime import load_tokenizer

    cpu = not torch.cuda.is_available()
    config = DPOConfig(
        output_dir=str(out),
        # the run's shape, shared with Duet's
        per_device_train_batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps,
        seed=args.seed,
        # bookkeeping, no effect on the maths
        report_to="none", save_strategy="no", disable_tqdm=True, logging_steps=1,
        use_cpu=cpu,  # without it TRL's default bf16=True raises on a CPU
    )
    dataset = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in train_pairs]
    from datasets import Dataset

    return DPOTrainer(model=args.model_dir, args=config, train_dataset=Dataset.from_list(dataset),
                      processing_class=load_tokenizer(Path(args.model_dir)), callbacks=[timer])


def _logps_from(stored: dict):
    import numpy as np

    from training.recipes.evaluation import SequenceLogps

    return SequenceLogps(**{key: np.array(value) for key, value in stored.items()})


# --- the parent: both configurations, then the table -------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", action="store_true", help="speed: Duet's recipe against TRL's defaults")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000], help="memory: pairs per run")
    parser.add_argument("--validation-pairs", type=int, default=8, help="memory: held-out pairs evaluated")
    parser.add_argument("--memory-worker", choices=["reward", "dpo"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help="a tiny random Llama instead of SmolLM2")
    parser.add_argument("--train-pairs", type=int, default=16)
    parser.add_argument("--eval-pairs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (memory: 1, compare: 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["duet", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import torch

    # One intra-op thread by default: on the shared 2-core machine, two threads spinning
    # against other processes made a SmolLM2 forward 2-6x slower (4x128 tokens: 1.7 s on one
    # thread, 3.3-11 s on two) and a tiny model's step 50x slower.
    torch.set_num_threads(args.threads)

    if args.memory_worker:
        print(json.dumps(memory_run(args.memory_worker, args.n, args)))
        return
    if not args.compare:
        args.steps = args.steps or 1
        memory_main(args)
        return
    args.steps = args.steps or 8
    if args.worker:
        print(json.dumps(run_config(args.worker, args)))
        return

    from arena.providers.localmodel import build_tiny_model, ensure_converted

    with tempfile.TemporaryDirectory(prefix="duet-bench-") as workdir:
        model_dir = build_tiny_model(Path(workdir) / "tiny") if args.tiny else ensure_converted(REPO / "var" / "models")
        print(f"model {'tiny random Llama' if args.tiny else 'SmolLM2-135M-Instruct'}; HH-RLHF harmless-base "
              f"test: {args.train_pairs} train pairs, {args.eval_pairs} held-out; batch {args.batch_size}, "
              f"max_length {args.max_length}, {args.steps} steps")
        results = {}
        for config in ("duet", "trl"):
            command = [sys.executable, __file__, "--compare", "--worker", config, "--model-dir", str(model_dir),
                       "--workdir", workdir] + _shared_flags(args)
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.stderr.write(done.stderr[-4000:])
                raise SystemExit(f"{config} run failed")
            results[config] = json.loads(done.stdout.strip().splitlines()[-1])
    _report(results)


def _shared_flags(args) -> list[str]:
    return ["--train-pairs", str(args.train_pairs), "--eval-pairs", str(args.eval_pairs), "--batch-size",
            str(args.batch_size), "--max-length", str(args.max_length), "--steps", str(args.steps),
            "--seed", str(args.seed), "--threads", str(args.threads)]


def _report(results: dict) -> None:
    duet, trl = results["duet"], results["trl"]
    print(f"device: {duet['device']}")
    print(f"{'':<34}{'Duet':>12}{'TRL defaults':>14}{'ratio':>9}")
    rows = [
        ("training loop, steps/s", "steps_per_s", "{:.3f}", True),
        ("steady state (steps 2+), steps/s", "steady_steps_per_s", "{:.3f}", True),
        ("setup: load + tokenize + ref (s)", "setup_s", "{:.1f}", False),
        ("training loop (s)", "train_s", "{:.1f}", False),
        ("peak memory (MiB)", "peak_mb", "{:.0f}", False),
        ("trainable parameters", "trainable_params", "{:,}", False),
        ("held-out preference accuracy", "preference_accuracy", "{:.3f}", None),
        ("held-out ranking accuracy", "ranking_accuracy", "{:.3f}", None),
        ("base ranking accuracy", "base_ranking_accuracy", "{:.3f}", None),
    ]
    for label, key, fmt, higher_is_better in rows:
        ratio = ""
        if higher_is_better is not None and trl[key]:
            ratio = f"{duet[key] / trl[key]:.2f}x" if higher_is_better else f"{trl[key] / duet[key]:.2f}x"
        print(f"{label:<34}{fmt.format(duet[key]):>12}{fmt.format(trl[key]):>14}{ratio:>9}")
    end_to_end = (trl["setup_s"] + trl["train_s"]) / (duet["setup_s"] + duet["train_s"])
    print(f"end to end (setup + training) speed-up: {end_to_end:.2f}x; held-out pairs: {duet['n_eval']}")


if __name__ == "__main__":
    main()
