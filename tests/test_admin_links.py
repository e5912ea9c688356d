"""The admin links a read-only related object only for people who may open it (found by the
journey suite: a researcher viewing a judge was offered the account page, which answers 403)."""

import pytest
from django.test import Client

from arena.models import Judge, JudgeKind


def _judge_page(user, judge):
    client = Client()
    client.force_login(user)
    return client.get(f"/admin/arena/judge/{judge.pk}/change/")


@pytest.mark.django_db
def test_a_researcher_sees_the_account_as_text_not_a_link_they_cannot_open(researcher, annotator):
    judge = Judge.objects.create(kind=JudgeKind.HUMAN, name=annotator.username, user=annotator)
    page = _judge_page(researcher, judge)
    assert page.status_code == 200
    account_url = f"/admin/auth/user/{annotator.pk}/change/"
    assert account_url.encode() not in page.content
    assert annotator.username.encode() in page.content
    assert Client().get(account_url).status_code in (302, 403)  # the page is closed to them indeed


@pytest.mark.django_db
def test_whoever_may_view_accounts_still_gets_the_link(researcher, annotator):
    from django.contrib.auth.models import Permission

    researcher.user_permissions.add(Permission.objects.get(codename="view_user"))
    judge = Judge.objects.create(kind=JudgeKind.HUMAN, name=annotator.username, user=annotator)
    page = _judge_page(researcher, judge)
    assert page.status_code == 200
    assert f"/admin/auth/user/{annotator.pk}/change/".encode() in page.content


@pytest.mark.django_db
def test_a_projects_members_are_not_linked_to_account_pages_a_researcher_cannot_open(researcher, annotator):
    from annotation.models import Project, ProjectMembership

    project = Project.objects.create(name="links")
    ProjectMembership.objects.create(project=project, user=annotator)
    client = Client()
    client.force_login(researcher)
    page = client.get(f"/admin/annotation/project/{project.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/auth/user/{annotator.pk}/change/".encode() not in page.content
    assert annotator.username.encode() in page.content


@pytest.mark.django_db
def test_the_project_admins_export_action_opens_the_export_page_for_the_first_selected_project(admin_user):
    # given two projects selected on the project list
    from annotation.models import Project

    second, first = Project.objects.create(name="zeta"), Project.objects.create(name="alpha")
    client = Client()
    client.force_login(admin_user)
    # when the export action runs on them
    page = client.post(
        "/admin/annotation/project/", {"action": "export_judgments", "_selected_action": [second.pk, first.pk]}
    )
    # then it redirects to the export page for the first by name
    assert page.status_code == 302
    assert page["Location"].endswith("?target=project%3Aalpha")
    assert client.get(page["Location"]).status_code == 200
