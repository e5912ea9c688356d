"""Routing on real projects: judges' verdicts become judgments, policies route pending items
within the budget, decisions are kept with their reasons, and the annotation queue serves
exactly the items routed to people."""

import math

import pytest
from django.core.management import call_command

from annotation.models import ProjectItem, Route
from arena.models import Judge, JudgeKind, Judgment
from routing import actions
from routing.judges import JudgeError
from routing.models import JobKind, JobStatus, JudgingJob, RoutingDecision, UnusableVerdict
from routing.policies import Budget

from .test_integration_support import (  # noqa: F401 - fixtures
    ScriptedJudge,
    answer_everything,
    chat_endpoint,
    import_rows,
    make_routed_project,
    reward_run,
    scripted_rows,
)

pytestmark = pytest.mark.django_db


def mixed_specs(n=20):
    """A judge that is sure of some items, unsure of others, flips on some, garbles two."""
    specs = []
    for i in range(n):
        if i in (3, 11):
            specs.append(("garbage", 0.5, False))
        else:
            specs.append((("a", "b", "tie")[i % 3], round(0.4 + 0.5 * ((i * 7) % 10) / 10, 2), i % 5 == 0))
    return specs


# --- judging ----------------------------------------------------------------------------------


def test_a_local_judge_writes_judgments_with_provenance_and_skips_what_it_judged(tiny_model_dir):
    # given a project of five text comparisons and the tiny random model as its judge
    project = make_routed_project("judged", rows=scripted_rows([("a", 0.8, False)] * 5),
                                  judge_spec=f"model:{tiny_model_dir}")  # fmt: skip
    # when it is judged
    summary = actions.judge_project(project)
    # then every comparison has one judgment by an llm judge named after the model and protocol
    assert (summary.judged, summary.skipped, summary.unparsable) == (5, 0, 0)
    judge = Judge.objects.get(kind=JudgeKind.LLM)
    assert judge.name == f"{tiny_model_dir.name}:logits" and "/logits-a192q256" in judge.version
    assert judge.config["spec"] == f"model:{tiny_model_dir}" and judge.config["protocol"]
    judgments = Judgment.objects.filter(judge=judge)
    assert judgments.count() == 5
    for judgment in judgments:
        item = ProjectItem.objects.get(comparison=judgment.comparison)
        meta = judgment.metadata
        assert meta["project"] == project.pk and meta["item"] == item.pk
        assert math.isclose(meta["p_a"] + meta["p_b"] + meta["p_tie"], 1.0, abs_tol=1e-5)
        assert judgment.confidence == pytest.approx(meta[f"p_{judgment.verdict}"])
        assert isinstance(meta["order_consistent"], bool) and [o["order"] for o in meta["orders"]] == ["ab", "ba"]
    # and a second run judges nothing twice
    again = actions.judge_project(project)
    assert (again.judged, again.skipped) == (0, 5)
    assert Judgment.objects.filter(judge=judge).count() == 5


def test_unparsable_answers_are_recorded_never_guessed(chat_endpoint):
    # given an OpenAI-compatible judge that gives no verdict on "MUDDLE" questions
    rows = [{"id": f"q{i}", "prompt": f"Question {i}" + (" MUDDLE" if i % 2 else ""),
             "a": {"system": "x", "text": "GOOD answer"}, "b": {"system": "y", "text": "meh"}} for i in range(4)]
    project = make_routed_project("chat", rows=rows, judge_spec="openai:")
    # when it judges the project
    summary = actions.judge_project(project)
    # then the two clear comparisons are judgments (both orders agree on the GOOD answer) ...
    assert (summary.judged, summary.unparsable) == (2, 2)
    judge = Judge.objects.get(kind=JudgeKind.LLM, name="openai:fake-judge")
    assert set(Judgment.objects.filter(judge=judge).values_list("verdict", flat=True)) == {"a"}
    assert all(j.metadata["order_consistent"] for j in Judgment.objects.filter(judge=judge))
    # ... and the muddled ones are kept as what they are, with the judge's words, not as a verdict
    unusable = UnusableVerdict.objects.filter(judge=judge)
    assert unusable.count() == 2 and set(unusable.values_list("verdict", flat=True)) == {"unparsable"}
    assert all("rather not choose" in u.metadata["orders"][0]["raw_text"] for u in unusable)
    assert not Judgment.objects.filter(judge=judge, comparison__prompt__text__contains="MUDDLE").exists()
    # and they are not asked again (4 items x 2 orders = 8 requests, none more)
    assert actions.judge_project(project).skipped == 4 and len(chat_endpoint.requests) == 8


