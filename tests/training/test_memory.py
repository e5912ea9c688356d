"""Training's memory bound and what a run reports about it: long dialogues cut to max_length,
the reference pass in micro-batches, phases written in order, a worker killed by the kernel."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.training.conftest import easy_pairs
from tests.training.test_jobs import request_for, voted_arena  # noqa: F401 - a fixture
from training.recipes import normalise_pairs
from training.recipes.dpo import build_dpo_trainer
from training.recipes.runtime import load_tokenizer


def long_dialogue_pairs(n: int, turns: int = 12) -> list[dict]:
    """HH-RLHF-shaped pairs whose dialogue alone is several times max_length."""
    pairs = []
    for i in range(n):
        history = "".join(f"\n\nHuman: tell me about topic {t}\n\nAssistant: topic {t} is long" for t in range(turns))
        prompt = f"{history}\n\nHuman: last question {i}?\n\nAssistant:"
        pairs.append({"prompt": prompt, "chosen": " good answer", "rejected": " bad answer"})
    return pairs


def test_a_long_dialogue_keeps_its_latest_turns_within_max_length(tiny_recipe, tmp_path):
    # given dialogues of ~150 tokens and a 32-token limit (prompts keep 16)
    pairs = long_dialogue_pairs(4)
    recipe = tiny_recipe(max_length=32, max_steps=1)
    tokenizer = load_tokenizer(recipe.model.name_or_path)
    assert len(tokenizer(text=pairs[0]["prompt"])["input_ids"]) > 4 * 32
    # when the trainer tokenizes them
    trainer = build_dpo_trainer(normalise_pairs(pairs), recipe, tmp_path)
    # then no pair is dropped, each prompt is its own last 16 tokens, and a batch fits max_length
    rows = trainer.train_dataset
    assert len(rows) == len(pairs)
    for pair, prompt_ids in zip(pairs, rows["prompt_ids"], strict=True):
        assert len(prompt_ids) == 16
        assert prompt_ids == tokenizer(text=pair["prompt"])["input_ids"][-16:]
        assert tokenizer.decode(prompt_ids).endswith("?\n\nAssistant:")
    batch = trainer.data_collator([rows[i] for i in range(len(rows))])
    assert batch["input_ids"].shape[1] <= 32 and batch["completion_mask"].sum(1).min() > 0
    # and it trains
    trainer.train()
    assert trainer.state.global_step == 1


def test_the_reference_pass_runs_in_micro_batches(tiny_recipe, tmp_path):
    # given a one-epoch LoRA run of 8 pairs in batches of 4 on a CPU
    recipe = tiny_recipe(batch_size=4)
    batches = []
    # when the trainer is built (TRL precomputes the reference log-probs then)
    trainer = build_dpo_trainer(normalise_pairs(easy_pairs(8)), recipe, tmp_path, on_reference_batch=batches.append)
    # then every training pair got its reference log-probs, one pair (two sequences) a forward
    assert batches == [1] * 8
    assert len(trainer.train_dataset["ref_chosen_logps"]) == 8
    # and training accumulates four micro-batches of one pair per optimiser step
    assert (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps) == (1, 4)


def test_a_short_run_on_many_pairs_skips_the_reference_pass(tiny_recipe, tmp_path):
    # given 2 steps of 4 pairs on 40 pairs: most pairs would never be trained on
    recipe = tiny_recipe(batch_size=4, max_steps=2)
    batches = []
    # when the trainer is built
    trainer = build_dpo_trainer(normalise_pairs(easy_pairs(40)), recipe, tmp_path, on_reference_batch=batches.append)
    # then nothing was precomputed: the reference is the model with its adapters off, per step
    assert batches == [] and "ref_chosen_logps" not in trainer.train_dataset.column_names
    trainer.train()
    assert trainer.state.global_step == 2


PROGRESS_KEYS = {"phase", "phase_done", "phase_total", "step", "total_steps", "loss", "rss_mb", "worker"}


def test_a_run_writes_its_phases_in_order(voted_arena, django_capture_on_commit_callbacks):  # noqa: F811
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from training import actions
    from training.models import TrainingRun

    # given a queued one-epoch DPO run (so the reference pass is precomputed)
    run = actions.do_create_run(request_for(voted_arena, max_steps=None))
    # when the worker runs it, every write of its progress captured
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        assert actions.execute_run(run.pk) == "succeeded"
    # then the phases came in order, each at least once
    written = [re.search(r'"phase": "(\w+)"', q["sql"]).group(1) for q in queries.captured_queries
               if q["sql"].startswith("UPDATE") and '"phase": ' in q["sql"]]
    in_order = [phase for i, phase in enumerate(written) if i == 0 or phase != written[i - 1]]
    assert in_order == ["dataset", "loading", "reference", "training", "evaluation", "saving", "registering"]
    # and the last record has exactly the keys the run page reads, with the worker's identity
    run = TrainingRun.objects.get(pk=run.pk)
    assert set(run.progress) == PROGRESS_KEYS
    assert run.progress["worker"]["pid"] == os.getpid() and run.progress["rss_mb"] > 0
    assert run.progress["step"] == run.progress["total_steps"] == run.history[-1]["step"] > 0


def _request_for_run(run_id: int):
    from celery.contrib.testing.mocks import TaskMessage

    from training.tasks import run_training

    message = TaskMessage(run_training.name, args=(run_id,))
    return run_training.Request(message, app=run_training.app, task=run_training)


@pytest.mark.django_db
@pytest.mark.parametrize("signal, expected", [
    ("signal 9 (SIGKILL)", "killed by the operating system (SIGKILL), most likely for lack of memory (it used "
                           "15,500 MB at its last report, in phase training); lower data.max_length"),
    ("signal 15 (SIGTERM)", "stopped (Worker exited prematurely: signal 15 (SIGTERM) Job: 0.); retry the run"),
])
def test_a_worker_killed_under_a_run_fails_it_with_the_cause(signal, expected):
    from billiard.einfo import ExceptionInfo
    from billiard.exceptions import WorkerLostError

    from training.models import TrainingRun

    # given a running run whose worker last reported 15.5 GB
    run = TrainingRun.objects.create(kind="dpo", base_model="x", status="running",
                                     progress={"phase": "training", "rss_mb": 15500})  # fmt: skip
    # when the pool reports its process lost, as Celery's main process does
    try:
        raise WorkerLostError(f"Worker exited prematurely: {signal} Job: 0.")
    except WorkerLostError:
        _request_for_run(run.pk).on_failure(ExceptionInfo())
    # then the run failed, saying why and what to change
    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at is not None
    assert expected in run.error, run.error
    assert json.dumps(run.progress)  # untouched


@pytest.mark.parametrize("data, message", [
    ({"training": {"batch_size": 8, "micro_batch_size": 3}}, "a multiple of training.micro_batch_size"),
    ({"training": {"batch_size": 4, "micro_batch_size": 8}}, "micro_batch_size must be between 1 and"),
    ({"data": {"max_length": 64, "max_prompt_length": 64}}, "max_prompt_length must be at least 1 and below"),
])
def test_memory_settings_are_checked_naming_the_field(data, message):
    from training.recipes import RecipeError, TrainingRecipe

    with pytest.raises(RecipeError, match=message):
        TrainingRecipe.from_dict(data)


def test_micro_batches_default_to_one_pair_on_a_cpu_and_the_whole_batch_on_a_gpu():
    from training.recipes import TrainingRecipe

    settings = TrainingRecipe.from_dict({"training": {"batch_size": 8, "gradient_accumulation_steps": 2}}).training
    assert (settings.micro_batch("cpu"), settings.accumulation("cpu")) == (1, 16)
    assert (settings.micro_batch("cuda"), settings.accumulation("cuda")) == (8, 2)
