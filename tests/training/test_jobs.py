"""Training runs as jobs: validation, queueing, the worker side on a tiny model, progress,
cancellation, failures, the closing of the loop into the arena, the API and the pages."""

import json
import random
import threading
import time

import pytest
from django.core.management import call_command

from arena.voting import actions as arena_actions
from arena import hotcache, storage
from arena.board.snapshots import default_arena
from arena.errors import InvalidInput, NotFound
from arena.models import System
from training import actions
from training.models import TrainingRun


def vote_everything(make_user, n_voters=3):
    """Voters who prefer the longer answer, on every pair."""
    for v in range(n_voters):
        judge = arena_actions.judge_for_user(make_user(f"voter{v}"))
        while True:
            try:
                comparison = arena_actions.next_comparison(judge, "text", rng=random.Random(v))
            except Exception:  # noqa: BLE001 - nothing left for this voter
                break
            a, b = comparison.output_a.text, comparison.output_b.text
            token = arena_actions.issue_vote_token(comparison, judge)
            vote = arena_actions.check_vote(token=token, judge=judge, verdict="a" if len(a) > len(b) else "b")
            arena_actions.do_record_judgment(vote)


@pytest.fixture
def voted_arena(db, make_user, tiny_model_dir, settings, tmp_path):
    settings.TRAINING_RUNS_DIR = tmp_path / "runs"
    base = System.objects.create(name="tiny-base", provider="transformers",
                                 provider_config={"model": str(tiny_model_dir), "system_prompt": "Be kind."})  # fmt: skip
    others = [System.objects.create(name=f"answers-{i}") for i in range(3)]
    from arena.models import Output, Prompt

    for j in range(8):
        prompt = Prompt.objects.create(text=f"Question number {j}?")
        for i, system in enumerate(others):
            Output.objects.create(system=system, prompt=prompt, text="word " * (2 + 3 * i) + f"answer {j}")
    vote_everything(make_user)
    return base


def request_for(base_system, **overrides):
    values = {"kind": "dpo", "arena": "main", "base": base_system.name, "loss": "sigmoid", "max_steps": 2,
              "recipe": {"training": {"batch_size": 2}, "data": {"max_length": 64, "validation_fraction": 0.25}}}  # fmt: skip
    return actions.check_run_request(**{**values, **overrides})


# --- validation and queueing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, error, fragment",
    [
        ({"kind": "ppo"}, InvalidInput, "kind must be one of reward, dpo"),
        ({"project": "x"}, InvalidInput, "exactly one data source"),
        ({"loss": "magic"}, InvalidInput, "loss must be one of"),
        ({"kind": "reward", "loss": "ipo"}, InvalidInput, "is a DPO loss"),
        ({"arena": "nowhere"}, NotFound, "no arena named 'nowhere'"),
        ({"base": "answers-0"}, InvalidInput, "not a local transformers text model"),
        ({"base": "ghost"}, NotFound, "no system named 'ghost'"),
        ({"filters": {"colour": "red"}}, InvalidInput, "unknown data filters: colour"),
        ({"recipe": {"training": {"beta": -1}}}, InvalidInput, "training.beta must be positive"),
    ],
)
def test_bad_requests_name_the_problem(voted_arena, overrides, error, fragment):
    with pytest.raises(error, match=fragment):
        request_for(voted_arena, **overrides)


def test_weighted_loss_uses_the_pair_weights(voted_arena):
    request = request_for(voted_arena, loss="weighted", adapter="lora")
    assert request.recipe["training"]["pair_weighting"] == "fixed"
    assert request.recipe["training"]["losses"] == ["sigmoid"]
    assert request.recipe["model"]["adapter"] == "lora"
    assert request.recipe["model"]["name_or_path"] == voted_arena.provider_config["model"]


