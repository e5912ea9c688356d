"""The researchers' quality dashboard: who may see it, what it shows, what it costs."""

import re

import pytest

from annotation import dashboard as dashboard_views

from annotation.quality.simulation import simulate_crowd
from tests.annotation.test_quality import SMALL_CROWD, crowd_rows

URL = "/projects/dashboard/"


@pytest.fixture
def projects(make_project):
    from arena.models import Judgment

    crowd = simulate_crowd(list(SMALL_CROWD.values()), 200, 3, names=list(SMALL_CROWD), seed=21)
    rows = crowd_rows(crowd, gold_items=20)
    # Half the items have all three judgments; the rest only two (overlap is 3).
    for row in rows[120:]:
        row["judgments"] = row["judgments"][:2]
    crowd_project = make_project(name="crowd", rows=rows)
    Judgment.objects.filter(judge__name="ann-good").update(time_to_vote_ms=4000)
    empty = make_project(name="empty")
    return crowd_project, empty


@pytest.mark.django_db
def test_project_summaries_count_progress_and_verdicts(projects, django_assert_max_num_queries):
    crowd_project, empty = projects
    with django_assert_max_num_queries(3):
        summaries = {s.project.name: s for s in dashboard_views.project_summaries()}
    crowd = summaries["crowd"]
    # 180 regular items (20 are gold checks); items 20..119 have three judgments, but all
    # were imported: counted beside the progress, never as the project's own work done.
    assert crowd.n_items == 180 and crowd.n_done == 0 and crowd.progress == 0.0
    assert crowd.n_imported == 20 * 3 + 100 * 3 + 80 * 2 and crowd.n_automatic == 0
    assert crowd.n_judgments == 0 == sum(crowd.verdicts.values())
    assert summaries["empty"].n_items == 0 and summaries["empty"].progress == 0.0


@pytest.mark.django_db
def test_project_quality_adds_speed_and_membership_status(projects):
    crowd_project, _ = projects
    data = dashboard_views.project_quality(crowd_project)
    rows = {row["annotator"]: row for row in data["annotators"]}
    assert rows["ann-good"]["median_seconds"] == 4.0 and rows["ann-fair"]["median_seconds"] is None
    assert "adversarial" in rows["ann-flipper"]["flags"]
    assert sum(count for _, _, count, _ in data["label_distribution_shares"]) == data["n_aggregated"] == 200


@pytest.mark.django_db
def test_researchers_see_projects_annotators_and_agreement(projects, researcher, client):
    crowd_project, _ = projects
    client.force_login(researcher)
    response = client.get(URL, {"project": crowd_project.pk})
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("crowd", "empty", "Krippendorff", "Fleiss", "ann-flipper", "adversarial", "spammer", "4.0",
                 "Pairwise Cohen"):  # fmt: skip
        assert text in html
    assert re.search(r'id="alpha">0\.\d{3}<', html)
    # The CSP forbids inline script: every script is a static file.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "annotation/dashboard.js" in html
    # Another source: the single automatic judgment-free project shows no annotators.
    judges_only = client.get(URL, {"project": crowd_project.pk, "source": "judge"}).content.decode()
    assert "No judgments yet." in judges_only


@pytest.mark.django_db
def test_the_dashboard_is_for_researchers_and_admins(projects, annotator, admin_user, client):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(annotator)
    assert client.get(URL).status_code == 403
    client.force_login(admin_user)
    assert client.get(URL).status_code == 200


@pytest.mark.django_db
def test_the_dashboard_with_no_projects(researcher, client):
    client.force_login(researcher)
    response = client.get(URL)
    assert response.status_code == 200 and b"No projects yet." in response.content
