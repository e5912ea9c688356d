"""Benchmark: SmolLM2 as a pairwise judge, one forward pass per batch versus generate() per pair.

On the same PandaLM pairs, both orders each:
  logits    LogitJudge: the assistant turn pre-filled up to "[[", P(A)/P(B)/P(C) read from
            the next-token logits, pairs x orders batched in one forward pass, the tokens
            every row shares (chat template and MT-Bench's instructions) run once;
  generate  GenerateJudge: model.generate() per pair and order (greedy, --max-new-tokens),
            the text parsed for [[A]]/[[B]]/[[C]], as MT-Bench judges do.
generate() is 30-50x slower, so it runs on the first --baseline-pairs of the --pairs; the
speed-up is quoted on exactly those pairs (logits re-timed on them alone, a smaller batch
than it would get in production), and the agreement between the methods too. Model loading
is not timed (both load the same cached model first). Prints figures; not a test.

    .venv/bin/python bench/judging.py [--pairs 32] [--baseline-pairs 4] [--batch-size 16]
                                      [--max-new-tokens 128] [--data PANDALM.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from routing.judges.evaluation import score_verdicts  # noqa: E402
from routing.judges.files import read_labelled_pairs  # noqa: E402
from routing.judges.local import GenerateJudge, LogitJudge  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pandalm-testset-v1.json"
SAMPLE_DATA = ROOT / "tests" / "routing" / "data" / "pandalm-testset-sample.json"


def timed(judge, items):
    started = time.perf_counter()
    verdicts = judge.judge(items)
    return verdicts, time.perf_counter() - started


def agreement(first, second) -> tuple[float | None, int]:
    """Share of pairs with the same verdict, over pairs where both gave one; and how many that is."""
    both = [(x.verdict, y.verdict) for x, y in zip(first, second) if x.usable and y.usable]
    return (sum(x == y for x, y in both) / len(both) if both else None), len(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--baseline-pairs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per forward pass")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--data", default=str(DEFAULT_DATA if DEFAULT_DATA.exists() else SAMPLE_DATA))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    import torch

    pairs = read_labelled_pairs(args.data, limit=args.pairs)
    items = [pair.item for pair in pairs]
    subset = items[: args.baseline_pairs]
    logits = LogitJudge(args.model, batch_size=args.batch_size)
    unshared = LogitJudge(args.model, batch_size=args.batch_size, share_prefix=False)
    generate = GenerateJudge(args.model, max_new_tokens=args.max_new_tokens)
    logits.judge(items[:1])  # load (and convert, on a first run) the model outside the timings
    print(f"{args.data}: {len(items)} pairs, both orders; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")

    print(f"\n{'method':<58} {'pairs':>5} {'seconds':>8} {'pairs/s':>8}", flush=True)

    def run(name, judge, chosen):
        verdicts, seconds = timed(judge, chosen)
        print(f"{name:<58} {len(chosen):>5} {seconds:>8.1f} {len(chosen) / seconds:>8.3f}", flush=True)
        return verdicts, seconds

    all_verdicts, all_seconds = run(f"logits, {len(items)} pairs, batch {args.batch_size}", logits, items)
    sub_verdicts, sub_seconds = run(f"logits, first {len(subset)} pairs", logits, subset)
    unshared_verdicts, unshared_seconds = run(f"logits without prefix sharing, first {len(subset)}", unshared, subset)
    gen_verdicts, gen_seconds = run(f"generate() per pair ({args.max_new_tokens} new tokens), first {len(subset)}",
                                    generate, subset)
    print(f"\nspeed-up on the same {len(subset)} pairs: {gen_seconds / sub_seconds:.1f}x "
          f"(prefix sharing alone: {unshared_seconds / sub_seconds:.2f}x; at batch {args.batch_size} on all "
          f"{len(items)} pairs: {(len(items) / all_seconds) / (len(subset) / gen_seconds):.1f}x)")

    rate, compared = agreement(sub_verdicts, gen_verdicts)
    parsed = sum(v.usable for v in gen_verdicts)
    same = sum(a.verdict == b.verdict for a, b in zip(sub_verdicts, gen_verdicts))
    print(f"agreement between the methods: same verdict on {same} of {len(subset)} pairs (generate() gave a "
          f"verdict in both orders on {parsed}; unparsable counts as different)"
          + (f", {rate:.2f} where both gave one" if compared else ""))
    same = sum(a.verdict == b.verdict for a, b in zip(sub_verdicts, unshared_verdicts))
    print(f"logits with and without prefix sharing: same verdict on {same} of {len(subset)}")

    scored = [(pair, verdict) for pair, verdict in zip(pairs, all_verdicts) if pair.gold is not None]
    report = score_verdicts(logits, [p for p, _ in scored], [v for _, v in scored], all_seconds)
    verdict_counts = {v: sum(x.verdict == v for x in all_verdicts) for v in ("a", "b", "tie")}
    mass = [o.verdict_mass for v in all_verdicts for o in v.orders]
    print(f"\nSmolLM2-135M as a judge on these {report.n} pairs (human majority as gold): accuracy "
          f"{report.accuracy:.2f} (always the commonest label: {report.chance_accuracy:.2f}), without ties "
          f"{report.accuracy_no_ties:.2f}, order consistency {report.order_consistency:.2f} (a-over-b preference kept "
          f"in both orders: {report.preference_consistency:.2f}); verdicts {verdict_counts}; "
          f"mean next-token mass on A/B/C {sum(mass) / len(mass):.2f}")


if __name__ == "__main__":
    main()
