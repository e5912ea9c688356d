"""Webhooks: deliveries to a real local HTTP server, signed, retried with backoff, logged,
never in the request's way; one delivery per event kind."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from arena import webhooks
from arena.models import Output, Prompt, System
from arena.webhooks import DeliveryStatus, Webhook, WebhookDelivery, deliver_webhook


class Endpoint(BaseHTTPRequestHandler):
    """Answers each POST with the next status of `server.statuses` (then 200), after
    `server.delay` seconds; keeps what it received."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)
        with self.server.lock:
            self.server.received.append((dict(self.headers), body, time.monotonic()))
            status = self.server.statuses.pop(0) if self.server.statuses else 200
        answer = b"thanks" if status < 300 else b"not today: database is down"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    server.received, server.statuses, server.delay, server.lock = [], [], 0.0, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def queued(monkeypatch):
    """Deliveries queued for the worker (their pks), not sent to a broker."""
    pks = []
    monkeypatch.setattr(deliver_webhook, "apply_async", lambda args, kwargs=None, **options: pks.append(args[0]))
    return pks


def run_worker(pks: list[int]) -> None:
    """What the long lane's worker does with each queued delivery (retries run in place)."""
    while pks:
        deliver_webhook.apply(args=(pks.pop(0),))


@pytest.fixture
def duel(db):
    systems = [System.objects.create(name=f"hook-{i}", modality="text") for i in range(2)]
    prompt = Prompt.objects.create(text="Which is kinder?")
    for system in systems:
        Output.objects.create(system=system, prompt=prompt, text=f"Answer of {system.name}")


def test_a_vote_is_delivered_signed_and_the_request_does_not_wait_for_the_endpoint(
    duel, annotator, client_for, endpoint, queued, django_capture_on_commit_callbacks
):
    # given a subscription to judgments, at an endpoint that takes 3 s to answer
    hook = Webhook.objects.create(url=endpoint.url, events=[webhooks.JUDGMENT_RECORDED], secret="s3cret")
    endpoint.delay = 3.0
    client = client_for(annotator)
    served = client.get("/api/arena/next/?modality=text").json()
    # when a vote is cast
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/arena/vote/", {"token": served["token"], "verdict": "a"}, format="json")
    took = time.monotonic() - started
    # then it is answered before the endpoint could have been: the delivery is only queued
    assert response.status_code in (200, 201), response.content
    assert took < 1.5 and endpoint.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.webhook, delivery.status, queued) == (hook, DeliveryStatus.PENDING, [delivery.pk])
    # when the worker delivers it
    run_worker(queued)
    # then the endpoint got the judgment, signed with the secret over the exact body
    [(headers, body, _)] = endpoint.received
    assert headers["X-Duet-Event"] == "judgment.recorded"
    assert headers["X-Duet-Delivery"] == str(delivery.delivery_id)
    assert webhooks.verify("s3cret", body, headers["X-Duet-Signature"])
    assert not webhooks.verify("another secret", body, headers["X-Duet-Signature"])
    assert not webhooks.verify("s3cret", body + b" ", headers["X-Duet-Signature"])
    payload = json.loads(body)
    [judgment] = payload["data"]["judgments"]
    assert (payload["event"], judgment["verdict"], judgment["judge"]["kind"]) == ("judgment.recorded", "a", "human")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.response_body) == (
        DeliveryStatus.DELIVERED, 1, 200, "thanks")  # fmt: skip


def test_a_failing_endpoint_is_retried_with_backoff_and_every_answer_is_logged(
    db, endpoint, settings, monkeypatch
):
    # given an endpoint that fails twice with a 500, then answers
    settings.WEBHOOK_BACKOFF_SECONDS = 10
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    endpoint.statuses = [500, 500]
    hook = Webhook.objects.create(url=endpoint.url, events=[webhooks.PROJECT_COMPLETED])
    countdowns = []
    retry = deliver_webhook.retry
    monkeypatch.setattr(deliver_webhook, "retry", lambda **kw: (countdowns.append(kw["countdown"]), retry(**kw))[1])
    with transaction.atomic():
        [delivery] = webhooks.queue(webhooks.PROJECT_COMPLETED, lambda webhook: {"project": {"id": 1}})
    # when the worker runs it (Celery runs the retries in place here, without waiting)
    deliver_webhook.apply(args=(delivery.pk,))
    # then three attempts, the waits asked of Celery doubling, each answer kept
    delivery.refresh_from_db()
    assert countdowns == [10, 20]
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.DELIVERED, 3, 200)
    assert [(entry["code"], entry["body"], entry.get("retry_in")) for entry in delivery.log] == [
        (500, "not today: database is down", 10), (500, "not today: database is down", 20), (200, "thanks", None)]
    assert len(endpoint.received) == 3
    assert len({headers["X-Duet-Delivery"] for headers, _, _ in endpoint.received}) == 1  # one delivery, retried
    # and an endpoint that never answers well is given up after the attempts allowed
    endpoint.statuses = [503] * 10
    [again] = webhooks.queue(webhooks.PROJECT_COMPLETED, lambda webhook: {"project": {"id": 1}})
    deliver_webhook.apply(args=(again.pk,))
    again.refresh_from_db()
    assert (again.status, again.attempts, again.next_try) == (DeliveryStatus.GAVE_UP, 5, None)
    assert [entry.get("retry_in") for entry in again.log] == [10, 20, 40, 80, None]
    assert hook.deliveries.count() == 2


