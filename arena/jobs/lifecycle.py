"""The only functions that change a job's state, for every kind of job.

Each change is one conditional UPDATE (`... WHERE status = 'queued'`), so two workers, a
worker and the sweep, or a worker and a person pressing "cancel" never both win: whoever
updates first decides, the other sees 0 rows changed.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import traceback
from collections.abc import Callable
from functools import partial

from django.apps import apps
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from arena.errors import InvalidInput
from arena.events import job_finished

from .models import ACTIVE, RETRYABLE, Job, JobStatus

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 20_000


class JobCancelled(Exception):
    """Raised by the work between steps when a cancel was requested; `fields` are saved."""

    def __init__(self, **fields):
        super().__init__("cancelled")
        self.fields = fields


class JobFailed(Exception):
    """An expected failure: the job fails with this message (no traceback), `fields` saved."""

    def __init__(self, message: str, **fields):
        super().__init__(message)
        self.message = message
        self.fields = fields


def job_models() -> list[type[Job]]:
    return [model for model in apps.get_models() if issubclass(model, Job)]


def this_worker(hostname: str | None = None) -> str:
    """The Celery worker's name (`long@host`) when known, with this process's pid."""
    return f"{hostname or socket.gethostname()} pid {os.getpid()}"


# --- claim and finish -----------------------------------------------------------------------


def claim(model: type[Job], job_id, worker: str, attempt: int | None = None) -> Job | None:
    """Take a queued job for `worker`; None when it is not queued (any more) or, with
    `attempt`, when the message belongs to an earlier attempt than the job's."""
    now = timezone.now()
    queued = model.objects.filter(pk=job_id, status=JobStatus.QUEUED, cancel_requested=False)
    if attempt is not None:
        queued = queued.filter(attempts=attempt)
    if not queued.update(status=JobStatus.RUNNING, claimed_by=worker[:200], claimed_at=now, started_at=now,
                         heartbeat_at=now, error=""):  # fmt: skip
        return None
    return model.objects.get(pk=job_id)


def finish(model: type[Job], job_id, status: str, *, only_from=ACTIVE, where: Q | None = None, **fields) -> bool:
    """End a job: the one place every job of every kind ends. False when it had ended already
    (or, with `where`, when that condition no longer holds)."""
    ending = model.objects.filter(pk=job_id, status__in=only_from)
    ended = (ending.filter(where) if where is not None else ending).update(
        status=status, finished_at=timezone.now(), **fields
    )
    if ended:
        transaction.on_commit(partial(job_finished.send, sender=model, job_id=job_id, status=status))
        logger.info("%s %s %s", model._meta.label, job_id, status)
    return bool(ended)


def fail(model: type[Job], job_id, error: str, *, where: Q | None = None, **fields) -> bool:
    return finish(model, job_id, JobStatus.FAILED, where=where, error=error[-MAX_ERROR_CHARS:], **fields)


def current_status(model: type[Job], job_id) -> str:
    return model.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"


# --- the worker's side ------------------------------------------------------------------------


class JobContext:
    """What the work of a job reports through: its heartbeat, its progress, and whether
    someone asked it to stop. Every write is also a heartbeat."""

    def __init__(self, job: Job):
        self.job = job
        self.model = type(job)

    def _update(self, **fields) -> None:
        self.model.objects.filter(pk=self.job.pk).update(heartbeat_at=timezone.now(), **fields)

    def heartbeat(self) -> None:
        self._update()

    def progress(self, phase: str | None = None, done: int | None = None, total: int | None = None,
                 **fields) -> None:
        """Write the phase and done of total (and any of the job's own fields)."""
        values = {name: value for name, value in (("phase", phase), ("done", done), ("total", total))
                  if value is not None}  # fmt: skip
        self._update(**values, **fields)

    def cancel_requested(self) -> bool:
        """A heartbeat, and whether a cancel was asked for: checked between steps."""
        self.heartbeat()
        return self.model.objects.filter(pk=self.job.pk, cancel_requested=True).exists()

    def stop_if_cancelled(self, **fields) -> None:
        if self.cancel_requested():
            raise JobCancelled(**fields)


Work = Callable[[Job, JobContext], dict | None]


