"""`export_dataset`: the one function behind the command, the API, the admin page and the
Celery task.

It reads the selection's judgments once as integers (for aggregation and reliability),
then streams the rows from the database in bounded chunks into a writer and the media
into a zip, both under a temporary name that is renamed into place only when everything
is written: a reader never sees half an export, and a failed one leaves the previous
export untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from django.core.files.storage import default_storage
from django.db.models import OuterRef, Q, Subquery

from annotation.models import ProjectItem
from annotation.quality import Aggregate, DawidSkene, DawidSkeneResult, majority_vote
from arena.models import Judge

from .options import DECISIVE, PREFERENCE_FORMATS, ExportOptions
from .rows import JUDGMENT_COLUMNS, answer_messages, dialogue_messages, media_member, preference_columns
from .selection import CHUNK_SIZE, Selection, SelectedJudgments, load_judgments, pseudonym
from .writers import WRITERS

ProgressCallback = Callable[[int, int], None]  # (rows processed, rows to process)

@dataclass(frozen=True)
class ExportResult:
    path: str
    format: str
    n_rows: int
    media_path: str | None
    n_media: int
    n_judgments: int  # current judgments in the selection
    n_comparisons: int  # comparisons with at least one of them
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def export_dataset(options: ExportOptions, progress: ProgressCallback | None = None) -> ExportResult:
    started = time.monotonic()
    selection = Selection.resolve(
        project=options.project, arena=options.arena, source=options.source, exclude_flagged=options.exclude_flagged
    )
    selected = load_judgments(selection)
    preference = options.format in PREFERENCE_FORMATS
    model = None
    if not preference or options.aggregate == "dawid-skene":
        model = DawidSkene().fit(selected.table, gold=selected.gold_codes(selection.gold()))
    aggregate = _aggregate(options.aggregate, selected, model)
    has_media = selection.comparisons().filter(~Q(output_a__media="") | ~Q(output_b__media="")).exists()

    if preference:
        conversational = selection.comparisons().filter(
            Q(prompt__text__startswith="Human:") | Q(prompt__text__startswith="\n\nHuman:")
        ).exists()
        columns = preference_columns(conversational, has_media)
    else:
        conversational, columns = False, JUDGMENT_COLUMNS

    with _AtomicOutput(Path(options.output)) as staging:
        media = _MediaArchive(staging.media_path)
        writer = WRITERS[options.format](staging.rows_path, columns)
        if preference and options.aggregate != "none":
            batches, total = _preference_rows(selection, selected, aggregate, options, media, conversational)
        elif preference:
            batches, total = _unaggregated_preference_rows(selection, selected, options, media, conversational)
        else:
            batches, total = _judgment_rows(selection, selected, model, aggregate, options, media)
        for done, batch in batches:
            writer.write(batch)
            if progress is not None:
                progress(done, total)
        writer.close()
        media.close()
        staging.keep_media = media.n_files > 0

    return ExportResult(
        path=str(staging.final_rows),
        format=options.format,
        n_rows=writer.n_rows,
        media_path=str(staging.final_media) if staging.keep_media else None,
        n_media=media.n_files,
        n_judgments=len(selected.judgment_ids),
        n_comparisons=selected.table.n_comparisons,
        seconds=round(time.monotonic() - started, 3),
    )


def _aggregate(method: str, selected: SelectedJudgments, model: DawidSkeneResult | None) -> Aggregate | None:
    if method == "dawid-skene":
        return model.aggregate()
    if method == "majority":
        return majority_vote(selected.table)
    return None


# --- rows -------------------------------------------------------------------------------

Batches = Iterator[tuple[int, list[dict]]]  # (rows processed so far, rows to write)


def _chunks(queryset) -> Iterator[list]:
    """The queryset in lists of CHUNK_SIZE rows, fetched CHUNK_SIZE at a time."""
    chunk = []
    for row in queryset.iterator(chunk_size=CHUNK_SIZE):
        chunk.append(row)
        if len(chunk) == CHUNK_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Rows are read as plain values, not model instances: building eight related model
# objects per judgment and decoding every JSON field on them (metadata, play events,
# provider configs) cost ~0.3 ms a judgment, several times the rest of the export.
def _output_fields(prefix: str) -> list[str]:
    return [f"{prefix}_id", f"{prefix}__public_id", f"{prefix}__text", f"{prefix}__media"]


def _output(row: dict, prefix: str) -> OutputRef:
    return OutputRef(row[f"{prefix}_id"], row[f"{prefix}__public_id"], row[f"{prefix}__text"], row[f"{prefix}__media"])


def _preference_rows(selection, selected, aggregate, options, media, conversational) -> tuple[Batches, int]:
    queryset = (
        selection.comparisons()
        .order_by("pk")
        .values("pk", "public_id", "prompt__text", *_output_fields("output_a"), *_output_fields("output_b"))
    )
    total = queryset.count()

    def batches():
        done = 0
        for chunk in _chunks(queryset):
            rows = []
            for comparison in chunk:
                index = selected.comparison_index(comparison["pk"])
                if index is None:
                    continue
                verdict = aggregate.verdict_of(index)
                confidence = float(aggregate.confidence[index])
                if not _wanted(verdict, options.include_ties) or confidence < options.min_confidence:
                    continue
                rows.append(
                    _preference_row(
                        comparison, "", verdict, str(comparison["public_id"]), confidence, confidence,
                        int(aggregate.n_judgments[index]), media, conversational,
                    )
                )
            done += len(chunk)
            yield done, rows

    return batches(), total


def _unaggregated_preference_rows(selection, selected, options, media, conversational) -> tuple[Batches, int]:
    """One row per judgment that prefers a side, weight 1: no model between the judge and
    the training data. The judge's own confidence, where it gave one, is the confidence."""
    queryset = (
        selection.judgments()
        .order_by("comparison_id", "id")
        .values(
            "pk", "public_id", "verdict", "confidence", "comparison__prompt__text",
            *_output_fields("comparison__output_a"), *_output_fields("comparison__output_b"),
        )
    )
    total = queryset.count()

    def batches():
        done = 0
        for chunk in _chunks(queryset):
            rows = []
            for judgment in chunk:
                confidence = 1.0 if judgment["confidence"] is None else float(judgment["confidence"])
                if not selected.is_kept(judgment["pk"]):
                    continue  # a reviewer's repeat of the same verdict
                if not _wanted(judgment["verdict"], options.include_ties) or confidence < options.min_confidence:
                    continue
                rows.append(
                    _preference_row(
                        judgment, "comparison__", judgment["verdict"], str(judgment["public_id"]), 1.0, confidence,
                        1, media, conversational,
                    )
                )
            done += len(chunk)
            yield done, rows

    return batches(), total


