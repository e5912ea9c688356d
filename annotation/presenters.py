"""What an annotator is sent about a task: the arena's comparison payload (prompt and two
outputs, no system identity) plus the project's schema, the lease and their progress.
Nothing says whether an item is a check item."""

from arena.voting import actions as arena_actions
from arena.voting.presenters import comparison_payload

from . import assignment as queue
from .models import Assignment, Project, ProjectMembership
from .schema import parse_schema


def task_payload(project: Project, membership: ProjectMembership, assignment: Assignment) -> dict:
    comparison = assignment.item.comparison
    judge = arena_actions.judge_for_user(membership.user)
    payload = comparison_payload(comparison, arena_actions.issue_vote_token(comparison, judge))
    payload.update(
        {
            "project": project.pk,
            "assignment": assignment.pk,
            "leased_at": assignment.leased_at.isoformat(),
            "expires_at": assignment.expires_at.isoformat(),
            "min_seconds": project.min_seconds_per_item,
            "schema": parse_schema(project.schema).to_dict(),
            "progress": queue.annotator_progress(project, membership.user),
            "warning": queue.quality_warning(project, membership),
        }
    )
    return payload


def submission_payload(project: Project, result) -> dict:
    return {
        "judgment": str(result.judgment.public_id),
        "verdict": result.judgment.verdict,
        "assignment": result.assignment.pk,
        "gold": result.gold_feedback,
        "quality_status": result.quality_status,
        "warning": result.warning,
        "progress": queue.annotator_progress(project, result.assignment.annotator),
    }
