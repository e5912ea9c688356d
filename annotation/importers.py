"""Reading comparison files into `ItemSpec`s: Duet's own rows (JSONL, JSON, CSV, Parquet)
and converters for two public formats (Anthropic's HH-RLHF, PandaLM's test set).

Nothing here touches the database: every row is parsed and checked before
`annotation.actions.import_comparisons` writes anything, so a bad row costs no cleanup.
Each error names where it is and the field: "line 7: field 'a.text' is missing".

A Duet row::

    {"id": "q1", "prompt": "...", "category": "coding",
     "a": {"system": "model-x", "text": "..."},          # or "media": "images/q1-x.png" (in the zip)
     "b": {"system": "model-y", "text": "..."},
     "gold": "a", "gold_explanation": "...", "check": "gold" | "attention",
     "judgments": [{"annotator": "alice", "verdict": "a", "aspects": {...}, "rationale": "..."},
                   {"judge": "gpt-4o", "verdict": "b", "confidence": 0.8}]}

In CSV and flat Parquet, nested fields are dotted columns (`a.system`, `a.text`) and
`judgments` is a JSON string.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings

from arena.jsonl import JsonlError, read_objects
from arena.models import Verdict
from arena.outputs import media as arena_media

from .errors import ImportFailed
from .models import CheckKind

FORMATS = ("duet", "hh-rlhf", "pandalm")
MAX_ID_CHARS = 200
MAX_NAME_CHARS = 200

# Whole import files are read into memory once; 200 MB of JSONL is ~100k comparisons.
DEFAULT_IMPORT_MAX_BYTES = 200 * 1024 * 1024
# A media zip's entries together may not decompress to more than this (zip bombs).
DEFAULT_MEDIA_ZIP_MAX_BYTES = 2 * 1024 * 1024 * 1024
MAX_ZIP_ENTRIES = 100_000


def import_max_bytes() -> int:
    return getattr(settings, "ANNOTATION_IMPORT_MAX_BYTES", DEFAULT_IMPORT_MAX_BYTES)


def media_zip_max_bytes() -> int:
    return getattr(settings, "ANNOTATION_MEDIA_ZIP_MAX_BYTES", DEFAULT_MEDIA_ZIP_MAX_BYTES)


# --- the normalised row ---------------------------------------------------------------------


@dataclass
class SideSpec:
    system: str
    text: str = ""
    media: str = ""  # a path inside the media zip


@dataclass
class JudgmentSpec:
    verdict: str
    annotator: str = ""  # an external human ...
    judge: str = ""  # ... or an automatic judge
    aspects: dict = field(default_factory=dict)
    rationale: str = ""
    confidence: float | None = None


@dataclass
class ItemSpec:
    where: str  # "line 7", "row 7" (Parquet) or "item 7" (a JSON list)
    external_id: str
    # Derived from the content when the row had no id: a repeat is the same item, not an error.
    id_derived: bool
    prompt: str
    a: SideSpec
    b: SideSpec
    category: str = ""
    gold: str = ""
    gold_explanation: str = ""
    check_kind: str = ""
    judgments: list[JudgmentSpec] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @property
    def is_media(self) -> bool:
        return bool(self.a.media or self.b.media)


# --- reading files --------------------------------------------------------------------------


def read_bytes(handle, name: str) -> bytes:
    """The file's bytes (decompressed when the name ends in .gz), bounded in size."""
    limit = import_max_bytes()
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise ImportFailed(f"{name} is larger than the import limit of {limit:,} bytes")
    if name.lower().endswith(".gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(limit + 1)
        except (OSError, EOFError) as exc:
            raise ImportFailed(f"{name} is not a valid gzip file ({exc})") from None
        if len(data) > limit:
            raise ImportFailed(f"{name} decompresses to more than the import limit of {limit:,} bytes")
    return data


def file_kind(name: str) -> str:
    lower = name.lower().removesuffix(".gz")
    for suffix, kind in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv"),
                         (".parquet", "parquet")):  # fmt: skip
        if lower.endswith(suffix):
            return kind
    raise ImportFailed(f"{name}: unknown file type; use .jsonl, .json, .csv or .parquet (optionally .gz)")


