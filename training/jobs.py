"""The worker's record of a training run while it runs: its phase and progress, and what the
run says when the operating system kills the worker under it.

``run.progress`` always holds these keys (the run page reads them)::

    {"phase": "dataset" | "loading" | "reference" | "training" | "evaluation" | "saving" | "registering",
     "phase_done": int, "phase_total": int,   # pairs, or optimiser steps in "training"; 0 of 0: not counted
     "step": int, "total_steps": int, "loss": float | None,
     "rss_mb": int,                           # the worker's resident memory at the last write
     "worker": {"host": str, "pid": int}}
"""

from __future__ import annotations

import os
import socket
import time

from django.utils import timezone

from .models import TrainingRun

PHASES = ("dataset", "loading", "reference", "training", "evaluation", "saving", "registering")
# Progress within a phase is written at most this often (a GPU's reference batches take
# milliseconds); a new phase, a phase's last item and every optimiser step are always written.
WRITE_INTERVAL_S = 1.0
def resident_mb() -> int:
    import psutil

    return psutil.Process().memory_info().rss // 2**20


class RunProgress:
    """Writes a run's progress (and heartbeat) as the worker goes through its phases."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.history: list[dict] = []
        self.state = {
            "phase": "", "phase_done": 0, "phase_total": 0, "step": 0, "total_steps": 0, "loss": None,
            "rss_mb": 0, "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        }  # fmt: skip
        self._written_at: float | None = None

    def phase(self, name: str, done: int = 0, total: int = 0) -> None:
        """``on_phase`` of the training entry points; the job's own phases too."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        new = name != self.state["phase"]
        self.state.update(phase=name, phase_done=done, phase_total=total)
        self._write(force=new or done >= total)

    def step(self, progress) -> None:
        """``on_progress``: one optimiser step (a ``training.recipes.Progress``)."""
        self.history.append({"step": progress.step, "total_steps": progress.total_steps, "loss": progress.loss,
                             "reward_accuracy": progress.reward_accuracy, "epoch": progress.epoch})  # fmt: skip
        self.state.update(phase="training", phase_done=progress.step, phase_total=progress.total_steps,
                          step=progress.step, total_steps=progress.total_steps, loss=progress.loss)  # fmt: skip
        self._write(force=True, history=True)

    def _write(self, force: bool, history: bool = False) -> None:
        now = time.monotonic()
        if not force and self._written_at is not None and now - self._written_at < WRITE_INTERVAL_S:
            return
        self._written_at = now
        self.state["rss_mb"] = resident_mb()
        # The lifecycle's own phase and done of total, for every kind of job's pages alike.
        fields = {"progress": dict(self.state), "heartbeat_at": timezone.now(), "phase": self.state["phase"],
                  "done": self.state["phase_done"], "total": self.state["phase_total"]}  # fmt: skip
        if history:
            fields["history"] = self.history
        TrainingRun.objects.filter(pk=self.run_id).update(**fields)
