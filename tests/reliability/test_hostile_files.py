"""Hostile uploads: oversize files, wrong or lying MIME types, polyglots, SVG with script,
zip bombs and zip entries that climb out of their folder. Each is refused with a message
that names the problem, and nothing is written: no row, no file under MEDIA_ROOT."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from arena.models import Output, Prompt, System
from tests.conftest import png_bytes, wav_bytes

SVG_WITH_SCRIPT = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def files_under(root) -> list[Path]:
    root = Path(root)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture
def targets(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    image = System.objects.create(name="painter", modality="image")
    audio = System.objects.create(name="singer", modality="audio")
    return {
        "image": (image, Prompt.objects.create(text="Draw", modality="image")),
        "audio": (audio, Prompt.objects.create(text="Sing", modality="audio")),
    }


HOSTILE_UPLOADS = [
    # (name, bytes, declared MIME, modality, fragment of the message)
    ("pic.png", SVG_WITH_SCRIPT, "image/png", "image", "an SVG or XML document"),
    ("pic.svg", SVG_WITH_SCRIPT, "image/svg+xml", "image", "an SVG or XML document"),
    ("page.png", b"<!doctype html><script>alert(1)</script>", "image/png", "image", "an HTML document"),
    ("pic.png", b"GIF89a" + b"\x00" * 64, "image/png", "image", "a GIF image"),
    ("pic.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", "image", "PNG"),  # a PNG header, then junk
    ("pic.png", png_bytes() + zip_bytes({"evil.html": b"<script>alert(1)</script>"}), "image/png", "image",
     "polyglot"),  # fmt: skip
    ("pic.jpg", png_bytes(), "image/jpeg", "image", "rename it to .png"),  # a PNG calling itself JPEG
    ("song.wav", png_bytes(), "audio/wav", "audio", "rename it to .png"),
    ("pic.png", wav_bytes(), "image/png", "image", "rename it to .wav"),
    ("archive.png", zip_bytes({"a.txt": b"x"}), "image/png", "image", "a ZIP archive"),
    ("song.wav", wav_bytes()[:60], "audio/wav", "audio", "truncated"),
    ("empty.png", b"", "image/png", "image", "empty"),
]


@pytest.mark.parametrize("name, data, mime, modality, fragment", HOSTILE_UPLOADS,
                         ids=[f"{case[0]}-{case[4][:18]}" for case in HOSTILE_UPLOADS])  # fmt: skip
def test_hostile_output_uploads_are_refused_and_nothing_is_written(
    researcher, client_for, targets, settings, name, data, mime, modality, fragment
):
    system, prompt = targets[modality]
    upload = SimpleUploadedFile(name, data, content_type=mime)
    response = client_for(researcher).post("/api/outputs/", {"system": system.pk, "prompt": prompt.pk, "media": upload})
    assert response.status_code == 400, response.content
    message = json.dumps(response.json())
    assert fragment.lower() in message.lower(), message
    assert Output.objects.count() == 0
    assert files_under(settings.MEDIA_ROOT) == []


def test_oversize_upload_is_refused_before_it_is_read(researcher, client_for, targets, settings):
    settings.MAX_UPLOAD_BYTES = 10_000
    system, prompt = targets["image"]
    big = SimpleUploadedFile("big.png", png_bytes(size=(800, 800)) + b"\x00" * 20_000, content_type="image/png")
    response = client_for(researcher).post("/api/outputs/", {"system": system.pk, "prompt": prompt.pk, "media": big})
    assert response.status_code == 400
    assert "the limit is 10000 bytes" in json.dumps(response.json())
    assert Output.objects.count() == 0 and files_under(settings.MEDIA_ROOT) == []


def test_request_body_over_the_server_limit_is_refused(researcher, client_for, targets, settings):
    # A text output larger than DATA_UPLOAD_MAX_MEMORY_SIZE never reaches the view.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    text_system = System.objects.create(name="writer")
    prompt = Prompt.objects.create(text="Write")
    response = client_for(researcher).post(
        "/api/outputs/", {"system": text_system.pk, "prompt": prompt.pk, "text": "x" * 5000}, format="json"
    )
    assert 400 <= response.status_code < 500
    assert Output.objects.count() == 0


def test_a_genuine_upload_still_works(researcher, client_for, targets, settings):
    system, prompt = targets["image"]
    upload = SimpleUploadedFile("ok.png", png_bytes(), content_type="application/octet-stream")  # MIME ignored
    response = client_for(researcher).post("/api/outputs/", {"system": system.pk, "prompt": prompt.pk, "media": upload})
    assert response.status_code == 201
    assert response.json()["media_type"] == "image/png" and len(files_under(settings.MEDIA_ROOT)) == 1


# --- media zips of annotation imports ----------------------------------------------------------


def media_rows(path_a: str, path_b: str) -> bytes:
    row = {"id": "q1", "prompt": "Which picture?", "a": {"system": "x", "media": path_a},
           "b": {"system": "y", "media": path_b}}  # fmt: skip
    return (json.dumps(row) + "\n").encode()


def import_with_zip(client, project_id: int, rows: bytes, archive: bytes):
    return client.post(
        f"/api/projects/{project_id}/import/",
        {"file": SimpleUploadedFile("items.jsonl", rows), "media_zip": SimpleUploadedFile("media.zip", archive)},
    )


@pytest.fixture
def project(db):
    from annotation.actions import create_project

    return create_project(name="hostile-zips")


def assert_nothing_imported(project, settings) -> None:
    from annotation.models import ProjectItem

    assert ProjectItem.objects.filter(project=project).count() == 0
    assert Output.objects.count() == 0 and not System.objects.filter(name__in=["x", "y"]).exists()
    assert files_under(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize(
    "entries, paths, fragment",
    [
        ({"../../etc/evil.png": png_bytes(), "ok.png": png_bytes()}, ("../../etc/evil.png", "ok.png"), "unsafe path"),
        ({"/abs/evil.png": png_bytes(), "ok.png": png_bytes()}, ("/abs/evil.png", "ok.png"), "unsafe path"),
        ({"a.png": SVG_WITH_SCRIPT, "b.png": png_bytes()}, ("a.png", "b.png"), "SVG"),
        ({"a.png": png_bytes(), "b.png": png_bytes()}, ("a.png", "missing.png"), "not in the media zip"),
    ],
    ids=["dot-dot", "absolute", "svg-script", "missing"],
)
def test_hostile_media_zips_are_refused(researcher, client_for, project, settings, tmp_path, entries, paths, fragment):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    response = import_with_zip(client_for(researcher), project.pk, media_rows(*paths), zip_bytes(entries))
    assert response.status_code == 400, response.content
    assert fragment.lower() in json.dumps(response.json()).lower(), response.json()
    assert_nothing_imported(project, settings)
    assert not (tmp_path / "etc").exists()


def test_zip_bomb_is_refused_by_declared_size(researcher, client_for, project, settings, tmp_path):
    # 64 MB of zeros deflates to ~64 KB; the limit on what a zip may expand to is 8 MB here
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANNOTATION_MEDIA_ZIP_MAX_BYTES = 8 * 1024 * 1024
    bomb = zip_bytes({"a.png": png_bytes(), "b.png": png_bytes(), "zeros.bin": b"\x00" * (64 * 1024 * 1024)})
    assert len(bomb) < 200_000
    response = import_with_zip(client_for(researcher), project.pk, media_rows("a.png", "b.png"), bomb)
    assert response.status_code == 400
    assert "decompresses to" in json.dumps(response.json())
    assert_nothing_imported(project, settings)


def test_one_entry_over_the_upload_limit_is_refused(researcher, client_for, project, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MAX_UPLOAD_BYTES = 50_000
    huge = png_bytes() + b"\x00" * 200_000  # compresses to almost nothing
    archive = zip_bytes({"a.png": huge, "b.png": png_bytes()})
    response = import_with_zip(client_for(researcher), project.pk, media_rows("a.png", "b.png"), archive)
    assert response.status_code == 400
    assert "the limit is 50,000 bytes" in json.dumps(response.json())
    assert_nothing_imported(project, settings)
