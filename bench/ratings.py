"""Benchmark: Duet's Bradley-Terry engine against LMArena's older fitting code.

Simulates battles among systems with known strengths, then times, in one run:
  Duet     aggregation from a DataFrame, the BT fit, sandwich intervals, a bootstrap;
  baseline LMArena's 2023 notebook: sklearn LogisticRegression on one dense row per battle
           (every battle twice, so a tie can be one win each way), bootstrap by
           resampling the battle DataFrame.
The baseline bootstrap runs fewer rounds; speed is compared per round, which is what
"equal rounds" means. Prints figures; not a test.

With --whole it times whole processes instead, the wait a user sees: a FastChat
clean_battle JSON log is written once, then, interleaved and --runs times each,
  arena-rank  LMArena's library (0.1.1, in a venv of its own: it pins jax and numpy):
              pandas.read_json, PairDataset.from_pandas, BradleyTerry, sandwich intervals;
  Duet        manage.py leaderboard --battles LOG --ci sandwich, and --ci bootstrap --rounds 1000;
and prints medians, their ratios and the largest rating and interval differences.

    .venv/bin/python bench/ratings.py [--battles 1000000] [--systems 100] [--rounds 1000]
                                      [--baseline-rounds 10]
    .venv/bin/python bench/ratings.py --whole [--runs 3] [--log PATH] [--shape fastchat|flat]
                                      [--arena-rank-venv /tmp/arena-rank-venv]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from arena.ratings import (  # noqa: E402
    INITIAL_RATING,
    POINTS_PER_LOGIT,
    BattleCounts,
    BootstrapIntervals,
    BradleyTerry,
    Normaliser,
    SandwichIntervals,
    component_labels,
)

# Ties are likeliest between equals: P(tie) = TIE_FACTOR * p * (1 - p), a quarter of them
# both_bad, and the rest split so that a tie's half-win keeps E[win credit] = p. Then the
# tie-as-half-a-win BT fit is consistent and the truth is recoverable.
TIE_FACTOR = 0.6
BOTH_BAD_SHARE_OF_TIES = 0.25


def simulate(n_battles: int, n_systems: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 1.0, n_systems)  # logits; sd ~ 174 rating points
    a = rng.integers(0, n_systems, n_battles)
    b = (a + rng.integers(1, n_systems, n_battles)) % n_systems
    p_a = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    p_tie = TIE_FACTOR * p_a * (1 - p_a)
    u = rng.random(n_battles)
    a_wins = u < p_a - p_tie / 2
    tie = ~a_wins & (u < p_a + p_tie / 2)
    both_bad = tie & (rng.random(n_battles) < BOTH_BAD_SHARE_OF_TIES)
    outcome = np.where(a_wins, 0, np.where(tie, np.where(both_bad, 3, 2), 1))
    names = np.array([f"system-{i:03d}" for i in range(n_systems)])
    df = pd.DataFrame(
        {
            "system_a": names[a],
            "system_b": names[b],
            "outcome": np.array(["a", "b", "tie", "both_bad"])[outcome],
        }
    )
    return df, strength


# --- baseline: LMArena's notebook (Dec 2023), kept as written apart from the deprecated
# `penalty=None` spelled `C=np.inf`, the anchor dropped (we centre both on the mean) and
# the tolerance made an option: the notebook's 1e-6 leaves sklearn ~0.01 points short of
# the optimum at this size, which would measure its stopping rule, not the model.
def baseline_mle_elo(df: pd.DataFrame, SCALE=400, BASE=10, INIT_RATING=1000, tol=1e-8) -> pd.Series:
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)

    # duplicate battles
    df = pd.concat([df, df], ignore_index=True)
    p = len(models.index)
    n = df.shape[0]

    X = np.zeros([n, p])
    X[np.arange(n), models[df["model_a"]]] = +math.log(BASE)
    X[np.arange(n), models[df["model_b"]]] = -math.log(BASE)

    # one A win => two A win
    Y = np.zeros(n)
    Y[df["winner"] == "model_a"] = 1.0

    # one tie => one A win + one B win
    tie_idx = (df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")
    tie_idx[len(tie_idx) // 2 :] = False
    Y[tie_idx] = 1.0

    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=tol)
    lr.fit(X, Y)

    elo_scores = SCALE * lr.coef_[0] + INIT_RATING
    return pd.Series(elo_scores, index=models.index)


def baseline_bootstrap(df: pd.DataFrame, rounds: int, seed: int) -> pd.DataFrame:
    rows = [baseline_mle_elo(df.sample(frac=1.0, replace=True, random_state=seed + r)) for r in range(rounds)]
    return pd.DataFrame(rows)


def as_lmarena(df: pd.DataFrame) -> pd.DataFrame:
    spelling = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
    return pd.DataFrame({"model_a": df["system_a"], "model_b": df["system_b"], "winner": df["outcome"].map(spelling)})


def timed(fn, *args, repeat: int = 1):
    """Value and the best of `repeat` wall times (best-of, as timeit does: the first call
    also pays one-off costs such as BLAS thread start-up)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn(*args)
        best = min(best, time.perf_counter() - start)
    return value, best


