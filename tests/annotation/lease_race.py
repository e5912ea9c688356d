"""A lease race against a real database, run in a subprocess by test_concurrency.py.

Usage: DATABASE_URL=postgres://... python -m tests.annotation.lease_race
Migrates the (throwaway) database, lets annotators race through a project from threads,
and prints a JSON report; exits non-zero if any item got more than its overlap.
"""

import io
import json
import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.models import Count  # noqa: E402

from annotation import actions  # noqa: E402
from annotation.errors import NothingToAnnotate  # noqa: E402
from annotation.models import Assignment, AssignmentStatus  # noqa: E402
from arena.voting.actions import issue_vote_token, judge_for_user  # noqa: E402
from tests.annotation.conftest import jsonl, text_rows  # noqa: E402

N_ITEMS, OVERLAP, N_ANNOTATORS = 12, 3, 8


def work(project, user, barrier, errors):
    try:
        barrier.wait()
        while True:
            try:
                assignment = actions.next_assignment(project, user)
            except NothingToAnnotate:
                return
            token = issue_vote_token(assignment.item.comparison, judge_for_user(user))
            submission = actions.check_submission(
                project, user, assignment_id=assignment.pk, token=token, verdict="a"
            )
            actions.do_record_submission(submission)
    except Exception as exc:  # noqa: BLE001 - reported to the parent test
        errors.append(f"{user.username}: {type(exc).__name__}: {exc}")
    finally:
        connections.close_all()


def main():
    from django.contrib.auth import get_user_model

    call_command("migrate", verbosity=0)
    project = actions.create_project(name="race", overlap=OVERLAP, gold_fraction=0)
    actions.import_comparisons(project, io.BytesIO(jsonl(text_rows(N_ITEMS))), "race.jsonl")
    users = [get_user_model().objects.create_user(f"racer{i}") for i in range(N_ANNOTATORS)]
    for user in users:
        actions.add_member(project, user)
    barrier, errors = threading.Barrier(N_ANNOTATORS), []
    threads = [threading.Thread(target=work, args=(project, user, barrier, errors)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_item = list(
        Assignment.objects.filter(status=AssignmentStatus.COMPLETED)
        .values("item").annotate(n=Count("pk")).values_list("n", flat=True)
    )  # fmt: skip
    report = {
        "vendor": connection.vendor,
        "errors": errors,
        "items": len(per_item),
        "max_per_item": max(per_item, default=0),
        "min_per_item": min(per_item, default=0),
        "judgments": sum(per_item),
    }
    print(json.dumps(report))
    return 0 if not errors and report["max_per_item"] <= OVERLAP else 1


if __name__ == "__main__":
    sys.exit(main())
