"""The project pages, through Django's test client."""

import io

import pytest
from django.test import Client

from annotation.models import Project, ProjectItem
from arena.models import Judgment

from .conftest import jsonl, text_rows

pytestmark = pytest.mark.django_db


def client_as(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_project_list_by_role(make_project, annotator, researcher):
    make_project("Visible", members=[annotator])
    make_project("Hidden")
    assert client_as().get("/projects/").status_code == 302  # to the login page
    page = client_as(annotator).get("/projects/").content.decode()
    assert "Visible" in page and "Hidden" not in page and "New project" not in page
    page = client_as(researcher).get("/projects/").content.decode()
    assert "Visible" in page and "Hidden" in page and "New project" in page


def test_create_project_form(researcher, annotator):
    form = {
        "name": "Helpful and harmless", "description": "", "guidelines": "# Read this\nPrefer **honest** answers.",
        "overlap": 3, "min_seconds_per_item": 5, "gold_fraction": 0.1, "gold_warn_accuracy": 0.7,
        "gold_block_accuracy": 0.5, "gold_min_answers": 3, "is_active": "on", "verdicts": ["b", "a", "tie"],
        "aspects": "helpfulness likert 7\nharmlessness ab", "rationale_enabled": "on", "rationale_min_length": 15,
    }  # fmt: skip
    assert client_as(annotator).post("/projects/new/", form).status_code == 403
    response = client_as(researcher).post("/projects/new/", form)
    project = Project.objects.get(name="Helpful and harmless")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert project.schema == {
        "verdicts": ["a", "b", "tie"],
        "aspects": [
            {"name": "helpfulness", "label": "Helpfulness", "scale": "likert", "required": True, "points": 7},
            {"name": "harmlessness", "label": "Harmlessness", "scale": "ab", "required": True},
        ],
        "rationale": {"enabled": True, "min_length": 15},
    }
    assert project.created_by == researcher and project.min_seconds_per_item == 5
    # the edit form shows the schema as it was entered
    page = client_as(researcher).get(f"/projects/{project.pk}/edit/").content.decode()
    assert "helpfulness likert 7" in page
    bad = client_as(researcher).post("/projects/new/", {**form, "name": "x", "aspects": "speed fast"})
    assert bad.status_code == 200 and "the scale must be" in bad.content.decode()


def test_detail_import_upload_and_members(make_project, researcher, make_user):
    project = make_project("Upload")
    client = client_as(researcher)
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert 'enctype="multipart/form-data"' in page and "No items yet" in page
    upload = io.BytesIO(jsonl(text_rows(3)))
    upload.name = "items.jsonl"
    response = client.post(f"/projects/{project.pk}/import/", {"file": upload, "format": "duet"}, follow=True)
    assert "Imported items.jsonl: 3 rows: 3 items created" in response.content.decode()
    assert project.items.count() == 3
    rows = text_rows(6, start=10)
    rows[4]["a"] = {"system": "m"}
    bad = io.BytesIO(jsonl(rows))
    bad.name = "bad.jsonl"
    response = client.post(f"/projects/{project.pk}/import/", {"file": bad, "format": "duet"}, follow=True)
    assert "Nothing was imported. line 5: field &#x27;a.text&#x27; is missing" in response.content.decode()
    assert project.items.count() == 3
    # members
    worker = make_user("worker")
    response = client.post(f"/projects/{project.pk}/members/", {"op": "add", "username": "worker", "role": "annotator"},
                           follow=True)  # fmt: skip
    assert "Added worker as annotator." in response.content.decode()
    assert project.memberships.filter(user=worker).exists()
    client.post(f"/projects/{project.pk}/members/", {"op": "remove", "user": worker.pk})
    assert not project.memberships.exists()


def test_non_members_are_refused(make_project, annotator):
    project = make_project()
    for path in ("", "work/", "review/", "members/", "edit/"):
        assert client_as(annotator).get(f"/projects/{project.pk}/{path}").status_code == 403, path


def test_task_page(make_project, annotator):
    project = make_project(
        rows=text_rows(1), members=[annotator], guidelines="Prefer the **correct** sum.",
        schema={"verdicts": ["a", "b", "both_bad"], "aspects": [{"name": "helpfulness", "points": 3},
                {"name": "harmlessness", "scale": "ab"}], "rationale": {"min_length": 12}},
    )  # fmt: skip
    page = client_as(annotator).get(f"/projects/{project.pk}/work/").content.decode()
    assert "<strong>correct</strong>" in page  # guidelines rendered beside the task
    assert 'data-verdict="a"' in page and 'data-verdict="both_bad" data-key="4"' in page
    assert 'data-verdict="tie"' not in page  # only the schema's verdicts
    assert page.count('name="aspect-helpfulness-a"') == 3 and 'name="aspect-harmlessness"' in page
    assert 'data-min-length="12"' in page
    assert f'data-next-url="/api/projects/{project.pk}/next/"' in page
    assert "annotation/annotation.js" in page and "<script>" not in page  # no inline script (CSP)


def test_review_and_adjudicate_pages(make_project, make_user, researcher, lease_and_answer):
    first, second, reviewer = make_user("p1"), make_user("p2"), make_user("rev")
    project = make_project(rows=text_rows(2), members=[first, second], gold_fraction=0, overlap=2)
    from annotation.actions import add_member

    add_member(project, reviewer, "reviewer")
    lease_and_answer(project, first, "a")
    lease_and_answer(project, second, "b")
    item = ProjectItem.objects.get(external_id="item-0")
    assert client_as(first).get(f"/projects/{project.pk}/review/").status_code == 403
    client = client_as(reviewer)
    page = client.get(f"/projects/{project.pk}/review/").content.decode()
    assert f"/projects/{project.pk}/items/{item.pk}/" in page
    page = client.get(f"/projects/{project.pk}/items/{item.pk}/").content.decode()
    assert "p1" in page and "p2" in page and "sys-x" in page  # reviewers see who said what
    response = client.post(f"/projects/{project.pk}/items/{item.pk}/", {"verdict": "b", "note": "B is right."})
    assert response.status_code == 302
    assert list(Judgment.objects.filter(superseded_by__isnull=True).values_list("verdict", flat=True)) == ["b", "b"]
    assert "No conflicts right now" in client.get(f"/projects/{project.pk}/review/").content.decode()
    # researchers see progress with the annotators' table
    page = client_as(researcher).get(f"/projects/{project.pk}/").content.decode()
    assert 'id="annotators"' in page and "2 of 4 judgments" in page
