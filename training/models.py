"""Training runs: a reward model or a DPO-family tuning job on a snapshot of judgments.

Fields only; `training.actions` is the only writer, `training.tasks.run_training` the
worker side.
"""

from django.conf import settings
from django.db import models

from arena.jobs.models import FINISHED, Job, JobStatus


class RunKind(models.TextChoices):
    REWARD = "reward", "Reward model (Bradley-Terry)"
    DPO = "dpo", "DPO-family preference tuning"


KILLED_FOR_MEMORY = (
    "the worker running this run was killed by the operating system ({signal}), most likely for lack of "
    "memory{usage}; lower data.max_length (or training.micro_batch_size, if raised) and retry the run"
)


RunStatus = JobStatus  # a run goes through the job lifecycle (arena.jobs)
__all__ = ["FINISHED", "RunKind", "RunStatus", "TrainingRun"]


class TrainingRun(Job):
    """Status, claim, heartbeat, cancel, attempts and timings: `arena.jobs.models.Job`."""

    task_name = "training.tasks.run_training"
    noun = "run"

    kind = models.CharField(max_length=10, choices=RunKind.choices)
    # Data source: one of a project or an arena, and the filters of the dataset built from it
    # (aggregate, min_confidence, include_ties, source) — annotation's export options.
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    arena = models.ForeignKey("arena.Arena", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data_filters = models.JSONField(default=dict, blank=True)
    base_system = models.ForeignKey(
        "arena.System", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    base_model = models.CharField(max_length=500, help_text="Model name or folder the run starts from.")
    loss = models.CharField(max_length=20, blank=True, help_text="As asked for: sigmoid, robust, ipo, hinge, weighted.")
    # training.recipes.TrainingRecipe.to_dict(): model / data / training groups.
    recipe = models.JSONField(default=dict)
    # Live progress, written by the worker on every logged step: step, total_steps, loss,
    # reward_accuracy; `history` keeps every report for the curves.
    progress = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Dataset snapshot, output folders, merged model.
    artifacts = models.JSONField(default=dict, blank=True)
    n_pairs = models.PositiveIntegerField(null=True, blank=True)
    produced_system = models.ForeignKey(
        "arena.System", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_by_runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} run {self.pk}"

    @classmethod
    def heartbeat_timeout(cls) -> float:
        return float(settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS)

    def retry_fields(self) -> dict:
        return {"progress": {}, "history": [], "metrics": {}, "artifacts": {}, "n_pairs": None,
                "produced_system": None}  # fmt: skip

    def worker_lost_message(self, signal: str, error: Exception) -> str:
        """What a run says when its worker process died. Celery's pool reports the death as
        WorkerLostError("... signal 9 (SIGKILL) ..."): the kernel's out-of-memory killer
        sends SIGKILL, so that is reported as lack of memory, with the worker's last
        resident size when one was written."""
        if signal != "SIGKILL":
            return f"the worker running this run stopped ({error}); retry the run"
        last = (self.progress or {}).get("rss_mb")
        usage = f" (it used {last:,} MB at its last report, in phase {self.progress.get('phase')})" if last else ""
        return KILLED_FOR_MEMORY.format(signal=signal, usage=usage)

    @property
    def percent(self) -> int:
        total = self.progress.get("total_steps") or 0
        if self.status == RunStatus.SUCCEEDED:
            return 100
        return int(100 * self.progress.get("step", 0) / total) if total else 0

    @property
    def source_name(self) -> str:
        if self.project_id:
            return f"project {self.project.name}"
        return f"arena {self.arena.name}" if self.arena_id else "—"
