"""Which judgments an export, a quality report or the dashboard reads, and the quality
math's input built from them.

A selection is a scope (one project, one arena, or every arena comparison), a source
(human annotators, automatic judges, or both) and whether voters flagged for review
(arena.board.outliers) are left out. Labels and exports read the current
judgments, those no other judgment supersedes; agreement and reliability read what each
judge last said themselves (see `Selection.annotator_judgments`). Superseded judgments
are history, kept for provenance but never counted twice.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.db.models import F, Q, QuerySet
from django.utils.crypto import salted_hmac

from annotation.models import Project, ProjectItem
from annotation.quality import MISSING, DawidSkene, JudgmentTable, QualityReport, ReliabilityThresholds, assess
from arena.models import HUMAN_JUDGE_KINDS, Comparison, ComparisonOrigin, Judge, JudgeKind, Judgment, Verdict

from .options import ALL_ARENAS, SOURCES

# Verdict codes follow the model's order, so `a`, `b`, `tie`, `both_bad` read the same in
# every report whatever turned up first.
VERDICT_ORDER = tuple(Verdict.values)
# Rows fetched per database round trip when streaming: ~2 MB of judgments with their
# comparison, prompt and outputs for typical text, and a few hundred round trips per
# million judgments.
CHUNK_SIZE = 2000


class SelectionError(ValueError):
    """An unknown project or arena, or contradictory options: the caller's mistake."""


@dataclass(frozen=True)
class Selection:
    project: Project | None = None
    arena: str | None = None  # an Arena's name, or ALL_ARENAS
    source: str = "human"
    exclude_flagged: bool = False  # quality reports keep flagged voters: reviewing them needs their figures

    def __post_init__(self):
        if (self.project is None) == (self.arena is None):
            raise SelectionError("choose exactly one of a project or an arena")
        if self.source not in SOURCES:
            raise SelectionError(f"source must be one of {', '.join(SOURCES)}")

    @classmethod
    def resolve(
        cls, *, project: str | None = None, arena: str | None = None, source: str = "human",
        exclude_flagged: bool = False,
    ) -> Selection:
        """From names as a command line or an API request gives them."""
        if project is not None:
            found = Project.objects.filter(name=project).first()
            if found is None:
                raise SelectionError(f"no project named {project!r}")
            return cls(project=found, source=source, exclude_flagged=exclude_flagged)
        if arena is not None and arena != ALL_ARENAS:
            from arena.models import Arena

            if not Arena.objects.filter(name=arena).exists():
                raise SelectionError(f"no arena named {arena!r} (or {ALL_ARENAS!r} for every arena)")
        return cls(arena=arena, source=source, exclude_flagged=exclude_flagged)

    @property
    def label(self) -> str:
        return f"project {self.project.name}" if self.project else f"arena {self.arena}"

    def comparisons(self) -> QuerySet[Comparison]:
        if self.project is not None:
            return Comparison.objects.filter(project_items__project=self.project)
        if self.arena == ALL_ARENAS:
            return Comparison.objects.filter(origin__in=(ComparisonOrigin.ARENA, ComparisonOrigin.LIVE))
        # A named arena holds the comparisons whose votes became its battles.
        return Comparison.objects.filter(
            pk__in=Judgment.objects.filter(battle__arena__name=self.arena).values("comparison_id")
        )

    def judgments(self) -> QuerySet[Judgment]:
        """Current judgments in scope from the chosen source: those no other judgment
        supersedes. What labels and exports are made of: after an adjudication, the
        reviewer's corrections stand in for the judgments they overrule."""
        return self._in_scope(Judgment.objects.filter(superseded_by__isnull=True))

    def annotator_judgments(self) -> QuerySet[Judgment]:
        """Each judge's own latest word: what agreement and reliability are measured on.

        A judge's correction of their own judgment replaces it, as in `judgments()`. A
        reviewer's adjudication does not: it overrules the label, not what the annotator
        said, so the annotator's judgment stays and the reviewer's corrections (which
        would agree with everyone by construction) are left out.
        """
        queryset = Judgment.objects.exclude(superseded_by__judge_id=F("judge_id")).exclude(
            Q(supersedes__isnull=False) & ~Q(supersedes__judge_id=F("judge_id"))
        )
        return self._in_scope(queryset)

    def _in_scope(self, queryset: QuerySet[Judgment]) -> QuerySet[Judgment]:
        if self.project is not None:
            queryset = queryset.filter(comparison__project_items__project=self.project)
        else:
            queryset = queryset.filter(comparison_id__in=self.comparisons().values("pk"))
        if self.source == "human":
            queryset = queryset.filter(judge__kind__in=HUMAN_JUDGE_KINDS)
        elif self.source == "judge":
            queryset = queryset.exclude(judge__kind__in=HUMAN_JUDGE_KINDS)
        if self.exclude_flagged:
            queryset = queryset.filter(judge__flagged_at__isnull=True)
        return queryset

    def gold(self) -> dict[int, str]:
        """{comparison pk: gold verdict} for the project's gold and attention items."""
        if self.project is None:
            return {}
        return dict(
            ProjectItem.objects.filter(project=self.project)
            .exclude(gold_verdict="")
            .values_list("comparison_id", "gold_verdict")
        )