def test_image_and_audio_items_never_reach_a_text_judge_and_go_to_people(arena_factory):
    # given a project holding text, image and audio comparisons, all pending
    from arena.models import Comparison, Output

    project = make_routed_project("media", policy="judge_only", rows=scripted_rows([("a", 0.9, False)] * 3))
    for modality in ("image", "audio"):
        arena_factory(modality=modality, n_systems=2, n_prompts=1)
        first, second = Output.objects.filter(prompt__modality=modality)
        comparison = Comparison.objects.create(prompt=first.prompt, output_a=first, output_b=second)
        ProjectItem.objects.create(project=project, comparison=comparison, external_id=modality, route=Route.PENDING)
    judge = ScriptedJudge()
    # when the project is routed, even with judge_only
    summary = actions.route_project(project, judge=judge)
    # then the judge saw text only, and the media items went to people with the reason
    assert {item.modality for item in judge.seen} == {"text"} and len(judge.seen) == 3
    media = ProjectItem.objects.filter(project=project, external_id__in=["image", "audio"])
    assert set(media.values_list("route", flat=True)) == {Route.HUMAN}
    assert summary.forced_human == 2 and summary.judge == 3
    for item in media:
        decision = RoutingDecision.objects.get(item=item)
        assert "cannot judge" in decision.reason and decision.judge_verdict == "unsupported"
    media_judgments = Judgment.objects.filter(comparison__prompt__modality__in=["image", "audio"])
    assert not media_judgments.exists()
    assert not UnusableVerdict.objects.exists()


def test_a_reward_model_run_judges_by_margin(reward_run):
    project = make_routed_project("rewarded", rows=scripted_rows([("a", 0.8, False)] * 4),
                                  judge_spec=f"reward:{reward_run.pk}")  # fmt: skip
    summary = actions.judge_project(project)
    assert summary.judged == 4
    judge = Judge.objects.get(kind=JudgeKind.REWARD_MODEL)
    assert judge.name == f"reward-run{reward_run.pk}"
    for judgment in Judgment.objects.filter(judge=judge):
        meta = judgment.metadata
        assert meta["p_a"] + meta["p_b"] == pytest.approx(1.0) and meta["p_tie"] == 0.0
        assert judgment.verdict == ("a" if meta["p_a"] > 0.5 else "b")
        assert judgment.confidence == pytest.approx(max(meta["p_a"], meta["p_b"])) and judgment.confidence >= 0.5
        assert meta["order_consistent"] is None  # it scores each answer alone: order does not apply


def test_a_reward_spec_must_name_a_finished_reward_run(reward_run):
    from routing.specs import build_judge

    reward_run.kind = "dpo"
    reward_run.save()
    with pytest.raises(JudgeError, match="not a reward model"):
        build_judge(f"reward:{reward_run.pk}")
    with pytest.raises(JudgeError, match="no training run"):
        build_judge("reward:99999")


# --- each policy end to end -------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["human_only", "judge_only", "random", "uncertainty", "learned"])
def test_each_policy_routes_within_the_budget_and_the_queue_serves_only_human_items(policy, make_user):
    # given 20 pending items, a 25% human budget and one annotator
    annotator = make_user("ann")
    project = make_routed_project(f"p-{policy}", policy="uncertainty", rows=scripted_rows(mixed_specs()),
                                  members=[annotator], human_budget_fraction=0.25)  # fmt: skip
    project.routing_policy = policy  # imported as pending under a routing policy, now routed by this one
    project.save()
    # when the project is routed
    summary = actions.route_project(project, judge=ScriptedJudge())
    # then the budget is respected, exactly
    items = ProjectItem.objects.filter(project=project)
    human = set(items.filter(route=Route.HUMAN).values_list("pk", flat=True))
    expected_human = {"human_only": 20, "judge_only": 0}.get(policy, Budget(fraction=0.25).human_count(20))
    assert len(human) == expected_human == summary.human
    # garbled verdicts that did not get a person stay pending, unlabelled (never the judge's guess)
    pending = items.filter(route=Route.PENDING)
    assert pending.count() == summary.none == {"judge_only": 2, "random": summary.none}.get(policy, 0)
    left = RoutingDecision.objects.filter(item__in=pending)
    assert set(left.values_list("judge_verdict", flat=True)) <= {"unparsable"}
    if policy == "uncertainty":  # the unparsable ones go to people first
        assert set(items.filter(external_id__in=["item-3", "item-11"]).values_list("route", flat=True)) == {"human"}
    # and every decision is stored with its policy, reason, budget state and features
    decisions = RoutingDecision.objects.filter(project=project)
    assert decisions.count() == 20 and set(decisions.values_list("policy", flat=True)) == {policy}
    for decision in decisions:
        assert decision.reason and decision.budget["population"] == 20
        assert decision.budget["human_after"] == expected_human
        if policy != "human_only":
            assert decision.features["judge_verdict"] in ("a", "b", "tie", "unparsable")
            assert decision.judge_verdict == decision.features["judge_verdict"]
        if decision.route == "judge":
            assert decision.judgment is not None and decision.judgment.verdict == decision.judge_verdict
    # and the annotator is served exactly the human items, never a judge item
    served = answer_everything(project, annotator)
    assert {item.pk for item in served} == human


