import io
import json

import pytest


def text_rows(n, start=0, prefix="item", **extra):
    return [
        {
            "id": f"{prefix}-{i}",
            "prompt": f"Question {i}: what is {i} + {i}?",
            "a": {"system": "sys-x", "text": f"It is {2 * i}."},
            "b": {"system": "sys-y", "text": f"It is {2 * i + 1}, I think."},
            **extra,
        }
        for i in range(start, start + n)
    ]


def jsonl(rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.fixture
def make_project(db):
    from annotation import actions

    def make(name="Project", rows=None, members=(), **fields):
        project = actions.create_project(name=name, **fields)
        if rows:
            actions.import_comparisons(project, io.BytesIO(jsonl(rows)), "items.jsonl")
        for user in members:
            actions.add_member(project, user)
        return project

    return make


@pytest.fixture
def lease_and_answer():
    """Lease the annotator's next item and answer it (past any minimum time)."""
    from django.utils import timezone

    from annotation import actions
    from arena.voting.actions import issue_vote_token, judge_for_user

    def answer(project, user, verdict="a", *, assignment=None, later=None, **fields):
        assignment = assignment or actions.next_assignment(project, user)
        token = issue_vote_token(assignment.item.comparison, judge_for_user(user))
        now = assignment.leased_at + timezone.timedelta(seconds=later) if later is not None else None
        submission = actions.check_submission(
            project, user, assignment_id=assignment.pk, token=token, verdict=verdict, now=now, **fields
        )
        return actions.do_record_submission(submission, now=now)

    return answer
