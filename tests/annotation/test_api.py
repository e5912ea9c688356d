"""The annotation API: permissions for each role and the annotator's loop over HTTP."""

import io
import zipfile

import pytest

from annotation import actions
from annotation.models import Assignment, AssignmentStatus, Project, ProjectItem
from arena.models import Judgment
from tests.conftest import wav_bytes

from .conftest import jsonl, text_rows

pytestmark = pytest.mark.django_db
BASE = "/api/projects/"


@pytest.fixture
def project(make_project, annotator):
    return make_project(rows=text_rows(3), members=[annotator], gold_fraction=0, overlap=2)


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "list_status", "create_status"),
    [(None, 401, 401), ("annotator", 200, 403), ("researcher", 200, 201), ("admin", 200, 201)],
)
def test_project_crud_permissions(make_user, client_for, role, list_status, create_status):
    user = make_user(f"user-{role}", role) if role else None
    client = client_for(user)
    assert client.get(BASE).status_code == list_status
    response = client.post(BASE, {"name": f"made by {role}", "overlap": 2}, format="json")
    assert response.status_code == create_status, response.content
    if create_status == 201:
        created = Project.objects.get(name=f"made by {role}")
        assert created.created_by == user
        assert response.json()["schema"]["verdicts"] == ["a", "b", "tie", "both_bad"]
        change = {"overlap": 4, "schema": {"verdicts": ["a", "b"]}}
        patched = client.patch(f"{BASE}{created.pk}/", change, format="json")
        assert patched.status_code == 200 and patched.json()["overlap"] == 4
        bad = client.patch(f"{BASE}{created.pk}/", {"schema": {"verdicts": ["maybe"]}}, format="json")
        assert bad.status_code == 400 and "schema.verdicts" in bad.json()["detail"]
        assert client.delete(f"{BASE}{created.pk}/").status_code == 204


def test_annotators_see_only_their_projects(make_project, make_user, client_for, annotator):
    mine = make_project("mine", members=[annotator])
    make_project("theirs")
    client = client_for(annotator)
    assert [p["name"] for p in client.get(BASE).json()["results"]] == ["mine"]
    assert client.patch(f"{BASE}{mine.pk}/", {"overlap": 9}, format="json").status_code == 403
    assert client.get(f"{BASE}{Project.objects.get(name='theirs').pk}/next/").status_code == 404
    assert client.post(f"{BASE}{mine.pk}/members/", {"username": "ann"}, format="json").status_code == 403


def test_annotators_get_403_whatever_body_they_send(make_project, make_user, client_for, annotator):
    # The permission is checked before the body is validated: an invalid body is 403 too,
    # never a 400 that explains what a valid project looks like.
    mine = make_project("mine", members=[annotator])
    client = client_for(annotator)
    invalid = {"overlap": "many", "schema": {"verdicts": ["maybe"]}}
    for response in (client.post(BASE, invalid, format="json"), client.post(BASE, {}, format="json"),
                     client.patch(f"{BASE}{mine.pk}/", invalid, format="json")):  # fmt: skip
        assert response.status_code == 403, response.content
    assert client.delete(f"{BASE}{mine.pk}/").status_code == 403
    assert Project.objects.filter(pk=mine.pk, overlap=mine.overlap).exists()
    # a researcher's invalid body is still a 400 that names the problem
    researcher = client_for(make_user("res-invalid", "researcher"))
    assert researcher.post(BASE, invalid, format="json").status_code == 400


def test_member_endpoints_for_researchers(make_project, researcher, make_user, client_for):
    project = make_project()
    newcomer = make_user("newcomer")
    client = client_for(researcher)
    response = client.post(f"{BASE}{project.pk}/members/", {"username": "newcomer", "role": "reviewer"}, format="json")
    assert response.status_code == 200
    assert [(m["username"], m["role"]) for m in response.json()] == [("newcomer", "reviewer")]
    assert client.post(f"{BASE}{project.pk}/members/", {"username": "ghost"}, format="json").status_code == 404
    assert client.delete(f"{BASE}{project.pk}/members/{newcomer.pk}/").status_code == 204
    assert not project.memberships.exists()