def read_records(data: bytes, name: str):
    """Yield (where, row) for each record of the file."""
    kind = file_kind(name)
    if kind == "parquet":
        yield from _parquet_records(data, name)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{name} is not UTF-8 text ({exc})") from None
    if kind == "jsonl":
        yield from _jsonl_records(text)
    elif kind == "json":
        yield from _json_records(text, name)
    else:
        yield from _csv_records(text)


def _jsonl_records(text: str):
    try:
        for number, row in read_objects(io.StringIO(text, newline=None)):
            yield f"line {number}", row
    except JsonlError as exc:
        raise ImportFailed(str(exc)) from None


def _json_records(text: str, name: str):
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rows, list):
        raise ImportFailed(f"{name}: expected a JSON list of objects (or use .jsonl, one object a line)")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ImportFailed(f"item {number}: expected a JSON object, got {type(row).__name__}")
        yield f"item {number}", row


def _csv_records(text: str):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    start = 2  # the header is line 1; a quoted cell may span lines, so track where a record begins
    try:
        for record in reader:
            where = f"line {start}"
            start = reader.line_num + 1
            if None in record:
                raise ImportFailed(f"{where}: more cells than the header has columns")
            # An empty cell is an absent field, so optional columns may be left blank.
            yield where, _unflatten({key: value for key, value in record.items() if value not in ("", None)})
    except csv.Error as exc:
        raise ImportFailed(f"line {reader.line_num}: not valid CSV ({exc})") from None


def _parquet_records(data: bytes, name: str):
    import pyarrow as pa  # imported here: the web process should not pay for pyarrow at startup
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise ImportFailed(f"{name} is not a readable Parquet file ({exc})") from None
    for number, record in enumerate(table.to_pylist(), start=1):
        yield f"row {number}", _unflatten({key: value for key, value in record.items() if value is not None})


def _unflatten(record: dict) -> dict:
    """`{"a.system": "x", "a.text": "y"}` → `{"a": {"system": "x", "text": "y"}}`; a
    `judgments` cell holding JSON text is parsed."""
    row: dict = {}
    for key, value in record.items():
        head, dot, tail = key.partition(".")
        if dot and head in ("a", "b"):
            row.setdefault(head, {})
            if isinstance(row[head], dict):
                row[head][tail] = value
        else:
            row[key] = value
    if isinstance(row.get("judgments"), str):
        try:
            row["judgments"] = json.loads(row["judgments"])
        except json.JSONDecodeError:
            pass  # parse_duet_row names the field
    return row


# --- Duet rows ------------------------------------------------------------------------------


def _fail(where: str, name: str, problem: str):
    raise ImportFailed(f"{where}: field '{name}' {problem}")


