"""Projects, leases, gold checks, minimum time and adjudication, through the actions."""

import pytest
from django.utils import timezone

from annotation import actions
from annotation.errors import (
    AlreadyDone,
    InvalidInput,
    LeaseExpired,
    NotAllowed,
    NothingToAnnotate,
    QualityBlocked,
    TooFast,
)
from annotation.models import Assignment, AssignmentStatus, ProjectItem, QualityStatus, Route
from annotation.schema import parse_schema
from arena.models import Judgment
from arena.voting.actions import issue_vote_token, judge_for_user

from .conftest import text_rows

pytestmark = pytest.mark.django_db


# --- projects and schema --------------------------------------------------------------------


def test_create_project_validates_schema_and_thresholds():
    with pytest.raises(InvalidInput, match="schema.verdicts: 'maybe'"):
        actions.create_project(name="x", schema={"verdicts": ["a", "maybe"]})
    with pytest.raises(InvalidInput, match="gold_block_accuracy must not be above"):
        actions.create_project(name="x", gold_warn_accuracy=0.5, gold_block_accuracy=0.8)
    project = actions.create_project(
        name="x", schema={"verdicts": ["a", "b"], "aspects": ["helpfulness", {"name": "harmlessness", "scale": "ab"}],
                          "rationale": {"min_length": 10}},
    )  # fmt: skip
    schema = parse_schema(project.schema)
    assert schema.verdicts == ("a", "b")
    assert [(a.name, a.scale, a.points) for a in schema.aspects] == [("helpfulness", "likert", 5),
                                                                      ("harmlessness", "ab", 5)]
    assert schema.rationale_enabled and schema.rationale_min_length == 10
    with pytest.raises(InvalidInput, match="already exists"):
        actions.create_project(name="x")


def test_schema_checks_answers():
    schema = parse_schema(
        {"verdicts": ["a", "b", "tie"], "aspects": [{"name": "helpfulness", "points": 5},
                                                      {"name": "harmlessness", "scale": "ab"}],
         "rationale": {"enabled": True, "min_length": 12}}
    )  # fmt: skip
    good = {"helpfulness": {"a": 5, "b": 2}, "harmlessness": "tie"}
    assert schema.check_answer("a", good, "  A is correct and polite.  ") == (good, "A is correct and polite.")
    with pytest.raises(InvalidInput, match="verdict must be one of a, b, tie in this project"):
        schema.check_answer("both_bad", good, "long enough reason")
    with pytest.raises(InvalidInput, match="aspects.helpfulness: rate Helpfulness"):
        schema.check_answer("a", {"harmlessness": "a"}, "long enough reason")
    with pytest.raises(InvalidInput, match=r"aspects.helpfulness.b must be a whole number from 1 to 5"):
        schema.check_answer("a", {**good, "helpfulness": {"a": 1, "b": 6}}, "long enough reason")
    with pytest.raises(InvalidInput, match="unknown aspect 'style'"):
        schema.check_answer("a", {**good, "style": "a"}, "long enough reason")
    with pytest.raises(InvalidInput, match=r"at least 12 characters \(you wrote 5\)"):
        schema.check_answer("a", good, "short")


# --- leases ---------------------------------------------------------------------------------


def test_next_item_needs_membership(make_project, annotator, make_user):
    project = make_project(rows=text_rows(2))
    with pytest.raises(NotAllowed, match="not a member"):
        actions.next_assignment(project, annotator)
    actions.add_member(project, annotator)
    assignment = actions.next_assignment(project, annotator)
    assert assignment.status == AssignmentStatus.LEASED
    # Asking again serves the same lease: a reload does not let anyone pick their item.
    assert actions.next_assignment(project, annotator).pk == assignment.pk


def test_overlap_caps_judgments_and_no_one_judges_twice(make_project, make_user, lease_and_answer):
    users = [make_user(f"u{i}") for i in range(4)]
    project = make_project(rows=text_rows(2), members=users, overlap=2, gold_fraction=0)
    # given two annotators who each judge both items
    for user in users[:2]:
        lease_and_answer(project, user)
        lease_and_answer(project, user)
    # then both items are full and nobody else gets them
    for user in users[2:]:
        with pytest.raises(NothingToAnnotate):
            actions.next_assignment(project, user)
    with pytest.raises(NothingToAnnotate, match="Nothing left for you"):
        actions.next_assignment(project, users[0])
    assert Judgment.objects.filter(metadata__project=project.pk).count() == 4


