"""The arena's first page after `make run`: it opens where a comparison is ready, says where
the others stand, and the page's readiness endpoint tells it when text is ready."""

import pytest

from arena.models import Output, Prompt, Provider, System

READINESS = "/api/arena/readiness/"


@pytest.fixture
def fresh_demo(arena_factory):
    """Image and audio rendered; three text systems that generate, with 2 of 12 answers
    written so far, to different prompts (no prompt has two yet)."""
    arena_factory("image", n_systems=2, n_prompts=2)
    arena_factory("audio", n_systems=2, n_prompts=2)
    systems = [
        System.objects.create(name=f"smol-{i}", modality="text", provider=Provider.TRANSFORMERS) for i in range(3)
    ]
    prompts = [Prompt.objects.create(text=f"Question {j}?", modality="text") for j in range(4)]
    Output.objects.create(system=systems[0], prompt=prompts[0], text="First answer.")
    Output.objects.create(system=systems[1], prompt=prompts[1], text="Second answer.")
    return systems, prompts


def test_the_arena_opens_on_a_ready_modality_and_says_text_is_coming(fresh_demo, annotator, client):
    # given a fresh demo: image and audio ready, text answers being generated
    client.force_login(annotator)
    # when the arena is opened without choosing a modality
    response = client.get("/")
    # then it opens on image, the first ready one, and says where text stands
    assert response.context["modality"] == "image"
    note = "Text answers are being generated (2 of 12 ready); image and audio comparisons are ready now."
    assert response.context["readiness"]["note"] == note
    assert note in response.content.decode()
    assert 'data-modality="image"' in response.content.decode()


def test_a_chosen_modality_is_kept_even_when_not_ready(fresh_demo, annotator, client):
    client.force_login(annotator)
    response = client.get("/", {"modality": "text"})
    assert response.context["modality"] == "text"
    assert response.context["readiness"]["modalities"]["text"]["state"] == "generating"


def test_readiness_turns_to_text_once_a_prompt_has_two_answers(fresh_demo, annotator, client_for):
    # given
    systems, prompts = fresh_demo
    client = client_for(annotator)
    before = client.get(READINESS, {"modality": "text"}).json()
    assert before["first"] == "image"
    assert before["modalities"]["text"] == {"modality": "text", "label": "Text", "state": "generating", "answers": 2,
                                            "expected": 12, "comparable_prompts": 0, "generating": True}
    assert client.get("/api/arena/next/", {"modality": "text"}).status_code == 404
    # when the worker writes a second answer to the first prompt
    Output.objects.create(system=systems[1], prompt=prompts[0], text="Another answer.")
    # then the next poll says text is ready, the arena opens on it, and next serves it
    after = client.get(READINESS, {"modality": "text"}).json()
    assert after["modalities"]["text"]["state"] == "ready"
    assert after["modalities"]["text"]["answers"] == 3
    assert after["first"] == "text"
    # text ready while generation goes on: image and audio need no mention on the text tab
    assert after["note"] == ""
    assert client.get("/api/arena/next/", {"modality": "text"}).status_code == 200


def test_a_modality_without_generating_systems_is_empty_not_generating(arena_factory, annotator, client_for):
    # uploaded systems with half their outputs: nothing will ever fill the rest
    systems, prompts = arena_factory("text", n_systems=2, n_prompts=2)
    Output.objects.filter(system=systems[1]).delete()
    arena_factory("image", n_systems=2, n_prompts=1)
    body = client_for(annotator).get(READINESS, {"modality": "text"}).json()
    assert body["modalities"]["text"]["state"] == "empty"
    assert body["modalities"]["audio"]["state"] == "empty"
    assert body["note"] == "Image comparisons are ready now."
    assert body["first"] == "image"


def test_readiness_needs_a_login_unless_the_arena_is_open(fresh_demo, client_for, settings):
    settings.OPEN_ARENA = False
    assert client_for().get(READINESS).status_code == 401
    settings.OPEN_ARENA = True
    assert client_for().get(READINESS).json()["first"] == "image"


def test_readiness_names_a_bad_modality(fresh_demo, annotator, client_for):
    response = client_for(annotator).get(READINESS, {"modality": "video"})
    assert response.status_code == 400
    assert "video" in response.json()["detail"]


def test_a_cut_answer_is_served_with_its_marker(arena_factory, annotator, client_for):
    # given two answers, one stopped by the token limit
    systems, _ = arena_factory("text", n_systems=2, n_prompts=1)
    Output.objects.filter(system=systems[0]).update(
        text="Step one:\n\n```python\nfor x in", metadata={"finish_reason": "length", "tokens": 384}
    )
    Output.objects.filter(system=systems[1]).update(metadata={"finish_reason": "stop", "tokens": 12})
    # when
    payload = client_for(annotator).get("/api/arena/next/", {"modality": "text"}).json()
    # then only the cut answer is marked, and its open code block renders as code
    sides = {payload[side]["html"]: side for side in ("a", "b")}
    cut = next(html for html in sides if "Step one" in html)
    whole = next(html for html in sides if "Step one" not in html)
    assert cut.endswith("… (answer cut at 384 tokens)</p>") and '<code class="language-python">for x in' in cut
    assert "answer cut" not in whole
