"""Benchmark: training on a noisy crowd's judgments, on the path a user takes.

A preference task a model can learn in minutes on a CPU: every prompt has two answers of two
words each, the better one made of "good" words, the worse one of "bad" words (for SmolLM2
pleasant and unpleasant ones: sun, gold, kind against rot, mud, cruel; for the tiny model a
random partition); which side (A or B) holds the better answer is random. A simulated crowd
of 14 judges each comparison (5 judgments per comparison, at random; 10% of the comparisons
carry a gold verdict, as a project's gold checks do):

    good        10 annotators, each right with the accuracy that brings the crowd to the rate
    random       2 random clickers (right half the time)
    adversary    1 annotator right 10% of the time
    always-a     1 annotator who always says A

At a noise level r, r of all judgments are wrong (good annotators 96% right at 20%, 68% at
40%); "clean" is every judgment right. Per level and seed, the crowd's judgments are written
as a Duet JSONL file and go the user's way: `manage.py import_comparisons` into a fresh
project, `manage.py project_quality`, then one reward and one DPO run per method, each
created and executed exactly as `manage.py train --here` does (`check_run_request`,
`do_create_run`, `execute_run`, the worker's function), with the recipe an API request can
carry. Each run is scored on held-out pairs labelled by the TRUTH (never imported): a reward
model by r(better) > r(worse), a DPO model by its implicit reward margin against its base.

Methods (training.recipes.noise); "vanilla" is majority with majority-vote labels:

    vanilla  majority-ds  soft  em  rdpo  upo        (em and upo: DPO only)

    .venv/bin/python bench/noise.py --quick    # tiny word-level Llama, 1 seed: the smoke run
    .venv/bin/python bench/noise.py            # SmolLM2-135M with LoRA, 3 seeds: the full table
    options: --rates 0 0.2 0.4  --seeds N  --comparisons N  --overlap K  --test-pairs N  --kinds dpo reward
             --methods vanilla soft ...  --clean-methods vanilla  --epochs E  --threads T

Prints one table per kind (rows: methods, columns: noise levels; mean over seeds) and the
two targets at 40%: the best annotator-aware DPO method at least 5 points above vanilla DPO,
and within 5 points of vanilla DPO on clean labels.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from noise_flips import WORDS, build_word_model  # noqa: E402 - the tiny word-level Llama and its words

# SmolLM2: pleasant against unpleasant words, which it already tells apart. The tiny random
# model knows no words: it gets a seeded random partition of all 48, 12 good and 12 bad, as in
# noise_flips.py; with the pleasant/unpleasant split it learnt the rule at 40% noise whatever
# the labels (vanilla 1.000, 5 judgments per comparison), leaving nothing to compare.
SEMANTIC_WORDS = WORDS[:12], WORDS[12:24]
CROWD = {"good": 10, "random": 2, "adversary": 1, "always-a": 1}
ADVERSARY_ACCURACY = 0.1
# method shown -> (training method, aggregation of the labels)
VARIANTS = {
    "vanilla": ("majority", "majority"),
    "majority-ds": ("majority", "dawid-skene"),
    "soft": ("soft", "dawid-skene"),
    "em": ("em", "dawid-skene"),
    "rdpo": ("rdpo", "dawid-skene"),
    "upo": ("upo", "dawid-skene"),
}
DPO_ONLY = {"em", "upo"}


# --- the task and the crowd -------------------------------------------------------------------


def good_accuracy(rate: float) -> float:
    """The good annotators' accuracy that makes `rate` of all judgments wrong."""
    bad_errors = CROWD["random"] * 0.5 + CROWD["adversary"] * (1 - ADVERSARY_ACCURACY) + CROWD["always-a"] * 0.5
    return min(1.0, max(0.5, 1 - (rate * sum(CROWD.values()) - bad_errors) / CROWD["good"]))


def answer(rng: random.Random, words: list[str]) -> str:
    first, second = rng.sample(words, 2)
    return f" {first} and {second}"