def run_job(model: type[Job], job_id, work: Work, *, worker: str, attempt: int | None = None) -> str:
    """Claim the job and run `work(job, context)`; returns the job's final status.

    A job that is not queued is not run: a repeated delivery of its message answers with
    the job's current status and changes nothing. `work` returns the fields to save with
    success, raises JobCancelled or JobFailed to end otherwise; anything else it raises is
    kept with its traceback. A transient database error puts the job back in the queue
    and is raised again, for the task's own retry to claim it.
    """
    job = claim(model, job_id, worker, attempt)
    if job is None:
        return current_status(model, job_id)
    context = JobContext(job)
    try:
        fields = work(job, context) or {}
    except JobCancelled as stop:
        finish(model, job_id, JobStatus.CANCELLED, **stop.fields)
        return JobStatus.CANCELLED
    except JobFailed as failure:
        fail(model, job_id, failure.message, **failure.fields)
        return JobStatus.FAILED
    except OperationalError:
        model.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(status=JobStatus.QUEUED, claimed_by="")
        raise
    except Exception:  # noqa: BLE001 - any failure is kept with its traceback for the page, never lost
        logger.exception("%s %s failed", model._meta.label, job_id)
        fail(model, job_id, traceback.format_exc())
        return JobStatus.FAILED
    finish(model, job_id, JobStatus.SUCCEEDED, **fields)
    return current_status(model, job_id)


def record_worker_lost(model: type[Job], job_id, error: Exception) -> bool:
    """Fail a job whose worker process died under it, saying why; True when one was failed.

    Celery's pool reports the death as WorkerLostError("... signal 9 (SIGKILL) ...") in the
    worker's main process, which stays alive: the job is failed there at once, rather than
    found later by the sweep with nothing more to say than "no heartbeat".
    """
    job = model.objects.filter(pk=job_id, status__in=ACTIVE).first()
    if job is None:
        return False
    found = re.search(r"signal (\d+)(?: \((\w+)\))?", str(error))
    signal = ""
    if found:
        signal = found.group(2) or ("SIGKILL" if found.group(1) == "9" else f"signal {found.group(1)}")
    return fail(model, job_id, job.worker_lost_message(signal, error))


# --- a person's side: cancel and retry ----------------------------------------------------------


def cancel(job: Job) -> Job:
    """A queued job is cancelled at once; a running one stops at its next step."""
    model = type(job)
    if job.is_finished:
        raise InvalidInput(f"{job.noun} {job.pk} has already {job.status}")
    finish(model, job.pk, JobStatus.CANCELLED, only_from=(JobStatus.QUEUED,), cancel_requested=True)
    model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def queue(job: Job) -> None:
    """Queue the job's task (`job.task_name`) once the transaction commits. By name: the
    module that creates a job never imports its task, so the task may import it back."""
    task, pk = import_string(job.task_name), job.pk
    transaction.on_commit(lambda: task.delay(pk))


def retry(job: Job) -> Job:
    """Queue a failed or cancelled job again with the same settings, as its next attempt."""
    model = type(job)
    if not job.can_retry:
        raise InvalidInput(f"{job.noun} {job.pk} is {job.status}; only a failed or cancelled {job.noun} can be retried")
    if refused := job.retry_refused():
        raise InvalidInput(f"{job.noun} {job.pk} cannot be retried: {refused}")
    with transaction.atomic():
        requeued = model.objects.filter(pk=job.pk, status__in=RETRYABLE).update(
            status=JobStatus.QUEUED, attempts=F("attempts") + 1, cancel_requested=False, error="", claimed_by="",
            claimed_at=None, heartbeat_at=None, started_at=None, finished_at=None, phase="", done=0, total=0,
            **job.retry_fields(),
        )  # fmt: skip
        if not requeued:
            raise InvalidInput(f"{job.noun} {job.pk} changed meanwhile; reload and try again")
        job.refresh_from_db()
        task, pk, attempt = import_string(job.task_name), job.pk, job.attempts
        transaction.on_commit(lambda: task.delay(pk, attempt))
    return job


# --- the sweep ----------------------------------------------------------------------------------


def stale_message(job: Job) -> str:
    seen = job.heartbeat_at or job.started_at or job.created_at
    when = timezone.localtime(seen).strftime("%H:%M") if seen else "its start"
    return (f"no heartbeat from worker {job.claimed_by or '(unknown)'} since {when}; the worker stopped. "
            f"Retry the {job.noun} to run it again.")  # fmt: skip


def sweep_stale_jobs(now=None) -> int:
    """Fail every running job whose worker has not beaten within its kind's timeout;
    returns how many. Run by the beat in the worker, never by a page."""
    now = now or timezone.now()
    failed = 0
    for model in job_models():
        limit = now - timezone.timedelta(seconds=model.heartbeat_timeout())
        silent = Q(heartbeat_at__lt=limit) | Q(heartbeat_at__isnull=True, created_at__lt=limit)
        for job in model.objects.filter(silent, status=JobStatus.RUNNING):
            # The same condition again in the UPDATE: a beat that lands meanwhile keeps the job.
            if fail(model, job.pk, stale_message(job), where=silent, only_from=(JobStatus.RUNNING,)):
                failed += 1
    return failed