def test_items_fill_up_before_new_ones_start(make_project, make_user, lease_and_answer):
    first, second = make_user("first"), make_user("second")
    project = make_project(rows=text_rows(3), members=[first, second], overlap=2, gold_fraction=0)
    lease_and_answer(project, first)
    assert actions.next_assignment(project, second).item.external_id == "item-0"


def test_leases_expire_and_are_reclaimed(make_project, make_user, lease_and_answer, settings):
    settings.ANNOTATION_LEASE_SECONDS = 60
    slow, quick = make_user("slow"), make_user("quick")
    project = make_project(rows=text_rows(1), members=[slow, quick], overlap=1, gold_fraction=0)
    held = actions.next_assignment(project, slow)
    with pytest.raises(NothingToAnnotate):
        actions.next_assignment(project, quick)  # the only slot is leased
    # when the lease runs out
    later = held.expires_at + timezone.timedelta(seconds=1)
    taken = actions.next_assignment(project, quick, now=later)
    # then the item goes to the next annotator and the old lease is marked expired
    assert taken.item_id == held.item_id
    held.refresh_from_db()
    assert held.status == AssignmentStatus.EXPIRED
    lease_and_answer(project, quick, assignment=taken, later=1)
    # and the late answer is refused because the slot is gone
    with pytest.raises(LeaseExpired, match="ran out"):
        lease_and_answer(project, slow, assignment=held, later=120)


def test_late_answer_is_accepted_while_the_item_has_room(make_project, annotator, lease_and_answer, settings):
    settings.ANNOTATION_LEASE_SECONDS = 60
    project = make_project(rows=text_rows(1), members=[annotator], overlap=3, gold_fraction=0)
    assignment = actions.next_assignment(project, annotator)
    result = lease_and_answer(project, annotator, assignment=assignment, later=600)
    assert result.assignment.status == AssignmentStatus.COMPLETED


def test_skip_frees_the_item_and_never_serves_it_again(make_project, make_user):
    skipper, other = make_user("skipper"), make_user("other")
    project = make_project(rows=text_rows(1), members=[skipper, other], overlap=1, gold_fraction=0)
    assignment = actions.next_assignment(project, skipper)
    actions.skip_assignment(project, skipper, assignment.pk)
    with pytest.raises(NothingToAnnotate):
        actions.next_assignment(project, skipper)
    assert actions.next_assignment(project, other).item_id == assignment.item_id
    with pytest.raises(AlreadyDone, match="skipped"):
        token = issue_vote_token(assignment.item.comparison, judge_for_user(skipper))
        actions.check_submission(project, skipper, assignment_id=assignment.pk, token=token, verdict="a")


def test_only_items_routed_to_humans_are_served(make_project, annotator):
    project = make_project(rows=text_rows(2), members=[annotator], gold_fraction=0)
    ProjectItem.objects.filter(project=project, external_id="item-0").update(route=Route.JUDGE)
    assert actions.next_assignment(project, annotator).item.external_id == "item-1"


def test_submission_records_an_arena_judgment_with_project_metadata(make_project, annotator, lease_and_answer):
    project = make_project(
        rows=text_rows(1), members=[annotator], gold_fraction=0,
        schema={"aspects": ["helpfulness"], "rationale": {"enabled": True, "min_length": 5}},
    )  # fmt: skip
    result = lease_and_answer(
        project, annotator, "b", aspects={"helpfulness": {"a": 2, "b": 4}}, rationale="B is right.",
        time_to_vote_ms=4200,
    )  # fmt: skip
    judgment = Judgment.objects.get(pk=result.judgment.pk)
    item = ProjectItem.objects.get(project=project)
    assert judgment.judge == judge_for_user(annotator)
    assert judgment.metadata == {"project": project.pk, "item": item.pk}
    assert (judgment.verdict, judgment.aspects, judgment.rationale) == ("b", {"helpfulness": {"a": 2, "b": 4}},
                                                                        "B is right.")  # fmt: skip
    assert judgment.time_to_vote_ms == 4200
    assert result.assignment.judgment_id == judgment.pk
    with pytest.raises(AlreadyDone):
        lease_and_answer(project, annotator, assignment=result.assignment)


