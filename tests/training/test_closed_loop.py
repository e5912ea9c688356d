"""The loop closed in one test: votes -> a DPO run -> a new system answering the arena's
prompts -> served to a voter through the vote API -> votes on it -> on the board."""

from __future__ import annotations

import io


from annotation import actions as annotation_actions
from arena.board.snapshots import default_arena, refresh_arena
from arena.models import Comparison, Output, Prompt, PromptOrigin
from tests.annotation.conftest import jsonl, text_rows
from tests.training.test_jobs import request_for, voted_arena  # noqa: F401 - a fixture
from training import actions


def test_a_model_tuned_on_votes_answers_the_arena_is_voted_on_and_ranked(
    voted_arena, annotator, client_for, settings, django_capture_on_commit_callbacks,  # noqa: F811
):
    from arena.tasks import generate_outputs

    settings.VOTE_RATE_LIMIT = settings.NEXT_RATE_LIMIT = settings.CLIENT_RATE_LIMIT = "off"
    settings.GENERATION_MAX_NEW_TOKENS = 8  # the tiny random model's answers are noise: keep them short
    # given the arena's votes, and a project's imported prompts that are not the arena's
    project = annotation_actions.create_project(name="Imported")
    annotation_actions.import_comparisons(project, io.BytesIO(jsonl(text_rows(3))), "items.jsonl")
    imported = set(Prompt.objects.filter(origin=PromptOrigin.IMPORT).values_list("id", flat=True))
    arena_prompts = set(Prompt.objects.exclude(origin=PromptOrigin.IMPORT).values_list("id", flat=True))
    assert len(imported) == 3 and len(arena_prompts) == 8

    # when a DPO run trains on the votes (the worker then queues the new system's answers)
    run = actions.do_create_run(request_for(voted_arena))
    with django_capture_on_commit_callbacks(execute=False):
        assert actions.execute_run(run.pk) == "succeeded"
    run.refresh_from_db()
    tuned = run.produced_system
    generate_outputs.apply(args=[tuned.pk]).get()

    # then it answered the arena's prompts, and none of the project's
    answered = set(Output.objects.filter(system=tuned).values_list("prompt_id", flat=True))
    assert answered == arena_prompts

    # when a voter is served comparisons through the API and votes on each
    voter = client_for(annotator)
    served_tuned = 0
    for _ in range(40):
        served = voter.get("/api/arena/next/", {"modality": "text"})
        assert served.status_code == 200, served.content
        body = served.json()
        comparison = Comparison.objects.get(public_id=body["comparison"])
        systems = {comparison.output_a.system_id, comparison.output_b.system_id}
        verdict = "a" if comparison.output_a.system_id == tuned.pk else "b"
        vote = voter.post("/api/arena/vote/", {"token": body["token"], "verdict": verdict}, format="json")
        assert vote.status_code == 201, vote.content
        served_tuned += tuned.pk in systems
        if served_tuned >= 3:
            break
    # then the tuned system was served, and after a refresh it is on the board
    assert served_tuned >= 3
    refresh_arena(default_arena())
    board = voter.get("/api/leaderboard/", {"modality": "text"}).json()
    rows = {row["system"]: row for row in board["systems"]}
    assert tuned.name in rows, list(rows)
    assert rows[tuned.name]["votes"] >= served_tuned
