"""Benchmark: the arena's active matchmaking against uniform, on the path the app runs.

20 systems with known true ratings (Bradley-Terry, with ties between close systems) and
simulated voters, served and recorded by the vote API's own functions
(`arena.voting.actions`: `next_comparison`, then `check_vote` / `do_record_judgment` with
the comparison's vote token) in a throwaway SQLite database under /tmp, with the test
suite's settings. Every `--refresh-every` votes the board refresh task runs, as the
worker runs it after the vote's debounce (`refresh_leaderboards`: every scope, stored as
snapshots), and matchmaking weighs pairs by the newest snapshot, as a web process does
once its change stamps move. After each refresh, Kendall's tau between the board's order
and the true order. Reported: the votes after which tau stays at or above the target
for the rest of the run, per seed, for DUET_MATCHMAKING=active and uniform, on two
truths ("ladder": evenly spaced; "normal": i.i.d. draws, with near-ties). Prints
figures; not a test.

    .venv/bin/python bench/matchmaking.py --quick          # < 2 minutes
    nice -n 10 .venv/bin/python bench/matchmaking.py       # the full run, ~15 minutes
    .venv/bin/python bench/matchmaking.py --model-path     # the earlier, idealised loop

The arena is an image arena by default: the refresh then computes the one board
matchmaking reads. A text arena (`--modality text`) adds the style-controlled board,
which reads every battle's style row on each refresh (slower and slower as votes
accumulate) and which matchmaking does not read.

A run stops once tau has held for as many votes as it took to get there (at least
`--hold` votes), or at `--max-votes`; "the rest of the run" is that window.
`--model-path` is the earlier loop without the app: no database, a full-covariance refit
from the counts every batch of votes, pairs drawn straight from `pair_weights`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

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
VERDICTS = ("a", "b", "tie")


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
    """0: a wins, 1: b wins, 2: tie."""
    p = 1 / (1 + np.exp(strength_b - strength_a))
    tie = TIE_FACTOR * p * (1 - p)
    u = rng.random()
    return 0 if u < p - tie / 2 else (2 if u < p + tie / 2 else 1)


def settled_at(taus: list[tuple[int, float]], target: float, never: int) -> int:
    """The votes after which tau stays >= target to the last check (`never` if the last
    check is below it)."""
    settled = never
    for done, tau in reversed(taus):
        if not tau >= target:  # NaN (no board yet) counts as below
            break
        settled = done
    return settled


# --- the app's path ---------------------------------------------------------------------


def start_django() -> str:
    """Django with the test suite's settings on a fresh SQLite database under /tmp."""
    var_dir = tempfile.mkdtemp(prefix="duet-bench-matchmaking-", dir="/tmp")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["DUET_VAR_DIR"] = var_dir
    for name in ("DATABASE_URL", "DUET_REDIS_URL", "DUET_MATCHMAKING"):
        os.environ.pop(name, None)
    # Simulated voters vote thousands of times a minute, people a few: the web processes'
    # wait between reweighs (DUET_MATCHMAKING_REWEIGH_SECONDS, 5 s) would here span
    # hundreds of votes, where in use it spans a handful. Reweigh on every new board.
    os.environ["DUET_MATCHMAKING_REWEIGH_SECONDS"] = "0"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # A board with constant style features has no style-control fit; the refresh logs that.
    logging.getLogger("arena.board.snapshots").setLevel(logging.ERROR)
    return var_dir


@dataclass
class AppArena:
    arena_id: int
    system_names: tuple[str, ...]  # index = the truth's index
    system_of_output: dict[int, int]  # output id -> system index


def build_arena(n_systems: int, n_prompts: int, modality: str) -> AppArena:
    from arena.board.snapshots import default_arena
    from arena.models import Output, Prompt, PromptOrigin, Provider, System

    systems = [
        System.objects.create(name=f"bench-{i:02d}", modality=modality, provider=Provider.UPLOADED)
        for i in range(n_systems)
    ]
    prompts = [
        Prompt.objects.create(text=f"bench prompt {j}", modality=modality, origin=PromptOrigin.SEED)
        for j in range(n_prompts)
    ]
    for i, system in enumerate(systems):
        for j, prompt in enumerate(prompts):
            if modality == "text":
                # Lengths and markdown vary, so the style-controlled board is fitted as in an arena.
                text = f"Answer {j} from system {i}. " + "**bold** " * (i % 3) + "\n- point" * ((i + j) % 4)
                Output.objects.create(system=system, prompt=prompt, text=text)
            else:
                # Serving and voting read the media's name, never its bytes: no file is written.
                Output.objects.create(system=system, prompt=prompt, media=f"bench/{i}-{j}.png", media_type="image/png")
    outputs = dict(Output.objects.values_list("id", "system_id"))
    index = {s.pk: i for i, s in enumerate(systems)}
    return AppArena(
        default_arena().pk, tuple(s.name for s in systems), {o: index[s] for o, s in outputs.items()}
    )