def test_an_unreachable_endpoint_is_logged_and_retried(db, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    Webhook.objects.create(url="http://127.0.0.1:9/nothing-listens", events=[webhooks.EXPORT_FINISHED])
    [delivery] = webhooks.queue(webhooks.EXPORT_FINISHED, lambda webhook: {"job": "x"})
    deliver_webhook.apply(args=(delivery.pk,))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.GAVE_UP, 2, None)
    assert "ConnectionError" in delivery.error and all("error" in entry for entry in delivery.log)


def test_each_event_kind_reaches_its_subscribers_only(
    annotator, researcher, endpoint, queued, tmp_path, settings, django_capture_on_commit_callbacks
):
    from annotation import actions as annotation
    from annotation.export import jobs
    from annotation.export_tasks import export_dataset_task
    from tests.routing.test_integration_support import answer_everything, import_rows, scripted_rows
    from training import actions as training
    from training.models import TrainingRun

    # given one subscription to everything, one to judgments of another project only
    everything = Webhook.objects.create(url=endpoint.url, events=list(webhooks.EVENTS))
    project = annotation.create_project(name="hooked", overlap=1, routing_policy="human_only")
    elsewhere = Webhook.objects.create(url=endpoint.url + "/other", events=[webhooks.JUDGMENT_RECORDED],
                                       project_id=project.pk + 1)  # fmt: skip
    annotation.add_member(project, annotator)
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(project, scripted_rows([("a", 0.9, False)]))
        # when a person judges the whole project
        answer_everything(project, annotator, lambda item: "b")
        # and it is exported
        job = jobs.create_job({"format": "trl", "project": "hooked"}, requested_by="researcher")
        export_dataset_task.apply(args=[job.id])
        # and a training run on it ends (one pair is too few: it fails before loading a model)
        run = TrainingRun.objects.create(kind="reward", project=project, base_model="none")
        training.execute_run(run.pk)
    run_worker(queued)
    # then each event was delivered once, as what it is, to the subscriber of everything
    events = [json.loads(body) for _, body, _ in endpoint.received]
    assert [event["event"] for event in events] == [
        "judgment.recorded", "project.completed", "export.finished", "training_run.finished"]
    assert [(j["project_id"], j["verdict"]) for j in events[0]["data"]["judgments"]] == [(project.pk, "b")]
    assert events[1]["data"] == {"project": {"id": project.pk, "name": "hooked"}}
    assert events[2]["data"]["job"] == job.id and events[2]["data"]["project_id"] == project.pk
    assert events[3]["data"]["run"] == {"id": run.pk, "status": "failed", "kind": "reward", "project_id": project.pk}
    assert not elsewhere.deliveries.exists()
    assert set(everything.deliveries.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_admins_manage_webhooks_through_the_api(db, admin_user, researcher, client_for):
    admin, other = client_for(admin_user), client_for(researcher)
    body = {"url": "https://example.org/duet", "events": ["judgment.recorded", "export.finished"]}
    assert other.post("/api/webhooks/", body, format="json").status_code == 403
    created = admin.post("/api/webhooks/", body, format="json")
    assert created.status_code == 201, created.content
    assert len(created.json()["secret"]) >= 32 and created.json()["events"] == body["events"]
    refused = admin.post("/api/webhooks/", {**body, "events": ["judgment.deleted"]}, format="json")
    assert refused.status_code == 400 and "judgment.deleted" in refused.content.decode()
    assert [hook["url"] for hook in admin.get("/api/webhooks/").json()["results"]] == [body["url"]]
    assert admin.get("/api/webhook-deliveries/").status_code == 200
    assert other.get("/api/webhook-deliveries/").status_code == 403


def test_the_admin_lists_webhooks_and_their_deliveries(db, admin_user):
    from django.test import Client

    hook = Webhook.objects.create(url="https://example.org/duet", events=[webhooks.JUDGMENT_RECORDED])
    WebhookDelivery.objects.create(webhook=hook, event=webhooks.JUDGMENT_RECORDED, payload={}, response_code=502)
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/arena/webhookdelivery/").content.decode()
    assert "https://example.org/duet" in listing and "502" in listing
    page = client.get(f"/admin/arena/webhook/{hook.pk}/change/").content.decode()
    assert 'value="judgment.recorded"' in page and "502" in page


def test_judgments_cost_no_statement_for_webhooks_while_none_is_subscribed(db, django_assert_num_queries):
    # The subscriptions are read once per process, and again as soon as one changes.
    webhooks.subscribers(webhooks.JUDGMENT_RECORDED)
    with django_assert_num_queries(0):
        assert webhooks.queue_judgments([object()]) == []
    hook = Webhook.objects.create(url="https://example.org/duet", events=[webhooks.JUDGMENT_RECORDED])
    assert webhooks.subscribers(webhooks.JUDGMENT_RECORDED) == [hook]
    Webhook.objects.filter(pk=hook.pk).update(active=False)  # an update tells no process: the admin saves
    hook.active = False
    hook.save()
    assert webhooks.subscribers(webhooks.JUDGMENT_RECORDED) == []


# --- a broker that is down, a message delivered twice, the sweep ----------------------------------


@pytest.mark.parametrize("error", [
    OperationalError("[Errno 111] Connection refused"),  # what kombu raises for an unreachable broker
    RuntimeError("Acquire on closed pool"),  # anything else: the on_commit is robust
], ids=["broker-refuses", "other-error"])  # fmt: skip
def test_a_vote_succeeds_while_the_broker_is_down_and_the_sweep_sends_its_deliveries_later(
    error, duel, annotator, client_for, endpoint, monkeypatch, django_capture_on_commit_callbacks
):
    # given two subscriptions to judgments and a broker that refuses every message
    hooks = [Webhook.objects.create(url=f"{endpoint.url}/{i}", events=[webhooks.JUDGMENT_RECORDED]) for i in range(2)]
    tried = []

    def broker_down(args, kwargs=None, **options):
        tried.append(args[0])
        raise error

    monkeypatch.setattr(deliver_webhook, "apply_async", broker_down)
    client = client_for(annotator)
    served = client.get("/api/arena/next/?modality=text").json()
    # when a vote is cast
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/arena/vote/", {"token": served["token"], "verdict": "a"}, format="json")
    # then the vote stands, and each delivery is written and was tried, none lost to the other's error
    assert response.status_code in (200, 201), response.content
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [d.webhook for d in deliveries] == hooks and sorted(tried) == [d.pk for d in deliveries]
    assert {(d.status, d.attempts) for d in deliveries} == {(DeliveryStatus.PENDING, 0)}
    # when the broker is back, the sweep leaves them their grace period, then queues them
    queued = []
    monkeypatch.setattr(deliver_webhook, "apply_async", lambda args, kwargs=None, **options: queued.append(args[0]))
    assert webhooks.sweep_deliveries() == 0
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(seconds=webhooks.SWEEP_GRACE_SECONDS + 1))
    assert webhooks.sweep_deliveries() == 2 and sorted(queued) == [d.pk for d in deliveries]
    run_worker(queued)
    # and both endpoints get the vote
    assert sorted(headers["X-Duet-Delivery"] for headers, _, _ in endpoint.received) == sorted(
        str(d.delivery_id) for d in deliveries)  # fmt: skip
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_a_message_delivered_twice_is_posted_once(db, endpoint, monkeypatch):
    # given a delivery whose message the broker hands out twice: the second copy arrives while
    # the first worker is sending it
    Webhook.objects.create(url=endpoint.url, events=[webhooks.PROJECT_COMPLETED])
    [delivery] = webhooks.queue(webhooks.PROJECT_COMPLETED, lambda webhook: {"project": {"id": 1}})
    second = []
    send_once = webhooks.attempt_once

    def duplicate_arrives_meanwhile(row):
        second.append(deliver_webhook.apply(args=(delivery.pk,)).get())
        return send_once(row)

    monkeypatch.setattr(webhooks, "attempt_once", duplicate_arrives_meanwhile)
    # when the first copy runs
    first = deliver_webhook.apply(args=(delivery.pk,)).get()
    # then the copy found it claimed and sent nothing; the endpoint got one POST
    assert (first, second) == (DeliveryStatus.DELIVERED, ["claimed"])
    assert len(endpoint.received) == 1
    # and a copy arriving after it was delivered sends nothing either
    assert deliver_webhook.apply(args=(delivery.pk,)).get() == DeliveryStatus.DELIVERED
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.claimed_until, len(endpoint.received)) == (1, None, 1)


