"""Benchmark: what the vote-time category tag costs the vote's check (`check_vote`).

Builds a small arena in a throw-away SQLite database, serves one comparison, then times
`check_vote` on its token without a category (the baseline) and with one, in alternating
rounds; prints the medians per call and their ratio. Not a test.

    .venv/bin/python bench/vote_category.py [--calls 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="duet-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["DUET_VAR_DIR"] = folder
    os.environ["DUET_ARENA_CATEGORIES"] = "coding,maths,writing"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from arena.models import Output, Prompt, System
    from arena.roles import assign_role
    from arena.voting import actions

    systems = [System.objects.create(name=f"s{i}") for i in range(4)]
    prompts = [Prompt.objects.create(text=f"p{j}", categories=["coding"]) for j in range(10)]
    for system in systems:
        for prompt in prompts:
            Output.objects.create(system=system, prompt=prompt, text=f"{system.name} on {prompt.text}")
    user = get_user_model().objects.create_user("bench")
    assign_role(user, "annotator")
    judge = actions.judge_for_user(user)
    comparison = actions.next_comparison(judge, "text")
    token = actions.issue_vote_token(comparison, judge)

    def per_call(category) -> float:
        started = time.perf_counter()
        for _ in range(args.calls):
            actions.check_vote(token=token, judge=judge, verdict="a", category=category)
        return (time.perf_counter() - started) / args.calls * 1e6

    per_call("coding")  # warm the per-process copies
    plain, tagged = [], []
    for _ in range(args.rounds):
        plain.append(per_call(None))
        tagged.append(per_call("coding"))
    base, with_tag = statistics.median(plain), statistics.median(tagged)
    print(f"check_vote, median of {args.rounds} rounds of {args.calls} calls:")
    print(f"  without category {base:8.1f} µs/call (baseline)")
    print(f"  with category    {with_tag:8.1f} µs/call  ratio {with_tag / base:.3f}")
    print(f"  load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
