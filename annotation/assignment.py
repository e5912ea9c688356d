"""Read-side of the queue: which items an annotator may be leased, how full an item is,
and progress per project and per annotator. The writes (leases, judgments) are in
`annotation.actions`."""

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Least

from .models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    CheckKind,
    Project,
    ProjectItem,
    ProjectMembership,
    QualityStatus,
    Route,
)

DEFAULT_LEASE_SECONDS = 600


def lease_seconds() -> int:
    return int(getattr(settings, "ANNOTATION_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def _count(queryset) -> Coalesce:
    """A correlated COUNT(*) subquery: usable in filters and ORDER BY of a query that is
    locked with FOR UPDATE, where PostgreSQL refuses GROUP BY."""
    counted = queryset.order_by().values("item").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def taken_count(now, exclude_annotator=None) -> Coalesce:
    """Judgments given plus leases still running, for the item in OuterRef("pk"): the
    slots of its overlap that are spoken for."""
    holding = Assignment.objects.filter(item=OuterRef("pk")).filter(
        Q(status=AssignmentStatus.COMPLETED) | Q(status=AssignmentStatus.LEASED, expires_at__gt=now)
    )
    if exclude_annotator is not None:
        holding = holding.exclude(annotator=exclude_annotator)
    return _count(holding)


def completed_count() -> Coalesce:
    return _count(Assignment.objects.filter(item=OuterRef("pk"), status=AssignmentStatus.COMPLETED))


def queue_items(project: Project):
    """Items that reach human annotators at all."""
    return ProjectItem.objects.filter(project=project, route=Route.HUMAN)


def untouched_by(project: Project, user):
    """Queue items this annotator has not judged, skipped or currently leased (an expired
    lease of theirs does not count: the item may come back to them)."""
    theirs = Assignment.objects.filter(item=OuterRef("pk"), annotator=user).exclude(status=AssignmentStatus.EXPIRED)
    return queue_items(project).exclude(Exists(theirs))


def regular_candidates(project: Project, user, now):
    """Regular items with a free slot, the fullest first so items are finished (and their
    agreement known) before new ones are started."""
    return (
        untouched_by(project, user)
        .filter(check_kind=CheckKind.NONE)
        .annotate(taken=taken_count(now))
        .filter(taken__lt=project.overlap)
        .order_by("-taken", "id")
    )


def check_candidates(project: Project, user):
    return untouched_by(project, user).exclude(check_kind=CheckKind.NONE).order_by("id")


def gold_due(project: Project, user) -> bool:
    """Gold items make up `gold_fraction` of each annotator's answers: one is due while
    the annotator's gold share would stay at or under the fraction after answering it."""
    if project.gold_fraction <= 0:
        return False
    done = Assignment.objects.filter(project=project, annotator=user, status=AssignmentStatus.COMPLETED)
    counts = done.aggregate(total=Count("pk"), checks=Count("pk", filter=~Q(item__check_kind=CheckKind.NONE)))
    return counts["checks"] < project.gold_fraction * (counts["total"] + 1)


def quality_status_for(project: Project, answered: int, correct: int) -> str:
    if answered < max(1, project.gold_min_answers):
        return QualityStatus.OK
    accuracy = correct / answered
    if accuracy < project.gold_block_accuracy:
        return QualityStatus.BLOCKED
    if accuracy < project.gold_warn_accuracy:
        return QualityStatus.WARNED
    return QualityStatus.OK


def quality_warning(project: Project, membership: ProjectMembership) -> str:
    if membership.quality_status == QualityStatus.WARNED:
        return (
            f"Your answers matched {membership.gold_accuracy:.0%} of the check items; this project expects "
            f"at least {project.gold_warn_accuracy:.0%}. Please re-read the guidelines before you continue."
        )
    if membership.quality_status == QualityStatus.BLOCKED:
        return (
            f"Your answers matched {membership.gold_accuracy:.0%} of the check items, below this project's "
            f"minimum of {project.gold_block_accuracy:.0%}, so it serves you no more items. "
            "A researcher can see this and will be in touch."
        )
    return ""


# --- progress -------------------------------------------------------------------------------


def annotator_progress(project: Project, user) -> dict:
    mine = Assignment.objects.filter(project=project, annotator=user)
    counts = mine.aggregate(
        completed=Count("pk", filter=Q(status=AssignmentStatus.COMPLETED)),
        skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
    )
    # Remaining: regular items still short of their overlap that this annotator has not
    # finished or skipped (their current lease counts as remaining).
    finished = Assignment.objects.filter(
        item=OuterRef("pk"), annotator=user, status__in=[AssignmentStatus.COMPLETED, AssignmentStatus.SKIPPED]
    )
    open_items = (
        queue_items(project)
        .filter(check_kind=CheckKind.NONE)
        .exclude(Exists(finished))
        .annotate(done=completed_count())
        .filter(done__lt=project.overlap)
        .count()
    )
    return {"completed": counts["completed"], "skipped": counts["skipped"], "remaining": open_items}


def project_progress(project: Project, now) -> dict:
    items = queue_items(project).filter(check_kind=CheckKind.NONE).annotate(done=completed_count())
    overlap = project.overlap
    summary = items.aggregate(
        items=Count("pk"),
        complete=Count("pk", filter=Q(done__gte=overlap)),
        started=Count("pk", filter=Q(done__gt=0)),
    )
    judgments_done = sum(items.annotate(counted=Least("done", Value(overlap))).values_list("counted", flat=True))
    needed = summary["items"] * overlap
    routes = dict(
        ProjectItem.objects.filter(project=project).values_list("route").annotate(n=Count("pk")).order_by()
    )
    return {
        "items": summary["items"],
        "complete": summary["complete"],
        "started": summary["started"],
        "overlap": overlap,
        "judgments_needed": needed,
        "judgments_done": judgments_done,
        "fraction": (judgments_done / needed) if needed else 0.0,
        "check_items": ProjectItem.objects.filter(project=project).exclude(check_kind=CheckKind.NONE).count(),
        "routes": {route: routes.get(route, 0) for route in Route.values},
        "active_leases": Assignment.objects.filter(
            project=project, status=AssignmentStatus.LEASED, expires_at__gt=now
        ).count(),
        "adjudicated": Adjudication.objects.filter(item__project=project).values("item").distinct().count(),
        "annotators": annotator_rows(project),
    }


def annotator_rows(project: Project) -> list[dict]:
    per_user = {
        row["annotator"]: row
        for row in Assignment.objects.filter(project=project)
        .values("annotator")
        .annotate(
            completed=Count("pk", filter=Q(status=AssignmentStatus.COMPLETED, item__check_kind=CheckKind.NONE)),
            skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
        )
        .order_by()
    }
    rows = []
    for membership in project.memberships.select_related("user"):
        stats = per_user.get(membership.user_id, {})
        rows.append(
            {
                "user_id": membership.user_id,
                "username": membership.user.get_username(),
                "role": membership.role,
                "completed": stats.get("completed", 0),
                "skipped": stats.get("skipped", 0),
                "gold_answered": membership.gold_answered,
                "gold_correct": membership.gold_correct,
                "gold_accuracy": membership.gold_accuracy,
                "quality_status": membership.quality_status,
                "flagged_at": membership.flagged_at,
            }
        )
    return rows


# --- review ---------------------------------------------------------------------------------


def live_human_judgments(project: Project):
    """The human judgments of a project that nothing supersedes (corrections included)."""
    from arena.models import HUMAN_JUDGE_KINDS, Judgment

    return Judgment.objects.filter(
        comparison__project_items__project=project,
        superseded_by__isnull=True,
        judge__kind__in=HUMAN_JUDGE_KINDS,
    )


def conflicting_item_ids(project: Project) -> list[int]:
    """Items whose live human judgments disagree, in item order."""
    verdicts: dict[int, set] = {}
    for comparison_id, verdict in live_human_judgments(project).values_list("comparison_id", "verdict"):
        verdicts.setdefault(comparison_id, set()).add(verdict)
    conflicted = [comparison_id for comparison_id, seen in verdicts.items() if len(seen) > 1]
    items = ProjectItem.objects.filter(project=project, comparison_id__in=conflicted).order_by("id")
    return list(items.values_list("id", flat=True))
