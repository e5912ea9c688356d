"""The events Duet announces, as Django signals. Defined here, in the lowest app, so that a
higher app sends them and a lower app's receivers (the board, webhooks) hear them without
importing upward; routing (the highest) listens too.

Every event is sent after the transaction that made it true commits (`send_on_commit`), so
a rolled-back write never announces anything.

    judgment_recorded      kwargs: judgments (list[Judgment], saved), battles (list[Battle]:
                           the board's battles written with them). Sent by `arena.judgments`
                           only: once per call of `record_judgment` (one judgment) or of
                           `record_judgments` (the whole batch in one event, so a
                           10,000-row import is one event, not 10,000). A judgment is in
                           exactly one event; a repeated vote that recorded nothing sends none.
    project_completed      kwargs: project_id, name. Sent by annotation when the last
                           regular item of a project reaches its overlap.
    export_finished        kwargs: job_id, result (dict: format, path, counts), project_id.
                           Sent by annotation (`annotation.receivers`) when the job
                           lifecycle's `job_finished` says an export job succeeded.
    training_run_finished  kwargs: run_id, status (succeeded, failed, cancelled), kind,
                           project_id (or None). Sent by training (`training.receivers`)
                           when the job lifecycle's `job_finished` says a run ended.

Webhook event names (`arena.webhooks.EVENTS`) are these with dots: judgment.recorded,
project.completed, export.finished, training_run.finished.

Internal signals, never webhooks: they carry rows and model classes between the apps'
own code, and what outsiders hear of them is the events above.

    job_finished           sender: the job's model (a subclass of `arena.jobs.models.Job`);
                           kwargs: job_id, status. Sent by the job lifecycle
                           (`arena.jobs.lifecycle`) once per job, after the transaction that
                           finished it commits. Heard by `annotation.receivers` and
                           `training.receivers`, which turn it into the two events above.
    items_imported         sender: `annotation.models.Project`; kwargs: project, item_ids.
                           Sent by `annotation.actions` after an import commits, when it
                           created items. Heard by routing (`routing.actions.route_imported_items`),
                           which routes the new items, so annotation never imports routing.
"""

import logging
from functools import partial

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

judgment_recorded = Signal()
project_completed = Signal()
export_finished = Signal()
training_run_finished = Signal()

# --- internal: not webhooks ------------------------------------------------------------------

job_finished = Signal()
items_imported = Signal()


def send_on_commit(signal: Signal, sender, **kwargs) -> None:
    """Send `signal` once the current transaction commits (at once in autocommit)."""
    transaction.on_commit(partial(send, signal, sender, kwargs))


def send(signal: Signal, sender, kwargs: dict) -> None:
    """Send to every receiver; one that fails is logged and the others still run: what was
    committed stands (a vote's answer must not become an error because a webhook could
    not be queued)."""
    for receiver, outcome in signal.send_robust(sender=sender, **kwargs):
        if isinstance(outcome, Exception):
            logger.error("receiver %s of %s failed", getattr(receiver, "__qualname__", receiver), sender,
                         exc_info=(type(outcome), outcome, outcome.__traceback__))  # fmt: skip
