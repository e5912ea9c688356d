"""Routing hears `judgment_recorded`: people's judgments on items the project's judge
judged refit the judge's calibration, once per burst, without waiting for routing to run."""

import pytest
from django.core.cache import cache

from routing import receivers

from arena.voting import actions as arena_actions
from arena.judgments import record_judgment
from arena.models import Judgment
from routing import actions
from routing.models import JudgeCalibration
from routing.tasks import recalibrate_judge

from .test_calibration_project import LEANS, _people_say
from .test_integration_support import ScriptedJudge, answer_everything, make_routed_project, scripted_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def refits(monkeypatch):
    """The refits queued, as (project id, judge id, countdown)."""
    calls = []
    monkeypatch.setattr(recalibrate_judge, "apply_async",
                        lambda args, countdown=0, **kw: calls.append((*args, countdown)))  # fmt: skip
    return calls


def test_people_judging_the_judges_items_refit_its_calibration(annotator, refits, django_capture_on_commit_callbacks):
    # given a project routed by a judge that judged all 40 items, none yet judged by people:
    # routing found nothing to calibrate on
    project = make_routed_project("refit", rows=scripted_rows(LEANS * 20), members=[annotator],
                                  human_budget_fraction=1.0)  # fmt: skip
    actions.route_project(project, judge=ScriptedJudge())
    row = Judgment.objects.filter(judge__name="scripted").first().judge
    assert not JudgeCalibration.objects.exists() and refits == []
    # when people judge them (their judgments announced as they commit)
    with django_capture_on_commit_callbacks(execute=True):
        answer_everything(project, annotator, _people_say)
    # then one refit was queued for the burst, after the debounce
    assert refits == [(project.pk, row.pk, 30)]
    # and when the worker runs it, the judge is calibrated on the 40 comparisons people judged
    assert recalibrate_judge.apply(args=refits[0][:2]).get() == 40
    assert JudgeCalibration.objects.get(project=project, judge=row).n == 40


def test_judgments_the_judge_has_no_part_in_queue_nothing(annotator, make_user, refits,
                                                           django_capture_on_commit_callbacks):
    # given a project without a judge (human only), and the judge's own judgments
    project = make_routed_project("people-only", policy="human_only", rows=scripted_rows(LEANS),
                                  members=[annotator])  # fmt: skip
    actions.route_project(project)
    with django_capture_on_commit_callbacks(execute=True):
        answer_everything(project, annotator)
        # and an arena vote (no project) by someone else
        item = project.items.first()
        record_judgment(item.comparison, arena_actions.judge_for_user(make_user("voter")), "a")
    # then nothing was queued
    assert refits == []


def test_the_refit_window_is_shared_by_every_process(annotator, refits, monkeypatch):
    # given a burst of people's judgments on the judge's items, seen by one process
    monkeypatch.setattr(receivers.time, "time", lambda: 3000.0)
    project = make_routed_project("shared-window", rows=scripted_rows(LEANS * 5), members=[annotator],
                                  human_budget_fraction=1.0)  # fmt: skip
    actions.route_project(project, judge=ScriptedJudge())
    answer_everything(project, annotator, _people_say)
    judgments = list(Judgment.objects.filter(judge__kind="human"))
    assert receivers.recalibrate_after_human_judgments(None, judgments) != []
    # when another process (its own local caches empty) sees the next ones in the same window
    cache.clear()
    again = receivers.recalibrate_after_human_judgments(None, judgments)
    # then it queues nothing: one refit per window across processes and hosts
    assert again == [] and len(refits) == 1