def test_a_stray_message_during_the_backoff_is_not_due_and_the_scheduled_retry_is(db, endpoint, settings):
    # given a delivery that failed once and waits 60 s for its retry
    settings.WEBHOOK_BACKOFF_SECONDS = 60
    Webhook.objects.create(url=endpoint.url, events=[webhooks.PROJECT_COMPLETED])
    [delivery] = webhooks.queue(webhooks.PROJECT_COMPLETED, lambda webhook: {"project": {"id": 1}})
    endpoint.statuses = [500]
    assert webhooks.claim(delivery.pk) is None
    webhooks.attempt_once(WebhookDelivery.objects.get(pk=delivery.pk))
    # when the first message is delivered again meanwhile, it does not send early
    assert deliver_webhook.apply(args=(delivery.pk,)).get() == "not due"
    assert len(endpoint.received) == 1
    # but the retry scheduled after attempt 1 sends (its countdown was the wait), once
    assert deliver_webhook.apply(args=(delivery.pk,), kwargs={"attempt": 1}).get() == DeliveryStatus.DELIVERED
    assert deliver_webhook.apply(args=(delivery.pk,), kwargs={"attempt": 1}).get() == DeliveryStatus.DELIVERED
    assert len(endpoint.received) == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_holding_the_same_message_at_once_post_it_once(endpoint):
    from django.db import connection

    Webhook.objects.create(url=endpoint.url, events=[webhooks.PROJECT_COMPLETED])
    [delivery] = webhooks.queue(webhooks.PROJECT_COMPLETED, lambda webhook: {"project": {"id": 1}})
    endpoint.delay = 0.5  # the first is still sending when the second claims
    outcomes, start = [], threading.Barrier(2)

    def worker():
        start.wait()
        try:
            outcomes.append(deliver_webhook.apply(args=(delivery.pk,)).get())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["claimed", DeliveryStatus.DELIVERED]
    assert len(endpoint.received) == 1