def task(n: int, rng: random.Random, prefix: str, words: tuple[list[str], list[str]]) -> list[dict]:
    """n comparisons: prompt, the better and the worse answer, and the side the better one is on."""
    good, bad = words
    return [{"prompt": f"{prefix} item {i}: describe it.", "better": answer(rng, good),
             "worse": answer(rng, bad), "truth": rng.choice("ab")} for i in range(n)]  # fmt: skip


def crowd() -> list[tuple[str, str]]:
    return [(f"{kind}-{i}", kind) for kind, count in CROWD.items() for i in range(count)]


def verdict(kind: str, truth: str, rng: random.Random, good: float) -> str:
    wrong = "b" if truth == "a" else "a"
    if kind == "always-a":
        return "a"
    accuracy = {"good": good, "random": 0.5, "adversary": ADVERSARY_ACCURACY}[kind]
    return truth if rng.random() < accuracy else wrong


def duet_rows(items: list[dict], rate: float, rng: random.Random, overlap: int,
              gold_fraction: float = 0.0) -> tuple[list[dict], float]:
    """The comparisons as Duet import rows with the crowd's judgments, the first `gold_fraction`
    of them with a gold verdict (the truth); and the share of judgments that is wrong."""
    good, annotators = good_accuracy(rate), crowd()
    rows, wrong, total = [], 0, 0
    for i, item in enumerate(items):
        a, b = (item["better"], item["worse"]) if item["truth"] == "a" else (item["worse"], item["better"])
        judgments = []
        for name, kind in rng.sample(annotators, overlap):
            said = item["truth"] if rate == 0 else verdict(kind, item["truth"], rng, good)
            judgments.append({"annotator": name, "verdict": said})
            wrong += said != item["truth"]
            total += 1
        row = {"id": f"c{i}", "prompt": item["prompt"], "a": {"system": "left", "text": a},
               "b": {"system": "right", "text": b}, "judgments": judgments}  # fmt: skip
        if i < gold_fraction * len(items):
            row["gold"] = item["truth"]
        rows.append(row)
    return rows, wrong / total


# --- the user's path ----------------------------------------------------------------------------


def setup_django(workdir: Path, model_cache: Path) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DUET_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}", "DUET_MODEL_CACHE": str(model_cache),
        "CELERY_TASK_ALWAYS_EAGER": "0", "DJANGO_DEBUG": "0",  # queued tasks stay in the temporary broker
    })  # fmt: skip
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def import_project(name: str, rows: list[dict], workdir: Path) -> str:
    from django.core.management import call_command

    path = workdir / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = io.StringIO()
    call_command("import_comparisons", str(path), "--project", name, stdout=out)
    return out.getvalue().strip()


