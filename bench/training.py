"""Benchmarks of training on real preference pairs (Anthropic HH-RLHF, harmless-base test split).

Memory (the default): the worker's peak RSS, whole process, for a reward-model and a DPO run
on 200 and on 2,000 pairs with Duet's default recipe (SmolLM2-135M, LoRA on a CPU, batches
of 8 pairs in micro-batches of 1, max_length 512), every pair taken as it comes: long
dialogues are truncated, not skipped. Each run is a child process running train_reward_model
/ train_dpo as the Celery worker does, for --steps optimiser steps (memory is bounded per
micro-batch, so a step of 8 micro-batches shows the peak; the dataset is tokenized whole),
evaluated on --validation-pairs held-out pairs. Prints a table.

    .venv/bin/python bench/training.py [--sizes 200 2000] [--steps 1] [--validation-pairs 8]

Speed (--compare): a DPO run as a Duet worker does it against a plain TRL script at TRL's
defaults, same model, same pairs (Anthropic HH-RLHF, harmless-base, test split: the prompt is
the two dialogues' common prefix up to the last "\n\nAssistant:", the completions what
follows), same batch size, max_length, seed and step count. Each run is a fresh process, timed
whole, from its start (Python, imports) to its model saved:

  Duet   train_dpo with TrainingRecipe() defaults: LoRA on CPU (full on CUDA), reference
         log-probs precomputed, gradient checkpointing off, bf16 autocast where the hardware
         has it; saves the adapter and the merged model.
  TRL    DPOConfig() defaults (full fine-tuning, a reference forward every step, gradient
         checkpointing, bf16 autocast; use_cpu=True on a CPU, without which bf16 raises);
         trainer.save_model().
Duet's own held-out evaluation is left out (TRL's script has none); after the clock stops each
process evaluates its saved model on the same held-out pairs, in float32. The configurations
run --repeats times each, interleaved; the table gives medians, their ratio and the load
average. Prints figures; not a test.

    .venv/bin/python bench/training.py --compare [--tiny] [--train-pairs 16] [--eval-pairs 32]
        [--batch-size 2] [--max-length 128] [--steps 8] [--repeats 3] [--precision auto] [--task hh]

Tasks (--task): `hh` trains on HH-RLHF's own preferences, which 8 steps of a 135M model do not
learn (held-out accuracy stays the base's). `words` keeps HH-RLHF's prompts and answers, so
the sequences have their real lengths, but a property of the answer decides the preference:
both completions are the same HH-RLHF answer (one of the pair's two, at random), the chosen one
opened by two pleasant words ("sun and gold."), the rejected one by two unpleasant ones ("rot
and mud."). A model learns that in a few steps, so held-out accuracy can be compared.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

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


def words_pair(pair: dict, rng: random.Random) -> dict:
    """The words task: one of the pair's answers for both sides, opened by pleasant words (chosen)
    or unpleasant ones (rejected); the preference no longer depends on HH-RLHF's label."""
    from noise_flips import WORDS  # 12 pleasant, then 12 unpleasant words

    answer = pair[rng.choice(("chosen", "rejected"))]
    opening = lambda words: " {} and {}.".format(*rng.sample(words, 2))  # noqa: E731
    return {"prompt": pair["prompt"], "chosen": opening(WORDS[:12]) + answer, "rejected": opening(WORDS[12:24]) + answer}


TASKS = ("hh", "words")