def annotator_name(judge: Judge) -> str:
    """The name researchers know an annotator by: the username for accounts, the import's
    name for external annotators, name@version for automatic judges."""
    if judge.user_id is not None:
        return judge.user.get_username()
    if judge.kind == JudgeKind.EXTERNAL_HUMAN:
        return judge.name
    return str(judge)


def pseudonym(judge: Judge) -> str:
    """A stable stand-in for a judge in exported data. Keyed with the secret key, so the
    same judge gets the same pseudonym in every export from this installation, and nobody
    without the key can test a guessed username against it."""
    identity = f"{judge.kind}:{judge.name}:{judge.version}"
    return "ann-" + salted_hmac("duet.annotation.export.pseudonym", identity).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class SelectedJudgments:
    """A selection's judgments as the quality math's input, with the keys to find a
    database row's place in it."""

    table: JudgmentTable  # comparisons: pks ascending; annotators: display names
    judges: tuple[Judge, ...]  # per annotator code
    judgment_ids: np.ndarray  # shape (n_selected,), ascending: every selected judgment
    row: np.ndarray  # shape (n_selected,): its row in `table`
    kept_ids: np.ndarray  # shape (n_judgments in table,), ascending: the judgments the table holds
    comparison_ids: np.ndarray  # shape (n_comparisons,), ascending: table.comparisons as an array

    def row_of(self, judgment_id: int) -> int:
        return int(self.row[np.searchsorted(self.judgment_ids, judgment_id)])

    def is_kept(self, judgment_id: int) -> bool:
        index = int(np.searchsorted(self.kept_ids, judgment_id))
        return index < len(self.kept_ids) and self.kept_ids[index] == judgment_id

    def comparison_index(self, comparison_id: int) -> int | None:
        ids = self.comparison_ids
        index = int(np.searchsorted(ids, comparison_id))
        return index if index < len(ids) and ids[index] == comparison_id else None

    def gold_codes(self, gold: dict[int, str]) -> np.ndarray | None:
        if not gold:
            return None
        codes = np.full(self.table.n_comparisons, MISSING, dtype=np.int64)
        for index, comparison_id in enumerate(self.table.comparisons):
            code = self.table.verdict_code(gold.get(comparison_id))
            if code is not None:
                codes[index] = code
        return codes