def test_a_count_budget_is_spent_across_batches_never_exceeded(make_user):
    project = make_routed_project("count", rows=scripted_rows(mixed_specs(10), prefix="first"),
                                  human_budget_count=6)  # fmt: skip
    first = actions.route_project(project, judge=ScriptedJudge())
    import_rows(project, scripted_rows(mixed_specs(10), prefix="second"))
    second = actions.route_project(project, judge=ScriptedJudge())
    assert first.human == 6 and second.human == 0
    assert ProjectItem.objects.filter(project=project, route=Route.HUMAN).count() == 6
    assert second.budget["remaining"] == 0 and second.budget["target"] == 6


def test_a_budgeted_policy_without_a_budget_refuses_to_route():
    project = make_routed_project("no-budget", rows=scripted_rows(mixed_specs(4)))
    with pytest.raises(Exception, match="needs a human budget"):
        actions.route_project(project, judge=ScriptedJudge())
    assert not ProjectItem.objects.exclude(route=Route.PENDING).exists()


def test_check_items_always_go_to_people_outside_the_budget():
    rows = scripted_rows(mixed_specs(6))
    rows[0].update(check="gold", gold="a")
    project = make_routed_project("checks", policy="judge_only", rows=rows)
    summary = actions.route_project(project, judge=ScriptedJudge())
    gold = ProjectItem.objects.get(project=project, external_id="item-0")
    assert gold.route == Route.HUMAN and summary.check_items == 1
    assert "check item" in RoutingDecision.objects.get(item=gold).reason


def test_the_learned_policy_fits_only_on_items_people_have_judged(make_user, monkeypatch):
    # given a learned policy that fits from 4 labelled items, and a first batch routed before any label
    from routing.policies import LearnedPolicy

    annotator = make_user("ann")
    project = make_routed_project("learned", policy="learned", rows=scripted_rows(mixed_specs(10), prefix="b1"),
                                  members=[annotator], human_budget_fraction=0.5)  # fmt: skip
    actions.update_routing_settings(project, policy_options={"min_train": 4, "explore": 0.0})
    fitted_on = []
    real_fit = LearnedPolicy.fit
    monkeypatch.setattr(LearnedPolicy, "fit", lambda self, labelled: (fitted_on.append(list(labelled)),
                                                                      real_fit(self, labelled))[1])
    actions.route_project(project, judge=ScriptedJudge())
    assert fitted_on == [[]]  # nothing is labelled yet: it falls back to uncertainty and says so
    assert all("not fitted" in d.reason for d in RoutingDecision.objects.filter(project=project))
    # when people judge the human items (disagreeing with the judge on half) and a second batch arrives
    answers = iter(range(100))

    def agree_then_disagree(item):  # alternately the judge's own verdict and another one
        said = item.comparison.prompt.text.split("say:")[1].split()[0]
        said = "a" if said == "garbage" else said
        return said if next(answers) % 2 == 0 else {"a": "b", "b": "tie", "tie": "a"}[said]

    labelled = {item.pk for item in answer_everything(project, annotator, verdict_for=agree_then_disagree)}
    assert len(labelled) == 5
    import_rows(project, scripted_rows(mixed_specs(10), prefix="b2"))
    actions.route_project(project, judge=ScriptedJudge())
    # then it was refitted on exactly the items people judged, with their majority as the label
    assert len(fitted_on) == 2
    assert {int(example.candidate.item.id) for example in fitted_on[1]} == labelled
    second = RoutingDecision.objects.filter(project=project, item__external_id__startswith="b2")
    assert second.count() == 10 and all("fitted on 5" in d.reason for d in second if "learned (fitted" in d.reason)
    assert any("learned (fitted on 5)" in d.reason for d in second)
    assert second.filter(route="human").count() == 5


# --- imports trigger routing -------------------------------------------------------------------


