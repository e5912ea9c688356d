"""The abstract job: what every kind of long job records, and the states it goes through.

    queued ──claim──> running ──> succeeded | failed | cancelled
       └──cancel──> cancelled            failed | cancelled ──retry──> queued (attempt + 1)

Fields only, plus the few class attributes a kind states about itself; every write goes
through `arena.jobs.lifecycle`.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """A job run by one worker at a time.

    A kind of job states, as class attributes:
        task_name   the Celery task (dotted path) that runs it, called as task(pk, attempt)
        noun        how pages and messages name one ("run", "judging job", "export")
    and may override `heartbeat_timeout`, `retry_fields`, `retry_refused` and `worker_lost_message`.
    """

    task_name: ClassVar[str] = ""
    noun: ClassVar[str] = "job"

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=1, help_text="1 for the first run; a retry adds one.")
    claimed_by = models.CharField(max_length=200, blank=True, help_text="The worker (host and pid) running it.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Where the job is and how far: `done` of `total` items of the current phase (0 of 0: not counted).
    phase = models.CharField(max_length=40, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def can_retry(self) -> bool:
        return self.status in RETRYABLE

    @property
    def fraction(self) -> float:
        if self.status == JobStatus.SUCCEEDED:
            return 1.0
        return self.done / self.total if self.total else 0.0

    # --- what a kind of job may override ------------------------------------------------------

    @classmethod
    def heartbeat_timeout(cls) -> float:
        """Seconds without a heartbeat after which a running job's worker is taken for dead."""
        return float(settings.JOB_HEARTBEAT_TIMEOUT_SECONDS)

    def retry_fields(self) -> dict:
        """Fields a retry resets besides the lifecycle's own (results of the last attempt)."""
        return {}

    def retry_refused(self) -> str:
        """Why this failed or cancelled job cannot run again ("" when it can), e.g. its input
        is no longer kept."""
        return ""

    def worker_lost_message(self, signal: str, error: Exception) -> str:
        """The error recorded when the worker process died under the job (`signal` is e.g.
        "SIGKILL", or "" when Celery did not say)."""
        if signal == "SIGKILL":
            return (f"the worker running this {self.noun} was killed by the operating system (SIGKILL), most "
                    f"likely for lack of memory; retry it when the machine has more free")  # fmt: skip
        return f"the worker running this {self.noun} stopped ({error}); retry it"