def test_token_of_another_item_is_refused(make_project, annotator):
    project = make_project(rows=text_rows(2), members=[annotator], gold_fraction=0)
    assignment = actions.next_assignment(project, annotator)
    other = ProjectItem.objects.exclude(pk=assignment.item_id).get()
    token = issue_vote_token(other.comparison, judge_for_user(annotator))
    with pytest.raises(InvalidInput, match="belongs to another item"):
        actions.check_submission(project, annotator, assignment_id=assignment.pk, token=token, verdict="a")


# --- minimum time ---------------------------------------------------------------------------


def test_answers_faster_than_the_minimum_time_are_refused(make_project, annotator, lease_and_answer):
    project = make_project(rows=text_rows(1), members=[annotator], gold_fraction=0, min_seconds_per_item=8)
    assignment = actions.next_assignment(project, annotator)
    with pytest.raises(TooFast, match=r"That was quick: 2.0 s. This project asks you to spend at least 8 s"):
        lease_and_answer(project, annotator, assignment=assignment, later=2)
    assert not Judgment.objects.exists()
    assert lease_and_answer(project, annotator, assignment=assignment, later=9).judgment


# --- gold -----------------------------------------------------------------------------------


def _gold_project(make_project, annotator, n_gold=6, **fields):
    rows = text_rows(6) + text_rows(
        n_gold, prefix="gold", gold="a", gold_explanation="A adds correctly; B is off by one."
    )
    return make_project(rows=rows, members=[annotator], **fields)


def test_gold_items_are_mixed_in_and_wrong_answers_get_the_explanation(make_project, annotator, lease_and_answer):
    project = _gold_project(make_project, annotator, gold_fraction=0.5, gold_min_answers=10)
    served = []
    for _ in range(4):
        result = lease_and_answer(project, annotator, "b")
        item = result.assignment.item
        served.append(item.check_kind or "regular")
        if item.is_check:
            assert result.gold_feedback == {"expected": "a", "explanation": "A adds correctly; B is off by one."}
        else:
            assert result.gold_feedback is None
    assert served == ["gold", "regular", "gold", "regular"]


def test_gold_accuracy_warns_then_blocks(make_project, annotator, lease_and_answer):
    # gold_fraction 1: only gold items while any are unseen
    project = _gold_project(
        make_project, annotator, gold_fraction=1.0, gold_min_answers=3, gold_warn_accuracy=0.8,
        gold_block_accuracy=0.5,
    )  # fmt: skip
    membership = project.memberships.get()
    # 3 right, then 1 wrong: 3/4 = 75% < 80% -> warned
    for verdict in ("a", "a", "a", "b"):
        result = lease_and_answer(project, annotator, verdict)
    assert result.quality_status == QualityStatus.WARNED
    assert "75%" in result.warning and "80%" in result.warning
    membership.refresh_from_db()
    assert membership.flagged_at is not None
    # two more wrong: 3/6 = 50%, which is not below the 50% block threshold
    lease_and_answer(project, annotator, "b")
    result = lease_and_answer(project, annotator, "b")
    assert result.quality_status == QualityStatus.WARNED
    assert actions.next_assignment(project, annotator).item.check_kind == ""  # still served


def test_blocked_annotators_get_no_more_items(make_project, annotator, lease_and_answer):
    project = _gold_project(make_project, annotator, gold_fraction=1.0, gold_min_answers=2, gold_block_accuracy=0.5)
    lease_and_answer(project, annotator, "b")
    result = lease_and_answer(project, annotator, "b")
    assert result.quality_status == QualityStatus.BLOCKED
    with pytest.raises(QualityBlocked, match="below this project's minimum of 50%"):
        actions.next_assignment(project, annotator)
    assert project.memberships.get().quality_status == QualityStatus.BLOCKED


