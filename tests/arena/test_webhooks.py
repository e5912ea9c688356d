"""Webhooks: deliveries to a real local HTTP server, signed, retried with backoff, logged,
never in the request's way; one delivery per event kind."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

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
