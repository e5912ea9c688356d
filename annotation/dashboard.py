"""The researchers' quality dashboard: every project's progress and verdict distribution,
and for one project its agreement figures and a row per annotator (judgments, speed, gold
accuracy, reliability, agreement, flags).

The view authorises and renders; `project_summaries` and `project_quality` are the
queries, callable from tests and the shell.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from arena.models import HUMAN_JUDGE_KINDS, Judgment, Verdict

from .export.selection import Selection, assess_selection, quality_dict
from .models import Project, ProjectItem, ProjectMembership

# The same permission as exports: the dashboard shows every annotator's judgments.
DASHBOARD_PERMISSION = "arena.view_judgment"
VERDICT_LABELS = dict(Verdict.choices)


@dataclass
class ProjectSummary:
    project: Project
    n_items: int = 0  # regular items (gold and attention checks do not count toward overlap)
    n_done: int = 0  # of those, items with `overlap` current human judgments
    n_judgments: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)  # current human judgments per verdict

    @property
    def progress(self) -> float:
        return self.n_done / self.n_items if self.n_items else 0.0

    @property
    def progress_percent(self) -> float:
        return 100.0 * self.progress

    @property
    def verdict_shares(self) -> list[tuple[str, str, int, float]]:
        """(verdict, label, count, percent) in the model's verdict order, for the bars."""
        total = sum(self.verdicts.values())
        return [
            (verdict, VERDICT_LABELS[verdict], self.verdicts.get(verdict, 0),
             100.0 * self.verdicts.get(verdict, 0) / total if total else 0.0)
            for verdict in Verdict.values
        ]  # fmt: skip


def _current_human(prefix: str = "") -> Q:
    return Q(**{f"{prefix}superseded_by__isnull": True, f"{prefix}judge__kind__in": HUMAN_JUDGE_KINDS})


def project_summaries(projects=None) -> list[ProjectSummary]:
    """Progress and verdict counts for each project, in three queries whatever the number
    of projects and items."""
    projects = list(projects if projects is not None else Project.objects.order_by("name"))
    summaries = {project.pk: ProjectSummary(project) for project in projects}
    judgments_per_item = (
        Judgment.objects.filter(_current_human(), comparison_id=OuterRef("comparison_id"))
        .order_by()
        .values("comparison_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    items = (
        ProjectItem.objects.filter(project__in=summaries, check_kind="")
        .annotate(n_judgments=Coalesce(Subquery(judgments_per_item, output_field=IntegerField()), 0))
        .values("project_id")
        .annotate(n_items=Count("pk"), n_done=Count("pk", filter=Q(n_judgments__gte=F("project__overlap"))))
        .order_by()
    )
    for row in items:
        summary = summaries[row["project_id"]]
        summary.n_items, summary.n_done = row["n_items"], row["n_done"]
    verdicts = (
        Judgment.objects.filter(_current_human(), comparison__project_items__project__in=summaries)
        .values("comparison__project_items__project", "verdict")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in verdicts:
        summary = summaries[row["comparison__project_items__project"]]
        summary.verdicts[row["verdict"]] = row["n"]
        summary.n_judgments += row["n"]
    return [summaries[project.pk] for project in projects]


def project_quality(project: Project, source: str = "human") -> dict:
    """`project_quality`'s figures plus, per annotator, the median time to vote and the
    project's stored quality status (for annotators with an account)."""
    selection = Selection(project=project, source=source)
    report, selected = assess_selection(selection)
    data = quality_dict(selection, report, selected)

    times = defaultdict(list)
    for judge_id, milliseconds in selection.annotator_judgments().exclude(time_to_vote_ms=None).values_list(
        "judge_id", "time_to_vote_ms"
    ).iterator(chunk_size=10_000):
        times[judge_id].append(milliseconds)
    statuses = dict(ProjectMembership.objects.filter(project=project).values_list("user_id", "quality_status"))
    for row, judge in zip(data["annotators"], selected.judges):
        own = times.get(judge.pk)
        row["median_seconds"] = round(float(np.median(own)) / 1000, 1) if own else None
        row["quality_status"] = statuses.get(judge.user_id, "") if judge.user_id else ""
    data["label_distribution_shares"] = _shares(data["label_distribution"])
    return data


def _shares(distribution: dict[str, int]) -> list[tuple[str, str, int, float]]:
    total = sum(distribution.values())
    return [(v, VERDICT_LABELS.get(v, v), n, 100.0 * n / total if total else 0.0) for v, n in distribution.items()]


def dashboard(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        raise PermissionDenied("the quality dashboard is for researchers and admins")
    summaries = project_summaries()
    selected = _selected(summaries, request.GET.get("project"))
    source = request.GET.get("source", "human")
    if source not in ("human", "judge", "all"):
        source = "human"
    quality = project_quality(selected.project, source) if selected else None
    return render(
        request,
        "annotation/dashboard.html",
        {
            "summaries": summaries,
            "selected": selected,
            "quality": quality,
            "source": source,
            "export_url": _url_or_none("annotation:export"),
        },
    )


def _selected(summaries: list[ProjectSummary], wanted: str | None) -> ProjectSummary | None:
    for summary in summaries:
        if str(summary.project.pk) == wanted:
            return summary
    return summaries[0] if summaries else None


def _url_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None
