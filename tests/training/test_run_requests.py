"""Asking for a run: the data it would train on is counted (text pairs only) and a run with
too few is refused with the counts before anything is queued; numbers out of range are
refused by the dashboard form, the API and the `train` command alike."""

import random

import pytest
from django.core.management import CommandError, call_command

from arena.voting import actions as arena_actions
from arena.errors import NothingToCompare
from arena.models import System
from training import actions, selection
from training.models import TrainingRun
from training.selection import MIN_PAIRS, PairCount, TooFewPairs


def vote_all(make_user, modality: str, voter: str) -> int:
    """One voter judges every pair in a modality, preferring side A; returns the votes cast."""
    judge = arena_actions.judge_for_user(make_user(voter))
    votes = 0
    while True:
        try:
            comparison = arena_actions.next_comparison(judge, modality, rng=random.Random(votes))
        except NothingToCompare:
            return votes
        token = arena_actions.issue_vote_token(comparison, judge)
        arena_actions.do_record_judgment(arena_actions.check_vote(token=token, judge=judge, verdict="a"))
        votes += 1


@pytest.fixture
def base_system(db, tiny_model_dir):
    return System.objects.create(name="tiny-base", provider="transformers",
                                 provider_config={"model": str(tiny_model_dir)})  # fmt: skip


@pytest.fixture
def mixed_arena(base_system, arena_factory, make_user, settings, tmp_path):
    """The arena of the report: 7 judged pairs, 3 of them images (4 text + 3 image)."""
    settings.TRAINING_RUNS_DIR = tmp_path / "runs"
    arena_factory("text", n_systems=2, n_prompts=4)
    arena_factory("image", n_systems=2, n_prompts=3)
    assert vote_all(make_user, "text", "t-voter") == 4
    assert vote_all(make_user, "image", "i-voter") == 3
    return "main"


@pytest.fixture
def text_arena(base_system, arena_factory, make_user, settings, tmp_path):
    """Enough text pairs to train on (12), beside 3 image pairs."""
    settings.TRAINING_RUNS_DIR = tmp_path / "runs"
    arena_factory("text", n_systems=2, n_prompts=12)
    arena_factory("image", n_systems=2, n_prompts=3)
    assert vote_all(make_user, "text", "t-voter") == 12
    assert vote_all(make_user, "image", "i-voter") == 3
    return "main"


FORM = {"kind": "dpo", "source": "arena:main", "base": "tiny-base", "loss": "sigmoid", "max_steps": "2",
        "adapter": "lora", "aggregate": "dawid-skene", "min_confidence": "0", "data_source": "human"}  # fmt: skip


# --- counting -----------------------------------------------------------------------------------


def test_count_pairs_splits_text_from_media(mixed_arena):
    count = selection.count_pairs(arena="main", filters=actions.DEFAULT_FILTERS)
    assert count == PairCount(text=4, other=3)
    assert count.describe() == "4 text pair(s) (3 image, audio or empty-answer pair(s) left out)"


@pytest.mark.parametrize("aggregate", ["majority", "none"])
def test_count_pairs_follows_the_aggregation(mixed_arena, aggregate):
    count = selection.count_pairs(arena="main", filters={**actions.DEFAULT_FILTERS, "aggregate": aggregate})
    assert count == PairCount(text=4, other=3)


def test_count_pairs_applies_min_confidence(mixed_arena):
    # one judgment per comparison: its majority share is 1.0, which a threshold of 1.0 keeps
    count = selection.count_pairs(arena="main", filters={**actions.DEFAULT_FILTERS, "aggregate": "majority",
                                                         "min_confidence": 1.0})  # fmt: skip
    assert count.text == 4
    from arena.models import Judgment

    Judgment.objects.update(confidence=0.4)
    count = selection.count_pairs(arena="main", filters={**actions.DEFAULT_FILTERS, "aggregate": "none",
                                                         "min_confidence": 0.5})  # fmt: skip
    assert count == PairCount(text=0, other=0)


def test_count_matches_what_the_worker_trains_on(text_arena, django_capture_on_commit_callbacks):
    # given a run on an arena with text and image pairs
    request = actions.check_run_request(kind="dpo", arena="main", base="tiny-base", max_steps=2)
    count = selection.check_enough_pairs(request)
    with django_capture_on_commit_callbacks(execute=False):
        run = actions.do_create_run(request)
    # when the worker builds its pairs
    path, pairs = actions.snapshot_dataset(run)
    # then only the text pairs are there, in the snapshot too, and no media archive is kept
    assert len(pairs) == count.text == 12
    assert all(pair["chosen"].strip() and pair["rejected"].strip() for pair in pairs)
    assert not any(pair.get("chosen_media") or pair.get("rejected_media") for pair in pairs)
    assert len(path.read_text().splitlines()) == 12
    assert not list(path.parent.glob("*.zip"))


# --- refusing too little data, everywhere --------------------------------------------------------