def _wanted(verdict: str | None, include_ties: bool) -> bool:
    return verdict in DECISIVE or (include_ties and verdict == "tie")


def _preference_row(row, prefix, verdict, row_id, weight, confidence, n_judgments, media, conversational) -> dict:
    output_a, output_b = _output(row, f"{prefix}output_a"), _output(row, f"{prefix}output_b")
    chosen, rejected = (output_b, output_a) if verdict == "b" else (output_a, output_b)
    prompt = row[f"{prefix}prompt__text"]
    if conversational:
        prompt = dialogue_messages(prompt)
        chosen_text, rejected_text = answer_messages(chosen.text), answer_messages(rejected.text)
    else:
        chosen_text, rejected_text = chosen.text, rejected.text
    return {
        "id": row_id,
        "prompt": prompt,
        "chosen": chosen_text,
        "rejected": rejected_text,
        "weight": weight,
        "confidence": confidence,
        "n_judgments": n_judgments,
        "tie": verdict == "tie",
        "chosen_media": media.add(chosen),
        "rejected_media": media.add(rejected),
    }


JUDGMENT_FIELDS = (
    "pk", "public_id", "verdict", "aspects", "rationale", "confidence", "time_to_vote_ms", "created_at",
    "supersedes__public_id", "judge_id", "judge__kind", "judge__name", "judge__version", "judge__flagged_at",
    "comparison__public_id", "comparison__prompt__text", "comparison__prompt__categories",
    "comparison__output_a__system__name", "comparison__output_b__system__name",
    *_output_fields("comparison__output_a"), *_output_fields("comparison__output_b"),
)  # fmt: skip


