"""The arena's receivers of `arena.events`, connected in `ArenaConfig.ready`: the board's
refresh after judgments with battles, and webhook deliveries for every event. They run
after the event's transaction has committed (the events are sent on commit)."""

from __future__ import annotations

from . import webhooks
from .board.snapshots import request_refresh_after_vote


def refresh_board(sender, judgments, battles, **kwargs) -> None:
    """One debounced refresh request per arena that got battles (`request_refresh_after_vote`)."""
    for arena in {battle.arena_id: battle.arena for battle in battles}.values():
        request_refresh_after_vote(arena)


def webhook_judgments(sender, judgments, **kwargs) -> None:
    webhooks.queue_judgments(judgments)


def webhook_project_completed(sender, project_id, name, **kwargs) -> None:
    webhooks.queue(webhooks.PROJECT_COMPLETED, webhooks.for_project(project_id, {"project": {
        "id": project_id, "name": name}}))  # fmt: skip


def webhook_export_finished(sender, job_id, result, project_id=None, **kwargs) -> None:
    webhooks.queue(webhooks.EXPORT_FINISHED, webhooks.for_project(project_id, {"job": job_id, "project_id": project_id,
                                                                            "result": result}))  # fmt: skip


def webhook_training_run_finished(sender, run_id, status, kind, project_id=None, **kwargs) -> None:
    webhooks.queue(webhooks.TRAINING_RUN_FINISHED, webhooks.for_project(project_id, {"run": {
        "id": run_id, "status": status, "kind": kind, "project_id": project_id}}))  # fmt: skip


def connect() -> None:
    from . import events

    events.judgment_recorded.connect(refresh_board, dispatch_uid="duet.arena.refresh_board")
    events.judgment_recorded.connect(webhook_judgments, dispatch_uid="duet.arena.webhook_judgments")
    events.project_completed.connect(webhook_project_completed, dispatch_uid="duet.arena.webhook_project_completed")
    events.export_finished.connect(webhook_export_finished, dispatch_uid="duet.arena.webhook_export_finished")
    events.training_run_finished.connect(webhook_training_run_finished,
                                         dispatch_uid="duet.arena.webhook_training_run_finished")  # fmt: skip