def load_hh_pairs(n: int, max_length: int | None, seed: int, path: Path = HH_TEST, task: str = "hh") -> list[dict]:
    """n pairs with distinct prompts, sampled with the seed; with max_length, only those that fit it."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    pairs, prompts = [], set()
    rng = random.Random(seed)
    with gzip.open(path, "rt") as lines:
        for line in lines:
            row = json.loads(line)
            pair = hh_pair(row["chosen"], row["rejected"])
            if pair is None or pair["prompt"] in prompts:
                continue
            if task == "words":
                pair = words_pair(pair, rng)
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


# --- speed: one configuration, in its own process, timed from its start -----------------

def run_config(config: str, args: argparse.Namespace) -> dict:
    """Train and save, timed whole (imports included, from ``args.spawned_at``); then evaluate,
    untimed, on the held-out pairs."""
    import torch

    clock = {"data": time.time()}

    pairs = load_hh_pairs(args.train_pairs + args.eval_pairs, args.max_length, args.seed, task=args.task)
    out = Path(args.workdir) / f"{config}-{os.getpid()}"
    if config == "duet":
        model_dir = _duet_run(pairs[: args.train_pairs], args, out, clock)
    else:
        model_dir = _trl_run(pairs[: args.train_pairs], args, out, clock)
    done_at = time.time()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    metrics = _evaluate(model_dir, pairs[args.train_pairs:], args)
    shutil.rmtree(out, ignore_errors=True)
    marks = [("start", args.spawned_at), *clock.items(), ("done", done_at)]
    phases = {name: round(marks[i + 1][1] - at, 2) for i, (name, at) in enumerate(marks[:-1])}
    return {"config": config, "device": "cuda" if torch.cuda.is_available() else "cpu",
            "end_to_end_s": done_at - args.spawned_at, "phases_s": phases, "peak_mb": peak_mb, **metrics}


def _duet_run(train_pairs, args, out: Path, clock: dict) -> Path:
    """What a Duet worker does with a run: train_dpo at the recipe's defaults (save included)."""
    from training.recipes import TrainingRecipe, train_dpo

    recipe = TrainingRecipe.from_dict({
        "model": {"name_or_path": args.model_dir, "precision": args.precision},
        # The held-out pairs are evaluated below, the same way for both configurations.
        "data": {"max_length": args.max_length, "validation_fraction": 0.0},
        "training": {"batch_size": args.batch_size, "max_steps": args.steps, "seed": args.seed},
    })

    def on_phase(phase, done, total):
        if phase not in clock:
            clock[phase] = time.time()

    clock["setup"] = time.time()
    result = train_dpo(train_pairs, recipe, out, on_phase=on_phase)
    return Path(result.merged_dir)


