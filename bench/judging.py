"""Benchmark: SmolLM2 as a pairwise judge on long pairs, Duet's way against the naive way.

The pairs are PandaLM's longest third (by the tokens of question and both answers), every
pair judged in both orders:
  int8    LogitJudge as configured by default (DUET_JUDGE_PRECISION=int8): the answer turn
          pre-filled up to "[[" and P(A)/P(B)/P(C) read from one forward pass (no
          generation); pairs sorted by length, one per forward on a CPU; the tokens every row
          shares (chat template and MT-Bench's instructions) run once per call, each pair's
          question once for both orders, reused from their caches; the lm_head on the last
          position only; answers cut to 192 tokens and questions to 256, keeping the start and
          the end; the decoder's linear layers in int8 (per-row activation scales, per-channel
          weight scales, torch._int_mm), the rest under bfloat16 autocast where the CPU has
          native bfloat16.
  bf16    the same with the linear layers in bfloat16 (DUET_JUDGE_PRECISION=bf16).
  fp32    the same in float32 (DUET_JUDGE_PRECISION=fp32): the reference for the agreement.
  naive   the same letter probabilities one pair at a time (its two orders in one batch),
          no shared prefix, no question cache, float32, answers and questions cut only at
          512 tokens: the baseline of the speed-ups.
  --processes N   then the int8 judge in N worker processes of one thread each (what
          `celery -Q judging -c N` runs: one model per process), each judging its share of
          the pairs, started together once every worker has loaded its model and warmed up;
          pairs/s of wall time from the start to the last worker's end.
Model loading is not timed. Prints pairs/s of wall time and pairs per CPU-second of this
process (on a busy shared machine the second is the steadier figure), the process's peak
memory, the load average, and each precision's verdict agreement with fp32 on the same pairs.
--repeat R runs each timing R times and prints the median (with min-max).

    OMP_NUM_THREADS=1 .venv/bin/python bench/judging.py [--pairs 48] [--subset 12] [--processes 2]
                                                       [--repeat 3] [--batch-size N] [--data PANDALM.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from routing.judges.files import read_labelled_pairs  # noqa: E402
from routing.judges.local import LogitJudge  # noqa: E402

DEFAULT_DATA = ROOT / "tests" / "data" / "real" / "pandalm-testset-v1.json"


def longest_third(pairs, tokenizer):
    """The third of the pairs with the most tokens in question and answers, longest first."""
    def size(pair):
        item = pair.item
        return sum(len(tokenizer.encode(text, add_special_tokens=False)) for text in (item.prompt, item.a, item.b))

    ranked = sorted(pairs, key=size, reverse=True)
    return ranked[: len(ranked) // 3]


def chosen_items(data: str, model: str, count: int):
    """``count`` pairs spread over PandaLM's longest third, so a short run still spans its lengths."""
    from arena.providers.localmodel import load_causal_lm

    _, tokenizer = load_causal_lm(model)
    long_pairs = longest_third(read_labelled_pairs(data), tokenizer)
    step = max(1, len(long_pairs) // count)
    return len(long_pairs), [pair.item for pair in long_pairs[::step][:count]]


def timed(judge, items):
    wall, cpu = time.perf_counter(), time.process_time()
    verdicts = judge.judge(items)
    return verdicts, time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def judges(model: str, batch_size: int | None) -> dict[str, LogitJudge]:
    return {
        "int8": LogitJudge(model, batch_size=batch_size, precision="int8"),
        "bf16": LogitJudge(model, batch_size=batch_size, precision="bf16"),
        "fp32": LogitJudge(model, batch_size=batch_size, precision="fp32"),
        "naive": LogitJudge(model, batch_size=1, share_prefix=False, share_question=False, precision="fp32",
                            max_answer_tokens=512, max_question_tokens=512),
    }


def _worker(args, share: slice, ready, results) -> None:
    """One single-thread judging process: load, warm up, wait for the start, judge its share."""
    import torch

    torch.set_num_threads(1)
    _, items = chosen_items(args.data, args.model, args.pairs)
    judge = LogitJudge(args.model, batch_size=args.batch_size, precision="int8")
    judge.judge(items[:1])
    mine = items[share]
    ready.wait()
    cpu = time.process_time()
    judge.judge(mine)
    results.put((len(mine), time.monotonic(), time.process_time() - cpu, peak_rss_mib()))


def in_processes(args) -> tuple[float, float, list[float]]:
    """The int8 judge over the pairs in ``args.processes`` processes: (wall s, CPU s, peak RSS each)."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(args.processes + 1), context.Queue()
    bounds = [round(i * args.pairs / args.processes) for i in range(args.processes + 1)]
    workers = [context.Process(target=_worker, args=(args, slice(bounds[i], bounds[i + 1]), ready, results))
               for i in range(args.processes)]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.monotonic()
    done = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return max(end for _, end, _, _ in done) - start, sum(cpu for _, _, cpu, _ in done), [rss for *_, rss in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=48, help="long pairs judged by the default (int8) judge")
    parser.add_argument("--subset", "--naive-pairs", type=int, default=12,
                        help="of those, judged by every method (bf16, fp32, naive) too")
    parser.add_argument("--processes", type=int, default=1,
                        help="also judge the pairs in this many single-thread processes")
    parser.add_argument("--repeat", type=int, default=1, help="timings per method; the median is printed")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="pairs per forward pass (the judge's default: 1 on a CPU)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.pairs < 1 or not 1 <= args.subset <= args.pairs or args.processes < 1 or args.repeat < 1:
        parser.error("need --pairs >= --subset >= 1, --processes >= 1 and --repeat >= 1")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from arena.providers.localmodel import load_causal_lm

    model, _ = load_causal_lm(args.model)
    third, items = chosen_items(args.data, args.model, args.pairs)
    subset = items[: args.subset]
    methods = judges(args.model, args.batch_size)
    for judge in methods.values():
        judge.judge(items[:1])  # warm up (and build each judging copy) outside the timings
    print(f"{third} PandaLM pairs in the longest third, {len(items)} judged, both orders; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load_average()} at the start")
    print(f"\n{'method':<34} {'pairs':>5} {'wall s':>7} {'pairs/s':>8} {'CPU s':>7} {'pairs/CPU-s':>11}  "
          f"(median of {args.repeat}, min-max pairs/CPU-s)", flush=True)

    def run(name, judge, chosen):
        runs = [timed(judge, chosen) for _ in range(args.repeat)]
        wall = statistics.median(w for _, w, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        spread = f"{len(chosen) / max(c for *_, c in runs):.2f}-{len(chosen) / min(c for *_, c in runs):.2f}"
        print(f"{name:<34} {len(chosen):>5} {wall:>7.1f} {len(chosen) / wall:>8.2f} {cpu:>7.1f} "
              f"{len(chosen) / cpu:>11.2f}  {spread}", flush=True)
        return runs[0][0], cpu

    _, cpu_all = run("int8 (default), all", methods["int8"], items)
    verdicts, cpu = {}, {}
    for name in ("int8", "bf16", "fp32", "naive"):
        verdicts[name], cpu[name] = run(f"{name}, first {len(subset)}", methods[name], subset)
    print(f"\nper CPU-second on the same {len(subset)} pairs: int8 {cpu['naive'] / cpu['int8']:.2f}x the naive way, "
          f"{cpu['bf16'] / cpu['int8']:.2f}x bf16, {cpu['fp32'] / cpu['int8']:.2f}x fp32; "
          f"bf16 {cpu['naive'] / cpu['bf16']:.2f}x the naive way")

    print(f"\nagreement with fp32 on the same {len(subset)} pairs (same caches and truncation):")
    for name in ("int8", "bf16", "naive"):
        pairs = list(zip(verdicts[name], verdicts["fp32"]))
        same = sum(x.verdict == y.verdict for x, y in pairs)
        gaps = [abs(getattr(x, f) - getattr(y, f)) for x, y in pairs for f in ("p_a", "p_b", "p_tie")]
        mean_a = statistics.mean(abs(x.p_a - y.p_a) for x, y in pairs)
        print(f"  {name:<6} same verdict on {same} of {len(pairs)}, largest |P difference| {max(gaps):.3f}, "
              f"mean |P(a) difference| {mean_a:.3f}" + ("  (naive: 512-token cut, so not rounding alone)"
                                                        if name == "naive" else ""))

    if args.processes > 1:
        wall, cpu_total, rss = in_processes(args)
        print(f"\nint8 in {args.processes} single-thread processes, all {len(items)} pairs: {wall:.1f} s wall, "
              f"{len(items) / wall:.2f} pairs/s ({len(items) / cpu_total:.2f} pairs per CPU-second), "
              f"peak RSS per process {', '.join(f'{r:.0f}' for r in rss)} MiB; one process above: "
              f"{len(items) / cpu_all:.2f} pairs per CPU-second")

    from routing.judges import local

    def copy_mib(int8: bool) -> float:
        copy = (local._judging_copies or {}).get(model, {}).get(int8)
        if copy is None:
            return 0.0
        tensors = [*copy.get_decoder().parameters(), *copy.get_decoder().buffers()]
        return sum(t.numel() * t.element_size() for t in tensors if t.dtype in (torch.int8, torch.bfloat16)) / 2**20

    weights_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    print(f"\nmemory: model weights {weights_mib:.0f} MiB (float32, shared by every method), judging copies: "
          f"int8 {copy_mib(True):.0f} MiB, bf16 {copy_mib(False):.0f} MiB; this process's peak RSS "
          f"{peak_rss_mib():.0f} MiB (it holds both copies)")
    print(f"load average {load_average()} at the end")


if __name__ == "__main__":
    main()
