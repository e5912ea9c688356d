"""Benchmark: does quick work stay quick while long jobs run? The worker lanes (`make run`)
against one worker on every queue with two processes (what `make run` started before).

For each layout, in a fresh temporary folder (SQLite database, embedded filesystem
broker): migrate, create the demo systems, three uploaded systems with 36 votes, a user
with an API token; start the web server (runserver) and the workers; warm up with one
live battle (so each live process has SmolLM2 loaded); then start the long jobs: a
reward-model training run on the real SmolLM2-135M-Instruct (`manage.py train --kind
reward`, the default base), then the demo's text generation (`seed_demo`: SmolLM2 answers
for every demo prompt). While both run, each repetition times, through the HTTP API:

- vote to board: from the POST of a vote to the leaderboard API counting it;
- live first token: from the POST that starts a live battle to the first text of either
  side (and of both sides), polling the battle's state as the page does; the battle is
  then voided (its answers stop) so that the next one starts on free live processes.

Prints medians and maxima per layout and the ratios (a wait longer than --wait seconds
counts as --wait, so a ratio against it is a lower bound) and what the long jobs got
done meanwhile: training steps and demo outputs per minute. Every process shares the
machine's cores (whole-process timings). About 10 minutes on 2 cores.

    .venv/bin/python bench/lanes.py [--repeats 3] [--layouts lanes,single] [--wait 60]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LAYOUTS = {"lanes": "the lanes (config.celery.LANES)", "single": "one worker, every queue, -c 2"}


class Api:
    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def __call__(self, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.url + path, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json",
                     "Accept": "application/json"},
            method="GET" if body is None else "POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


def board_battles(api: Api) -> int:
    return api("/api/leaderboard/?modality=text")["n_battles"]


def time_vote(api: Api, wait: float) -> float:
    """Seconds from a vote's POST until the leaderboard API counts it."""
    before = board_battles(api)
    comparison = api("/api/arena/next/?modality=text")
    started = time.monotonic()
    api("/api/arena/vote/", {"token": comparison["token"], "verdict": "a"})
    while time.monotonic() - started < wait:
        if board_battles(api) > before:
            return time.monotonic() - started
        time.sleep(0.05)
    return wait


def time_live_battle(api: Api, wait: float, message: str) -> tuple[float, float]:
    """Seconds from starting a live battle to the first text of either side and of both.
    Then the battle is voided, which stops both answers within a token, and their end is
    awaited, so the next battle finds the live processes free."""
    from arena.live import battles as live
    from arena.models import GenerationStatus, LiveBattle, LiveGeneration

    started = time.monotonic()
    state = api("/api/live/battles/", {"modality": "text", "message": message})
    battle = state["battle"]
    first = both = None
    while time.monotonic() - started < wait and state["status"] == "generating":
        turn = state["turns"][0]
        texts = [bool(turn.get(side, {}).get("text")) for side in ("a", "b")]
        now = time.monotonic() - started
        if first is None and any(texts):
            first = now
        if all(texts):
            both = now
            break
        time.sleep(0.1)
        state = api(f"/api/live/battles/{battle}/")
    battle_pk = LiveBattle.objects.get(public_id=battle).pk
    live.void_battle(battle_pk, "the benchmark has its timing")
    # A running side stops at its next token; a side still queued fails at once when a
    # process takes it, so it holds up no later battle.
    running = LiveGeneration.objects.filter(battle=battle_pk, status=GenerationStatus.RUNNING)
    stuck_after = time.monotonic() + 600
    while running.exists():
        assert time.monotonic() < stuck_after, "a voided live answer never stopped"
        time.sleep(0.2)
    return (wait if first is None else first), (wait if both is None else both)


SEED_VOTES = """
import random
from arena.voting import actions
from arena.demo import create_demo_records
from arena.models import Output, Prompt, System
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
create_demo_records()
others = [System.objects.create(name=f"answers-{i}") for i in range(3)]
for j in range(6):
    prompt = Prompt.objects.create(text=f"Question {j}?")
    for i, system in enumerate(others):
        Output.objects.create(system=system, prompt=prompt, text="word " * (2 + 3 * i))
for v in range(2):
    judge = actions.judge_for_user(get_user_model().objects.create_user(f"voter{v}"))
    for _ in range(18):
        comparison = actions.next_comparison(judge, "text", rng=random.Random(v))
        verdict = "a" if len(comparison.output_a.text) > len(comparison.output_b.text) else "b"
        actions.do_record_judgment(actions.check_vote(
            token=actions.issue_vote_token(comparison, judge), judge=judge, verdict=verdict))
from arena.roles import assign_role
bench = get_user_model().objects.create_user("bench")
assign_role(bench, "annotator")
print("TOKEN", Token.objects.create(user=bench).key)
"""