def _trl_run(train_pairs, args, out: Path, clock: dict) -> Path:
    """A plain TRL script at TRL's defaults: DPOConfig() with the run's shape, train, save."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    clock["setup"] = time.time()
    config = DPOConfig(
        output_dir=str(out / "trainer"),
        # the run's shape, shared with Duet's
        per_device_train_batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps,
        seed=args.seed,
        # bookkeeping, no effect on the maths
        report_to="none", save_strategy="no", disable_tqdm=True, logging_steps=1,
        use_cpu=not torch.cuda.is_available(),  # without it TRL's default bf16=True raises on a CPU
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    trainer = DPOTrainer(model=args.model_dir, args=config, processing_class=tokenizer,
                         train_dataset=Dataset.from_list([dict(pair) for pair in train_pairs]))
    clock["training"] = time.time()
    trainer.train()
    clock["saving"] = time.time()
    trainer.save_model(str(out / "model"))
    return out / "model"


def _evaluate(model_dir: Path, eval_pairs, args) -> dict:
    """Held-out preference accuracy of the saved policy against the base model, float32."""
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.recipes.evaluation import SequenceLogps, completion_logps, dpo_metrics

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    rows = [_eval_row(tokenizer, pair, args.max_length) for pair in eval_pairs]

    def logps(directory):
        model = AutoModelForCausalLM.from_pretrained(str(directory))
        return completion_logps(model, rows, tokenizer.pad_token_id or tokenizer.eos_token_id, args.max_length)

    # The base model's log-probs: the first run computes them, the others read them.
    reference_file = Path(args.workdir) / "reference_logps.json"
    if not reference_file.exists():
        reference_file.write_text(json.dumps({k: v.tolist() for k, v in vars(logps(args.model_dir)).items()}))
    stored = json.loads(reference_file.read_text())
    reference = SequenceLogps(**{key: np.array(value) for key, value in stored.items()})
    metrics = dpo_metrics(logps(model_dir), reference, beta=0.1)
    return {"preference_accuracy": metrics.preference_accuracy, "ranking_accuracy": metrics.ranking_accuracy,
            "base_ranking_accuracy": metrics.base_ranking_accuracy, "n_eval": metrics.n_pairs}


def _eval_row(tokenizer, pair: dict, max_length: int) -> dict:
    """TRL's tokenization of a plain-text pair: the completions are what follows the prompt's tokens."""
    prompt = tokenizer(pair["prompt"])["input_ids"][-(max_length // 2):]
    cut = len(tokenizer(pair["prompt"])["input_ids"]) - len(prompt)
    ids = {name: tokenizer(pair["prompt"] + pair[name] + tokenizer.eos_token)["input_ids"][cut:]
           for name in ("chosen", "rejected")}
    shared = min(len(prompt), *(len(os.path.commonprefix([prompt, value])) for value in ids.values()))
    return {"prompt_ids": prompt[:shared], "chosen_ids": ids["chosen"][shared:], "rejected_ids": ids["rejected"][shared:]}


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
    parser.add_argument("--repeats", type=int, default=3, help="compare: runs of each configuration, interleaved")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="Duet's model.precision")
    parser.add_argument("--task", default="hh", choices=TASKS,
                        help="compare: HH-RLHF's own preferences, or words (pleasant opening preferred)")
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
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

    runs: dict[str, list[dict]] = {"duet": [], "trl": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="duet-bench-") as workdir:
        model_dir = build_tiny_model(Path(workdir) / "tiny") if args.tiny else ensure_converted(REPO / "var" / "models")
        print(f"model {'tiny random Llama' if args.tiny else 'SmolLM2-135M-Instruct'}; task {args.task}; "
              f"HH-RLHF harmless-base test: {args.train_pairs} train pairs, {args.eval_pairs} held-out; batch {args.batch_size}, "
              f"max_length {args.max_length}, {args.steps} steps; {args.repeats} interleaved runs each", flush=True)
        for repeat in range(args.repeats):
            # Interleaved, first one then the other first, so a load change on the shared machine hits both.
            for config in ("duet", "trl") if repeat % 2 == 0 else ("trl", "duet"):
                command = [sys.executable, __file__, "--compare", "--worker", config, "--model-dir", str(model_dir),
                           "--workdir", workdir, "--spawned-at", repr(time.time())] + _shared_flags(args)
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    sys.stderr.write(done.stderr[-4000:])
                    raise SystemExit(f"{config} run failed")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                runs[config].append(row)
                print(f"  {config}: {row['end_to_end_s']:.1f} s end to end, phases {row['phases_s']}, "
                      f"preference accuracy {row['preference_accuracy']:.3f}", flush=True)
    _report(runs, load_before, os.getloadavg())


def _shared_flags(args) -> list[str]:
    return ["--train-pairs", str(args.train_pairs), "--eval-pairs", str(args.eval_pairs), "--batch-size",
            str(args.batch_size), "--max-length", str(args.max_length), "--steps", str(args.steps),
            "--seed", str(args.seed), "--threads", str(args.threads), "--precision", args.precision, "--task", args.task]


def _report(runs: dict, load_before, load_after) -> None:
    from statistics import median

    def mid(config, key):
        return median(row[key] for row in runs[config])

    print(f"device: {runs['duet'][0]['device']}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'median of ' + str(len(runs['duet'])) + ' runs':<34}{'Duet':>10}{'TRL defaults':>14}{'ratio':>8}")
    for label, key, fmt in [("end to end: process start to saved (s)", "end_to_end_s", "{:.1f}"),
                            ("peak memory (MiB)", "peak_mb", "{:.0f}")]:
        duet, trl = mid("duet", key), mid("trl", key)
        print(f"{label:<34}{fmt.format(duet):>10}{fmt.format(trl):>14}{trl / duet:>7.2f}x")
    for label, key in [("held-out preference accuracy", "preference_accuracy"),
                       ("held-out ranking accuracy", "ranking_accuracy"),
                       ("base ranking accuracy", "base_ranking_accuracy")]:
        print(f"{label:<34}{mid('duet', key):>10.3f}{mid('trl', key):>14.3f}")
    for config in ("duet", "trl"):
        names = runs[config][0]["phases_s"]
        phases = ", ".join(f"{name} {median(row['phases_s'].get(name, 0) for row in runs[config]):.1f}" for name in names)
        print(f"{config} phases (s, median): {phases}")


if __name__ == "__main__":
    main()
