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
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from arena.models import HUMAN_JUDGE_KINDS, JudgeKind, Judgment, Verdict

from .export.selection import Selection, assess_selection, quality_dict
from .models import Project, ProjectItem, ProjectMembership
from .quality import ReliabilityThresholds

# The same permission as exports: the dashboard shows every annotator's judgments.
DASHBOARD_PERMISSION = "arena.view_judgment"
VERDICT_LABELS = dict(Verdict.choices)


@dataclass
class ProjectSummary:
    project: Project
    n_items: int = 0  # regular items (gold and attention checks do not count toward overlap)
    n_done: int = 0  # of those, items with `overlap` current judgments by the project's members
    n_judgments: int = 0  # current judgments by the project's members
    verdicts: dict[str, int] = field(default_factory=dict)  # those judgments per verdict
    # Current judgments that are not the members' work: imported people's, automatic judges'.
    n_imported: int = 0
    n_automatic: int = 0

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


def _by_a_member(project_ref) -> Exists:
    """The judgment in the outer query was given through an account that is a member of
    the project `project_ref` points at: the work the project's progress counts."""
    return Exists(ProjectMembership.objects.filter(project_id=project_ref, user_id=OuterRef("judge__user_id")))


def project_summaries(projects=None) -> list[ProjectSummary]:
    """Progress and verdict counts for each project, in three queries whatever the number
    of projects and items.

    Progress counts the project's own work: current judgments by accounts that are members
    of the project. Imported judgments (people's or a judge's) and automatic judges' are
    counted beside it, never as done.
    """
    projects = list(projects if projects is not None else Project.objects.order_by("name"))
    summaries = {project.pk: ProjectSummary(project) for project in projects}
    # Each member's own latest word on the item: a reviewer's adjudication overrules the
    # label, not the work done, so neither it nor the judgments it supersedes count twice.
    members_per_item = (
        Judgment.objects.filter(judge__kind=JudgeKind.HUMAN, comparison_id=OuterRef("comparison_id"))
        .exclude(superseded_by__judge_id=F("judge_id"))
        .exclude(Q(supersedes__isnull=False) & ~Q(supersedes__judge_id=F("judge_id")))
        .filter(_by_a_member(OuterRef(OuterRef("project_id"))))
        .order_by()
        .values("comparison_id")
        .annotate(n=Count("pk"))
        .values("n")
    )  # fmt: skip
    items = (
        ProjectItem.objects.filter(project__in=summaries, check_kind="")
        .annotate(n_judgments=Coalesce(Subquery(members_per_item, output_field=IntegerField()), 0))
        .values("project_id")
        .annotate(n_items=Count("pk"), n_done=Count("pk", filter=Q(n_judgments__gte=F("project__overlap"))))
        .order_by()
    )
    for row in items:
        summary = summaries[row["project_id"]]
        summary.n_items, summary.n_done = row["n_items"], row["n_done"]
    verdicts = (
        Judgment.objects.filter(superseded_by__isnull=True, comparison__project_items__project__in=summaries)
        .annotate(member=_by_a_member(OuterRef("comparison__project_items__project")))
        .values("comparison__project_items__project", "judge__kind", "member", "verdict")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in verdicts:
        summary = summaries[row["comparison__project_items__project"]]
        kind, n = row["judge__kind"], row["n"]
        if kind == JudgeKind.HUMAN and row["member"]:
            summary.verdicts[row["verdict"]] = summary.verdicts.get(row["verdict"], 0) + n
            summary.n_judgments += n
        elif kind not in HUMAN_JUDGE_KINDS:
            summary.n_automatic += n
        elif kind == JudgeKind.EXTERNAL_HUMAN:
            summary.n_imported += n
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
        raise PermissionDenied("The quality dashboard is for researchers and admins: it shows every annotator's work.")
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
            "min_evidence": ReliabilityThresholds().min_evidence,
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
