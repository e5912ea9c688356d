"""Which judged pairs a training run can learn from, counted before it is queued.

Text training learns from text pairs only: a comparison of two images or two audio clips
exports with empty `chosen` / `rejected` texts and media references, which a language
model would read as two empty answers. `count_pairs` counts, with the export's own
aggregation and filters, the pairs a run would get; `check_enough_pairs` refuses a run
with fewer than MIN_PAIRS of them, naming the counts, before anything is queued; and
`keep_text_pairs` is the worker's side of the same rule, applied to the snapshot it trains on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db.models import Q

from arena.errors import InvalidInput

# Below this the held-out split has one or two pairs and a run says nothing: with 8 pairs
# and the default 10% validation split, a run still trains on ~7 and evaluates on ~1.
MIN_PAIRS = 8


@dataclass(frozen=True)
class PairCount:
    text: int  # pairs of two text answers: what training uses
    other: int  # pairs with an image or audio answer, or an empty one: left out

    @property
    def total(self) -> int:
        return self.text + self.other

    def describe(self) -> str:
        left_out = f" ({self.other} image, audio or empty-answer pair(s) left out)" if self.other else ""
        return f"{self.text} text pair(s){left_out}"


class TooFewPairs(InvalidInput):
    code = "too_few_pairs"

    def __init__(self, source: str, count: PairCount, minimum: int):
        super().__init__(
            f"{source} has {count.describe()} to train on with these filters; at least {minimum} are needed. "
            "Collect more judgments, or lower the minimum confidence, include ties or change the aggregation."
        )
        self.count = count
        self.minimum = minimum


def _unusable_comparisons(selection) -> np.ndarray:
    """Primary keys, ascending, of the selection's comparisons that are not two text answers."""
    unusable = (
        ~Q(output_a__media="") | ~Q(output_b__media="")
        | Q(output_a__text__regex=r"^\s*$") | Q(output_b__text__regex=r"^\s*$")
    )  # fmt: skip
    ids = selection.comparisons().filter(unusable).values_list("pk", flat=True)
    return np.unique(np.fromiter(ids, dtype=np.int64))


def count_pairs(*, project: str | None = None, arena: str | None = None, filters: dict) -> PairCount:
    """The pairs an export with these filters writes (the run's dataset), split into text
    pairs and the rest. Aggregates exactly as `annotation.export` does; writes nothing."""
    from annotation.export.options import DECISIVE
    from annotation.export.selection import Selection, load_judgments
    from annotation.quality import DawidSkene, majority_vote
    from django.conf import settings

    selection = Selection.resolve(
        project=project, arena=arena, source=filters.get("source", "human"),
        exclude_flagged=bool(settings.EXCLUDE_FLAGGED_VOTERS),
    )  # fmt: skip
    wanted_verdicts = set(DECISIVE) | ({"tie"} if filters.get("include_ties") else set())
    min_confidence = float(filters.get("min_confidence") or 0.0)
    aggregate = filters.get("aggregate", "dawid-skene")
    selected = load_judgments(selection)

    if aggregate == "none":
        # One row per current judgment that prefers a side (the export's unaggregated rows).
        rows = selection.judgments().filter(verdict__in=wanted_verdicts).values_list("pk", "comparison_id", "confidence")
        comparisons = [
            comparison for pk, comparison, confidence in rows
            if selected.is_kept(pk) and (1.0 if confidence is None else confidence) >= min_confidence
        ]  # fmt: skip
        comparison_ids = np.asarray(comparisons, dtype=np.int64)
    else:
        if aggregate == "dawid-skene":
            result = DawidSkene().fit(selected.table, gold=selected.gold_codes(selection.gold()))
            labels = result.aggregate()
        else:
            labels = majority_vote(selected.table)
        codes = [index for index, verdict in enumerate(labels.verdicts) if verdict in wanted_verdicts]
        keep = np.isin(labels.label, codes) & (labels.confidence >= min_confidence)
        comparison_ids = selected.comparison_ids[keep]

    other = int(np.isin(comparison_ids, _unusable_comparisons(selection)).sum())
    return PairCount(text=len(comparison_ids) - other, other=other)


def check_enough_pairs(request, minimum: int = MIN_PAIRS) -> PairCount:
    """Refuse a run request (a `training.actions.RunRequest`) with too few text pairs."""
    count = count_pairs(
        project=request.project.name if request.project is not None else None,
        arena=request.arena.name if request.arena is not None else None,
        filters=request.filters,
    )  # fmt: skip
    if count.text < minimum:
        source = f"project {request.project.name}" if request.project is not None else f"arena {request.arena.name}"
        raise TooFewPairs(source, count, minimum)
    return count


# --- the worker's side ----------------------------------------------------------------------


def _has_text(answer) -> bool:
    if isinstance(answer, str):
        return bool(answer.strip())
    if isinstance(answer, list):  # chat messages
        return any(isinstance(m, dict) and str(m.get("content") or "").strip() for m in answer)
    return False


def is_text_pair(row: dict) -> bool:
    """An exported preference row with two text answers and no media."""
    return (
        not row.get("chosen_media") and not row.get("rejected_media")
        and _has_text(row.get("chosen")) and _has_text(row.get("rejected"))
    )  # fmt: skip


def text_pairs(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if is_text_pair(row)]


def keep_text_pairs(export) -> list[dict]:
    """The text pairs of an export (`annotation.export.ExportResult`); the snapshot file is
    rewritten to hold just them, so it is exactly what the run trained on, and the media
    archive, which text training never reads, is removed."""
    path = Path(export.path)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = text_pairs(rows)
    if len(kept) != len(rows):
        staging = path.with_name(path.name + ".text")
        staging.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept))
        staging.replace(path)
    if export.media_path:
        Path(export.media_path).unlink(missing_ok=True)
    return kept
