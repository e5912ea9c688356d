"""The routing page around a judging job: it renders after the job (whose counts hold a key
named "items"), and its progress is served as JSON for the page's script to follow."""

import pytest
from django.test import Client

from annotation.models import ProjectItem
from routing import actions
from routing.models import JobStatus, JudgingJob

from .test_integration_support import make_routed_project, scripted_rows

pytestmark = pytest.mark.django_db


def imported_verdict_project():
    rows = scripted_rows([("a", 0.8, False)] * 4)
    for i, row in enumerate(rows):
        row["judgments"] = [{"judge": "house", "verdict": "a" if i % 2 else "b", "confidence": 0.7}]
    return make_routed_project("jobs", judge_spec="imported:house", human_budget_fraction=0.5, rows=rows)


def run_from_the_page(client, project, kind, monkeypatch, capture) -> JudgingJob:
    """Press the page's button, then do the worker's part."""
    from routing import tasks

    monkeypatch.setattr(tasks.run_judging_job, "delay", lambda job_id: None)
    with capture(execute=True):
        client.post(f"/routing/projects/{project.pk}/jobs/{kind}/")
    job = JudgingJob.objects.get(project=project, kind=kind)
    assert actions.execute_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("kind", ["judge", "route"])
def test_the_page_renders_after_a_job_whose_counts_hold_items(kind, researcher, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    # given a project whose judge is the verdicts it was imported with
    project = imported_verdict_project()
    client = Client()
    client.force_login(researcher)
    # when the job runs from the page's button
    job = run_from_the_page(client, project, kind, monkeypatch, django_capture_on_commit_callbacks)
    assert job.counts["items"] == 4  # the key a template's `.items` lookup used to take
    # then the page still renders, with the job's counts in its table
    page = client.get(f"/routing/projects/{project.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"#{job.pk}" in html and "items 4" in html
    assert ProjectItem.objects.filter(project=project).count() == 4


def test_a_running_job_is_followed_in_place(researcher, monkeypatch, django_capture_on_commit_callbacks,
                                             client_for):
    from pathlib import Path

    from django.conf import settings
    from routing import tasks

    project = imported_verdict_project()
    client = Client()
    client.force_login(researcher)
    monkeypatch.setattr(tasks.run_judging_job, "delay", lambda job_id: None)
    # given a routing job queued from the page's button
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(f"/routing/projects/{project.pk}/jobs/route/", follow=True).content.decode()
    job = JudgingJob.objects.get(project=project)
    # then the page hands its script the job's status and the project's figures to follow
    assert f'data-job-url="/api/routing/jobs/{job.pk}/"' in page and 'data-active="1"' in page
    assert f'data-summary-url="/api/routing/projects/{project.pk}/"' in page
    assert f'<tr data-job="{job.pk}">' in page and 'class="status job-result"' in page
    assert "routing/routing.js" in page
    script = (Path(settings.BASE_DIR) / "static" / "routing" / "routing.js").read_text()
    assert "location.reload" not in script  # the result is filled in, not fetched by reloading
    api = client_for(researcher)
    assert api.get(f"/api/routing/jobs/{job.pk}/").json()["status"] == "queued"
    assert api.get(f"/api/routing/projects/{project.pk}/").json()["routes"]["pending"] == 4
    # when the worker has run it, what the script reads has the result and the new figures
    actions.execute_job(job.pk)
    ended = api.get(f"/api/routing/jobs/{job.pk}/").json()
    assert (ended["status"], ended["percent"], ended["counts"]["items"]) == ("succeeded", 100, 4)
    routes = api.get(f"/api/routing/projects/{project.pk}/").json()["routes"]
    assert routes["pending"] == 0 and routes["human"] + routes["judge"] == 4
