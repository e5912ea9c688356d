"""Training runs: the only functions that write TrainingRun rows.

`check_run_request` validates what a researcher asked for (from the dashboard form, the
API or the `train` command alike) and `do_create_run` queues it; `execute_run` is what the
worker does with it: snapshot the dataset, train through `training.recipes` (TRL), write
progress as it goes, evaluate, and for DPO register the tuned model as a new System that
joins the arena.
"""

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from arena.errors import InvalidInput, NotFound
from arena.jobs import lifecycle
from arena.jobs.lifecycle import JobCancelled, JobContext, JobFailed
from arena.models import Arena, Modality, Provider, System

from .models import RunKind, TrainingRun

logger = logging.getLogger(__name__)

LOSSES = ("sigmoid", "robust", "ipo", "hinge", "cdpo", "weighted")
ADAPTERS = ("auto", "lora", "full")
DEFAULT_FILTERS = {"aggregate": "dawid-skene", "min_confidence": 0.0, "include_ties": False, "source": "human"}


@dataclass
class RunRequest:
    kind: str
    project: object | None = None  # annotation.Project
    arena: Arena | None = None
    base_system: System | None = None
    base_model: str = ""
    loss: str = "sigmoid"
    max_steps: int = 0
    adapter: str = "auto"
    filters: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    method: str = "majority"
    flip_rate: float | None = None


def _base(base: str | None) -> tuple[System | None, str]:
    """A base System (its transformers model) or a model name/folder."""
    if not base:
        return None, settings.TRAINING_DEFAULT_BASE
    system = System.objects.filter(name=base).first()
    if system is None:
        if base == settings.TRAINING_DEFAULT_BASE or Path(base).is_dir():
            return None, base
        raise NotFound(f"no system named {base!r} (give a text system on a transformers model, or a model folder)")
    if system.provider != Provider.TRANSFORMERS or system.modality != Modality.TEXT:
        raise InvalidInput(f"system {base!r} is not a local transformers text model, so it cannot be tuned")
    return system, str(system.provider_config.get("model") or settings.TRAINING_DEFAULT_BASE)


def build_recipe(request: RunRequest) -> dict:
    from training.recipes import RecipeError, TrainingRecipe

    training = dict(request.recipe.get("training", {}))
    if request.kind == RunKind.DPO:
        if request.loss == "weighted":
            # Each pair's loss times the posterior that its label is right (annotation's weights).
            training.setdefault("losses", ["sigmoid"])
            training.setdefault("pair_weighting", "fixed")
        else:
            training.setdefault("losses", [request.loss])
    if request.max_steps:
        training["max_steps"] = request.max_steps
    training.setdefault("method", request.method)
    if request.flip_rate is not None:
        training["flip_rate"] = request.flip_rate
    model = {**request.recipe.get("model", {}), "name_or_path": request.base_model, "adapter": request.adapter}
    try:
        recipe = TrainingRecipe.from_dict({"model": model, "data": request.recipe.get("data", {}), "training": training})
    except RecipeError as exc:
        raise InvalidInput(f"recipe: {exc}") from None
    return recipe.to_dict()