def _text(where, row, name, *, required=False, limit=None, allow_empty=True) -> str:
    value = row.get(name)
    if value is None:
        if required:
            _fail(where, name, "is missing")
        return ""
    if not isinstance(value, str):
        _fail(where, name, f"must be text, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        _fail(where, name, "is empty")
    if limit and len(value) > limit:
        _fail(where, name, f"is longer than {limit} characters")
    return value


def _verdict(where, name, value) -> str:
    normalised = value.strip().lower() if isinstance(value, str) else value
    if normalised not in Verdict.values:
        _fail(where, name, f"must be one of {', '.join(Verdict.values)}; got {value!r}")
    return normalised


def _side(where, row, name) -> SideSpec:
    side = row.get(name)
    if side is None:
        _fail(where, name, "is missing")
    if not isinstance(side, dict):
        _fail(where, name, "must be an object with 'system' and 'text' (or 'media')")
    prefixed = {f"{name}.{key}": value for key, value in side.items()}
    system = _text(where, prefixed, f"{name}.system", required=True, limit=MAX_NAME_CHARS, allow_empty=False)
    media = _text(where, prefixed, f"{name}.media", limit=1000)
    if media:
        if side.get("text"):
            _fail(where, f"{name}.media", "and 'text' are both given; an output is text or a media file")
        return SideSpec(system=system.strip(), media=media)
    # An empty answer is a legitimate (bad) output, so only a missing one is an error.
    text = _text(where, prefixed, f"{name}.text", required=True)
    return SideSpec(system=system.strip(), text=text)


def _judgments(where, raw) -> list[JudgmentSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        _fail(where, "judgments", "must be a list of objects")
    specs = []
    for index, entry in enumerate(raw):
        name = f"judgments[{index}]"
        if not isinstance(entry, dict):
            _fail(where, name, "must be an object")
        prefixed = {f"{name}.{key}": value for key, value in entry.items()}
        annotator = _text(where, prefixed, f"{name}.annotator", limit=MAX_NAME_CHARS).strip()
        judge = _text(where, prefixed, f"{name}.judge", limit=MAX_NAME_CHARS).strip()
        if bool(annotator) == bool(judge):
            _fail(where, f"{name}.annotator", "or 'judge' is required (exactly one of them)")
        if entry.get("verdict") is None:
            _fail(where, f"{name}.verdict", "is missing")
        aspects = entry.get("aspects") or {}
        if not isinstance(aspects, dict):
            _fail(where, f"{name}.aspects", "must be an object")
        confidence = entry.get("confidence")
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
                _fail(where, f"{name}.confidence", f"must be a number from 0 to 1; got {confidence!r}")
            confidence = float(confidence)
        specs.append(
            JudgmentSpec(
                verdict=_verdict(where, f"{name}.verdict", entry["verdict"]),
                annotator=annotator,
                judge=judge,
                aspects=aspects,
                rationale=_text(where, prefixed, f"{name}.rationale"),
                confidence=confidence,
            )
        )
    seen = set()
    for spec in specs:
        key = (spec.annotator, spec.judge)
        if key in seen:
            _fail(where, "judgments", f"has two judgments by {spec.annotator or spec.judge!r}")
        seen.add(key)
    return specs


def content_id(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"sha256:{digest[:32]}"


def parse_duet_row(where: str, row: dict) -> ItemSpec:
    prompt = _text(where, row, "prompt", required=True, allow_empty=False)
    a, b = _side(where, row, "a"), _side(where, row, "b")
    if a.system == b.system:
        _fail(where, "b.system", f"must differ from 'a.system' (both are {a.system!r})")
    if bool(a.media) != bool(b.media):
        _fail(where, "b.media" if a.media else "a.media", "is missing: both sides are media files or both text")
    if isinstance(row.get("id"), int) and not isinstance(row.get("id"), bool):
        row = {**row, "id": str(row["id"])}  # numeric ids are common in JSONL and Parquet
    external_id = _text(where, row, "id", limit=MAX_ID_CHARS).strip()
    derived = not external_id
    if derived:
        external_id = content_id(prompt, a.system, a.text, a.media, b.system, b.text, b.media)
    gold = _verdict(where, "gold", row["gold"]) if row.get("gold") not in (None, "") else ""
    check_kind = _text(where, row, "check").strip().lower()
    if check_kind and check_kind not in (CheckKind.GOLD, CheckKind.ATTENTION):
        _fail(where, "check", f"must be 'gold' or 'attention'; got {check_kind!r}")
    if check_kind and not gold:
        _fail(where, "gold", f"is missing: a {check_kind} check needs the expected verdict")
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        _fail(where, "metadata", "must be an object")
    return ItemSpec(
        where=where,
        external_id=external_id,
        id_derived=derived,
        prompt=prompt,
        a=a,
        b=b,
        category=_text(where, row, "category", limit=100).strip(),
        gold=gold,
        gold_explanation=_text(where, row, "gold_explanation"),
        check_kind=check_kind or (CheckKind.GOLD if gold else ""),
        judgments=_judgments(where, row.get("judgments")),
        metadata=metadata,
    )


# --- converters for public formats ----------------------------------------------------------

HH_ASSISTANT = "\n\nAssistant:"
HH_ANNOTATOR = "hh-rlhf"
HH_SYSTEMS = ("hh-rlhf-chosen", "hh-rlhf-rejected")


def from_hh_rlhf(where: str, row: dict, seed: int = 0) -> dict:
    """Anthropic HH-RLHF: `chosen` and `rejected` are whole dialogues that share everything
    up to the last assistant turn. That shared part is the prompt; the two replies are the
    outputs, on sides drawn from a generator seeded by the seed and the pair itself (so a
    re-import puts them where they were), and the original preference becomes an imported
    judgment by the external annotator "hh-rlhf"."""
    chosen = _text(where, row, "chosen", required=True, allow_empty=False)
    rejected = _text(where, row, "rejected", required=True, allow_empty=False)
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(HH_ASSISTANT)
    if cut < 0:
        _fail(where, "chosen", "and 'rejected' share no dialogue up to an 'Assistant:' turn")
    head = cut + len(HH_ASSISTANT)
    external_id = content_id(chosen, rejected)
    chosen_side = "a" if random.Random(f"{seed}:{external_id}").random() < 0.5 else "b"
    replies = {"chosen": chosen[head:].strip(), "rejected": rejected[head:].strip()}
    sides = {
        chosen_side: {"system": HH_SYSTEMS[0], "text": replies["chosen"]},
        "b" if chosen_side == "a" else "a": {"system": HH_SYSTEMS[1], "text": replies["rejected"]},
    }
    return {
        "id": external_id,
        "prompt": chosen[:head].strip(),
        "a": sides["a"],
        "b": sides["b"],
        "judgments": [{"annotator": HH_ANNOTATOR, "verdict": chosen_side}],
        "metadata": {"source": "hh-rlhf", "chosen_side": chosen_side},
    }


PANDALM_VERDICTS = {0: "tie", 1: "a", 2: "b"}
PANDALM_ANNOTATORS = ("annotator1", "annotator2", "annotator3")


def from_pandalm(where: str, row: dict, seed: int = 0) -> dict:
    """PandaLM's human-annotated test set: `response1` is side A, `response2` side B, the
    two systems are named by `cmp_key` ("bloom-7b_llama-7b"), and each of annotator1..3
    (0 = tie, 1 = response1 better, 2 = response2 better) becomes an imported judgment."""
    instruction = _text(where, row, "instruction", required=True).strip()
    extra = _text(where, row, "input").strip()
    if not (instruction or extra):
        _fail(where, "instruction", "is empty (and so is 'input')")
    cmp_key = _text(where, row, "cmp_key", required=True, allow_empty=False)
    systems = cmp_key.split("_")
    if len(systems) != 2 or not all(systems) or systems[0] == systems[1]:
        _fail(where, "cmp_key", f"must name two different systems as 'first_second'; got {cmp_key!r}")
    judgments = []
    for name in PANDALM_ANNOTATORS:
        label = row.get(name)
        if label is None:
            continue
        if isinstance(label, str) and label.strip().isdigit():
            label = int(label)
        if label not in PANDALM_VERDICTS or isinstance(label, bool):
            _fail(where, name, f"must be 0 (tie), 1 (response1 better) or 2 (response2 better); got {label!r}")
        judgments.append({"annotator": name, "verdict": PANDALM_VERDICTS[label]})
    idx = row.get("idx")
    # The published file has a few responses stored as JSON booleans (a model answered
    # "True"); they are text answers that a JSON round trip turned into values.
    row = {**row, **{key: _scalar_text(row.get(key)) for key in ("response1", "response2")}}
    return {
        "id": f"pandalm-{idx}" if idx is not None else None,
        "prompt": "\n\n".join(part for part in (instruction, extra) if part),
        "category": _text(where, row, "motivation_app", limit=100),
        "a": {"system": systems[0], "text": _text(where, row, "response1", required=True)},
        "b": {"system": systems[1], "text": _text(where, row, "response2", required=True)},
        "judgments": judgments,
        "metadata": {"source": "pandalm"},
    }


def _scalar_text(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return str(value)
    return value


CONVERTERS = {"hh-rlhf": from_hh_rlhf, "pandalm": from_pandalm}


def parse_items(data: bytes, name: str, fmt: str = "duet", seed: int = 0) -> list[ItemSpec]:
    """Every row of the file as an ItemSpec; ImportFailed at the first bad one."""
    if fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    convert = CONVERTERS.get(fmt)
    specs, first_seen = [], {}
    for where, row in read_records(data, name):
        if convert is not None:
            row = {key: value for key, value in convert(where, row, seed).items() if value is not None}
        spec = parse_duet_row(where, row)
        earlier = first_seen.get(spec.external_id)
        if earlier is not None:
            if spec.id_derived:
                continue  # the same comparison twice in one file: one item
            _fail(where, "id", f"{spec.external_id!r} was already used at {earlier}")
        first_seen[spec.external_id] = where
        specs.append(spec)
    if not specs:
        raise ImportFailed(f"{name} has no rows")
    return specs


# --- media zips -----------------------------------------------------------------------------


class MediaArchive:
    """The media zip of an import. Every entry name is checked up front (no `..`, no
    absolute paths) and the declared sizes are bounded; reads are bounded again by the
    bytes actually decompressed, since a zip's declared sizes can lie."""

    def __init__(self, handle, name: str = "media zip"):
        self.name = name
        try:
            self.zip = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportFailed(f"{name} is not a valid zip file ({exc})") from None
        entries = [info for info in self.zip.infolist() if not info.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise ImportFailed(f"{name} has {len(entries):,} files; at most {MAX_ZIP_ENTRIES:,} are accepted")
        total, limit = 0, media_zip_max_bytes()
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in entries:
            self.entries[self._safe_name(info.filename)] = info
            total += info.file_size
        if total > limit:
            raise ImportFailed(f"{name} decompresses to {total:,} bytes; the limit is {limit:,} bytes")
        self.budget = limit  # bytes still allowed to be decompressed

    def _safe_name(self, raw: str) -> str:
        name = raw.replace("\\", "/")
        path = PurePosixPath(name)
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
            raise ImportFailed(f"{self.name}: entry {raw!r} has an unsafe path (absolute or with '..'); refused")
        return str(path)

    def read(self, where: str, field_name: str, path: str) -> tuple[bytes, arena_media.MediaInfo]:
        key = str(PurePosixPath(path.replace("\\", "/")))  # "./img/x.png" names "img/x.png"
        info = self.entries.get(key)
        if info is None:
            _fail(where, field_name, f"names {path!r}, which is not in the media zip")
        per_file = getattr(settings, "MAX_UPLOAD_BYTES", arena_media.DEFAULT_MAX_BYTES)
        if info.file_size > per_file:
            _fail(where, field_name, f"{path!r} is {info.file_size:,} bytes; the limit is {per_file:,} bytes")
        with self.zip.open(info) as handle:
            data = handle.read(min(per_file, self.budget) + 1)
        if len(data) > per_file or len(data) > self.budget:
            _fail(where, field_name, f"{path!r} decompresses to more than its declared size allows")
        self.budget -= len(data)
        try:
            media_info = arena_media.validate_media(data, filename=path, max_bytes=per_file)
        except arena_media.MediaError as exc:
            _fail(where, field_name, f"is not acceptable media: {exc}")
        return data, media_info
