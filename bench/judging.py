"""Benchmark: SmolLM2 as a pairwise judge on long pairs, Duet's way against the naive way.

The pairs are PandaLM's longest third (by the tokens of question and both answers), every
pair judged in both orders:
  duet    LogitJudge as configured by default: the answer turn pre-filled up to "[[" and
          P(A)/P(B)/P(C) read from one forward pass (no generation); pairs sorted by
          length, one per forward on a CPU; the tokens every row shares (chat template and MT-Bench's
          instructions) run once per call, each pair's question once for both orders, reused
          from their caches; the lm_head on the last position only; answers cut to 192
          tokens and questions to 256, keeping the start and the end; bfloat16 autocast
          where the CPU has native bfloat16, with the linear layers' weights cast once into a
          judging copy of the decoder.
  autocast  the same, but autocast casting the float32 weights on every forward (the judge
          before its bfloat16 copy), on the same pairs.
  naive   the same letter probabilities one pair at a time (its two orders in one batch),
          no shared prefix, float32, answers and questions cut only at 512 tokens.
Model loading is not timed (one model per process, loaded before the timings). Prints
pairs/s of wall time and pairs per CPU-second of this process (on a busy shared machine
the second is the steadier figure: two single-thread worker processes on an idle 2-core
box judge about twice that), the process's peak memory, and how far the two methods agree.

    OMP_NUM_THREADS=1 .venv/bin/python bench/judging.py [--pairs 48] [--naive-pairs 12]
                                                       [--batch-size N] [--data PANDALM.json]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from routing.judges.files import read_labelled_pairs  # noqa: E402
from routing.judges import local  # noqa: E402
from routing.judges.local import LogitJudge  # noqa: E402

DEFAULT_DATA = ROOT / "tests" / "data" / "real" / "pandalm-testset-v1.json"


def longest_third(pairs, tokenizer):
    """The third of the pairs with the most tokens in question and answers, longest first."""
    def size(pair):
        item = pair.item
        return sum(len(tokenizer.encode(text, add_special_tokens=False)) for text in (item.prompt, item.a, item.b))

    ranked = sorted(pairs, key=size, reverse=True)
    return ranked[: len(ranked) // 3]


def timed(judge, items):
    wall, cpu = time.perf_counter(), time.process_time()
    verdicts = judge.judge(items)
    return verdicts, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=48, help="long pairs judged by Duet's judge")
    parser.add_argument("--naive-pairs", type=int, default=12, help="of those, judged the naive way too")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="pairs per forward pass (the judge's default: 1 on a CPU)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from arena.providers.localmodel import load_causal_lm

    model, tokenizer = load_causal_lm(args.model)
    long_pairs = longest_third(read_labelled_pairs(args.data), tokenizer)
    # Every k-th pair of the longest third, so a short run still spans its range of lengths.
    step = max(1, len(long_pairs) // args.pairs)
    items = [pair.item for pair in long_pairs[::step][: args.pairs]]
    subset = items[: args.naive_pairs]
    duet = LogitJudge(args.model, batch_size=args.batch_size)
    naive = LogitJudge(args.model, batch_size=1, share_prefix=False, share_question=False, precision="float32",
                       max_answer_tokens=512, max_question_tokens=512)
    duet.judge(items[:2])  # warm up outside the timings
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    print(f"{len(long_pairs)} PandaLM pairs in the longest third, {len(items)} judged, both orders; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    print(f"\n{'method':<44} {'pairs':>5} {'wall s':>7} {'pairs/s':>8} {'CPU s':>7} {'pairs/CPU-s':>11}", flush=True)

    def run(name, judge, chosen):
        verdicts, wall, cpu = timed(judge, chosen)
        print(f"{name:<44} {len(chosen):>5} {wall:>7.1f} {len(chosen) / wall:>8.2f} {cpu:>7.1f} "
              f"{len(chosen) / cpu:>11.2f}", flush=True)
        return verdicts, wall, cpu

    duet_all, _, cpu_all = run(f"duet, batch {args.batch_size}", duet, items)
    duet_sub, _, cpu_sub = run(f"duet, first {len(subset)}", duet, subset)
    judging_model = local._judging_model
    local._judging_model = lambda model, autocast: model
    try:
        _, _, cpu_stock = run(f"autocast (no bfloat16 copy), first {len(subset)}", duet, subset)
    finally:
        local._judging_model = judging_model
    naive_sub, _, cpu_naive = run(f"naive per pair, first {len(subset)}", naive, subset)
    print(f"\nspeed-up per CPU-second on the same {len(subset)} pairs: {cpu_naive / cpu_sub:.2f}x over naive, "
          f"{cpu_stock / cpu_sub:.2f}x over autocast; "
          f"duet on all {len(items)}: {len(items) / cpu_all:.2f} pairs per CPU-second "
          f"(~{2 * len(items) / cpu_all:.2f} pairs/s for two single-thread workers on an idle 2-core box)")
    same = sum(a.verdict == b.verdict for a, b in zip(duet_sub, naive_sub))
    gap = max(abs(a.p_a - b.p_a) for a, b in zip(duet_sub, naive_sub))
    print(f"agreement with the naive way: same verdict on {same} of {len(subset)}, largest |P(a) difference| "
          f"{gap:.3f} (the truncation budget and bfloat16 both move it)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    copies = [copy for copy in (local._judging_copies or {}).values()]
    copy_mb = sum(p.numel() * p.element_size() for c in copies for p in c.get_decoder().parameters()
                  if p.dtype == torch.bfloat16) / 2**20
    print(f"memory: model weights {weights_mb:.0f} MiB (float32, shared by every method), the judge's bfloat16 "
          f"copy of the linear layers {copy_mb:.0f} MiB, process peak RSS {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
