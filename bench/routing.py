"""Benchmark: what each human budget buys on PandaLM, with GPT-3.5's verdicts as the judge, calibrated.

PandaLM's 999 test comparisons each carry three human verdicts; GPT-3.5-turbo's verdicts on
them (about 70% agreement with the human majority; 25 unparsable) play the judge. Items
arrive in batches of --batch-size in a shuffled order; each policy routes a budget share of
every batch to humans (an item routed to a human takes its first annotator's verdict), the
learned policy refitting between batches on the human verdicts it has already bought. The
final labels are scored against the three-annotator majority. Policies are averaged over
--seeds arrival orders, random over --random-seeds. The judge is calibrated as a project
calibrates it (routing.calibration): before each batch, on the human verdicts bought in
the earlier batches; every policy, random included, sees and keeps the calibrated
verdicts (--no-calibration: the raw ones). Prints figures; not a test.

    .venv/bin/python bench/routing.py [--seeds 5] [--random-seeds 20] [--batch-size 100]
                                      [--data PANDALM.json] [--judge-file GPT35.json] [--no-calibration]
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

from routing.judges.files import judge_for_pairs, read_labelled_pairs  # noqa: E402
from routing.simulation import DEFAULT_BUDGETS, simulate_routing, simulation_items  # noqa: E402

SHARED = ROOT / "tests" / "data" / "real"
JUDGE = "gpt-3.5-turbo"
TARGET_BUDGETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED / "pandalm-testset-v1.json"))
    parser.add_argument("--judge-file", default=str(SHARED / "pandalm-gpt35-judge-v1.json"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--random-seeds", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--no-calibration", action="store_true", help="route on the judge's raw verdicts")
    args = parser.parse_args()
    calibrate = not args.no_calibration

    pairs = read_labelled_pairs(args.data, args.judge_file, judge_name=JUDGE)
    items = simulation_items(pairs, judge_for_pairs(JUDGE, pairs))
    curves, seconds = {}, {}
    for policy in ("uncertainty", "learned"):
        started = time.perf_counter()
        curves[policy] = simulate_routing(items, policy, DEFAULT_BUDGETS, seeds=args.seeds,
                                          random_seeds=args.random_seeds, batch_size=args.batch_size, judge_name=JUDGE,
                                          calibrate=calibrate)
        seconds[policy] = time.perf_counter() - started
    learned, uncertainty = curves["learned"], curves["uncertainty"]
    how = "calibrated before each batch on the human verdicts bought" if calibrate else "raw"
    print(f"{len(items)} PandaLM items, judge {JUDGE} ({how}): alone {learned.judge_accuracy:.3f}, one human each "
          f"{learned.first_human_accuracy:.3f} (against the majority of three); batches of {args.batch_size}; "
          f"policies over {args.seeds} orders, random over {args.random_seeds}")
    print(f"\n{'budget':>6} {'humans':>6} {'random':>7} {'uncertainty':>11} {'learned':>8} {'learned-random':>15}")
    for point, other in zip(learned.curve, uncertainty.curve):
        print(f"{point.budget:>6.1f} {point.human_count:>6} {point.random_accuracy:>7.3f} {other.accuracy:>11.3f} "
              f"{point.accuracy:>8.3f} {point.accuracy - point.random_accuracy:>+15.3f}")
    gains = [p.accuracy - p.random_accuracy for p in learned.curve if p.budget in TARGET_BUDGETS]
    print(f"\nlearned - random, mean over budgets 10% to 60%: {100 * sum(gains) / len(gains):+.1f} points")
    beaten = [p.budget for p in learned.curve if p.budget in TARGET_BUDGETS and p.accuracy > p.random_accuracy]
    print(f"\nlearned above random at {len(beaten)} of {len(TARGET_BUDGETS)} budgets from 10% to 60% "
          f"(target: all); simulation time: uncertainty {seconds['uncertainty']:.1f} s, "
          f"learned {seconds['learned']:.1f} s (random included in each)")


if __name__ == "__main__":
    main()
