"""Routing's receiver of `arena.events.judgment_recorded`.

A person's judgment on a project comparison that the project's judge has also judged is a
new label for the judge's calibration (`routing.calibration`), which every later verdict
of that judge on the project goes through before it is written or routed. Until now the
calibration was refitted only when routing ran again, so a project whose people kept
judging the items sent to them kept routing with the calibration of its first run. The
receiver queues a refit (`routing.tasks.recalibrate_judge`, judging lane), at most one
per project and judge every RECALIBRATE_DEBOUNCE_SECONDS window, counted where the rate
limits count (shared by every process and host): judgments in a burst are all in
the refit that follows it.
"""

from __future__ import annotations

import logging
import time

from arena import ratelimit
from arena.models import Judgment

from .models import ProjectRouting

logger = logging.getLogger(__name__)

RECALIBRATE_DEBOUNCE_SECONDS = 30


def recalibrate_after_human_judgments(sender, judgments, **kwargs) -> list[tuple[int, int]]:
    """Queue the refits these judgments call for; returns the (project, judge) pairs queued."""
    by_project: dict[int, set[int]] = {}
    for judgment in judgments:
        project_id = judgment.metadata.get("project")
        if project_id is not None and judgment.judge.is_human:
            by_project.setdefault(int(project_id), set()).add(judgment.comparison_id)
    queued = []
    for project_id, comparison_ids in by_project.items():
        judge_id = ProjectRouting.objects.filter(project_id=project_id).values_list("judge_id", flat=True).first()
        if judge_id is None:
            continue
        judged_by_judge = Judgment.objects.filter(
            judge_id=judge_id, comparison_id__in=sorted(comparison_ids), superseded_by__isnull=True
        ).exists()
        if not judged_by_judge:
            continue
        # One refit per window, whichever process or host sees the judgment: the window's
        # count lives where rate limits count (Redis or the database), never in a process.
        window = int(time.time() // RECALIBRATE_DEBOUNCE_SECONDS)
        first = ratelimit.store().hit(f"routing:recalibrate:{project_id}:{judge_id}", window,
                                      (window + 1) * RECALIBRATE_DEBOUNCE_SECONDS) == 1  # fmt: skip
        if not first:
            continue
        from .tasks import recalibrate_judge

        recalibrate_judge.apply_async((project_id, judge_id), countdown=RECALIBRATE_DEBOUNCE_SECONDS)
        queued.append((project_id, judge_id))
    return queued
