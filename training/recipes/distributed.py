"""Data-parallel runs: N processes started with torch.distributed.run, each a TRL trainer.

TRL's trainers run under DDP as they are (accelerate sets it up from torch.distributed.run's
environment): gloo between CPU processes, NCCL between GPUs (``Runtime.trainer_kwargs``). Each
process takes ``batch_size / processes`` pairs of every optimiser step, so a step still sees
``training.batch_size`` pairs. Rank 0 evaluates, saves and reports; the others only train.

The caller (the training worker) stays one process outside the group: ``launch`` writes the
pairs and the recipe to ``<output_dir>/launch/``, starts the group, relays rank 0's phases and
steps (JSON lines on its stdout) to ``on_phase`` / ``on_progress``, and asks for a stop by
creating ``launch/stop``, which rank 0 reads and broadcasts after each step so that every
process stops at the same one. Nothing here imports Django: the worker records progress and
registers the tuned model, once, from the result rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .config import TrainingRecipe
from .results import Progress, TrainResult

EVENT_PREFIX = "duet-event "
REPO = Path(__file__).resolve().parents[2]


class DistributedRunError(RuntimeError):
    """A process of the group failed; the message ends with the tail of the group's log."""


def launch(kind: str, pairs: Sequence[Mapping], recipe: TrainingRecipe, output_dir: str | Path, processes: int,
           *, on_progress: Callable[[Progress], None] | None = None,
           should_stop: Callable[[], bool] | None = None,
           on_phase: Callable[[str, int, int], None] | None = None) -> TrainResult:
    """Train ``kind`` ("dpo" or "reward") on ``processes`` processes; returns rank 0's result."""
    from .runtime import model_directory, select_runtime

    if processes < 2:
        raise ValueError("launch is for two processes or more; call train_dpo / train_reward_model directly")
    # A batch the processes cannot share is refused here, not a minute later in each of them.
    dataclasses.replace(select_runtime(recipe.model), processes=processes).accumulation(recipe.training)
    control = Path(output_dir) / "launch"
    control.mkdir(parents=True, exist_ok=True)
    (control / "pairs.json").write_text(json.dumps([dict(pair) for pair in pairs]))
    stored = recipe.to_dict()
    # Resolved here, where Django's settings say where the default model's converted copy is.
    stored["model"]["name_or_path"] = str(model_directory(recipe.model.name_or_path))
    (control / "recipe.json").write_text(json.dumps(stored))
    (control / "stop").unlink(missing_ok=True)
    (control / "result.json").unlink(missing_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "training.recipes.distributed", kind, str(Path(output_dir).resolve())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(control / "log.txt", "w") as log:
        group = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO, env=env)
        for line in group.stdout:
            if line.startswith(EVENT_PREFIX):
                _relay(json.loads(line[len(EVENT_PREFIX):]), control, on_progress, should_stop, on_phase)
        returncode = group.wait()
    if returncode or not (control / "result.json").is_file():
        tail = (control / "log.txt").read_text()[-6000:]
        raise DistributedRunError(f"the {processes}-process {kind} run failed (exit {returncode}):\n{tail}")
    return result_from_dict(json.loads((control / "result.json").read_text()))


def _relay(event: dict, control: Path, on_progress, should_stop, on_phase) -> None:
    if "phase" in event and on_phase is not None:
        on_phase(*event["phase"])
    if "step" in event:
        if on_progress is not None:
            on_progress(Progress(**event["step"]))
        if should_stop is not None and should_stop():
            (control / "stop").touch()


def result_from_dict(stored: dict) -> TrainResult:
    from .evaluation import PreferenceMetrics

    metrics = stored.pop("metrics", None)
    return TrainResult(**stored, metrics=PreferenceMetrics(**metrics) if metrics else None)


# --- inside each process of the group -----------------------------------------------------------


class StopSignal:
    """``should_stop`` for every process: rank 0 looks for the stop file, and all processes
    receive its answer (a collective, called by each after the same optimiser step)."""

    def __init__(self, stop_file: Path, rank: int):
        self.stop_file = stop_file
        self.rank = rank

    def __call__(self) -> bool:
        import torch
        import torch.distributed as dist

        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([self.rank == 0 and self.stop_file.exists()], dtype=torch.int32, device=device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())


def _emit(event: dict) -> None:
    print(EVENT_PREFIX + json.dumps(event), flush=True)


def main(kind: str, output_dir: str) -> None:
    from .dpo import train_dpo
    from .reward import train_reward_model

    control = Path(output_dir) / "launch"
    pairs = json.loads((control / "pairs.json").read_text())
    recipe = TrainingRecipe.from_dict(json.loads((control / "recipe.json").read_text()))
    rank = int(os.environ["RANK"])
    main_process = rank == 0
    train = train_dpo if kind == "dpo" else train_reward_model
    result = train(
        pairs, recipe, output_dir, should_stop=StopSignal(control / "stop", rank),
        on_progress=(lambda progress: _emit({"step": vars(progress)})) if main_process else None,
        on_phase=(lambda *phase: _emit({"phase": phase})) if main_process else None,
    )
    if main_process:
        (control / "result.json").write_text(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main(*sys.argv[1:])
