"""Judge versus people: for each automatic judge of a project, the board fitted from its
verdicts beside the board fitted from the people's votes on the same comparisons, and how
far the two orders agree (Spearman, Kendall, the systems whose rank differs most).

Reads only. The same comparisons: those the judge gave a verdict on and at least one
person judged; every current human judgment on them is one battle of the people's board,
the judge's verdict one battle of its own. Both are Bradley-Terry with sandwich intervals
(`arena.ratings`), so they differ only by who judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from annotation.models import Project, ProjectItem
from arena import ratings
from arena.models import HUMAN_JUDGE_KINDS, Judge, Judgment

from .report import project_judges
from .verdicts import chunks

# Biggest rank differences listed per judge.
SHIFTS_SHOWN = 3


@dataclass
class JudgeBoards:
    judge: str
    judge_id: int
    comparisons: int  # judged by the judge and by people
    human_votes: int
    judge_board: dict | None  # arena.ratings.Leaderboard.to_dict(); None without comparisons
    human_board: dict | None
    agreement: dict | None  # arena.ratings.RankAgreement.to_dict()
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "judge": self.judge, "judge_id": self.judge_id, "comparisons": self.comparisons,
            "human_votes": self.human_votes, "judge_board": self.judge_board, "human_board": self.human_board,
            "agreement": self.agreement, "notes": self.notes,
        }  # fmt: skip


def _fit(records: list[tuple[str, str, str]]) -> ratings.Leaderboard:
    return ratings.compute_leaderboard(ratings.BattleCounts.from_records(records), ci="sandwich", min_votes=0)


def judge_boards_for(project: Project, judge: Judge) -> JudgeBoards:
    scope = list(ProjectItem.objects.filter(project=project).values_list("comparison_id", flat=True).distinct())
    systems_of: dict[int, tuple[str, str]] = {}
    said: dict[int, str] = {}
    human_rows: list[tuple[int, str]] = []
    current = Judgment.objects.filter(superseded_by__isnull=True)
    for ids in chunks(scope):
        for comparison_id, verdict, name_a, name_b in current.filter(judge=judge, comparison_id__in=ids).values_list(
            "comparison_id", "verdict", "comparison__output_a__system__name", "comparison__output_b__system__name"
        ):  # fmt: skip
            said[comparison_id] = verdict
            systems_of[comparison_id] = (name_a, name_b)
    humans = current.filter(judge__kind__in=HUMAN_JUDGE_KINDS)
    if settings.EXCLUDE_FLAGGED_VOTERS:
        humans = humans.filter(judge__flagged_at__isnull=True)
    for ids in chunks(list(said)):
        human_rows.extend(humans.filter(comparison_id__in=ids).values_list("comparison_id", "verdict"))
    both = sorted({comparison_id for comparison_id, _ in human_rows})
    result = JudgeBoards(str(judge), judge.pk, len(both), len(human_rows), None, None, None)
    if not both:
        result.notes.append(f"No comparison has both a verdict of {judge} and a human judgment yet.")
        return result
    judge_board = _fit([(*systems_of[c], said[c]) for c in both])
    human_board = _fit([(*systems_of[c], verdict) for c, verdict in human_rows])
    # People first: a rank shift is then positive where the judge ranks the system better.
    agreement = ratings.rank_agreement(
        {row.system: row.rating for row in human_board.systems}, {row.system: row.rating for row in judge_board.systems}
    )
    result.judge_board, result.human_board = judge_board.to_dict(), human_board.to_dict()
    result.agreement = agreement.to_dict(limit=SHIFTS_SHOWN, names=("people", "judge"))
    if agreement.spearman is None:
        result.notes.append("Rank correlations need at least three systems rated differently on both boards.")
    if len(judge_board.components) > 1 or len(human_board.components) > 1:
        result.notes.append("A board's comparison graph is not connected: ratings across its parts are not "
                            "comparable, so neither are the ranks.")  # fmt: skip
    result.notes.extend(f"judge's board: {w}" for w in judge_board.warnings)
    result.notes.extend(f"people's board: {w}" for w in human_board.warnings)
    return result


def judge_boards(project: Project, judge: Judge | None = None) -> list[JudgeBoards]:
    """One entry per automatic judge with verdicts on the project (or only `judge`)."""
    judges = [judge] if judge is not None else project_judges(project)
    return [judge_boards_for(project, j) for j in judges]
