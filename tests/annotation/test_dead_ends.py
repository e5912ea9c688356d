"""No dead ends: a project's creator is a member (or may join), and every 403 and 404 is a
page of the site that says why and what to do."""

import pytest
from django.test import Client

from annotation.models import Project, ProjectMembership

from .conftest import text_rows

pytestmark = pytest.mark.django_db

PROJECT_FORM = {
    "name": "Mine", "description": "", "guidelines": "", "overlap": 1, "min_seconds_per_item": 0,
    "gold_fraction": 0, "gold_warn_accuracy": 0.7, "gold_block_accuracy": 0.5, "gold_min_answers": 3,
    "is_active": "on", "verdicts": ["a", "b", "tie"], "aspects": "", "rationale_min_length": 0,
    "routing_policy": "human_only",
}  # fmt: skip


def client_as(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def in_the_site_layout(html: str) -> bool:
    return 'class="topbar"' in html and 'id="error-page"' in html


def test_the_creator_of_a_project_can_annotate_it(researcher):
    client = client_as(researcher)
    client.post("/projects/new/", PROJECT_FORM)
    project = Project.objects.get(name="Mine")
    assert ProjectMembership.objects.filter(project=project, user=researcher).exists()
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert f'href="/projects/{project.pk}/work/"' in page  # the Annotate tab
    assert client.get(f"/projects/{project.pk}/work/").status_code == 200


def test_a_researcher_who_is_not_a_member_is_offered_to_join(make_project, researcher):
    # given a project someone else set up, with an item
    project = make_project("Theirs", rows=text_rows(1))
    client = client_as(researcher)
    # when the researcher opens its task page
    refused = client.get(f"/projects/{project.pk}/work/")
    # then a page of the site says why and offers to join
    assert refused.status_code == 403
    html = refused.content.decode()
    assert in_the_site_layout(html)
    assert "You are not a member of project &#x27;Theirs&#x27;, so you cannot annotate it yet." in html
    assert f'action="/projects/{project.pk}/join/"' in html and "Join and annotate" in html
    # and the project page offers the same
    assert 'id="join-project"' in client.get(f"/projects/{project.pk}/").content.decode()
    # when they join, they land on the task page
    joined = client.post(f"/projects/{project.pk}/join/")
    assert joined.status_code == 302 and joined["Location"] == f"/projects/{project.pk}/work/"
    assert ProjectMembership.objects.get(project=project, user=researcher).role == "annotator"
    assert client.get(f"/projects/{project.pk}/work/").status_code == 200
    assert 'id="join-project"' not in client.get(f"/projects/{project.pk}/").content.decode()


def test_an_annotator_who_is_not_a_member_is_told_whom_to_ask(make_project, annotator):
    project = make_project("Closed")
    client = client_as(annotator)
    for path in ("", "work/"):
        refused = client.get(f"/projects/{project.pk}/{path}")
        html = refused.content.decode()
        assert refused.status_code == 403 and in_the_site_layout(html), path
        assert "You are not a member of this project" in html and "Ask the researcher who runs it" in html
        assert "Closed" not in html and "/join/" not in html
    assert client.post(f"/projects/{project.pk}/join/").status_code == 403
    assert not ProjectMembership.objects.filter(user=annotator).exists()
    managed = client.get("/projects/new/")
    assert managed.status_code == 403 and "Only researchers and admins create and manage projects." in (
        managed.content.decode())


def test_not_found_pages_say_so_in_the_site_layout(researcher):
    client = client_as(researcher)
    missing = client.get("/projects/987654/")
    assert missing.status_code == 404 and in_the_site_layout(missing.content.decode())
    assert "Your projects" in missing.content.decode()
    nowhere = client.get("/no/such/page/")
    html = nowhere.content.decode()
    assert nowhere.status_code == 404 and in_the_site_layout(html)
    assert "There is no page at /no/such/page/." in html and "tried" not in html  # no URL patterns shown
    api = client.get("/api/no/such/thing/")
    assert api.status_code == 404 and api.json()["error"] == "not_found"