def peak_mib(fn, *args) -> float:
    """Peak traced allocation (numpy and pandas report theirs to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def duet_pipeline(df: pd.DataFrame, rounds: int, seed: int) -> None:
    counts = BattleCounts.from_pandas(df)
    model = BradleyTerry(counts)
    params = model.fit()
    normalise = Normaliser(component_labels(counts))
    SandwichIntervals().estimate(model, params, normalise, 0.95)
    BootstrapIntervals(rounds, seed).estimate(model, params, normalise, 0.95)


# --- whole processes ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
ARENA_RANK = "arena-rank==0.1.1"
# What a user of arena-rank writes for a FastChat log (its README, with FastChat's loader).
ARENA_RANK_SCRIPT = """
import json, sys
import pandas as pd
from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.utils.data_utils import PairDataset

df = pd.read_json(sys.argv[1])
outcome = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
dataset = PairDataset.from_pandas(df, outcome_map=outcome.get)
model = BradleyTerry(n_competitors=len(dataset.competitors))
result = model.compute_ratings_and_cis(dataset, significance_level=0.05, ci_method="sandwich")
print(json.dumps({"systems": [
    {"system": name, "rating": float(r), "ci_low": float(lo), "ci_high": float(hi)}
    for name, r, lo, hi in zip(result["competitors"], result["ratings"], result["rating_lower"], result["rating_upper"])
]}))
"""


def write_fastchat_log(path: Path, n_battles: int, n_systems: int, seed: int, shape: str) -> None:
    """A clean_battle log of simulated battles, rows as FastChat writes them; `flat` leaves
    out conv_metadata (pandas reads flat rows several times faster)."""
    df, _ = simulate(n_battles, n_systems, seed)
    rng = np.random.default_rng(seed + 1)
    winner = df["outcome"].map({"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}).tolist()
    tstamp = 1_700_000_000 + np.sort(rng.random(n_battles)) * 86400 * 300
    tokens = rng.integers(20, 1500, (n_battles, 3))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        for i, (a, b) in enumerate(zip(df["system_a"].tolist(), df["system_b"].tolist())):
            row = {"question_id": f"q{i:07d}", "model_a": a, "model_b": b, "winner": winner[i],
                   "judge": f"arena_user_{i % 5000}", "turn": 1, "anony": bool(i % 7), "language": "English",
                   "tstamp": round(float(tstamp[i]), 4)}  # fmt: skip
            if shape == "fastchat":
                row["conv_metadata"] = {"sum_user_tokens": int(tokens[i, 0]), "sum_assistant_a_tokens": int(tokens[i, 1]),
                                        "sum_assistant_b_tokens": int(tokens[i, 2]), "turns": 1}  # fmt: skip
            handle.write(json.dumps(row))
            handle.write(",\n" if i + 1 < n_battles else "\n")
        handle.write("]\n")


def arena_rank_python(venv: Path) -> Path | None:
    """The venv's python with arena-rank installed (made when missing), or None, said why."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import arena_rank"], capture_output=True).returncode == 0:
        return python
    print(f"making {venv} for {ARENA_RANK} (never in requirements.txt: it pins jax and numpy 2.3)")
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", venv], capture_output=True, text=True)
    if made.returncode == 0:
        made = subprocess.run([python, "-m", "pip", "install", "-q", ARENA_RANK, "pandas"], capture_output=True, text=True)
    if made.returncode != 0:
        print(f"NOTE: pip could not install {ARENA_RANK}; arena-rank is not timed.\n{made.stderr[-2000:]}")
        return None
    return python


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(command: list) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds (all threads; on a busy machine the better guide to a
    quiet one's wall time) and the printed JSON of one process."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{done.stderr[-3000:]}")
    return elapsed, cpu, json.loads(done.stdout)


def largest_differences(ours: dict, theirs: dict) -> tuple[float, float]:
    """Largest |rating difference| and |interval bound difference| over the systems, in points."""
    by_name = {row["system"]: row for row in ours["systems"]}
    rating = bound = 0.0
    for row in theirs["systems"]:
        mine = by_name[row["system"]]
        rating = max(rating, abs(mine["rating"] - row["rating"]))
        bound = max(bound, abs(mine["ci_low"] - row["ci_low"]), abs(mine["ci_high"] - row["ci_high"]))
    return rating, bound


def whole(args) -> None:
    log = Path(args.log or Path(tempfile.gettempdir()) / f"duet-bench-{args.battles}-{args.shape}.json")
    if not log.exists():
        start = time.perf_counter()
        write_fastchat_log(log, args.battles, args.systems, args.seed, args.shape)
        print(f"wrote {log} in {time.perf_counter() - start:.0f} s")
    print(f"log: {log} ({log.stat().st_size / 2**20:,.0f} MiB, {args.battles:,} battles, {args.systems} systems, "
          f"rows shaped {args.shape}); cpu cores: {os.cpu_count()}")  # fmt: skip
    python = arena_rank_python(Path(args.arena_rank_venv))
    script = Path(tempfile.gettempdir()) / "duet-bench-arena-rank.py"
    script.write_text(ARENA_RANK_SCRIPT)
    duet = [sys.executable, "manage.py", "leaderboard", "--battles", str(log), "--format-in", "fastchat",
            "--format", "json"]  # fmt: skip
    commands = {
        "arena-rank sandwich": [python, script, log] if python else None,
        "Duet sandwich": [*duet, "--ci", "sandwich"],
        f"Duet bootstrap {args.rounds}": [*duet, "--ci", "bootstrap", "--rounds", str(args.rounds)],
    }
    commands = {name: command for name, command in commands.items() if command}
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    outputs: dict[str, dict] = {}
    loads = [os.getloadavg()[0]]
    for run in range(args.runs):  # interleaved, so a busy spell slows every contender
        for name, command in commands.items():
            elapsed, cpu, outputs[name] = run_timed(command)
            times[name].append(elapsed)
            cpus[name].append(cpu)
            print(f"  run {run + 1}: {name:<24}{elapsed:>8.2f} s, {cpu:6.2f} CPU s   (load {os.getloadavg()[0]:.1f})",
                  flush=True)  # fmt: skip
        loads.append(os.getloadavg()[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpus.items()}
    print()
    print(f"whole process, median of {args.runs} (1-min load average {min(loads):.1f}-{max(loads):.1f})")
    baseline, baseline_cpu = median.get("arena-rank sandwich"), median_cpu.get("arena-rank sandwich")
    print(f"  {'':<24}{'wall s':>8}{'ratio':>8}{'CPU s':>10}{'ratio':>8}")
    for name, value in median.items():
        ratios = (f"{baseline / value:>7.1f}x", f"{baseline_cpu / median_cpu[name]:>7.1f}x") if baseline else ("", "")
        print(f"  {name:<24}{value:>8.2f}{ratios[0]:>8}{median_cpu[name]:>10.2f}{ratios[1]:>8}")
    if baseline:
        theirs = outputs["arena-rank sandwich"]
        for name in commands:
            if name.startswith("Duet"):
                rating, bound = largest_differences(outputs[name], theirs)
                print(f"  {name} vs arena-rank: ratings within {rating:.4f} points, interval bounds within "
                      f"{bound:.3f} points")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1000, help="Duet bootstrap rounds")
    parser.add_argument("--baseline-rounds", type=int, default=10, help="baseline bootstrap rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-memory", action="store_true", help="skip the traced re-runs for peak memory")
    parser.add_argument("--whole", action="store_true", help="time whole processes against arena-rank")
    parser.add_argument("--runs", type=int, default=3, help="--whole: runs of each process")
    parser.add_argument("--log", default=None, help="--whole: the log to use (written when missing)")
    parser.add_argument("--shape", choices=["fastchat", "flat"], default="fastchat", help="--whole: rows of the log")
    parser.add_argument("--arena-rank-venv", default=str(Path(tempfile.gettempdir()) / "arena-rank-venv"))
    args = parser.parse_args()
    if args.whole:
        whole(args)
        return

    df, strength = simulate(args.battles, args.systems, args.seed)
    shares = df["outcome"].value_counts(normalize=True)
    print(f"{args.battles:,} battles among {args.systems} systems ({shares.get('tie', 0):.1%} ties, "
          f"{shares.get('both_bad', 0):.1%} both_bad counted as ties); cpu cores: {os.cpu_count()}")

    # Duet
    counts, t_aggregate = timed(BattleCounts.from_pandas, df)
    model = BradleyTerry(counts)
    params, t_fit = timed(model.fit, repeat=3)
    normalise = Normaliser(component_labels(counts))
    _, t_sandwich = timed(SandwichIntervals().estimate, model, params, normalise, 0.95, repeat=3)
    _, t_bootstrap = timed(BootstrapIntervals(args.rounds, args.seed).estimate, model, params, normalise, 0.95)
    ours = INITIAL_RATING + normalise(params) * POINTS_PER_LOGIT
    ours = pd.Series(ours, index=counts.systems)

    # baseline
    lmarena = as_lmarena(df)
    theirs, t_base_fit = timed(baseline_mle_elo, lmarena)
    _, t_base_bootstrap = timed(baseline_bootstrap, lmarena, args.baseline_rounds, args.seed)
    theirs = theirs - theirs.mean() + INITIAL_RATING

    per_round = t_bootstrap / args.rounds
    base_per_round = t_base_bootstrap / args.baseline_rounds
    max_diff = float((ours - theirs.reindex(ours.index)).abs().max())
    truth = (strength - strength.mean()) * POINTS_PER_LOGIT + INITIAL_RATING

    print()
    print("Duet's fit and sandwich times are the best of 3 calls; everything else is one run.")
    print(f"{'step':<38}{'Duet':>12}{'baseline':>12}{'speed-up':>10}")
    print(f"{'aggregate DataFrame -> counts (s)':<38}{t_aggregate:>12.3f}{'':>12}")
    print(f"{'BT fit (s)':<38}{t_fit:>12.4f}{t_base_fit:>12.2f}{t_base_fit / t_fit:>9.0f}x")
    print(f"{'BT fit from DataFrame (s)':<38}{t_aggregate + t_fit:>12.3f}{t_base_fit:>12.2f}"
          f"{t_base_fit / (t_aggregate + t_fit):>9.1f}x")
    print(f"{'sandwich intervals (s)':<38}{t_sandwich:>12.4f}{'':>12}")
    print(f"{'bootstrap, total (s)':<38}{t_bootstrap:>12.2f}{t_base_bootstrap:>12.2f}"
          f"   ({args.rounds} vs {args.baseline_rounds} rounds)")
    print(f"{'bootstrap, per round (ms)':<38}{per_round * 1e3:>12.2f}{base_per_round * 1e3:>12.0f}"
          f"{base_per_round / per_round:>9.0f}x")
    print(f"{'baseline time for {0} rounds, est. (s)'.format(args.rounds):<38}{'':>12}"
          f"{base_per_round * args.rounds:>12.0f}")
    print()
    print(f"largest rating difference Duet vs baseline: {max_diff:.5f} points "
          f"({'within' if max_diff <= 0.01 else 'NOT within'} 0.01)")
    print(f"aggregated rows: {len(counts.a):,} (from {counts.n_battles:,} battles)")
    print(f"largest error vs the simulated truth: {np.abs(ours.values - truth).max():.2f} points")

    if not args.skip_memory:
        ours_mib = peak_mib(duet_pipeline, df, args.rounds, args.seed)
        base_mib = peak_mib(baseline_mle_elo, lmarena)
        print(f"peak traced memory: Duet pipeline (aggregate, fit, sandwich, {args.rounds}-round bootstrap) "
              f"{ours_mib:,.0f} MiB; baseline single fit {base_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
