"""Live battles on this machine's CPU: time from submitting a prompt to the first token on
each side, and to both answers complete, for two SmolLM2 systems with 1, 4 and 16
concurrent voters.

Runs a real Celery worker (the `make run` one: two processes, one torch thread each, on
the embedded filesystem broker) against a throwaway SQLite database, and starts the
battles the way the API does (`arena.live.battles.start_live_battle`). Prints a table.

    .venv/bin/python bench/live.py [--voters 1,4,16] [--max-new-tokens 64] [--concurrency 2]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", default="1,4,16")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="duet-bench-live-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DUET_VAR_DIR": str(work),
        "DUET_MODEL_CACHE": os.environ.get("DUET_MODEL_CACHE", str(ROOT / "var" / "models")),
        "DUET_LIVE_CONCURRENCY": "2",
        "DUET_LIVE_PROMPTS_PER_HOUR": "100000",
        "DUET_LIVE_TIMEOUT": "600",
        "OMP_NUM_THREADS": "1",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from arena.voting import actions

    from arena.live import battles as live
    from arena.providers.localmodel import ensure_converted
    from arena.models import LiveGeneration, System

    ensure_converted()
    call_command("migrate", verbosity=0)
    for name, prompt in (("smol-brief", "Answer briefly."), ("smol-warm", "Answer warmly.")):
        System.objects.create(
            name=name, provider="transformers",
            provider_config={"model": args.model, "system_prompt": prompt, "max_new_tokens": args.max_new_tokens,
                             "temperature": 0.7, "top_p": 0.95},
        )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,generation,judging,training",
         "-c", str(args.concurrency), "--loglevel=WARNING", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"cores: {os.cpu_count()}, worker processes: {args.concurrency}, max_new_tokens: {args.max_new_tokens}")
    try:
        # Warm-up: the first battle loads the model in each worker process.
        warm = live.start_live_battle(actions.judge_for_user(get_user_model().objects.create_user("warm")), "text", "Hi")
        while LiveGeneration.objects.filter(battle=warm).exclude(status__in=["done", "failed"]).exists():
            time.sleep(0.2)
        print(f"{'voters':>6} {'first token p50':>16} {'first token p95':>16} {'both done p50':>14} "
              f"{'both done p95':>14} {'tokens/s':>9} {'failed':>6}")  # fmt: skip
        for n_voters in [int(v) for v in args.voters.split(",")]:
            judges = [actions.judge_for_user(get_user_model().objects.create_user(f"v{n_voters}-{i}"))
                      for i in range(n_voters)]  # fmt: skip
            started = time.time()

            def ask(judge):
                return live.start_live_battle(judge, "text", "Give me three tips for sleeping well.")

            with ThreadPoolExecutor(max_workers=n_voters) as pool:
                battles = list(pool.map(ask, judges))
            pending = LiveGeneration.objects.filter(battle__in=battles)
            while pending.exclude(status__in=["done", "failed"]).exists():
                if worker.poll() is not None:
                    raise SystemExit("the worker died")
                time.sleep(0.1)
            wall = time.time() - started
            first, done, tokens, failed = [], [], 0, 0
            for battle in battles:
                sides = list(LiveGeneration.objects.filter(battle=battle).select_related("output"))
                failed += sum(g.status == "failed" for g in sides)
                for g in sides:
                    if g.first_token_at:
                        first.append((g.first_token_at - g.queued_at).total_seconds())
                    if g.output:
                        tokens += g.output.metadata.get("tokens", 0)
                finished = [g.finished_at for g in sides if g.finished_at]
                if len(finished) == 2:
                    done.append((max(finished) - min(g.queued_at for g in sides)).total_seconds())
            print(f"{n_voters:>6} {statistics.median(first):>15.2f}s {percentile(first, 95):>15.2f}s "
                  f"{statistics.median(done):>13.2f}s {percentile(done, 95):>13.2f}s {tokens / wall:>9.1f} {failed:>6}")  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=60)


if __name__ == "__main__":
    main()
