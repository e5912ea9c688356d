"""The job lifecycle's contract (arena.jobs), run against every kind of job.

A test class per kind subclasses `JobContract` (as Django's session backends share
`SessionTestsMixin`) and provides these fixtures:

    job        a queued job of its kind that succeeds when run
    task       the kind's Celery task

The contract's own fixtures are who acts on them (a kind whose starters differ overrides
them): `staff`, an API client allowed to start such jobs (a researcher); `outsider`, one
that is not (an annotator); `page`, a logged-in Django test client allowed to start them.

and `api_url(job)` (the job's API address, ending in "/"), `page_url(job)` (the page that
shows it), `page_action(job, action)` (url and form data of its cancel or retry button),
and may override `page_button(job, action)` (what the page shows for that button).
"""

from __future__ import annotations

import pytest
from billiard.exceptions import WorkerLostError
from django.test import Client
from django.utils import timezone

from arena import events
from arena.jobs import lifecycle
from arena.jobs.models import JobStatus


@pytest.fixture
def finished_events():
    """Every `job_finished` sent, as (model, job id, status)."""
    seen = []

    def receiver(sender, job_id, status, **kwargs):
        seen.append((sender, str(job_id), status))

    events.job_finished.connect(receiver, dispatch_uid="tests.job_contract")
    yield seen
    events.job_finished.disconnect(dispatch_uid="tests.job_contract")


def deliver(task, job, attempt=None) -> str:
    """One delivery of the job's message, run as a worker runs it (in this process)."""
    args = [job.pk] if attempt is None else [job.pk, attempt]
    return task.apply(args=args).get()


def reload(job):
    return type(job).objects.get(pk=job.pk)


