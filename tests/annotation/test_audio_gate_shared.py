"""The audio gate is one piece of code: both pages that take a verdict on audio load
static/duet/audio_gate.js before their own script, and neither script keeps a copy."""

import re
from pathlib import Path

from django.conf import settings
from django.test import Client

from .conftest import text_rows

STATIC = Path(settings.BASE_DIR) / "static"


def _scripts(page: str) -> list[str]:
    return re.findall(r'<script src="/static/([^"]+)"', page)


def test_the_arena_page_loads_the_shared_gate_first(arena_factory, annotator, client):
    arena_factory("audio", n_systems=2, n_prompts=1, audio_seconds=1.5)
    client.force_login(annotator)

    scripts = _scripts(client.get("/?modality=audio").content.decode())

    assert scripts.index("duet/audio_gate.js") < scripts.index("arena/arena.js")


def test_the_annotation_task_page_loads_the_shared_gate_first(make_project, annotator):
    project = make_project(rows=text_rows(1), members=[annotator])
    client = Client()
    client.force_login(annotator)

    scripts = _scripts(client.get(f"/projects/{project.pk}/work/").content.decode())

    assert scripts.index("duet/audio_gate.js") < scripts.index("annotation/annotation.js")


def test_neither_page_script_keeps_its_own_gate():
    for script in ("arena/arena.js", "annotation/annotation.js"):
        source = (STATIC / script).read_text()
        # the gate's bookkeeping (time heard, the minimum less a quarter second) lives once
        assert "heardSeconds" not in source and "0.25" not in source, script
        assert "DuetAudioGate.forPage" in source, script