def _judgment_rows(selection, selected, model, aggregate, options, media) -> tuple[Batches, int]:
    queryset = selection.judgments()
    fields = list(JUDGMENT_FIELDS)
    if selection.project is not None:
        items = ProjectItem.objects.filter(project=selection.project, comparison=OuterRef("comparison_id"))
        queryset = queryset.annotate(
            item_external_id=Subquery(items.values("external_id")[:1]),
            item_category=Subquery(items.values("category")[:1]),
        )
        fields += ["item_external_id", "item_category"]
    queryset = queryset.order_by("comparison_id", "id").values(*fields)
    total = queryset.count()
    weights = model.judgment_weight
    reliability = model.reliability
    project_name = selection.project.name if selection.project else ""
    judges: dict[int, tuple[str, bool, str]] = {}  # pk -> (pseudonym, is human, name@version)

    def judge_columns(row) -> tuple[str, bool, str]:
        if row["judge_id"] not in judges:
            identity = Judge(kind=row["judge__kind"], name=row["judge__name"], version=row["judge__version"])
            judges[row["judge_id"]] = (pseudonym(identity), identity.is_human, str(identity))
        return judges[row["judge_id"]]

    def batches():
        done = 0
        for chunk in _chunks(queryset):
            rows = []
            for judgment in chunk:
                row = selected.row_of(judgment["pk"])
                comparison_index = selected.table.comparison[row]
                weight = float(weights[row])
                if aggregate is not None:
                    aggregate_verdict = aggregate.verdict_of(comparison_index)
                    aggregate_confidence = float(aggregate.confidence[comparison_index])
                    kept = aggregate_confidence >= options.min_confidence
                else:
                    aggregate_verdict, aggregate_confidence = None, None
                    kept = weight >= options.min_confidence
                if not kept:
                    continue
                annotator, is_human, judge_name = judge_columns(judgment)
                output_a = _output(judgment, "comparison__output_a")
                output_b = _output(judgment, "comparison__output_b")
                categories = judgment["comparison__prompt__categories"] or [""]
                supersedes = judgment["supersedes__public_id"]
                rows.append(
                    {
                        "judgment_id": str(judgment["public_id"]),
                        "comparison_id": str(judgment["comparison__public_id"]),
                        "project": project_name,
                        "item_id": judgment.get("item_external_id") or "",
                        "category": judgment.get("item_category") or str(categories[0]),
                        "prompt": judgment["comparison__prompt__text"],
                        "output_a": output_a.text,
                        "output_b": output_b.text,
                        "output_a_media": media.add(output_a),
                        "output_b_media": media.add(output_b),
                        "system_a": judgment["comparison__output_a__system__name"],
                        "system_b": judgment["comparison__output_b__system__name"],
                        "annotator": annotator,
                        "source": "human" if is_human else "judge",
                        "judge_kind": judgment["judge__kind"],
                        "judge": "" if is_human else judge_name,
                        "annotator_flagged": judgment["judge__flagged_at"] is not None,
                        "verdict": judgment["verdict"],
                        "aspects": judgment["aspects"],
                        "rationale": judgment["rationale"],
                        "judge_confidence": judgment["confidence"],
                        "time_to_vote_ms": judgment["time_to_vote_ms"],
                        "weight": weight,
                        "reliability": float(reliability[selected.table.annotator[row]]),
                        "aggregate_verdict": aggregate_verdict,
                        "aggregate_confidence": aggregate_confidence,
                        "supersedes": str(supersedes) if supersedes else "",
                        "created_at": judgment["created_at"].isoformat(),
                    }
                )
            done += len(chunk)
            yield done, rows

    return batches(), total


# --- files ------------------------------------------------------------------------------


class OutputRef(NamedTuple):
    pk: int
    public_id: uuid.UUID
    text: str
    media: str  # the media file's storage name, "" for text


class _MediaArchive:
    """Media files of the exported outputs, each once, in a zip opened on first use."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[int, str] = {}  # output pk -> member name

    @property
    def n_files(self) -> int:
        return len(self._members)

    def add(self, output: OutputRef) -> str:
        if not output.media:
            return ""
        if output.pk not in self._members:
            if self._zip is None:
                # Stored, not deflated: images and most audio are compressed already.
                self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
            member = media_member(output.public_id, output.media)
            with default_storage.open(output.media, "rb") as source:
                with self._zip.open(member, "w", force_zip64=True) as target:
                    shutil.copyfileobj(source, target, length=1 << 20)
            self._members[output.pk] = member
        return self._members[output.pk]

    def close(self):
        if self._zip is not None:
            self._zip.close()


class _AtomicOutput:
    """A staging folder beside the output; on success its rows (a file, or a folder for
    `hf`) and media zip replace the final paths, on failure it is deleted."""

    def __init__(self, final_rows: Path):
        self.final_rows = final_rows.resolve()
        self.final_media = self.final_rows.with_name(self.final_rows.name + ".media.zip")
        self.keep_media = False

    def __enter__(self):
        self.final_rows.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the output, so the final rename never crosses file systems.
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.final_rows.name}.", dir=self.final_rows.parent))
        self.rows_path = self.staging / self.final_rows.name
        self.media_path = self.staging / self.final_media.name
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            if exc_type is None:
                if self.keep_media:
                    os.replace(self.media_path, self.final_media)
                else:
                    # A media zip from an earlier export would not match these rows.
                    self.final_media.unlink(missing_ok=True)
                self._replace(self.rows_path, self.final_rows)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
        return False

    def _replace(self, source: Path, target: Path):
        if source.is_dir() and target.exists():
            # A folder cannot be renamed over a non-empty one: move the old one aside
            # first (into the staging folder, deleted below), then move the new one in.
            os.replace(target, self.staging / "previous")
        os.replace(source, target)