class JobContract:
    @pytest.fixture
    def staff(self, researcher, client_for):
        return client_for(researcher)

    @pytest.fixture
    def outsider(self, annotator, client_for):
        return client_for(annotator)

    @pytest.fixture
    def page(self, researcher):
        client = Client()
        client.force_login(researcher)
        return client

    def api_url(self, job) -> str:
        raise NotImplementedError

    def page_url(self, job) -> str:
        raise NotImplementedError

    def page_action(self, job, action: str) -> tuple[str, dict]:
        raise NotImplementedError

    def page_button(self, job, action: str) -> str:
        """What the page shows for the button (by default its form's address)."""
        return self.page_action(job, action)[0]

    # --- claim and repeated delivery ----------------------------------------------------------

    def test_a_repeated_delivery_runs_the_job_once(self, job, task, finished_events,
                                                   django_capture_on_commit_callbacks):
        # given a job run to its end by one delivery
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(task, job) == JobStatus.SUCCEEDED
        first = reload(job)
        # when the same message is delivered again
        with django_capture_on_commit_callbacks(execute=True):
            again = deliver(task, job)
        # then it answers with the job's state and runs nothing
        assert again == JobStatus.SUCCEEDED
        second = reload(job)
        assert (second.started_at, second.finished_at, second.attempts) == (first.started_at, first.finished_at, 1)
        assert [status for _, _, status in finished_events] == [JobStatus.SUCCEEDED]

    def test_a_delivery_while_another_worker_runs_it_changes_nothing(self, job, task):
        type(job).objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, claimed_by="long@elsewhere pid 7",
                                                   heartbeat_at=timezone.now())  # fmt: skip
        assert deliver(task, job) == JobStatus.RUNNING
        assert reload(job).claimed_by == "long@elsewhere pid 7"

    def test_a_message_of_an_earlier_attempt_runs_nothing(self, job, task):
        type(job).objects.filter(pk=job.pk).update(attempts=2)
        assert deliver(task, job, attempt=1) == JobStatus.QUEUED
        assert deliver(task, job, attempt=2) == JobStatus.SUCCEEDED

    def test_the_worker_is_recorded_with_its_claim(self, job, task):
        deliver(task, job)
        done = reload(job)
        assert " pid " in done.claimed_by and done.claimed_at and done.heartbeat_at and done.started_at

    # --- cancel ----------------------------------------------------------------------------------

    def test_a_cancelled_queued_job_never_runs(self, job, task, staff):
        response = staff.post(self.api_url(job) + "cancel/")
        assert response.status_code == 200 and response.json()["status"] == JobStatus.CANCELLED
        assert deliver(task, job) == JobStatus.CANCELLED
        assert reload(job).started_at is None
        again = staff.post(self.api_url(job) + "cancel/")
        assert again.status_code == 400 and "already cancelled" in again.json()["detail"]

    def test_cancel_stops_a_running_job_between_steps(self, job, task, monkeypatch):
        # given a person who presses "cancel" as soon as the job reports its first step
        heartbeat = lifecycle.JobContext.heartbeat

        def first_beat_then_cancel(context):
            heartbeat(context)
            current = reload(job)
            if current.status == JobStatus.RUNNING and not current.cancel_requested:
                lifecycle.cancel(current)

        monkeypatch.setattr(lifecycle.JobContext, "heartbeat", first_beat_then_cancel)
        # when the job runs
        assert deliver(task, job) == JobStatus.CANCELLED
        # then it stopped at the next check, before its end
        stopped = reload(job)
        assert stopped.status == JobStatus.CANCELLED and stopped.finished_at and stopped.cancel_requested
        self.assert_stopped_early(stopped)

    def assert_stopped_early(self, job) -> None:
        assert job.total == 0 or job.done < job.total, (job.done, job.total)

    # --- retry -----------------------------------------------------------------------------------

    def test_retry_from_the_api_requeues_and_succeeds(self, job, task, staff, monkeypatch,
                                                      django_capture_on_commit_callbacks):
        # given a failed job
        lifecycle.fail(type(job), job.pk, "the machine was rebooted")
        sent = []
        monkeypatch.setattr(task, "delay", lambda *args: sent.append(args))
        # when it is retried through the API
        with django_capture_on_commit_callbacks(execute=True):
            response = staff.post(self.api_url(job) + "retry/")
        # then it is queued again as its second attempt, and that attempt's message runs it
        assert response.status_code == 202, response.content
        assert response.json()["status"] == JobStatus.QUEUED and response.json()["attempts"] == 2
        assert sent == [(job.pk, 2)]
        assert reload(job).error == ""
        assert deliver(task, job, attempt=2) == JobStatus.SUCCEEDED
        assert reload(job).attempts == 2

    def test_retry_from_the_page_requeues_and_succeeds(self, job, task, page, monkeypatch,
                                                       django_capture_on_commit_callbacks):
        # given a cancelled job, whose page offers a retry button
        lifecycle.cancel(job)
        url, data = self.page_action(job, "retry")
        assert self.page_button(job, "retry") in page.get(self.page_url(job)).content.decode()
        sent = []
        monkeypatch.setattr(task, "delay", lambda *args: sent.append(args))
        # when the button is pressed
        with django_capture_on_commit_callbacks(execute=True):
            response = page.post(url, data)
        # then the job is queued again and runs to success
        assert response.status_code == 302
        assert reload(job).status == JobStatus.QUEUED and sent == [(job.pk, 2)]
        assert deliver(task, job, attempt=2) == JobStatus.SUCCEEDED

    def test_only_a_failed_or_cancelled_job_is_retried(self, job, staff):
        response = staff.post(self.api_url(job) + "retry/")
        assert response.status_code == 400 and "only a failed or cancelled" in response.json()["detail"]
        assert reload(job).attempts == 1

    def test_people_who_may_not_start_such_jobs_may_not_retry_or_cancel_them(self, job, outsider):
        lifecycle.fail(type(job), job.pk, "boom")
        assert outsider.post(self.api_url(job) + "retry/").status_code == 403
        assert outsider.post(self.api_url(job) + "cancel/").status_code == 403
        assert reload(job).status == JobStatus.FAILED

    # --- a worker that stops --------------------------------------------------------------------

    def test_the_sweep_fails_a_silent_job_and_reading_its_page_does_not(self, job, page, staff, settings):
        # given a job whose worker last beat long ago
        old = timezone.now() - timezone.timedelta(seconds=type(job).heartbeat_timeout() + 60)
        type(job).objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=old, started_at=old,
                                                   claimed_by="long@gone pid 42")  # fmt: skip
        # when people read its page and the API
        assert page.get(self.page_url(job)).status_code == 200
        assert staff.get(self.api_url(job)).status_code == 200
        # then nothing changed: marking it is the sweep's work, in the worker
        assert reload(job).status == JobStatus.RUNNING
        assert lifecycle.sweep_stale_jobs() == 1
        failed = reload(job)
        since = timezone.localtime(old).strftime("%H:%M")
        assert failed.status == JobStatus.FAILED and failed.finished_at
        assert f"no heartbeat from worker long@gone pid 42 since {since}; the worker stopped" in failed.error
        assert lifecycle.sweep_stale_jobs() == 0

    def test_the_sweep_leaves_a_job_that_beats(self, job):
        type(job).objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
        assert lifecycle.sweep_stale_jobs() == 0 and reload(job).status == JobStatus.RUNNING

    def test_a_worker_killed_under_the_job_fails_it_saying_so(self, job):
        type(job).objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
        error = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 3.")
        assert lifecycle.record_worker_lost(type(job), job.pk, error)
        failed = reload(job)
        assert failed.status == JobStatus.FAILED and "killed by the operating system (SIGKILL)" in failed.error
        assert not lifecycle.record_worker_lost(type(job), job.pk, error)  # once
