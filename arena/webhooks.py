"""Webhooks: an admin subscribes a URL to Duet's events; each event becomes a signed JSON
POST, delivered by the worker (long lane, queue `webhooks`), retried with exponential
backoff, every attempt logged with its answer. A request never waits for an endpoint: the
delivery is queued after the event's transaction commits.

    POST <url>
    Content-Type: application/json
    X-Duet-Event: judgment.recorded
    X-Duet-Delivery: <uuid, the same on every retry of one delivery>
    X-Duet-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the webhook's secret>

    {"event": "judgment.recorded", "delivery": "<uuid>", "sent_at": "...", "data": {...}}

A 2xx answer is delivered; anything else (a 4xx, a 5xx, a timeout, a refused connection)
is retried after DUET_WEBHOOK_BACKOFF_SECONDS × 2^(attempt-1) (capped at an hour), up to
DUET_WEBHOOK_MAX_ATTEMPTS attempts, then given up.

The row is the truth, the broker's messages only a nudge: an event never fails because the
broker is down (the delivery is written, its message is not sent, the sweep sends it
later); a worker claims the row for one attempt (`claimed_until`), so a message delivered
twice sends once; and the beat's `sweep_deliveries` (every minute) queues again what was
never queued or whose worker died while sending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import KombuError

from .hotcache import Memo

logger = logging.getLogger(__name__)

JUDGMENT_RECORDED = "judgment.recorded"
PROJECT_COMPLETED = "project.completed"
EXPORT_FINISHED = "export.finished"
TRAINING_RUN_FINISHED = "training_run.finished"
EVENTS = (JUDGMENT_RECORDED, PROJECT_COMPLETED, EXPORT_FINISHED, TRAINING_RUN_FINISHED)
EVENT_CHOICES = [(name, name) for name in EVENTS]

SIGNATURE_HEADER = "X-Duet-Signature"
# Judgments per judgment.recorded delivery: a 10,000-row import is 20 POSTs, not one huge one.
JUDGMENTS_PER_DELIVERY = 500
RESPONSE_EXCERPT = 2000
MAX_BACKOFF_SECONDS = 3600
# A delivery pending or due this long with no worker on it is queued again by the sweep: its
# message was never sent (the broker was down) or was lost. Long enough that a message
# waiting in a busy lane is not doubled every minute; the claim makes a double harmless.
SWEEP_GRACE_SECONDS = 300


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """A URL subscribed to some of Duet's events."""

    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="Event names: " + ", ".join(EVENTS))
    secret = models.CharField(max_length=200, default=new_secret, help_text="Key of the X-Duet-Signature HMAC.")
    active = models.BooleanField(default=True)
    # An annotation project's id, not a foreign key: arena is below annotation and points at
    # nothing above it. Set, only that project's events are sent (judgments made in it,
    # its completion, its exports); events of no project (arena votes) are not.
    project_id = models.PositiveIntegerField(null=True, blank=True, help_text="Only this project's events.")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "arena"
        ordering = ["id"]

    def __str__(self):
        return f"{self.url} ({', '.join(self.events)})"

    def clean(self):
        from django.core.exceptions import ValidationError

        unknown = [name for name in self.events or [] if name not in EVENTS]
        if not isinstance(self.events, list) or not self.events or unknown:
            raise ValidationError({"events": f"choose one or more of {', '.join(EVENTS)}; unknown: {unknown}"})


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, will retry"
    DELIVERED = "delivered", "Delivered"
    GAVE_UP = "gave_up", "Gave up"