def test_an_import_queues_the_routing_of_its_new_items(django_capture_on_commit_callbacks, monkeypatch):
    from routing import tasks

    queued = []
    monkeypatch.setattr(tasks.run_judging_job, "delay", lambda job_id: queued.append(job_id))
    # given a project routed by uncertainty on the verdicts its imports carry
    rows = scripted_rows(mixed_specs(8))
    for i, row in enumerate(rows):
        row["judgments"] = [{"judge": "house", "verdict": "a" if i % 3 else "b", "confidence": 0.5 + i / 20}]
    project = make_routed_project("auto", judge_spec="imported:house", human_budget_fraction=0.25)
    # when items are imported (and the import commits)
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(project, rows)
    # then a routing job for exactly those items is queued on the worker
    job = JudgingJob.objects.get(project=project)
    assert queued == [job.pk] and job.kind == JobKind.ROUTE and job.trigger == "import"
    assert sorted(job.item_ids) == sorted(ProjectItem.objects.filter(project=project).values_list("pk", flat=True))
    # and the worker's run routes them: 2 of 8 to people, on the imported verdicts (nothing re-written)
    assert actions.execute_job(job.pk) == JobStatus.SUCCEEDED
    assert ProjectItem.objects.filter(project=project, route=Route.HUMAN).count() == 2
    assert ProjectItem.objects.filter(project=project, route=Route.JUDGE).count() == 6
    assert Judgment.objects.filter(judge__name="house").count() == 8


def test_imports_into_human_only_or_hand_routed_projects_queue_nothing(django_capture_on_commit_callbacks):
    manual = make_routed_project("manual", human_budget_fraction=0.5)
    actions.update_routing_settings(manual, auto_route=False)
    people = make_routed_project("people", policy="human_only")
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(manual, scripted_rows(mixed_specs(3)))
        import_rows(people, scripted_rows(mixed_specs(3)))
    assert not JudgingJob.objects.exists()
    assert set(ProjectItem.objects.filter(project=manual).values_list("route", flat=True)) == {Route.PENDING}
    assert set(ProjectItem.objects.filter(project=people).values_list("route", flat=True)) == {Route.HUMAN}


# --- jobs -------------------------------------------------------------------------------------


def test_the_task_writes_progress_after_every_batch(monkeypatch):
    from routing.tasks import run_judging_job

    project = make_routed_project("progress", rows=scripted_rows(mixed_specs(5)))
    actions.update_routing_settings(project, batch_size=2)
    job = actions.create_job(project, JobKind.JUDGE, trigger="test")
    seen_done = []
    judge = ScriptedJudge(on_call=lambda call: seen_done.append(JudgingJob.objects.get(pk=job.pk).done))
    monkeypatch.setattr(actions, "build_judge", lambda spec, **kwargs: judge)
    assert run_judging_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert seen_done == [0, 2, 4]  # 5 comparisons, batches of 2
    assert (job.status, job.done, job.total, job.percent) == ("succeeded", 5, 5, 100)
    assert job.counts["judged"] == 4 and job.counts["unparsable"] == 1
    assert job.started_at and job.finished_at and job.heartbeat_at and job.judge.name == "scripted"
    # a job that already ran is not run again by a redelivered message
    assert run_judging_job(job.pk) == JobStatus.SUCCEEDED and judge.calls == 3


def test_a_failed_job_keeps_its_error():
    from routing.tasks import run_judging_job

    project = make_routed_project("broken", rows=scripted_rows(mixed_specs(2)), judge_spec="reward:424242")
    job = actions.create_job(project, JobKind.ROUTE, trigger="test")
    project.human_budget_fraction = 0.5
    project.save()
    assert run_judging_job(job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert job.status == "failed" and "no training run" in job.error and job.finished_at
    assert set(ProjectItem.objects.filter(project=project).values_list("route", flat=True)) == {Route.PENDING}


# --- the judge command ------------------------------------------------------------------------


def test_the_judge_command_prints_progress_and_a_summary(tiny_model_dir):
    from io import StringIO

    rows = scripted_rows([("a", 0.8, False)] * 4, annotators=[("ann-1", lambda i: "a"), ("ann-2", lambda i: "a")])
    project = make_routed_project("cmd", policy="human_only", rows=rows)
    out = StringIO()
    call_command("judge", project="cmd", judge=f"model:{tiny_model_dir}", limit=3, stdout=out)
    text = out.getvalue()
    assert "judged 3/3" in text
    assert "3 judged, 0 skipped (judged before), 0 unparsable, 0 unsupported modality, 1 left by --limit" in text
    assert "agreement with the human majority:" in text and "on 3 comparisons" in text
    assert "same verdict in both orders:" in text
    out = StringIO()
    call_command("judge", project="cmd", judge=f"model:{tiny_model_dir}", format="json", stdout=out)
    import json

    result = json.loads(out.getvalue())
    assert (result["judged"], result["skipped"]) == (1, 3) and result["agreement"]["n"] == 4
    assert 0 <= result["agreement"]["agreement"] <= 1
    assert Judgment.objects.filter(judge__kind=JudgeKind.LLM, comparison__project_items__project=project).count() == 4


def test_the_judge_command_names_a_missing_project():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no project named"):
        call_command("judge", project="nope")
