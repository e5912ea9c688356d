"""Who may call what on the core API: anonymous, annotator, researcher, admin."""

import pytest

from arena.models import Output, Prompt, System

ROLES = ["anonymous", "annotator", "researcher", "admin"]
# role -> expected status for GET on each list endpoint
READ_MATRIX = {
    "/api/systems/": {"anonymous": 401, "annotator": 200, "researcher": 200, "admin": 200},
    "/api/prompts/": {"anonymous": 401, "annotator": 200, "researcher": 200, "admin": 200},
    "/api/outputs/": {"anonymous": 401, "annotator": 403, "researcher": 200, "admin": 200},
    "/api/judgments/": {"anonymous": 401, "annotator": 403, "researcher": 200, "admin": 200},
}


@pytest.fixture
def users(make_user):
    return {"anonymous": None, **{role: make_user(role, role) for role in ROLES[1:]}}


@pytest.mark.parametrize("url", READ_MATRIX)
@pytest.mark.parametrize("role", ROLES)
def test_read_permissions(users, client_for, url, role):
    response = client_for(users[role]).get(url)
    assert response.status_code == READ_MATRIX[url][role]


@pytest.mark.parametrize("role, expected", [("anonymous", 401), ("annotator", 403), ("researcher", 201), ("admin", 201)])
def test_creating_systems_and_prompts(users, client_for, role, expected):
    client = client_for(users[role])
    system = client.post("/api/systems/", {"name": f"sys-{role}", "modality": "text"}, format="json")
    prompt = client.post("/api/prompts/", {"text": "Why?", "modality": "text", "categories": ["x"]}, format="json")
    assert system.status_code == expected
    assert prompt.status_code == expected
    assert System.objects.filter(name=f"sys-{role}").exists() == (expected == 201)
    if expected == 201:
        assert Prompt.objects.get(pk=prompt.json()["id"]).origin == "api"


def test_judgments_list_shows_provenance_to_researchers(arena_factory, annotator, researcher, client_for):
    arena_factory("text")
    voter = client_for(annotator)
    payload = voter.get("/api/arena/next/").json()
    voter.post("/api/arena/vote/", {"token": payload["token"], "verdict": "tie"}, format="json")
    rows = client_for(researcher).get("/api/judgments/").json()["results"]
    assert len(rows) == 1
    assert rows[0]["verdict"] == "tie" and rows[0]["judge_kind"] == "human"
    assert rows[0]["system_a"] != rows[0]["system_b"]


def test_judgments_are_read_only_through_the_api(arena_factory, admin_user, client_for):
    response = client_for(admin_user).post("/api/judgments/", {"verdict": "a"}, format="json")
    assert response.status_code == 405


def test_schema_and_docs_are_served_without_cdn(db, client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/arena/vote/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    body = docs.content.decode()
    assert "swagger-ui" in body and "cdn" not in body.lower() and "unpkg" not in body.lower()
    init = client.get("/api/docs/?script=")
    assert init.status_code == 200


def test_token_authentication(annotator, db):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token = Token.objects.create(user=annotator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/systems/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get("/api/systems/").status_code == 401


@pytest.fixture
def text_and_image_targets(db):
    text_system = System.objects.create(name="t", modality="text")
    image_system = System.objects.create(name="i", modality="image")
    text_prompt = Prompt.objects.create(text="Say hi", modality="text")
    image_prompt = Prompt.objects.create(text="Draw", modality="image")
    return text_system, image_system, text_prompt, image_prompt


def test_output_upload_text_and_media(researcher, client_for, text_and_image_targets):
    from tests.conftest import png_bytes
    from django.core.files.uploadedfile import SimpleUploadedFile

    text_system, image_system, text_prompt, image_prompt = text_and_image_targets
    client = client_for(researcher)
    text = client.post(
        "/api/outputs/", {"system": text_system.pk, "prompt": text_prompt.pk, "text": "# Hi\n- a\n- b"}, format="json"
    )
    assert text.status_code == 201, text.content
    assert text.json()["metadata"]["headers"] == 1 and text.json()["metadata"]["lists"] == 2

    upload = SimpleUploadedFile("pic.png", png_bytes(size=(40, 30)), content_type="image/png")
    image = client.post("/api/outputs/", {"system": image_system.pk, "prompt": image_prompt.pk, "media": upload})
    assert image.status_code == 201, image.content
    body = image.json()
    assert body["media_type"] == "image/png" and body["metadata"]["width"] == 40
    assert body["media_url"].startswith("/media/outputs/") and "pic" not in body["media_url"]


def test_output_upload_rejects_lying_files(researcher, client_for, text_and_image_targets):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _, image_system, _, image_prompt = text_and_image_targets
    client = client_for(researcher)
    fake = SimpleUploadedFile("pic.png", b"<svg onload=alert(1)></svg>", content_type="image/png")
    response = client.post("/api/outputs/", {"system": image_system.pk, "prompt": image_prompt.pk, "media": fake})
    assert response.status_code == 400
    assert "media" in response.json()
    assert Output.objects.count() == 0


def test_output_upload_rejects_oversize(researcher, client_for, text_and_image_targets, settings):
    from tests.conftest import png_bytes
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MAX_UPLOAD_BYTES = 50
    _, image_system, _, image_prompt = text_and_image_targets
    upload = SimpleUploadedFile("pic.png", png_bytes(), content_type="image/png")
    response = client_for(researcher).post(
        "/api/outputs/", {"system": image_system.pk, "prompt": image_prompt.pk, "media": upload}
    )
    assert response.status_code == 400
    assert "the limit is 50 bytes" in str(response.json()["media"])
    assert Output.objects.count() == 0


def test_output_modality_mismatch(researcher, client_for, text_and_image_targets):
    text_system, _, _, image_prompt = text_and_image_targets
    response = client_for(researcher).post(
        "/api/outputs/", {"system": text_system.pk, "prompt": image_prompt.pk, "text": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "prompt is image but system t is text" in str(response.json())
