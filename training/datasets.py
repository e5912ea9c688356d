"""A run's training data: the export's pairs, each with every judgment on its comparison.

The `trl` export writes one row per comparison, labelled by its aggregated verdict, with one
weight. A run's snapshot adds to each row what the training methods
(`training.recipes.noise`) need:

- `judgments`: every current judgment on the comparison, people's and automatic judges'
  (marked `"source": "judge"`), each with its annotator (the export's pseudonym for people,
  name@version for judges), what it prefers in the row's terms (`chosen`, `rejected`,
  `tie`, `both_bad`) and its annotator's reliability from the quality report;
- `label_error`: the quality report's probability that the row's label is wrong (one minus
  Dawid-Skene's posterior of the label);
- `label_source`: whose judgments made the label (the run's `source` filter).

The quality report is the one `project_quality` prints: Dawid-Skene over the label
source's judgments, gold items pinned.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from annotation.quality import majority_vote


def add_judgments(rows: list[dict], *, project: str | None, arena: str | None, filters: dict) -> list[dict]:
    """The rows (one per comparison, `id` its public id) with the three columns above."""
    from django.conf import settings

    from annotation.export.selection import Selection, assess_selection, load_judgments
    from annotation.quality import DawidSkene
    from arena.models import Comparison

    if not rows:
        return rows
    source = filters.get("source", "human")
    exclude_flagged = bool(settings.EXCLUDE_FLAGGED_VOTERS)
    selection = Selection.resolve(project=project, arena=arena, source=source, exclude_flagged=exclude_flagged)
    report, rated = assess_selection(selection)
    reliability = {judge.pk: row.reliability for judge, row in zip(rated.judges, report.annotators) if row.measured}

    # The rows' labels, recomputed exactly as the export aggregated them.
    current = load_judgments(selection)
    if filters.get("aggregate", "dawid-skene") == "dawid-skene":
        labels = DawidSkene().fit(current.table, gold=current.gold_codes(selection.gold())).aggregate()
    else:
        labels = majority_vote(current.table)

    ids = {str(public_id): pk for public_id, pk in
           Comparison.objects.filter(public_id__in=[row["id"] for row in rows]).values_list("public_id", "pk")}
    votes = _votes_by_comparison(list(ids.values()), exclude_flagged)
    posterior = report.dawid_skene.posterior  # shape (n_comparisons, n_verdicts)
    rated_index = {pk: index for index, pk in enumerate(report.judgments.comparisons)}
    out = []
    for row in rows:
        pk = ids[row["id"]]
        index = current.comparison_index(pk)
        label = labels.verdict_of(index) if index is not None else None
        chosen_side = "b" if label == "b" else "a"  # a tie is exported with side A as `chosen`
        label_error = None
        code = report.judgments.verdict_code(label)
        if pk in rated_index and code is not None:
            label_error = float(np.clip(1.0 - posterior[rated_index[pk], code], 0.0, 1.0))
        judgments = [
            {"annotator": annotator, "source": kind, "verdict": verdict,
             "prefers": _prefers(verdict, chosen_side), "reliability": reliability.get(judge_pk)}
            for judge_pk, annotator, kind, verdict in votes.get(pk, ())
        ]  # fmt: skip
        out.append({**row, "judgments": judgments, "label_error": label_error, "label_source": source})
    return out


def _prefers(verdict: str, chosen_side: str) -> str:
    if verdict in ("a", "b"):
        return "chosen" if verdict == chosen_side else "rejected"
    return verdict  # tie, both_bad


def _votes_by_comparison(comparison_ids: list[int], exclude_flagged: bool) -> dict[int, list[tuple]]:
    """{comparison pk: [(judge pk, annotator, "human" | "judge", verdict)]}, current judgments only."""
    from annotation.export.selection import pseudonym
    from arena.models import Judge, Judgment

    queryset = Judgment.objects.filter(comparison_id__in=comparison_ids, superseded_by__isnull=True)
    if exclude_flagged:
        queryset = queryset.filter(judge__flagged_at__isnull=True)
    rows = list(queryset.order_by("comparison_id", "id").values_list("comparison_id", "judge_id", "verdict"))
    judges = Judge.objects.in_bulk({judge_id for _, judge_id, _ in rows})
    names = {pk: (pseudonym(judge), "human") if judge.is_human else (str(judge), "judge") for pk, judge in judges.items()}
    found: dict[int, list[tuple]] = {}
    latest: dict[tuple[int, int], int] = {}  # one judgment per judge and comparison: the latest
    for comparison_id, judge_id, verdict in rows:
        entries = found.setdefault(comparison_id, [])
        entry = (judge_id, *names[judge_id], verdict)
        if (comparison_id, judge_id) in latest:
            entries[latest[comparison_id, judge_id]] = entry
        else:
            latest[comparison_id, judge_id] = len(entries)
            entries.append(entry)
    return found


def write_rows(path: Path, rows: list[dict]) -> None:
    """Replace the snapshot file with these rows, atomically."""
    staging = path.with_name(path.name + ".judgments")
    staging.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    staging.replace(path)
