"""Benchmark: active matchmaking against uniform pair sampling.

Simulated voters judge pairs of 20 systems with known strengths (Bradley-Terry, with
ties between close systems). After every batch of votes the arena refits (the fit
matchmaking uses: BT with a weak prior and its inverse-information covariance) and
measures Kendall's tau between the fitted and the true order. Reported: the number of
votes after which tau stays at or above the target for the rest of the run, per seed,
for active and uniform sampling. Prints figures; not a test.

    .venv/bin/python bench/matchmaking.py [--seeds 10] [--systems 20] [--max-votes 10000] [--exploration 0.1]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np
from scipy.stats import kendalltau

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from arena.ratings import (  # noqa: E402
    POINTS_PER_LOGIT,
    BattleCounts,
    MatchState,
    draw_pair,
    pair_weights,
    uniform_pair_weights,
)
from arena.ratings.pairing import EXPLORATION  # noqa: E402

TIE_FACTOR = 0.6  # P(tie) = 0.6 p (1 - p): close systems tie more, E[win credit] stays p
SPAN_POINTS = 400.0  # the true ratings span 400 points, like a busy arena
SPREAD_POINTS = 120.0  # sd of the "normal" truth: 20 draws then span ~400 points too


def true_strengths(kind: str, n_systems: int, seed: int) -> np.ndarray:
    """Logit strengths. "ladder": evenly spaced over SPAN_POINTS, jittered by a tenth of a
    step, in random order: every adjacent gap is resolvable, so the votes to reach a tau
    measure the policy. "normal": i.i.d. draws, where some seeds hold near-ties that keep
    tau hovering around the target for thousands of votes under any policy."""
    rng = np.random.default_rng(1000 + seed)
    if kind == "normal":
        return rng.normal(0, SPREAD_POINTS / POINTS_PER_LOGIT, n_systems)
    step = SPAN_POINTS / (n_systems - 1)
    points = np.linspace(0, SPAN_POINTS, n_systems) + rng.uniform(-step / 10, step / 10, n_systems)
    return rng.permutation(points - points.mean()) / POINTS_PER_LOGIT


def vote(strength_a: float, strength_b: float, rng: np.random.Generator) -> int:
    p = 1 / (1 + np.exp(strength_b - strength_a))
    tie = TIE_FACTOR * p * (1 - p)
    u = rng.random()
    return 0 if u < p - tie / 2 else (2 if u < p + tie / 2 else 1)


def counts_from_table(systems: tuple[str, ...], table: np.ndarray) -> BattleCounts:
    """table: shape (n, n, 3) battles per (a, b, outcome) with a < b."""
    a, b, outcome = np.nonzero(table)
    count = table[a, b, outcome]
    return BattleCounts(
        systems, a.astype(np.int64), b.astype(np.int64), outcome.astype(np.int8), count, count.astype(float),
        count.astype(float),
    )


def run(policy, strengths: np.ndarray, max_votes: int, batch: int, target: float, seed: int) -> tuple[int, list]:
    """Votes until tau stays >= target through max_votes (max_votes + batch if never)."""
    rng = np.random.default_rng(seed)
    n = len(strengths)
    systems = tuple(f"s{i}" for i in range(n))
    table = np.zeros((n, n, 3), dtype=np.int64)
    state = MatchState.from_counts(counts_from_table(systems, table))
    taus = []
    for done in range(batch, max_votes + 1, batch):
        # Voters in a batch are served from the same fit, as between two refits in the arena.
        probs = policy(state)
        for _ in range(batch):
            i, j = draw_pair(probs, rng)
            outcome = vote(strengths[i], strengths[j], rng)
            if i > j:
                i, j, outcome = j, i, (1, 0, 2)[outcome]
            table[i, j, outcome] += 1
        state = MatchState.from_counts(counts_from_table(systems, table))
        taus.append((done, kendalltau(state.ratings, strengths).statistic))
    settled = max_votes + batch
    for done, tau in reversed(taus):
        if tau < target:
            break
        settled = done
    return settled, taus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--exploration", type=float, default=EXPLORATION, help="uniform share of active sampling")
    parser.add_argument("--systems", type=int, default=20)
    parser.add_argument("--max-votes", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20, help="votes between refits")
    parser.add_argument("--target", type=float, default=0.9, help="Kendall's tau to reach and keep")
    parser.add_argument("--truth", choices=["ladder", "normal"], default="ladder", help="true ratings, see true_strengths")
    args = parser.parse_args()

    truth = (f"evenly spaced over {SPAN_POINTS:.0f} points" if args.truth == "ladder"
             else f"~ N(1000, {SPREAD_POINTS:.0f})")
    print(f"{args.systems} systems, true ratings {truth}; refit every {args.batch} votes; "
          f"votes until Kendall's tau stays >= {args.target} up to {args.max_votes:,} votes")
    print(f"{'seed':>4}{'active':>10}{'uniform':>10}{'ratio':>8}")
    started = time.perf_counter()
    active_votes, uniform_votes = [], []
    active_policy = functools.partial(pair_weights, exploration=args.exploration)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        strengths = true_strengths(args.truth, args.systems, seed)
        active, _ = run(active_policy, strengths, args.max_votes, args.batch, args.target, seed)
        uniform, _ = run(uniform_pair_weights, strengths, args.max_votes, args.batch, args.target, seed)
        active_votes.append(active)
        uniform_votes.append(uniform)
        print(f"{seed:>4}{active:>10,}{uniform:>10,}{active / uniform:>8.2f}")
    active_votes, uniform_votes = np.array(active_votes), np.array(uniform_votes)
    censored = int((active_votes > args.max_votes).sum() + (uniform_votes > args.max_votes).sum())
    print(f"{'mean':>4}{active_votes.mean():>10,.0f}{uniform_votes.mean():>10,.0f}"
          f"{active_votes.mean() / uniform_votes.mean():>8.2f}")
    print(f"{'med':>4}{np.median(active_votes):>10,.0f}{np.median(uniform_votes):>10,.0f}"
          f"{np.median(active_votes) / np.median(uniform_votes):>8.2f}")
    saving = 1 - active_votes.sum() / uniform_votes.sum()
    print(f"active needs {saving:.0%} fewer votes than uniform (total over seeds)"
          + (f"; {censored} run(s) never settled and count as {args.max_votes + args.batch:,}" if censored else ""))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