def check_run_request(
    *,
    kind: str,
    project: str | None = None,
    arena: str | None = None,
    base: str | None = None,
    loss: str = "sigmoid",
    max_steps: int | None = None,
    adapter: str = "auto",
    filters: dict | None = None,
    recipe: dict | None = None,
    method: str | None = None,
    flip_rate: float | None = None,
) -> RunRequest:
    from annotation.models import Project

    if kind not in RunKind.values:
        raise InvalidInput(f"kind must be one of {', '.join(RunKind.values)}; got {kind!r}")
    if bool(project) == bool(arena):
        raise InvalidInput("choose exactly one data source: a project or an arena")
    if loss not in LOSSES:
        raise InvalidInput(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    if kind == RunKind.REWARD and loss not in ("sigmoid", "weighted"):
        raise InvalidInput(f"loss {loss!r} is a DPO loss; a reward model trains with the Bradley-Terry loss")
    if adapter not in ADAPTERS:
        raise InvalidInput(f"adapter must be one of {', '.join(ADAPTERS)}; got {adapter!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 0):
        raise InvalidInput("max_steps must be a non-negative whole number")
    filters = {**DEFAULT_FILTERS, **(filters or {})}
    unknown = set(filters) - set(DEFAULT_FILTERS)
    if unknown:
        raise InvalidInput(f"unknown data filters: {', '.join(sorted(unknown))}")
    method = _check_method(kind, method or (recipe or {}).get("training", {}).get("method") or "majority",
                           loss, filters, flip_rate)
    request = RunRequest(kind=kind, loss=loss, max_steps=max_steps or 0, adapter=adapter, filters=filters,
                         recipe=recipe or {}, method=method, flip_rate=flip_rate)  # fmt: skip
    if project:
        request.project = Project.objects.filter(name=project).first()
        if request.project is None:
            raise NotFound(f"no project named {project!r}")
    else:
        request.arena = Arena.objects.filter(name=arena).first()
        if request.arena is None:
            raise NotFound(f"no arena named {arena!r}")
    request.base_system, request.base_model = _base(base)
    request.recipe = build_recipe(request)
    return request


def _check_method(kind: str, method: str, loss: str, filters: dict, flip_rate: float | None) -> str:
    """The training method (training.recipes.noise.METHODS), checked against the rest."""
    from training.recipes.noise import MethodError, check_method

    try:
        check_method(method, kind)
    except MethodError as exc:
        raise InvalidInput(str(exc)) from None
    if method != "majority" and filters["aggregate"] == "none":
        raise InvalidInput(f"method {method!r} needs each comparison's judgments together; "
                           "choose the dawid-skene or majority aggregation, not none")
    if method == "soft" and filters["aggregate"] != "dawid-skene":
        raise InvalidInput("method 'soft' learns Dawid-Skene's posterior; choose the dawid-skene aggregation")
    if method in ("soft", "rdpo", "em") and loss not in ("sigmoid",):
        raise InvalidInput(f"method {method!r} sets the loss itself; leave loss at sigmoid (got {loss!r})")
    if flip_rate is not None:
        if method != "rdpo":
            raise InvalidInput(f"flip_rate is rDPO's; it does not apply to method {method!r}")
        if isinstance(flip_rate, bool) or not 0.0 <= flip_rate < 0.5:
            raise InvalidInput(f"flip_rate must be in [0, 0.5); got {flip_rate!r}")
    return method


def do_create_run(request: RunRequest, user=None, *, queue: bool = True) -> TrainingRun:
    """`queue=False` leaves the run for the caller to execute itself (`train --here`)."""
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=request.kind, project=request.project, arena=request.arena, data_filters=request.filters,
            base_system=request.base_system, base_model=request.base_model, loss=request.loss,
            recipe=request.recipe, created_by=user if user is not None and user.is_authenticated else None,
        )  # fmt: skip
        if queue:
            lifecycle.queue(run)
    return run


def do_cancel_run(run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step."""
    return lifecycle.cancel(run)


def do_retry_run(run: TrainingRun) -> TrainingRun:
    """A failed or cancelled run queued again with the same settings, as its next attempt."""
    return lifecycle.retry(run)


# --- the worker side ------------------------------------------------------------------------


def run_dir(run: TrainingRun) -> Path:
    return Path(settings.TRAINING_RUNS_DIR) / f"run-{run.pk}"


def snapshot_dataset(run: TrainingRun) -> tuple[Path, list[dict]]:
    """Write the run's training pairs (annotation's TRL export) next to its outputs, so the
    run can be reproduced and the data exported as it was."""
    from annotation.export.service import ExportOptions, export_dataset

    path = run_dir(run) / "dataset.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    options = ExportOptions(
        output=str(path), format="trl",
        project=run.project.name if run.project_id else None,
        arena=run.arena.name if run.arena_id else None,
        **run.data_filters,
    )  # fmt: skip
    result = export_dataset(options)
    from .selection import keep_text_pairs  # text training learns from text pairs only

    rows = keep_text_pairs(result)
    if run.data_filters.get("aggregate") != "none":
        from .datasets import add_judgments, write_rows  # every judgment, for the training methods

        rows = add_judgments(rows, project=options.project, arena=options.arena, filters=run.data_filters)
        write_rows(Path(result.path), rows)
    return Path(result.path), rows


def execute_run(run_id: int, attempt: int | None = None, worker: str | None = None) -> str:
    """Run a queued training job to its end; returns the final status. A run that is not
    queued (a repeated delivery, a cancelled run) is left as it is."""
    return lifecycle.run_job(TrainingRun, run_id, train_run, worker=worker or lifecycle.this_worker(),
                             attempt=attempt)  # fmt: skip


def train_run(run: TrainingRun, job: JobContext) -> dict:
    from training.recipes import TrainingRecipe, train_dpo, train_reward_model

    from .jobs import RunProgress

    progress = RunProgress(run.pk)  # phases, steps and the heartbeat, in run.progress
    progress.phase("dataset")
    dataset_path, pairs = snapshot_dataset(run)
    TrainingRun.objects.filter(pk=run.pk).update(n_pairs=len(pairs), artifacts={"dataset": str(dataset_path)})
    progress.phase("dataset", len(pairs), len(pairs))
    if len(pairs) < 2:
        raise JobFailed(f"the data source has {len(pairs)} decided pair(s); at least 2 are needed to train")

    recipe = TrainingRecipe.from_dict(run.recipe)
    processes = recipe.model.processes or settings.TRAINING_PROCESSES
    if processes > 1:
        from training.recipes.distributed import launch

        result = launch(run.kind, pairs, recipe, run_dir(run), processes, on_progress=progress.step,
                        should_stop=job.cancel_requested, on_phase=progress.phase)  # fmt: skip
    else:
        train = train_dpo if run.kind == RunKind.DPO else train_reward_model
        result = train(pairs, recipe, run_dir(run), on_progress=progress.step, should_stop=job.cancel_requested,
                       on_phase=progress.phase)  # fmt: skip
    artifacts = {"dataset": str(dataset_path), "output_dir": result.output_dir, "model_dir": result.model_dir,
                 "merged_dir": result.merged_dir}  # fmt: skip
    if result.cancelled:
        raise JobCancelled(artifacts=artifacts, metrics=_metrics(result))
    produced = None
    if run.kind == RunKind.DPO and result.merged_dir:
        progress.phase("registering")
        produced = register_tuned_system(run, store_model(run, result.merged_dir))
    elif run.kind == RunKind.REWARD and result.merged_dir:
        # A judging worker on any host opens it from the storage (routing.reward), with
        # the dataset snapshot that tells it how the prompts were shaped.
        progress.phase("registering")
        shutil.copyfile(dataset_path, Path(result.merged_dir) / "dataset.jsonl")
        artifacts["model"] = store_model(run, result.merged_dir)
    if produced is not None:
        # The tuned model answers the arena's prompts in the worker, then meets the others.
        from arena.tasks import generate_outputs

        transaction.on_commit(lambda: generate_outputs.delay(produced.pk))
    return {"artifacts": artifacts, "metrics": _metrics(result), "produced_system": produced}


def _metrics(result) -> dict:
    metrics = {
        "steps": result.steps, "total_steps": result.total_steps, "train_loss": result.train_loss,
        "final_loss": result.final_loss, "n_train": result.n_train, "n_validation": result.n_validation,
        "device": result.device, "adapter": result.adapter, "runtime_s": round(result.runtime_s, 2),
        "flip_rate": result.flip_rate, "n_filtered_uncertain": result.n_filtered_uncertain,
    }  # fmt: skip
    if result.reliability:
        metrics["annotator_reliability"] = result.reliability
    if result.metrics is not None:
        held_out = result.metrics.to_dict()
        metrics.update(held_out)
        metrics["heldout_accuracy"] = held_out["preference_accuracy"]
    return metrics


def store_model(run: TrainingRun, model_dir: str) -> str:
    """Copy the tuned model into the storage every host reaches; returns the reference a
    generation worker on any host opens (arena.storage.open_folder)."""
    from arena import storage

    return storage.store_folder(Path(model_dir), f"tuned/run-{run.pk}")


def register_tuned_system(run: TrainingRun, model_dir: str) -> System:
    """The tuned model as a new arena System: named after its base and run, a child of the
    base system, answering with the base's system prompt and sampling. `model_dir`: a
    stored reference (`store_model`), or a local folder."""
    base_config = dict(run.base_system.provider_config) if run.base_system else {}
    base_name = run.base_system.name if run.base_system else Path(run.base_model).name
    name = f"{base_name}+dpo-run{run.pk}"
    system, _ = System.objects.update_or_create(
        name=name,
        defaults={
            "modality": Modality.TEXT, "provider": Provider.TRANSFORMERS,
            "provider_config": {**base_config, "model": model_dir}, "parent": run.base_system,
            "version": f"run-{run.pk}", "description": f"DPO ({run.loss}) on {run.source_name}, run {run.pk}.",
        },
    )  # fmt: skip
    return system