def load_judgments(selection: Selection, for_quality: bool = False) -> SelectedJudgments:
    """Read (id, comparison, judge, verdict) of every selected judgment: four integers each.
    `for_quality` reads `annotator_judgments()`, otherwise the current `judgments()`.

    A reviewer's adjudication supersedes each disagreeing judgment with one of its own, so
    one judge can hold several current judgments on a comparison; they say the same thing,
    and the table keeps the latest as that judge's one judgment there.
    """
    verdict_code = {verdict: code for code, verdict in enumerate(VERDICT_ORDER)}
    ids, comparisons, judges, verdicts = array("q"), array("q"), array("q"), array("b")
    queryset = selection.annotator_judgments() if for_quality else selection.judgments()
    rows = queryset.order_by("id").values_list("id", "comparison_id", "judge_id", "verdict")
    for judgment_id, comparison_id, judge_id, verdict in rows.iterator(chunk_size=CHUNK_SIZE * 10):
        ids.append(judgment_id)
        comparisons.append(comparison_id)
        judges.append(judge_id)
        verdicts.append(verdict_code[verdict])
    ids, comparisons, judges, verdicts = (_as_numpy(values) for values in (ids, comparisons, judges, verdicts))
    comparison_ids, comparison_code = np.unique(comparisons, return_inverse=True)
    judge_ids, judge_code = np.unique(judges, return_inverse=True)
    # Codes of the verdicts that occur; every verdict when none does yet, so an empty
    # table still has categories for the estimators to report zeros over.
    present = np.unique(verdicts).astype(np.int64) if len(verdicts) else np.arange(len(VERDICT_ORDER))

    # One row per (comparison, judge): the latest, since rows come in id order.
    key = comparison_code.astype(np.int64) * max(len(judge_ids), 1) + judge_code
    _, group = np.unique(key, return_inverse=True)
    latest = np.full(group.max() + 1 if len(group) else 0, -1, dtype=np.int64)
    np.maximum.at(latest, group, np.arange(len(group)))

    found = Judge.objects.select_related("user").in_bulk([int(pk) for pk in judge_ids])
    judge_rows = tuple(found[int(pk)] for pk in judge_ids)
    table = JudgmentTable(
        comparisons=tuple(int(pk) for pk in comparison_ids),
        annotators=_unique_names(judge_rows),
        verdicts=tuple(VERDICT_ORDER[code] for code in present),
        comparison=comparison_code[latest].astype(np.int64),
        annotator=judge_code[latest].astype(np.int64),
        verdict=np.searchsorted(present, verdicts[latest]).astype(np.int64),
    )
    return SelectedJudgments(
        table=table, judges=judge_rows, judgment_ids=ids, row=group, kept_ids=np.sort(ids[latest]),
        comparison_ids=comparison_ids.astype(np.int64),
    )


def _as_numpy(values: array) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    return np.frombuffer(values, dtype=values.typecode).astype(np.int64)


def _unique_names(judges: tuple[Judge, ...]) -> tuple[str, ...]:
    # An account and an imported annotator may share a name: the kind tells them apart,
    # and the key when even that repeats (an imported name under two versions).
    names = [annotator_name(judge) for judge in judges]
    for qualify in (lambda name, judge: f"{name} ({judge.kind})", lambda name, judge: f"{name} #{judge.pk}"):
        repeated = {name for name, count in Counter(names).items() if count > 1}
        names = [qualify(name, judge) if name in repeated else name for name, judge in zip(names, judges)]
    return tuple(names)


def assess_selection(
    selection: Selection,
    *,
    model: DawidSkene = DawidSkene(),
    thresholds: ReliabilityThresholds = ReliabilityThresholds(),
) -> tuple[QualityReport, SelectedJudgments]:
    selected = load_judgments(selection, for_quality=True)
    automatic = [name for name, judge in zip(selected.table.annotators, selected.judges)
                 if judge.kind not in HUMAN_JUDGE_KINDS]  # fmt: skip
    report = assess(selected.table, gold=selected.gold_codes(selection.gold()), model=model, thresholds=thresholds,
                    automatic=automatic)  # fmt: skip
    return report, selected


def quality_dict(selection: Selection, report: QualityReport, selected: SelectedJudgments) -> dict:
    """`report.to_dict()` with the scope and each annotator's kind: what `project_quality`
    prints and the dashboard shows."""
    data = report.to_dict()
    kinds = {name: judge.kind for name, judge in zip(selected.table.annotators, selected.judges)}
    for row in data["annotators"]:
        row["kind"] = kinds[row["annotator"]]
    scope = {"project": selection.project.name} if selection.project else {"arena": selection.arena}
    return {**scope, "source": selection.source, **data}