def test_create_queues_the_task_after_commit(voted_arena, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        run = actions.do_create_run(request_for(voted_arena))
    assert run.status == "queued" and len(callbacks) == 1


# --- the worker side ----------------------------------------------------------------------


def test_dpo_run_trains_evaluates_and_joins_the_arena(voted_arena, django_capture_on_commit_callbacks):
    run = actions.do_create_run(request_for(voted_arena))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert actions.execute_run(run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.n_pairs > 0 and run.finished_at is not None
    assert run.history and run.history[-1]["step"] == 2 and run.progress["total_steps"] == 2
    assert run.heartbeat_at is not None
    for key in ("heldout_accuracy", "ranking_accuracy", "base_ranking_accuracy", "train_loss"):
        assert run.metrics[key] is not None, key
    assert 0.0 <= run.metrics["heldout_accuracy"] <= 1.0
    # the dataset snapshot is kept with the run
    rows = [json.loads(line) for line in open(run.artifacts["dataset"])]
    assert len(rows) == run.n_pairs and {"prompt", "chosen", "rejected", "weight"} <= set(rows[0])
    # the tuned model is a new System, child of its base, answering through its merged
    # folder copied into the storage every host reaches
    produced = run.produced_system
    assert produced.name == f"tiny-base+dpo-run{run.pk}" and produced.parent == voted_arena
    assert produced.provider == "transformers" and produced.provider_config["system_prompt"] == "Be kind."
    assert produced.provider_config["model"] == f"stored:tuned/run-{run.pk}"
    assert storage.storage().exists(f"tuned/run-{run.pk}/config.json")
    # its outputs for the arena's prompts are generated in the worker (beside the new system's change stamp)
    from arena.events import job_finished

    others = [callback for callback in queued if getattr(callback, "func", None) not in (hotcache.bump, job_finished.send)]
    assert len(others) == 1
    from arena.providers.generation import generate_missing_outputs

    assert generate_missing_outputs(produced) == 8


def test_reward_run(voted_arena):
    run = actions.do_create_run(request_for(voted_arena, kind="reward"))
    assert actions.execute_run(run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.metrics["heldout_accuracy"] is not None and run.produced_system is None
    assert run.artifacts["output_dir"]
    assert run.artifacts["model"] == f"stored:tuned/run-{run.pk}"
    assert storage.storage().exists(f"tuned/run-{run.pk}/dataset.jsonl")


def test_failure_keeps_its_traceback(voted_arena, tmp_path):
    run = actions.do_create_run(request_for(voted_arena))
    TrainingRun.objects.filter(pk=run.pk).update(recipe={**run.recipe, "model": {
        **run.recipe["model"], "name_or_path": str(tmp_path / "no-such-model")}})  # fmt: skip
    assert actions.execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "Traceback" in run.error and run.finished_at


def test_too_little_data_fails_clearly(db, tiny_model_dir, settings, tmp_path):
    settings.TRAINING_RUNS_DIR = tmp_path
    default_arena()
    run = actions.do_create_run(actions.check_run_request(kind="dpo", arena="main", base=str(tiny_model_dir)))
    assert actions.execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert "0 decided pair(s)" in run.error


def test_a_repeated_delivery_of_a_running_run_answers_its_state_and_runs_nothing(voted_arena):
    # given a run another worker has claimed
    run = actions.do_create_run(request_for(voted_arena))
    TrainingRun.objects.filter(pk=run.pk).update(status="running", claimed_by="long@a pid 1")
    # when its message is delivered again
    assert actions.execute_run(run.pk) == "running"
    # then nothing ran: no dataset, no second claim (a dead worker is the sweep's to find)
    run.refresh_from_db()
    assert run.status == "running" and run.claimed_by == "long@a pid 1" and run.n_pairs is None


def test_stale_heartbeat_fails_the_run(voted_arena, settings):
    from django.utils import timezone

    from arena.jobs.lifecycle import sweep_stale_jobs

    run = actions.do_create_run(request_for(voted_arena))
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", heartbeat_at=timezone.now() - timezone.timedelta(hours=2), claimed_by="long@a pid 1"
    )
    assert sweep_stale_jobs() == 1
    run.refresh_from_db()
    assert run.status == "failed" and "no heartbeat from worker long@a pid 1 since" in run.error


def test_cancel_queued_and_running(voted_arena):
    queued = actions.do_create_run(request_for(voted_arena))
    assert actions.do_cancel_run(queued).status == "cancelled"
    assert actions.execute_run(queued.pk) == "cancelled"  # a cancelled run is never started
    with pytest.raises(InvalidInput, match="already cancelled"):
        actions.do_cancel_run(queued)


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_job(voted_arena):
    run = actions.do_create_run(request_for(voted_arena, max_steps=400))

    def cancel_when_started():
        from django.db import connection

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            current = TrainingRun.objects.get(pk=run.pk)
            if current.progress.get("step", 0) >= 1:
                actions.do_cancel_run(current)
                break
            time.sleep(0.05)
        connection.close()

    canceller = threading.Thread(target=cancel_when_started)
    canceller.start()
    assert actions.execute_run(run.pk) == "cancelled"
    canceller.join()
    run.refresh_from_db()
    assert run.status == "cancelled" and run.progress["step"] < 400 and run.produced_system is None


# --- API, pages, command ------------------------------------------------------------------


def test_api_create_list_cancel(voted_arena, researcher, annotator, client_for):
    body = {"kind": "dpo", "arena": "main", "base": "tiny-base", "max_steps": 2}
    assert client_for(annotator).post("/api/training/runs/", body, format="json").status_code == 403
    assert client_for(annotator).get("/api/training/runs/").status_code == 403
    client = client_for(researcher)
    created = client.post("/api/training/runs/", body, format="json")
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    assert created.json()["status"] == "queued" and created.json()["base_system"] == "tiny-base"
    assert client.get("/api/training/runs/").json()["results"][0]["id"] == run_id
    bad = client.post("/api/training/runs/", {**body, "loss": "nope"}, format="json")
    assert bad.status_code == 400
    cancelled = client.post(f"/api/training/runs/{run_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/training/runs/{run_id}/cancel/")
    assert again.status_code == 400 and "already cancelled" in again.json()["detail"]


def test_dashboard_start_and_watch(voted_arena, researcher, client):
    client.force_login(researcher)
    page = client.get("/training/")
    assert page.status_code == 200 and b"Start a run" in page.content and b"arena: main" in page.content
    response = client.post("/training/runs/", {"kind": "dpo", "source": "arena:main", "base": "tiny-base",
                                               "loss": "robust", "max_steps": "2", "adapter": "lora",
                                               "aggregate": "majority", "min_confidence": "0", "data_source": "human"})  # fmt: skip
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/runs/{run.pk}/"
    assert run.loss == "robust" and run.recipe["training"]["losses"] == ["robust"]
    assert run.data_filters["aggregate"] == "majority"
    actions.execute_run(run.pk)
    detail = client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "succeeded" in detail and 'id="loss-curve"' in detail or "heldout_accuracy" in detail
    assert 'data-key="preference_accuracy"' in detail and 'data-key="ranking_accuracy"' in detail
    bad = client.post("/training/runs/", {"kind": "dpo", "source": "arena:main", "loss": "nope"}, follow=True)
    assert b"loss must be one of" in bad.content


def test_annotators_do_not_see_training(db, annotator, client):
    client.force_login(annotator)
    assert client.get("/training/").status_code == 403


def test_train_command_queues_like_the_dashboard(voted_arena, capsys):
    call_command("train", "--kind", "dpo", "--arena", "main", "--base", "tiny-base", "--max-steps", "2",
                 "--lora", "--format", "json")  # fmt: skip
    body = json.loads(capsys.readouterr().out)
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["status"] == "queued" and run.recipe["model"]["adapter"] == "lora"