def test_check_refuses_too_few_text_pairs(mixed_arena):
    request = actions.check_run_request(kind="dpo", arena="main", base="tiny-base")
    with pytest.raises(TooFewPairs) as refused:
        selection.check_enough_pairs(request)
    assert refused.value.message.startswith(
        f"arena main has 4 text pair(s) (3 image, audio or empty-answer pair(s) left out) to train on with these "
        f"filters; at least {MIN_PAIRS} are needed"
    )


def test_dashboard_refuses_too_few_pairs_before_queueing(mixed_arena, researcher, client):
    client.force_login(researcher)
    response = client.post("/training/runs/", FORM)
    assert response.status_code == 400
    assert "arena main has 4 text pair(s) (3 image" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_api_refuses_too_few_pairs_before_queueing(mixed_arena, researcher, client_for):
    response = client_for(researcher).post("/api/training/runs/", {"kind": "dpo", "arena": "main", "base": "tiny-base"},
                                           format="json")  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == "too_few_pairs" and "4 text pair(s)" in response.json()["detail"]
    assert not TrainingRun.objects.exists()


def test_command_refuses_too_few_pairs_before_queueing(mixed_arena):
    with pytest.raises(CommandError, match=r"arena main has 4 text pair\(s\) \(3 image"):
        call_command("train", "--kind", "dpo", "--arena", "main", "--base", "tiny-base")
    assert not TrainingRun.objects.exists()


def test_dashboard_queues_with_enough_pairs_and_says_how_many(text_arena, researcher, client):
    client.force_login(researcher)
    response = client.post("/training/runs/", {**FORM, "learning_rate": "0.001", "batch_size": "4"}, follow=True)
    run = TrainingRun.objects.get()
    assert response.redirect_chain[-1][0] == f"/training/runs/{run.pk}/"
    assert "queued on the training queue with 12 text pair(s) (3 image" in response.content.decode()
    assert run.recipe["training"]["learning_rate"] == 0.001 and run.recipe["training"]["batch_size"] == 4
    assert run.recipe["training"]["max_steps"] == 2


# --- numbers out of range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("max_steps", "0", "max steps must be between 1 and 100,000 (leave it empty for one epoch); got 0"),
        ("max_steps", "100001", "max steps must be between 1 and 100,000"),
        ("max_steps", "-3", "max steps must be between 1 and 100,000"),
        ("learning_rate", "0", "learning rate must be greater than 0"),
        ("learning_rate", "-0.1", "learning rate must be greater than 0"),
        ("learning_rate", "5", "at most 1"),
        ("batch_size", "0", "batch size must be between 1 and 256; got 0"),
        ("batch_size", "100000", "batch size must be between 1 and 256"),
        ("min_confidence", "1.5", "less than or equal to 1"),
    ],
)
def test_form_refuses_out_of_range_numbers(text_arena, researcher, client, field, value, fragment):
    client.force_login(researcher)
    response = client.post("/training/runs/", {**FORM, field: value})
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_form_keeps_what_was_typed_after_an_error(text_arena, researcher, client):
    client.force_login(researcher)
    page = client.post("/training/runs/", {**FORM, "max_steps": "0", "batch_size": "16"}).content.decode()
    assert 'name="batch_size" value="16"' in page and 'name="max_steps" value="0"' in page


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"max_steps": 0}, "max steps must be between 1 and 100,000"),
        ({"max_steps": 200000}, "max steps must be between 1 and 100,000"),
        ({"learning_rate": 0}, "learning rate must be greater than 0"),
        ({"learning_rate": -1e-4}, "learning rate must be greater than 0"),
        ({"batch_size": 0}, "batch size must be between 1 and 256"),
        ({"batch_size": 5000}, "batch size must be between 1 and 256"),
        ({"recipe": {"training": {"batch_size": 5000}}}, "recipe.training.batch_size: batch size must be between"),
        ({"recipe": {"training": {"max_steps": 0}}}, "recipe.training.max_steps: max steps must be between"),
        ({"recipe": {"training": {"learning_rate": "fast"}}}, "recipe.training.learning_rate must be a number"),
    ],
)
def test_api_refuses_out_of_range_numbers(text_arena, researcher, client_for, body, fragment):
    response = client_for(researcher).post("/api/training/runs/", {"kind": "dpo", "arena": "main", "base": "tiny-base",
                                                                   **body}, format="json")  # fmt: skip
    assert response.status_code == 400, response.content
    assert fragment in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_api_takes_learning_rate_and_batch_size(text_arena, researcher, client_for):
    response = client_for(researcher).post("/api/training/runs/", {
        "kind": "reward", "arena": "main", "base": "tiny-base", "max_steps": 3, "learning_rate": 2e-4, "batch_size": 2,
    }, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.recipe["training"]["learning_rate"] == 2e-4 and run.recipe["training"]["batch_size"] == 2
    assert run.recipe["training"]["max_steps"] == 3


def test_command_refuses_zero_max_steps(text_arena, capsys):
    with pytest.raises(CommandError, match="must be between 1 and 100000"):
        call_command("train", "--kind", "dpo", "--arena", "main", "--base", "tiny-base", "--max-steps", "0")
    assert not TrainingRun.objects.exists()