def reset_votes() -> None:
    """Back to an arena with outputs and no votes, for the next run."""
    from arena import hotcache
    from arena.models import Arena, Battle, Comparison, Judge, Judgment, LeaderboardSnapshot

    for model in (Battle, Judgment, Comparison, LeaderboardSnapshot, Judge):
        model.objects.all().delete()
    Arena.objects.update(refresh_requested_at=None)
    hotcache.clear_all()
    hotcache.forget_stamps()


def board_tau(arena: AppArena, strengths: np.ndarray, modality: str) -> float:
    """Kendall's tau between the newest board's ratings and the truth (a system not on
    the board yet counts as rated 1000)."""
    from arena.board.snapshots import Scope, default_arena, latest_snapshot

    snapshot = latest_snapshot(default_arena(), Scope(modality))
    if snapshot is None:
        return float("nan")
    rating = {row["system"]: row["rating"] for row in snapshot.payload["systems"]}
    return kendalltau([rating.get(name, 1000.0) for name in arena.system_names], strengths).statistic


def run_app(
    arena: AppArena, policy: str, strengths: np.ndarray, seed: int, args: argparse.Namespace
) -> tuple[int, int]:
    """(votes until tau settled, votes cast) for one seed under DUET_MATCHMAKING=policy."""
    from django.test import override_settings

    from arena import hotcache
    from arena.board.snapshots import refresh_leaderboards
    from arena.voting import actions

    reset_votes()
    rng = np.random.default_rng(seed)  # which voter comes, and how they vote
    draws = random.Random(seed)  # matchmaking's own draws (the app seeds from os.urandom)
    judges = [actions.judge_for_session(f"bench-voter-{seed}-{k}") for k in range(args.voters)]
    taus: list[tuple[int, float]] = []
    never = args.max_votes + args.refresh_every
    with override_settings(MATCHMAKING=policy):
        for done in range(1, args.max_votes + 1):
            judge = judges[int(rng.integers(args.voters))]
            comparison = actions.next_comparison(judge, args.modality, rng=draws)
            a, b = arena.system_of_output[comparison.output_a_id], arena.system_of_output[comparison.output_b_id]
            verdict = VERDICTS[vote(strengths[a], strengths[b], rng)]
            token = actions.issue_vote_token(comparison, judge)
            actions.do_record_judgment(actions.check_vote(token=token, judge=judge, verdict=verdict))
            if done % args.refresh_every:
                continue
            # The worker's refresh after the debounce; the web process sees the new
            # snapshot at its next change-stamp check (every 0.25 s), here at once.
            refresh_leaderboards(arena.arena_id)
            hotcache.forget_stamps()
            taus.append((done, board_tau(arena, strengths, args.modality)))
            settled = settled_at(taus, args.target, never)
            if settled < never and done - settled >= max(args.hold, settled):
                return settled, done
    return settled_at(taus, args.target, never), args.max_votes