def test_the_sweep_queues_again_only_what_no_worker_holds(db, queued, endpoint):
    # given deliveries in every state, seen 10 minutes after they were made
    hook = Webhook.objects.create(url=endpoint.url, events=[webhooks.PROJECT_COMPLETED])
    off = Webhook.objects.create(url=endpoint.url, events=[webhooks.PROJECT_COMPLETED], active=False)
    now = timezone.now()
    ago = now - timedelta(minutes=10)

    def make(name, webhook=hook, **fields):
        row = WebhookDelivery.objects.create(webhook=webhook, event=webhooks.PROJECT_COMPLETED, payload={"n": name})
        WebhookDelivery.objects.filter(pk=row.pk).update(created_at=ago, **fields)
        return row.pk

    never_queued = make("never queued")
    dead_worker = make("claim expired", claimed_until=now - timedelta(seconds=1))
    lost_retry = make("retry lost", status=DeliveryStatus.RETRYING, attempts=1, next_try=ago)
    make("being sent", claimed_until=now + timedelta(minutes=2))
    make("waiting for its retry", status=DeliveryStatus.RETRYING, attempts=1, next_try=now + timedelta(minutes=5))
    make("retry just due", status=DeliveryStatus.RETRYING, attempts=1, next_try=now - timedelta(seconds=10))
    make("delivered", status=DeliveryStatus.DELIVERED, attempts=1)
    make("gave up", status=DeliveryStatus.GAVE_UP, attempts=6)
    make("inactive webhook", webhook=off)
    WebhookDelivery.objects.create(webhook=hook, event=webhooks.PROJECT_COMPLETED, payload={"n": "just made"})
    # when the sweep runs
    assert webhooks.sweep_deliveries(now=now) == 3
    # then exactly the three no worker holds are queued, each once, and marked due now
    assert sorted(queued) == sorted([never_queued, dead_worker, lost_retry])
    assert set(WebhookDelivery.objects.filter(pk__in=queued).values_list("next_try", "claimed_until")) == {(now, None)}
    # and the next sweeps leave them their grace period
    assert webhooks.sweep_deliveries(now=now + timedelta(seconds=60)) == 0
    # and the worker sends them
    run_worker(queued)
    assert sorted(json.loads(body)["n"] for _, body, _ in endpoint.received) == [
        "claim expired", "never queued", "retry lost"]


def test_the_beat_sweeps_deliveries_every_minute():
    from config.celery import app

    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == "arena.webhooks.sweep_deliveries"]
    assert entry["schedule"] == 60.0
    assert app.amqp.router.route({}, "arena.webhooks.sweep_deliveries")["queue"].name == "webhooks"