def manage(env, *args, timeout=600) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def measure_layout(layout: str, args) -> dict:
    """One layout in a fresh folder; run in a child process so that its Django settings
    (database, broker folder) are its own."""
    work = Path(tempfile.mkdtemp(prefix=f"duet-bench-lanes-{layout}-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "DUET_VAR_DIR": str(work / "var"),
        "DUET_MEDIA_ROOT": str(work / "media"),
        "DUET_TRAINING_RUNS_DIR": str(work / "runs"),
        "DUET_MODEL_CACHE": os.environ.get("DUET_MODEL_CACHE", str(ROOT / "var" / "models")),
        "DUET_LIVE_PROMPTS_PER_HOUR": "100000",
        "DUET_LIVE_TIMEOUT": "600",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    import django

    django.setup()
    from arena.providers.localmodel import ensure_converted
    from tests import processes

    ensure_converted()
    manage(env, "migrate", "--noinput")
    token = manage(env, "shell", "-c", SEED_VOTES).split("TOKEN")[1].strip()
    workers = []
    web = None
    try:
        web, url = processes.start_web(env, work)
        if layout == "lanes":
            workers = processes.start_lanes(env, work)
        else:
            workers = [processes.start_worker(env, work, concurrency=2)]
        processes.wait_until_consuming(workers, timeout=300)
        api = Api(url, token)
        deadline = time.monotonic() + 300
        while board_battles(api) < 36:  # the seeding votes' refresh
            assert time.monotonic() < deadline, "the board never counted the seeding votes"
            time.sleep(0.2)
        time_live_battle(api, 300, "Say hello.")

        # the long jobs: demo generation (queued by seed_demo) and a training run
        # (training first: queued behind the generation batches, it would wait for them all)
        manage(env, "train", "--kind", "reward", "--arena", "main", "--max-steps", str(args.train_steps))
        manage(env, "seed_demo")
        from training.models import TrainingRun

        deadline = time.monotonic() + 300
        while TrainingRun.objects.get().status == "queued" and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(10)  # both long jobs past their imports and model loading
        from arena.models import Output

        def long_lane_progress() -> tuple[float, int, int]:
            run = TrainingRun.objects.get()
            return time.monotonic(), (run.progress or {}).get("step", 0), Output.objects.filter(
                system__provider="transformers").count()  # fmt: skip

        before = long_lane_progress()
        votes, first_tokens, both_sides = [], [], []
        for repeat in range(args.repeats):
            vote_time = []
            voter = threading.Thread(target=lambda: vote_time.append(time_vote(api, args.wait)))
            voter.start()
            first, both = time_live_battle(api, args.wait, f"Give me a tip for sleeping well ({repeat}).")
            voter.join()
            votes.append(vote_time[0])
            first_tokens.append(first)
            both_sides.append(both)
            print(f"  {layout} #{repeat + 1}: vote to board {vote_time[0]:.2f} s, live first token {first:.2f} s "
                  f"(both sides {both:.2f} s)", file=sys.stderr, flush=True)  # fmt: skip
        after = long_lane_progress()
        minutes = (after[0] - before[0]) / 60
        return {
            "votes": votes, "first_tokens": first_tokens, "both_sides": both_sides,
            "training_steps_per_min": (after[1] - before[1]) / minutes, "outputs_per_min": (after[2] - before[2]) / minutes,
            "training": TrainingRun.objects.get().status,
        }
    finally:
        # in parallel: a worker's warm shutdown waits up to 30 s for its task
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda process: process.stop(), workers + ([web] if web else [])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layouts", default="lanes,single")
    parser.add_argument("--wait", type=float, default=60.0, help="longest wait counted, seconds")
    parser.add_argument("--train-steps", type=int, default=2000, help="enough to outlast the measurement")
    parser.add_argument("--one-layout", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_layout:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the processes on the way out
        print("RESULT " + json.dumps(measure_layout(args.one_layout, args)))
        return

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    results = {}
    for layout in args.layouts.split(","):
        child = subprocess.run(
            [sys.executable, __file__, "--one-layout", layout, "--repeats", str(args.repeats), "--wait", str(args.wait),
             "--train-steps", str(args.train_steps)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if child.returncode != 0:
            raise SystemExit(f"layout {layout} failed")
        results[layout] = json.loads(child.stdout.split("RESULT ", 1)[1])
    print(f"load average after: {os.getloadavg()[0]:.1f}; {args.repeats} repetitions per layout, "
          f"waits capped at {args.wait:.0f} s")  # fmt: skip
    print(f"{'layout':<34} {'vote→board p50':>15} {'max':>7} {'live 1st token p50':>19} {'max':>7} "
          f"{'both sides p50':>15} {'train steps/min':>16} {'outputs/min':>12}")  # fmt: skip
    for layout, r in results.items():
        print(f"{LAYOUTS[layout]:<34} {statistics.median(r['votes']):>14.2f}s {max(r['votes']):>6.2f}s "
              f"{statistics.median(r['first_tokens']):>18.2f}s {max(r['first_tokens']):>6.2f}s "
              f"{statistics.median(r['both_sides']):>14.2f}s "
              f"{r['training_steps_per_min']:>16.1f} {r['outputs_per_min']:>12.1f}")  # fmt: skip
    if {"lanes", "single"} <= results.keys():
        for key, name in (("votes", "vote to board"), ("first_tokens", "live first token"),
                          ("both_sides", "live, both sides")):  # fmt: skip
            ratio = statistics.median(results["single"][key]) / statistics.median(results["lanes"][key])
            print(f"{name}: one worker / lanes = {ratio:.1f}x")


if __name__ == "__main__":
    main()