def main_app(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    var_dir = start_django()
    arena = build_arena(args.systems, args.prompts, args.modality)
    print(
        f"app path: {args.systems} {args.modality} systems x {args.prompts} prompts, {args.voters} voters, SQLite in {var_dir}; "
        f"board refreshed every {args.refresh_every} votes; votes until Kendall's tau stays >= {args.target} "
        f"(held for max({args.hold}, votes so far), at most {args.max_votes:,} votes)"
    )
    compare_over_seeds(
        args,
        lambda strengths, seed: (run_app(arena, "active", strengths, seed, args)[0],
                                 run_app(arena, "uniform", strengths, seed, args)[0]),
        timed=True,
    )  # fmt: skip
    print(f"({time.perf_counter() - started:.0f} s; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


def compare_over_seeds(args: argparse.Namespace, run_pair, timed: bool = False) -> None:
    """Per truth and seed, the votes active and uniform matchmaking need (`run_pair(strengths,
    seed)` -> (active, uniform)): a row per seed, the mean and median, then the saving."""
    summary = []
    for truth in args.truth:
        print(f"\ntruth: {truth}")
        print(f"{'seed':>4}{'active':>10}{'uniform':>10}{'ratio':>8}" + (f"{'seconds':>9}" if timed else ""))
        active_votes, uniform_votes = [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t0 = time.perf_counter()
            active, uniform = run_pair(true_strengths(truth, args.systems, seed), seed)
            active_votes.append(active)
            uniform_votes.append(uniform)
            seconds = f"{time.perf_counter() - t0:>9.0f}" if timed else ""
            print(f"{seed:>4}{active:>10,}{uniform:>10,}{active / uniform:>8.2f}{seconds}", flush=True)
        summary.append((truth, *report(np.array(active_votes), np.array(uniform_votes), args)))
    print()
    for truth, saving, censored in summary:
        print(f"{truth}: active needs {saving:.0%} fewer votes than uniform (total over seeds)"
              + (f"; {censored} run(s) never settled" if censored else ""))  # fmt: skip


def report(active_votes: np.ndarray, uniform_votes: np.ndarray, args: argparse.Namespace) -> tuple[float, int]:
    censored = int((active_votes > args.max_votes).sum() + (uniform_votes > args.max_votes).sum())
    print(f"{'mean':>4}{active_votes.mean():>10,.0f}{uniform_votes.mean():>10,.0f}"
          f"{active_votes.mean() / uniform_votes.mean():>8.2f}")  # fmt: skip
    print(f"{'med':>4}{np.median(active_votes):>10,.0f}{np.median(uniform_votes):>10,.0f}"
          f"{np.median(active_votes) / np.median(uniform_votes):>8.2f}")  # fmt: skip
    return 1 - active_votes.sum() / uniform_votes.sum(), censored


# --- the model path (no app) --------------------------------------------------------------


def counts_from_table(systems: tuple[str, ...], table: np.ndarray) -> BattleCounts:
    """table: shape (n, n, 3) battles per (a, b, outcome) with a < b."""
    a, b, outcome = np.nonzero(table)
    count = table[a, b, outcome]
    return BattleCounts(
        systems, a.astype(np.int64), b.astype(np.int64), outcome.astype(np.int8), count, count.astype(float),
        count.astype(float),
    )


def run_model(policy, strengths: np.ndarray, max_votes: int, batch: int, target: float, seed: int) -> int:
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
    return settled_at(taus, target, max_votes + batch)


def main_model(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    print(f"model path: {args.systems} systems; full-covariance refit every {args.refresh_every} votes; "
          f"votes until Kendall's tau stays >= {args.target} up to {args.max_votes:,} votes")  # fmt: skip
    active_policy = functools.partial(pair_weights, exploration=args.exploration)
    compare_over_seeds(args, lambda strengths, seed: tuple(
        run_model(policy, strengths, args.max_votes, args.refresh_every, args.target, seed)
        for policy in (active_policy, uniform_pair_weights)
    ))  # fmt: skip
    print(f"({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", action="store_true", help="the idealised loop without the app")
    parser.add_argument("--quick", action="store_true", help="2 seeds, ladder truth, at most 3,000 votes")
    parser.add_argument("--seeds", type=int, default=None, help="default 4 (app path), 10 (model path)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--truth", nargs="+", choices=["ladder", "normal"], default=None,
                        help="true ratings, see true_strengths (default: both)")  # fmt: skip
    parser.add_argument("--systems", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=30, help="prompts every system answered (app path)")
    parser.add_argument("--modality", choices=["image", "text"], default="image",
                        help="the arena's modality (app path); text adds the style-controlled board to each refresh, "
                        "which matchmaking does not read")  # fmt: skip
    parser.add_argument("--voters", type=int, default=200, help="simulated voters (app path)")
    parser.add_argument("--max-votes", type=int, default=None, help="default 6,000 (app), 10,000 (model)")
    parser.add_argument("--hold", type=int, default=1000, help="least votes tau must hold to stop early (app path)")
    parser.add_argument("--refresh-every", "--batch", type=int, default=20, help="votes between board refreshes")
    parser.add_argument("--target", type=float, default=0.9, help="Kendall's tau to reach and keep")
    parser.add_argument("--exploration", type=float, default=EXPLORATION, help="uniform share (model path)")
    args = parser.parse_args()
    if args.quick:
        args.seeds = args.seeds or 2
        args.truth = args.truth or ["ladder"]
        args.max_votes = args.max_votes or 3000
        args.hold = min(args.hold, 500)
    args.seeds = args.seeds or (10 if args.model_path else 4)
    args.truth = args.truth or ["ladder", "normal"]
    args.max_votes = args.max_votes or (10_000 if args.model_path else 6_000)
    for name in ("seeds", "systems", "prompts", "voters", "max_votes", "refresh_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.systems < 3:
        parser.error("--systems must be at least 3 (Kendall's tau of fewer says nothing)")
    (main_model if args.model_path else main_app)(args)


if __name__ == "__main__":
    main()
