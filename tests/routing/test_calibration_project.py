"""A judge calibrated on a project: fitted from the comparisons people judged too, stored,
applied to every later verdict it writes there; a schema without ties never gets a tie."""

import pytest

from arena.models import Judgment
from routing import actions
from routing.models import JudgeCalibration

from .test_integration_support import ScriptedJudge, answer_everything, import_rows, make_routed_project, scripted_rows

pytestmark = pytest.mark.django_db


LEANS = [("a", 0.4, False), ("b", 0.4, False)]  # the judge's raw P(its verdict) = 0.4, P(tie) = 0.3


def _people_say(item):
    # people never tie, and agree with the judge's lean on four comparisons in five
    words = item.comparison.prompt.text.split()
    lean = words[3].removeprefix("say:")
    if int(words[2]) % 5 == 0:
        return "b" if lean == "a" else "a"
    return lean


def test_calibration_is_fitted_on_what_people_judged_and_applied_to_later_verdicts(annotator):
    # given: an unsure judge, and people who judged the same 40 items
    project = make_routed_project("calibrated", rows=scripted_rows(LEANS * 20),
                                  members=[annotator], human_budget_fraction=1.0)  # fmt: skip
    judge = ScriptedJudge()
    actions.route_project(project, judge=judge)
    answer_everything(project, annotator, _people_say)
    row = Judgment.objects.filter(judge__name="scripted").first().judge
    # when
    stored = actions.calibrate_judge(project, row)
    import_rows(project, scripted_rows([LEANS[0]] * 5, prefix="later"))
    actions.route_project(project, judge=judge)
    # then: stored with its scores; later verdicts carry how often people agreed, not the raw 0.4
    assert JudgeCalibration.objects.get(project=project, judge=row) == stored and stored.n == 40
    assert stored.parameters["after"]["log_loss"] < stored.parameters["before"]["log_loss"]
    later = Judgment.objects.filter(judge=row, metadata__item__in=list(
        project.items.filter(comparison__prompt__text__contains="later").values_list("pk", flat=True)))
    assert later.count() == 5
    for judgment in later:
        assert judgment.verdict == "a" and 0.6 < judgment.confidence < 0.9  # people: 0.8, shrunk on 40 items
        assert judgment.metadata["p_tie"] < 0.05  # people never tied here
        assert judgment.metadata["uncalibrated"]["confidence"] == 0.4
        assert judgment.metadata["calibration"] == f"calibrated on project {project.pk}"


def test_too_few_comparisons_judged_by_people_store_no_calibration(annotator):
    project = make_routed_project("few", rows=scripted_rows([("a", 0.9, False)] * 5), members=[annotator],
                                  human_budget_fraction=1.0)  # fmt: skip
    actions.route_project(project, judge=ScriptedJudge())
    answer_everything(project, annotator)
    row = Judgment.objects.filter(judge__name="scripted").first().judge
    assert actions.calibrate_judge(project, row) is None
    assert not JudgeCalibration.objects.exists()


def test_a_schema_without_ties_never_gets_a_tie_from_the_judge():
    schema = {"verdicts": ["a", "b"], "aspects": [], "rationale": {"enabled": False, "min_length": 0}}
    project = make_routed_project("no-ties", policy="judge_only", rows=scripted_rows([("tie", 0.6, False)] * 4),
                                  schema=schema)  # fmt: skip
    actions.route_project(project, judge=ScriptedJudge())
    verdicts = list(Judgment.objects.filter(judge__name="scripted").values_list("verdict", flat=True))
    assert len(verdicts) == 4 and "tie" not in verdicts


def test_the_routing_page_shows_scores_reliability_and_position_bias(annotator, researcher):
    from django.test import Client

    # given: the calibrated project of the first test
    project = make_routed_project("page", rows=scripted_rows(LEANS * 20), members=[annotator],
                                  human_budget_fraction=1.0)  # fmt: skip
    actions.route_project(project, judge=ScriptedJudge())
    client = Client()
    client.force_login(researcher)
    url = f"/routing/projects/{project.pk}/"
    assert 'id="calibration-none"' in client.get(url).content.decode()
    answer_everything(project, annotator, _people_say)
    actions.calibrate_judge(project, Judgment.objects.filter(judge__name="scripted").first().judge)
    # when
    html = client.get(url).content.decode()
    # then
    for expected in ('id="calibration"', 'data-when="before"', 'data-when="after"', 'id="reliability"',
                     'class="after"', "Fitted on 40 comparisons"):
        assert expected in html, expected
    assert "<script>" not in html