class WebhookDelivery(models.Model):
    """One event sent to one webhook, with every attempt's answer in `log`."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=40, choices=EVENT_CHOICES)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The last answer's first characters.")
    error = models.TextField(blank=True)
    # [{"at", "code", "body" or "error", "seconds", "retry_in"}], one per attempt.
    log = models.JSONField(default=list, blank=True)
    next_try = models.DateTimeField(null=True, blank=True)
    # Set while a worker sends it (one attempt); a claim past this time is a dead worker's.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "arena"
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event} → {self.webhook.url}: {self.status}"


# --- queueing ----------------------------------------------------------------------------------

# The active subscriptions, per process: every judgment asks for them, and with none (the
# usual case) that must cost the vote no statement.
_subscriptions: Memo[list] = Memo("webhook subscriptions", invalidated_by=("arena.Webhook",))


def subscribers(event: str) -> list[Webhook]:
    active = _subscriptions.get("active", lambda: list(Webhook.objects.filter(active=True)))
    return [webhook for webhook in active if event in webhook.events]


def queue(event: str, data_for) -> list[WebhookDelivery]:
    """A delivery of `event` to each active subscriber; `data_for(webhook)` is its payload's
    data (None: nothing for that subscriber). The tasks are queued once the deliveries are
    committed. Returns the deliveries."""
    deliveries = []
    for webhook in subscribers(event):
        data = data_for(webhook)
        if data is None:
            continue
        delivery_id = uuid.uuid4()
        payload = {"event": event, "delivery": str(delivery_id), "sent_at": timezone.now().isoformat(), "data": data}
        payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
        deliveries.append(
            WebhookDelivery.objects.create(webhook=webhook, delivery_id=delivery_id, event=event, payload=payload)
        )
    for delivery in deliveries:
        # robust: whatever the send raises is logged, never the event's (a vote's) failure
        transaction.on_commit(lambda pk=delivery.pk: send(pk), robust=True)
    return deliveries


def send(delivery_pk: int, attempt: int | None = None) -> bool:
    """Queue the delivery's task; False when the broker is unreachable (the row waits for
    the sweep). No publish retries: the sweep is the retry, and the event's request must
    not wait for a broker that is down."""
    kwargs = {} if attempt is None else {"attempt": attempt}
    try:
        deliver_webhook.apply_async((delivery_pk,), kwargs, retry=False)
    except (KombuError, OSError) as error:
        logger.warning("webhook delivery %s not queued (the sweep will): %s: %s", delivery_pk,
                       type(error).__name__, error)  # fmt: skip
        return False
    return True


def for_project(project_id, data):
    """`data_for` of an event that belongs to a project (or to none)."""

    def data_for(webhook: Webhook):
        return data if webhook.project_id is None or webhook.project_id == project_id else None

    return data_for


def judgment_data(judgment) -> dict:
    judge = judgment.judge
    return {
        "id": str(judgment.public_id),
        "comparison_id": judgment.comparison_id,
        "judge": {"name": judge.name, "kind": judge.kind, "version": judge.version},
        "verdict": judgment.verdict,
        "confidence": judgment.confidence,
        "aspects": judgment.aspects,
        "rationale": judgment.rationale,
        "time_to_vote_ms": judgment.time_to_vote_ms,
        "project_id": judgment.metadata.get("project"),
        "item_id": judgment.metadata.get("item"),
        "supersedes": str(judgment.supersedes.public_id) if judgment.supersedes_id else None,
        "created_at": judgment.created_at,
    }


def queue_judgments(judgments) -> list[WebhookDelivery]:
    if not subscribers(JUDGMENT_RECORDED):
        return []
    deliveries = []
    for start in range(0, len(judgments), JUDGMENTS_PER_DELIVERY):
        chunk = judgments[start : start + JUDGMENTS_PER_DELIVERY]

        def data_for(webhook, chunk=chunk):
            mine = [j for j in chunk if webhook.project_id is None or j.metadata.get("project") == webhook.project_id]
            return {"judgments": [judgment_data(j) for j in mine]} if mine else None

        deliveries += queue(JUDGMENT_RECORDED, data_for)
    return deliveries


# --- delivering --------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The X-Duet-Signature value of a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute the HMAC of the raw body and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature or "")


def backoff_seconds(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: base × 2^(attempts-1), capped."""
    return min(settings.WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)


def attempt_once(delivery: WebhookDelivery) -> bool:
    """POST the delivery once and log the answer; True when the endpoint answered 2xx."""
    import requests

    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Duet-Webhooks/1",
        "X-Duet-Event": delivery.event,
        "X-Duet-Delivery": str(delivery.delivery_id),
        SIGNATURE_HEADER: sign(delivery.webhook.secret, body),
    }
    started = timezone.now()
    entry = {"at": started.isoformat(), "attempt": delivery.attempts + 1}
    try:
        response = requests.post(delivery.webhook.url, data=body, headers=headers,
                                 timeout=settings.WEBHOOK_TIMEOUT_SECONDS, allow_redirects=False)  # fmt: skip
    except requests.RequestException as error:
        code, answer, failure = None, "", f"{type(error).__name__}: {error}"[:RESPONSE_EXCERPT]
        entry["error"] = failure
    else:
        code, answer, failure = response.status_code, response.text[:RESPONSE_EXCERPT], ""
        entry.update(code=code, body=answer)
    entry["seconds"] = round((timezone.now() - started).total_seconds(), 3)
    ok = code is not None and 200 <= code < 300
    delivery.attempts += 1
    delivery.response_code, delivery.response_body, delivery.error = code, answer, failure
    delivery.log = [*delivery.log, entry]
    delivery.claimed_until = None
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_try = DeliveryStatus.DELIVERED, timezone.now(), None
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status, delivery.next_try = DeliveryStatus.GAVE_UP, None
    else:
        wait = backoff_seconds(delivery.attempts)
        entry["retry_in"] = wait
        delivery.status, delivery.next_try = DeliveryStatus.RETRYING, timezone.now() + timedelta(seconds=wait)
    delivery.save()
    logger.info("webhook delivery %s (%s to %s) attempt %s: %s %s", delivery.pk, delivery.event,
                delivery.webhook.url, delivery.attempts, code or failure, answer[:200])  # fmt: skip
    return ok


