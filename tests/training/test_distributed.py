"""Data-parallel runs: two CPU processes (gloo) against one, and through the worker."""

from __future__ import annotations

import pytest

from arena import storage
from arena.models import System
from tests.training.conftest import TINY_LEARNING_RATE, easy_pairs
from tests.training.test_jobs import request_for, voted_arena  # noqa: F401 - a fixture
from training import actions
from training.recipes import TrainingRecipe, train_dpo
from training.recipes.distributed import launch

# Each process group starts its own Pythons: about a minute per run here.
SLOW = pytest.mark.slow


def _recipe(model_dir, **training) -> TrainingRecipe:
    return TrainingRecipe.from_dict({
        # float32: the comparison is of the arithmetic, not of bf16 rounding
        "model": {"name_or_path": str(model_dir), "adapter": "lora", "device": "cpu", "lora_r": 4,
                  "precision": "fp32"},
        "data": {"validation_fraction": 0.0, "max_length": 32},
        "training": {"batch_size": 4, "learning_rate": TINY_LEARNING_RATE, "warmup_ratio": 0.0, **training},
    })


@SLOW
def test_two_processes_take_the_same_steps_as_one_with_the_same_global_batch(tiny_model_dir, tmp_path):
    # given 16 pairs in 4 steps of 4: one process accumulates 4 micro-batches, two take 2 each
    recipe = _recipe(tiny_model_dir, max_steps=4)
    one, two, phases = [], [], []
    # when the same run goes once on one process and once on two
    alone = train_dpo(easy_pairs(16), recipe, tmp_path / "one", on_progress=one.append)
    shared = launch("dpo", easy_pairs(16), recipe, tmp_path / "two", 2, on_progress=two.append,
                    on_phase=lambda *phase: phases.append(phase))
    # then every step's loss matches, the loss fell, and rank 0 alone reported and saved
    assert [p.step for p in two] == [1, 2, 3, 4]
    assert [p.loss for p in two] == pytest.approx([p.loss for p in one], rel=1e-4)
    assert two[-1].loss < two[0].loss - 0.05
    assert shared.steps == alone.steps == 4 and shared.n_train == 16
    assert [phase for phase in phases if phase[0] == "reference"][-1] == ("reference", 16, 16)
    assert (tmp_path / "two" / "merged" / "config.json").is_file()
    assert (tmp_path / "two" / "adapter" / "adapter_config.json").is_file()


def test_a_batch_the_processes_cannot_share_evenly_is_refused_before_they_start(tiny_model_dir, tmp_path):
    from training.recipes import RecipeError

    with pytest.raises(RecipeError, match=r"batch_size \(3\) must be a multiple of the micro-batch \(1\) times the 2"):
        launch("dpo", easy_pairs(8), _recipe(tiny_model_dir, batch_size=3, max_steps=1), tmp_path, 2)
    assert not (tmp_path / "launch").exists()  # nothing was started


@SLOW
def test_a_two_process_run_through_the_worker_registers_its_model_once(voted_arena, settings):  # noqa: F811
    # given a worker set to two processes per run
    settings.TRAINING_PROCESSES = 2
    run = actions.do_create_run(request_for(voted_arena, recipe={
        "model": {"precision": "fp32"}, "training": {"batch_size": 2},
        "data": {"max_length": 64, "validation_fraction": 0.25}}))
    # when the worker runs it
    assert actions.execute_run(run.pk) == "succeeded", run.error
    run.refresh_from_db()
    # then rank 0's steps, evaluation and model reached the run, and one system was registered
    assert [entry["step"] for entry in run.history] == [1, 2]
    assert run.metrics["heldout_accuracy"] is not None and run.metrics["steps"] == 2
    assert System.objects.filter(name=f"tiny-base+dpo-run{run.pk}").count() == 1
    assert run.produced_system.provider_config["model"] == f"stored:tuned/run-{run.pk}"
    assert storage.storage().exists(f"tuned/run-{run.pk}/config.json")
    assert (actions.run_dir(run) / "launch" / "result.json").is_file()
