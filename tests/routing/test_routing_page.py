"""The routing pages and API on a hand-made project whose figures are known: agreement with
and without ties, order consistency, per category, label quality, and who may see them."""

import pytest
from django.test import Client

from annotation.models import Project, ProjectItem, Route
from arena.models import Judge, JudgeKind, Judgment
from routing import actions, report
from routing.models import JobKind, JudgingJob, RoutingDecision, UnusableVerdict

from .test_integration_support import import_rows, make_routed_project

pytestmark = pytest.mark.django_db

# Per item: category, the two annotators' verdict (None: nobody judged it), the judge's verdict
# ("garbage": no verdict), whether its two orders agreed, and the item's route.
HAND_MADE = [
    ("code", "a", "a", True, Route.HUMAN),
    ("code", "a", "b", True, Route.HUMAN),
    ("code", "b", "b", False, Route.HUMAN),
    ("code", "tie", "a", True, Route.HUMAN),
    ("chat", "a", "a", False, Route.JUDGE),
    ("chat", "b", "tie", True, Route.JUDGE),
    ("chat", "both_bad", "garbage", False, Route.JUDGE),
    ("chat", None, "a", True, Route.PENDING),
]


def client_as(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def hand_made(db):
    rows = []
    for i, (category, human, _, _, _) in enumerate(HAND_MADE):
        row = {"id": f"h{i}", "prompt": f"Question {i}", "category": category,
               "a": {"system": "x", "text": f"A{i}"}, "b": {"system": "y", "text": f"B{i}"}}
        if human:
            row["judgments"] = [{"annotator": "ann-1", "verdict": human}, {"annotator": "ann-2", "verdict": human}]
        rows.append(row)
    project = make_routed_project("hand", rows=rows, human_budget_fraction=0.5)
    judge = Judge.objects.create(kind=JudgeKind.LLM, name="house-llm", version="v1")
    for i, (_, _, said, consistent, route) in enumerate(HAND_MADE):
        item = ProjectItem.objects.get(project=project, external_id=f"h{i}")
        item.route = route
        item.save(update_fields=["route"])
        if said == "garbage":
            UnusableVerdict.objects.create(comparison=item.comparison, judge=judge,
                                           metadata={"order_consistent": False})  # fmt: skip
        else:
            Judgment.objects.create(comparison=item.comparison, judge=judge, verdict=said, confidence=0.6,
                                    metadata={"order_consistent": consistent, "project": project.pk})  # fmt: skip
    actions.routing_settings(project)
    project.routing_settings.judge = judge
    project.routing_settings.save()
    return project


def test_the_figures_of_a_hand_made_project(hand_made):
    figures = report.project_report(hand_made)
    overall = figures.agreement
    # six items have a human label and a verdict: agree on h0, h2, h4 (h6's "both bad" is a tie, but no verdict)
    assert (overall.n, overall.agreement) == (6, pytest.approx(0.5))
    # without the human ties (h3, h6): h0, h1, h2, h4, h5, of which h0, h2, h4 agree
    assert (overall.n_no_ties, overall.agreement_no_ties) == (5, pytest.approx(0.6))
    assert overall.chance == pytest.approx(0.5)  # "a" on 3 of the 6
    assert (overall.judge_tie_share, overall.human_tie_share) == (pytest.approx(1 / 6), pytest.approx(1 / 6))
    # 8 answers, one without a verdict (inconsistent by definition), 5 consistent of 8
    assert (overall.judged, overall.unparsable, overall.order_known) == (8, 1, 8)
    assert overall.order_consistency == pytest.approx(5 / 8)
    code, chat = figures.categories["code"], figures.categories["chat"]
    assert (code.n, code.agreement, code.agreement_no_ties, code.order_consistency) == (
        4, pytest.approx(0.5), pytest.approx(2 / 3), pytest.approx(0.75))
    assert (chat.n, chat.agreement, chat.agreement_no_ties, chat.unparsable, chat.order_consistency) == (
        2, pytest.approx(0.5), pytest.approx(0.5), 1, pytest.approx(0.5))
    # routes, budget (half of 8 = 4, all spent) and the label quality of the mix
    assert figures.routes == {"human": 4, "judge": 3, "pending": 1}
    assert figures.budget["target"] == 4 and figures.budget["used"] == 4 and figures.budget["share_used"] == 1.0
    quality = figures.quality
    assert quality.human_accuracy > 0.9 and quality.human_annotators == 2  # two annotators who always agree
    assert quality.judge_accuracy == pytest.approx(0.5) and quality.judge_accuracy_n == 6
    assert quality.mix == pytest.approx((4 * quality.human_accuracy + 3 * 0.5) / 7)
    # the notes say plainly that this judge is at chance
    assert any("chance level" in note for note in figures.notes)
    assert any("1 of 8 answers held no verdict" in note for note in figures.notes)


def test_a_judge_whose_orders_disagree_is_called_out():
    project = make_routed_project("flippy", rows=[{"id": f"f{i}", "prompt": f"Q{i}", "a": {"system": "x", "text": "1"},
                                                   "b": {"system": "y", "text": "2"}} for i in range(4)])
    judge = Judge.objects.create(kind=JudgeKind.LLM, name="smol", version="v1")
    for item in ProjectItem.objects.filter(project=project):
        Judgment.objects.create(comparison=item.comparison, judge=judge, verdict="a",
                                metadata={"order_consistent": item.external_id == "f0"})
    figures = report.project_report(project, judge=judge)
    assert figures.agreement.order_consistency == pytest.approx(0.25)
    assert any("same verdict with the answers swapped on only 25%" in note for note in figures.notes)


def test_the_page_shows_the_figures_to_researchers_only(hand_made, researcher, annotator, admin_user):
    RoutingDecision.objects.create(project=hand_made, item=ProjectItem.objects.get(external_id="h0"), route="human",
                                   policy="uncertainty", reason="uncertainty: verdict a, confidence 0.60; among the 4 "
                                   "least certain", budget={"human_before": 0, "human_after": 4, "target": 4})
    url = f"/routing/projects/{hand_made.pk}/"
    page = client_as(researcher).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for expected in ('id="agreement-all">50.0%', 'id="agreement-no-ties">60.0%', 'id="order-consistency">62.5%',
                     'data-category="code"', 'data-category="chat"', "chance level", "among the 4 least certain",
                     'id="route-button"', 'id="routing-settings"', "routing/routing.js"):
        assert expected in html, expected
    assert "<script>" not in html  # the CSP forbids inline scripts
    assert client_as(admin_user).get(url).status_code == 200
    assert client_as(annotator).get(url).status_code == 403
    assert client_as(annotator).get("/routing/").status_code == 403
    assert client_as().get(url).status_code == 302  # to the login page
    overview = client_as(researcher).get("/routing/").content.decode()
    assert "hand" in overview and 'class="route-judge">3<' in overview


def test_the_api_serves_the_same_figures_and_the_decisions(hand_made, researcher, annotator, client_for):
    api = client_for(researcher)
    summary = api.get(f"/api/routing/projects/{hand_made.pk}/").json()
    assert summary["agreement"]["agreement"] == pytest.approx(0.5)
    assert summary["agreement"]["agreement_no_ties"] == pytest.approx(0.6)
    assert summary["agreement"]["order_consistency"] == pytest.approx(0.625)
    assert summary["categories"]["code"]["agreement_no_ties"] == pytest.approx(2 / 3)
    assert summary["routes"] == {"human": 4, "judge": 3, "pending": 1} and summary["judge"] == "house-llm@v1"
    listing = api.get("/api/routing/projects/").json()
    assert [row["name"] for row in listing] == ["hand"] and listing[0]["routes"]["judge"] == 3
    # the decisions, paginated
    item = ProjectItem.objects.get(external_id="h7")
    for n in range(3):
        RoutingDecision.objects.create(project=hand_made, item=item, route="none", policy="judge_only", reason=f"r{n}")
    page = api.get(f"/api/routing/projects/{hand_made.pk}/decisions/?limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["results"][0]["reason"] == "r2"
    assert page["results"][0]["external_id"] == "h7" and page["next"]
    # annotators are refused, in Duet's error shape
    refused = client_for(annotator).get(f"/api/routing/projects/{hand_made.pk}/")
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    assert client_for(annotator).post(f"/api/routing/projects/{hand_made.pk}/route/").status_code == 403
    assert client_for().get("/api/routing/projects/").status_code in (401, 403)


def test_jobs_start_from_the_api_and_report_progress(hand_made, researcher, client_for, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    from routing import tasks

    queued = []
    monkeypatch.setattr(tasks.run_judging_job, "delay", lambda job_id: queued.append(job_id))
    api = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post(f"/api/routing/projects/{hand_made.pk}/judge/", {"judge": "imported:nobody", "limit": 5},
                           format="json")  # fmt: skip
    assert started.status_code == 202
    job = JudgingJob.objects.get(pk=started.json()["id"])
    assert queued == [job.pk] and job.kind == JobKind.JUDGE and job.limit == 5 and job.trigger == "api"
    assert api.get(f"/api/routing/jobs/{job.pk}/").json()["status"] == "queued"
    actions.execute_job(job.pk)  # the worker's side: this judge has no verdicts in the project
    failed = api.get(f"/api/routing/jobs/{job.pk}/").json()
    assert failed["status"] == "failed" and "no imported judgments by 'nobody'" in failed["error"]
    bad = api.post(f"/api/routing/projects/{hand_made.pk}/judge/", {"judge": "gpt5"}, format="json")
    assert bad.status_code == 400 and "unknown judge" in bad.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        routed = api.post(f"/api/routing/projects/{hand_made.pk}/route/")
    assert routed.status_code == 202 and routed.json()["kind"] == "route" and len(queued) == 2
    assert api.get(f"/api/routing/projects/{hand_made.pk}/jobs/").json()[0]["id"] == routed.json()["id"]


def test_the_page_buttons_queue_jobs(hand_made, researcher, annotator, monkeypatch, django_capture_on_commit_callbacks):
    from routing import tasks

    queued = []
    monkeypatch.setattr(tasks.run_judging_job, "delay", lambda job_id: queued.append(job_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(researcher).post(f"/routing/projects/{hand_made.pk}/jobs/route/", follow=True)
    assert "is queued on the judging queue" in response.content.decode()
    job = JudgingJob.objects.get()
    assert queued == [job.pk] and job.kind == "route" and job.requested_by.username == "res"
    page = response.content.decode()
    assert f'data-job-url="/api/routing/jobs/{job.pk}/"' in page and 'data-active="1"' in page
    assert client_as(annotator).post(f"/routing/projects/{hand_made.pk}/jobs/judge/").status_code == 403


def test_the_settings_form_sets_policy_budget_and_judge(hand_made, researcher):
    url = f"/routing/projects/{hand_made.pk}/settings/"
    form = {"routing_policy": "learned", "human_budget_fraction": "0.3", "human_budget_count": "",
            "judge_spec": "model:/models/judge", "auto_route": "on", "seed": "7", "batch_size": "8",
            "learned_model": "boosting", "learned_min_train": "50", "learned_explore": "0.2"}
    response = client_as(researcher).post(url, form, follow=True)
    assert "Routing settings saved" in response.content.decode()
    project = Project.objects.get(pk=hand_made.pk)
    routing = project.routing_settings
    assert (project.routing_policy, project.human_budget_fraction, project.human_budget_count) == ("learned", 0.3, None)
    assert (routing.judge_spec, routing.seed, routing.batch_size) == ("model:/models/judge", 7, 8)
    assert routing.policy_options == {"model": "boosting", "min_train": 50, "explore": 0.2}
    # a budget is a fraction or a count, and a budgeted policy needs one
    both = client_as(researcher).post(url, {**form, "human_budget_count": "10"}, follow=True).content.decode()
    assert "Nothing was saved" in both and "not both" in both
    none = client_as(researcher).post(url, {**form, "human_budget_fraction": ""}, follow=True).content.decode()
    assert "needs a human budget" in none
    bad_judge = client_as(researcher).post(url, {**form, "judge_spec": "gpt5"}, follow=True).content.decode()
    assert "unknown judge" in bad_judge
    assert Project.objects.get(pk=hand_made.pk).human_budget_count is None


def test_the_project_form_offers_every_policy_and_a_budget(researcher):
    form = {"name": "Routed", "description": "", "guidelines": "", "overlap": 1, "min_seconds_per_item": 0,
            "gold_fraction": 0.1, "gold_warn_accuracy": 0.7, "gold_block_accuracy": 0.5, "gold_min_answers": 3,
            "is_active": "on", "verdicts": ["a", "b", "tie"], "aspects": "", "rationale_min_length": 0,
            "routing_policy": "uncertainty", "human_budget_fraction": "0.25"}
    page = client_as(researcher).get("/projects/new/").content.decode()
    for policy in ("human_only", "judge_only", "random", "uncertainty", "learned"):
        assert f'value="{policy}"' in page
    refused = client_as(researcher).post("/projects/new/", {**form, "name": "Unbudgeted", "human_budget_fraction": ""})
    assert refused.status_code == 200 and "needs a human budget" in refused.content.decode()
    response = client_as(researcher).post("/projects/new/", form)
    project = Project.objects.get(name="Routed")
    assert response.status_code == 302
    assert (project.routing_policy, project.human_budget_fraction) == ("uncertainty", 0.25)
    # items imported now wait for routing instead of going to the queue
    import_rows(project, [{"id": "x", "prompt": "Q", "a": {"system": "x", "text": "1"},
                           "b": {"system": "y", "text": "2"}}])
    assert ProjectItem.objects.get(project=project).route == Route.PENDING
    assert "routing page" in client_as(researcher).get(f"/projects/{project.pk}/edit/").content.decode()