# --- import ---------------------------------------------------------------------------------


def upload(name, data):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_import_endpoint(make_project, researcher, annotator, client_for):
    project = make_project()
    url = f"{BASE}{project.pk}/import/"
    body = {"file": upload("items.jsonl", jsonl(text_rows(4))), "format": "duet"}
    assert client_for(annotator).post(url, body, format="multipart").status_code == 404  # not even visible
    actions.add_member(project, annotator)
    body["file"] = upload("items.jsonl", jsonl(text_rows(4)))
    assert client_for(annotator).post(url, body, format="multipart").status_code == 403
    body["file"] = upload("items.jsonl", jsonl(text_rows(4)))
    response = client_for(researcher).post(url, body, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["items_created"] == 4
    bad = text_rows(3)
    del bad[2]["b"]
    response = client_for(researcher).post(url, {"file": upload("bad.jsonl", jsonl(bad))}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"error": "import_failed", "detail": "line 3: field 'b' is missing"}
    assert project.items.count() == 4


# --- the annotator's loop -------------------------------------------------------------------


def test_next_submit_skip_progress(project, annotator, client_for):
    client = client_for(annotator)
    task = client.get(f"{BASE}{project.pk}/next/").json()
    assert set(task) >= {"assignment", "token", "prompt", "a", "b", "schema", "progress", "expires_at", "warning"}
    # nothing in the payload names a system or says whether the item is a check
    flat = str(task)
    assert "sys-x" not in flat and "sys-y" not in flat and "gold" not in flat
    response = client.post(
        f"{BASE}{project.pk}/assignments/{task['assignment']}/judgment/",
        {"token": task["token"], "verdict": "a", "time_to_vote_ms": 3100},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["gold"] is None and body["progress"] == {"completed": 1, "skipped": 0, "remaining": 2}
    second = client.get(f"{BASE}{project.pk}/next/").json()
    assert second["assignment"] != task["assignment"]
    skipped = client.post(f"{BASE}{project.pk}/assignments/{second['assignment']}/skip/")
    assert skipped.json()["progress"] == {"completed": 1, "skipped": 1, "remaining": 1}
    progress = client.get(f"{BASE}{project.pk}/progress/").json()
    assert progress["mine"] == {"completed": 1, "skipped": 1, "remaining": 1}
    assert "annotators" not in progress  # annotators do not see each other's numbers
    again = client.post(
        f"{BASE}{project.pk}/assignments/{task['assignment']}/judgment/",
        {"token": task["token"], "verdict": "a"},
        format="json",
    )
    assert again.status_code == 409 and again.json()["error"] == "already_done"


def test_submit_errors_are_clear(make_project, annotator, make_user, client_for):
    project = make_project(
        rows=text_rows(1), members=[annotator], gold_fraction=0, min_seconds_per_item=30,
        schema={"verdicts": ["a", "b"], "aspects": ["helpfulness"], "rationale": {"min_length": 10}},
    )  # fmt: skip
    client = client_for(annotator)
    task = client.get(f"{BASE}{project.pk}/next/").json()
    url = f"{BASE}{project.pk}/assignments/{task['assignment']}/judgment/"
    good = {"token": task["token"], "verdict": "a", "aspects": {"helpfulness": {"a": 4, "b": 2}},
            "rationale": "A is right and B is not."}  # fmt: skip

    def error(**changes):
        response = client.post(url, {**good, **changes}, format="json")
        return response.status_code, response.json()["detail"]

    assert error(verdict="tie") == (400, "verdict must be one of a, b in this project; got 'tie'")
    assert error(aspects={}) == (400, "aspects.helpfulness: rate Helpfulness before submitting")
    assert error(rationale="short")[1] == "rationale: write at least 10 characters (you wrote 5)"
    assert error(token="forged")[1] == "vote token is invalid (bad signature)"
    status, detail = error()
    assert status == 400 and "This project asks you to spend at least 30 s on each item" in detail
    other = make_user("intruder")
    actions.add_member(project, other)
    response = client_for(other).post(url, good, format="json")
    assert response.status_code == 404  # not their assignment
    assert Judgment.objects.count() == 0


def test_gold_feedback_over_the_api(make_project, annotator, client_for):
    project = make_project(rows=text_rows(1, gold="b", gold_explanation="B counts right."), members=[annotator])
    client = client_for(annotator)
    task = client.get(f"{BASE}{project.pk}/next/").json()
    body = client.post(f"{BASE}{project.pk}/assignments/{task['assignment']}/judgment/",
                       {"token": task["token"], "verdict": "a"}, format="json").json()  # fmt: skip
    assert body["gold"] == {"expected": "b", "explanation": "B counts right."}


def test_audio_items_keep_the_arena_audio_gate(make_project, annotator, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.AUDIO_MIN_PLAY_SECONDS = 2.0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.wav", wav_bytes(3.0, 300))
        archive.writestr("y.wav", wav_bytes(3.0, 500))
    buffer.seek(0)
    project = make_project(members=[annotator], gold_fraction=0)
    row = {"id": "s1", "prompt": "a calm tone", "a": {"system": "tts-1", "media": "x.wav"},
           "b": {"system": "tts-2", "media": "y.wav"}}  # fmt: skip
    actions.import_comparisons(project, io.BytesIO(jsonl([row])), "audio.jsonl", media_zip=buffer)
    client = client_for(annotator)
    task = client.get(f"{BASE}{project.pk}/next/").json()
    assert task["modality"] == "audio" and task["a"]["kind"] == "audio" and task["audio_min_play_seconds"] == 2.0
    url = f"{BASE}{project.pk}/assignments/{task['assignment']}/judgment/"
    unheard = client.post(url, {"token": task["token"], "verdict": "a"}, format="json")
    assert unheard.status_code == 400 and unheard.json()["error"] == "audio_not_played"
    events = [{"side": side, "type": kind, "position": position, "t": t}
              for side in "ab" for kind, position, t in (("play", 0, 0), ("pause", 2.5, 2500))]  # fmt: skip
    heard = client.post(url, {"token": task["token"], "verdict": "a", "play_events": events}, format="json")
    assert heard.status_code == 201, heard.content
    assert len(Judgment.objects.get().play_events) == 4


def test_blocked_annotator_gets_403(make_project, annotator, client_for):
    project = make_project(rows=text_rows(2, gold="b"), members=[annotator], gold_fraction=1.0, gold_min_answers=1)
    client = client_for(annotator)
    task = client.get(f"{BASE}{project.pk}/next/").json()
    body = client.post(f"{BASE}{project.pk}/assignments/{task['assignment']}/judgment/",
                       {"token": task["token"], "verdict": "a"}, format="json").json()  # fmt: skip
    assert body["quality_status"] == "blocked"
    response = client.get(f"{BASE}{project.pk}/next/")
    assert response.status_code == 403 and response.json()["error"] == "quality_blocked"


def test_progress_and_review_for_researchers(make_project, researcher, make_user, client_for, lease_and_answer):
    first, second = make_user("first"), make_user("second")
    project = make_project(rows=text_rows(1), members=[first, second], gold_fraction=0)
    lease_and_answer(project, first, "a")
    lease_and_answer(project, second, "b")
    client = client_for(researcher)
    progress = client.get(f"{BASE}{project.pk}/progress/").json()
    assert {row["username"]: row["completed"] for row in progress["annotators"]} == {"first": 1, "second": 1}
    conflicts = client.get(f"{BASE}{project.pk}/conflicts/").json()
    item = ProjectItem.objects.get()
    assert [c["id"] for c in conflicts] == [item.pk]
    assert client_for(first).get(f"{BASE}{project.pk}/conflicts/").status_code == 403
    response = client.post(f"{BASE}{project.pk}/items/{item.pk}/adjudicate/", {"verdict": "a"}, format="json")
    assert response.status_code == 201
    assert client.get(f"{BASE}{project.pk}/conflicts/").json() == []
    assert Assignment.objects.filter(status=AssignmentStatus.COMPLETED).count() == 2