def quality(name: str) -> dict:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("project_quality", name, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def reliability_by_kind(report: dict) -> dict[str, float]:
    by_kind: dict[str, list[float]] = {}
    for row in report["annotators"]:
        if row["reliability"] is not None:
            by_kind.setdefault(row["annotator"].rsplit("-", 1)[0], []).append(row["reliability"])
    return {kind: statistics.mean(values) for kind, values in by_kind.items()}


def train(project: str, kind: str, variant: str, base: str, recipe: dict):
    """A run created and executed as `train --here` does; the finished TrainingRun."""
    from training import actions
    from training.models import TrainingRun

    method, aggregate = VARIANTS[variant]
    request = actions.check_run_request(kind=kind, project=project, base=base, method=method, recipe=recipe,
                                        filters={"aggregate": aggregate})  # fmt: skip
    run = actions.do_create_run(request, queue=False)
    with redirect_stdout(io.StringIO()):
        status = actions.execute_run(run.pk)
    run = TrainingRun.objects.get(pk=run.pk)
    if status != "succeeded":
        raise RuntimeError(f"run {run.pk} ({kind}, {variant}) {status}: {run.error[-2000:]}")
    return run


# --- scoring against the truth ------------------------------------------------------------------


def truth_pairs(items: list[dict]) -> list[dict]:
    return [{"prompt": item["prompt"], "chosen": item["better"], "rejected": item["worse"]} for item in items]


def reward_accuracy(run, pairs: list[dict], max_length: int) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification

    from training.recipes import normalise_pairs
    from training.recipes.evaluation import reward_margins
    from training.recipes.reward import tokenize_for_reward
    from training.recipes.runtime import load_tokenizer

    directory = Path(run.artifacts["merged_dir"])
    tokenizer = load_tokenizer(directory)
    model = AutoModelForSequenceClassification.from_pretrained(str(directory), dtype=torch.float32,
                                                               local_files_only=True)  # fmt: skip
    rows = tokenize_for_reward(tokenizer, normalise_pairs(pairs), max_length)
    return float((reward_margins(model, rows, tokenizer.pad_token_id)[0] > 0).mean())


def dpo_accuracy(run, pairs: list[dict], base_dir: Path, cache: dict) -> float:
    """Share of pairs whose implicit reward margin (tuned vs base log-ratios) favours the truth."""
    from training.recipes.runtime import load_policy

    def logps(directory: Path):
        from training.recipes.evaluation import completion_logps

        model, tokenizer = load_policy(directory)
        ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        rows = [{"prompt_ids": ids(p["prompt"]), "chosen_ids": ids(p["chosen"]) + [tokenizer.eos_token_id],
                 "rejected_ids": ids(p["rejected"]) + [tokenizer.eos_token_id]} for p in pairs]  # fmt: skip
        return completion_logps(model, rows, tokenizer.pad_token_id, max_length=None)

    if "base" not in cache:
        cache["base"] = logps(base_dir)
    tuned, base = logps(Path(run.artifacts["merged_dir"])), cache["base"]
    margin = (tuned.chosen - base.chosen) - (tuned.rejected - base.rejected)
    return float((margin > 0).mean())


# --- the table --------------------------------------------------------------------------------


def recipe_for(args, kind: str) -> dict:
    training = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": 0}
    if args.learning_rate:
        training["learning_rate"] = args.learning_rate
    return {"model": {"adapter": args.adapter, "device": "cpu"},
            "data": {"max_length": args.max_length, "validation_fraction": 0.1}, "training": training}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny word-level Llama, 1 seed, 128 comparisons: the smoke run")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    parser.add_argument("--kinds", nargs="+", default=["dpo", "reward"], choices=["dpo", "reward"])
    parser.add_argument("--methods", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    # On clean labels every method sees the same pairs; the targets only need vanilla there,
    # so a short run can skip the others (`--clean-methods vanilla`).
    parser.add_argument("--clean-methods", nargs="+", default=None, choices=list(VARIANTS),
                        help="methods run on clean labels (default: --methods)")
    parser.add_argument("--seeds", type=int, default=None, help="default 3, 1 with --quick")
    parser.add_argument("--comparisons", type=int, default=None, help="imported; default 256, 96 with --quick")
    parser.add_argument("--test-pairs", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=None, help="judgments per comparison (default 5)")
    # Without gold items Dawid-Skene can settle on the mirror solution at 40% noise (the
    # adversary reliable, the good annotators not): at 3 judgments per comparison it labelled
    # 37-79% of comparisons right over 5 seeds, against 64% for majority vote.
    parser.add_argument("--gold", type=float, default=0.1, help="share of comparisons with a gold verdict")
    parser.add_argument("--epochs", type=float, default=None, help="default 2, 5 with --quick")
    parser.add_argument("--batch-size", type=int, default=None, help="default 8, 16 with --quick")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the recipe's; 3e-3 with --quick")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    quick = args.quick
    args.seeds = args.seeds or (1 if quick else 3)
    args.comparisons = args.comparisons or (128 if quick else 256)
    args.overlap = args.overlap or 5
    args.epochs = args.epochs or (5 if quick else 2)
    args.batch_size = args.batch_size or (16 if quick else 8)
    args.learning_rate = args.learning_rate or (3e-3 if quick else None)
    args.adapter = "full" if quick else "lora"
    args.max_length = 32 if quick else 48
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import torch

    # One thread: on the shared 2-core machine two threads spin against other processes.
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    scores: dict[tuple[str, str, float], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="duet-noise-") as workdir:
        workdir = Path(workdir)
        model_cache = Path(os.environ.get("DUET_MODEL_CACHE", ROOT / "var" / "models"))
        if quick:
            base_dir = build_word_model(workdir / "tiny")
        else:
            from arena.providers.localmodel import ensure_converted

            base_dir = ensure_converted(model_cache)
        setup_django(workdir, model_cache)
        for seed in range(args.seeds):
            rng = random.Random(seed)
            if quick:
                shuffled = rng.sample(WORDS, 24)
                words = shuffled[:12], shuffled[12:]
            else:
                words = SEMANTIC_WORDS
            items = task(args.comparisons, rng, "Train", words)
            test = truth_pairs(task(args.test_pairs, rng, "Test", words))
            base_cache: dict = {}
            for rate in args.rates:
                name = f"crowd-{rate:g}-seed{seed}"
                rows, wrong = duet_rows(items, rate, random.Random(f"{seed}-{rate}"), args.overlap, args.gold)
                imported = import_project(name, rows, workdir)
                report = quality(name)
                print(f"{name}: {wrong:.1%} of judgments wrong; {imported}; reliability by kind "
                      + ", ".join(f"{k} {v:.2f}" for k, v in reliability_by_kind(report).items()),
                      file=sys.stderr, flush=True)  # fmt: skip
                for kind in args.kinds:
                    for variant in args.methods:
                        if kind == "reward" and VARIANTS[variant][0] in DPO_ONLY:
                            continue
                        if rate == 0 and args.clean_methods is not None and variant not in args.clean_methods:
                            continue
                        run = train(name, kind, variant, str(base_dir), recipe_for(args, kind))
                        accuracy = (reward_accuracy(run, test, args.max_length) if kind == "reward"
                                    else dpo_accuracy(run, test, base_dir, base_cache))  # fmt: skip
                        scores.setdefault((kind, variant, rate), []).append(accuracy)
                        print(f"  {kind:<6} {variant:<11} {accuracy:.3f}  (run {run.pk}, {run.n_pairs} pairs, "
                              f"{run.metrics.get('runtime_s')} s)", file=sys.stderr, flush=True)  # fmt: skip
    print_table(args, scores, base_dir_name="tiny word-level Llama (full fine-tuning)" if quick
                else "SmolLM2-135M-Instruct (LoRA)", seconds=time.perf_counter() - started)  # fmt: skip


def print_table(args, scores, base_dir_name: str, seconds: float) -> None:
    levels = [("clean" if rate == 0 else f"{rate:.0%} wrong", rate) for rate in args.rates]
    print(f"{base_dir_name}; {args.comparisons} comparisons x {args.overlap} judgments from a crowd of 14 "
          f"(10 good, 2 random, 1 adversary, 1 always-A), {args.gold:.0%} gold; {args.epochs:g} epochs of batch {args.batch_size}; "
          f"held-out accuracy against the truth on {args.test_pairs} pairs, mean over {args.seeds} seed(s)")
    for kind in args.kinds:
        print(f"\n{kind:<14}" + "".join(f"{label:>14}" for label, _ in levels))
        for variant in args.methods:
            cells = []
            for _, rate in levels:
                values = scores.get((kind, variant, rate))
                cells.append(f"{statistics.mean(values):.3f}" if values else "—")
            print(f"{variant:<14}" + "".join(f"{cell:>14}" for cell in cells))
    noisy = max(args.rates)
    if "dpo" in args.kinds and ("dpo", "vanilla", noisy) in scores:
        vanilla = statistics.mean(scores["dpo", "vanilla", noisy])
        aware = {v: statistics.mean(scores["dpo", v, noisy]) for v in args.methods
                 if v != "vanilla" and ("dpo", v, noisy) in scores}  # fmt: skip
        if aware:
            best = max(aware, key=aware.get)
            print(f"\nat {noisy:.0%}: best annotator-aware DPO {best} {aware[best]:.3f} vs vanilla {vanilla:.3f}: "
                  f"{100 * (aware[best] - vanilla):+.1f} points (target +5)")
            if ("dpo", "vanilla", 0.0) in scores:
                clean = statistics.mean(scores["dpo", "vanilla", 0.0])
                print(f"clean vanilla {clean:.3f}: {best} is {100 * (clean - aware[best]):.1f} points below "
                      "(target at most 5)")
    print(f"({seconds:.0f} s)")


if __name__ == "__main__":
    main()