def claim_seconds() -> float:
    """How long one attempt may hold a delivery: the request's timeout, with room to spare."""
    return 2 * settings.WEBHOOK_TIMEOUT_SECONDS + 30


def claim(delivery_pk: int, after_attempt: int | None = None, now=None) -> str | None:
    """Take the delivery for one attempt (one conditional UPDATE, so of two workers holding
    the same message one wins); None when taken, else why not: "missing", "delivered",
    "gave_up", "inactive", "claimed" (another worker is sending it) or "not due" (it waits
    for its backoff). `after_attempt`: the message is the retry scheduled after that
    attempt, due whatever the clock says (its countdown was the wait)."""
    now = now or timezone.now()
    open_ = Q(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING))
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    due = Q(next_try__isnull=True) | Q(next_try__lte=now)
    if after_attempt is not None:
        due |= Q(attempts=after_attempt)
    # The delivery's own columns only: with a join Django would UPDATE through a subquery,
    # which PostgreSQL does not check again after waiting for the other worker's row lock.
    if WebhookDelivery.objects.filter(open_ & free & due, pk=delivery_pk).update(
            claimed_until=now + timedelta(seconds=claim_seconds())):  # fmt: skip
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_pk).first()
    if delivery is None:
        return "missing"
    if delivery.status in (DeliveryStatus.DELIVERED, DeliveryStatus.GAVE_UP):
        return delivery.status
    if not delivery.webhook.active:
        return "inactive"
    if delivery.claimed_until and delivery.claimed_until > now:
        return "claimed"
    return "not due"


@shared_task(
    bind=True,
    name="arena.webhooks.deliver_webhook",
    acks_late=True,
    reject_on_worker_lost=True,
    # Retries are counted on the delivery row (attempts), not by Celery: a redelivered
    # message claims the row and goes on from there.
    max_retries=None,
)
def deliver_webhook(self, delivery_pk: int, attempt: int | None = None) -> str:
    refused = claim(delivery_pk, after_attempt=attempt)
    if refused is not None:
        return refused
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_pk)
    if not delivery.webhook.active:
        WebhookDelivery.objects.filter(pk=delivery_pk).update(claimed_until=None)
        return "inactive"
    if attempt_once(delivery):
        return DeliveryStatus.DELIVERED
    if delivery.status == DeliveryStatus.GAVE_UP:
        return DeliveryStatus.GAVE_UP
    raise self.retry(args=(delivery_pk,), kwargs={"attempt": delivery.attempts},
                     countdown=backoff_seconds(delivery.attempts))  # fmt: skip


def sweep_deliveries(now=None) -> int:
    """Queue again every open delivery no worker is on: claimed by a worker that died (its
    claim expired), or never queued or lost (pending, or due, for SWEEP_GRACE_SECONDS).
    Returns how many. Each is marked due now, so the next sweeps leave it a grace period."""
    now = now or timezone.now()
    late = now - timedelta(seconds=SWEEP_GRACE_SECONDS)
    unclaimed = Q(claimed_until__isnull=True) & (
        Q(next_try__isnull=True, created_at__lte=late) | Q(next_try__lte=late))
    expired = Q(claimed_until__lte=now)
    stuck = WebhookDelivery.objects.filter(unclaimed | expired, webhook__active=True,
                                           status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING))  # fmt: skip
    queued = 0
    for pk in list(stuck.values_list("pk", flat=True)[:1000]):
        # The same condition again: a worker that claimed it meanwhile keeps it.
        if WebhookDelivery.objects.filter(unclaimed | expired, pk=pk).update(claimed_until=None, next_try=now):
            queued += send(pk)
    return queued


@shared_task(name="arena.webhooks.sweep_deliveries", acks_late=True, expires=120)
def sweep_deliveries_task() -> int:
    """Every minute on the beat (config/celery.py)."""
    return sweep_deliveries()