def test_gold_items_do_not_count_toward_overlap(make_project, make_user, lease_and_answer):
    users = [make_user(f"g{i}") for i in range(3)]
    project = make_project(rows=text_rows(1, prefix="gold", gold="a"), members=users, overlap=1, gold_fraction=1.0)
    for user in users:
        assert lease_and_answer(project, user, "a").assignment.item.is_check


# --- progress -------------------------------------------------------------------------------


def test_progress_per_project_and_annotator(make_project, make_user, lease_and_answer):
    ann, other = make_user("ann1"), make_user("ann2")
    project = make_project(rows=text_rows(3), members=[ann, other], overlap=2, gold_fraction=0)
    lease_and_answer(project, ann)
    lease_and_answer(project, ann)
    lease_and_answer(project, other)
    actions.skip_assignment(project, other, actions.next_assignment(project, other).pk)
    progress = actions.queue.project_progress(project, timezone.now())
    assert (progress["items"], progress["complete"], progress["judgments_done"], progress["judgments_needed"]) == (
        3, 1, 3, 6,
    )  # fmt: skip
    rows = {row["username"]: row for row in progress["annotators"]}
    assert (rows["ann1"]["completed"], rows["ann2"]["completed"], rows["ann2"]["skipped"]) == (2, 1, 1)
    assert actions.queue.annotator_progress(project, other) == {"completed": 1, "skipped": 1, "remaining": 1}


# --- adjudication ---------------------------------------------------------------------------


def test_reviewer_adjudicates_by_superseding_disagreeing_judgments(make_project, make_user, lease_and_answer):
    ann1, ann2, ann3, reviewer = (make_user(name) for name in ("r1", "r2", "r3", "rev"))
    project = make_project(rows=text_rows(1), members=[ann1, ann2, ann3], overlap=3, gold_fraction=0)
    actions.add_member(project, reviewer, "reviewer")
    for user, verdict in ((ann1, "a"), (ann2, "b"), (ann3, "a")):
        lease_and_answer(project, user, verdict)
    item = ProjectItem.objects.get(project=project)
    assert actions.queue.conflicting_item_ids(project) == [item.pk]
    with pytest.raises(NotAllowed):
        actions.adjudicate(item, ann1, "a")
    # when the reviewer settles on "a"
    adjudication = actions.adjudicate(item, reviewer, "a", note="B miscounts.")
    # then the one disagreeing judgment is superseded by the reviewer's correction
    corrections = Judgment.objects.filter(supersedes__isnull=False)
    assert corrections.count() == 1
    correction = corrections.get()
    assert correction.supersedes.verdict == "b"
    assert correction.judge == judge_for_user(reviewer)
    assert correction.metadata == {"project": project.pk, "item": item.pk, "adjudication": adjudication.pk}
    live = Judgment.objects.filter(comparison=item.comparison, superseded_by__isnull=True)
    assert sorted(live.values_list("verdict", flat=True)) == ["a", "a", "a"]
    assert actions.queue.conflicting_item_ids(project) == []
    # and a second opinion chains: the reviewer's own corrections can be superseded too
    actions.adjudicate(item, reviewer, "tie")
    live = Judgment.objects.filter(comparison=item.comparison, superseded_by__isnull=True)
    assert sorted(live.values_list("verdict", flat=True)) == ["tie", "tie", "tie"]
    assert Judgment.objects.filter(supersedes__isnull=True).count() == 3  # the originals stay


def test_researchers_may_adjudicate_without_membership(make_project, researcher, make_user, lease_and_answer):
    ann = make_user("solo")
    project = make_project(rows=text_rows(1), members=[ann], gold_fraction=0)
    lease_and_answer(project, ann, "a")
    actions.adjudicate(ProjectItem.objects.get(), researcher, "b")
    assert Judgment.objects.filter(superseded_by__isnull=True).get().verdict == "b"


def test_removed_member_loses_lease_keeps_judgments(make_project, annotator, lease_and_answer):
    project = make_project(rows=text_rows(2), members=[annotator], gold_fraction=0)
    lease_and_answer(project, annotator)
    actions.next_assignment(project, annotator)
    actions.remove_member(project, annotator)
    assert Assignment.objects.filter(status=AssignmentStatus.LEASED).count() == 0
    assert Judgment.objects.count() == 1
    with pytest.raises(NotAllowed):
        actions.next_assignment(project, annotator)
