"""Reading battle logs: FastChat's `clean_battle` JSON and Duet's own JSONL.

Real logs hold rows that cannot be a battle (the same system on both sides, no winner,
a missing model, an unreadable time). Such a row is skipped and counted by reason, so a
log is never refused for a few of them; the counts go into the command's output and the
board's notes. A file that is not a log at all (not JSON, not an array of objects, a line
that is not JSON) is refused naming the line, and so is a log with no usable battle.
"""

import datetime as dt
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from arena.jsonl import JsonlError, read_objects

FASTCHAT_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
OUTCOMES = ("a", "b", "tie", "both_bad")
FORMATS = ("fastchat", "jsonl")
MAX_NAME = 200


class BattleLogError(ValueError):
    """The file is not a battle log (or holds no usable battle): nothing is imported."""


class SkippedRow(Exception):
    """One row that is not a usable battle; `reason` is the phrase it is counted under."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BattleRecord:
    system_a: str
    system_b: str
    outcome: str  # a | b | tie | both_bad
    tstamp: dt.datetime
    anonymous: bool = True
    judge: str = ""
    weight: float = 1.0
    category: str = ""
    style_a: dict | None = None
    style_b: dict | None = None

    def as_rating_row(self) -> dict:
        row = {"system_a": self.system_a, "system_b": self.system_b, "outcome": self.outcome, "weight": self.weight}
        if self.style_a is not None and self.style_b is not None:
            row["style_a"], row["style_b"] = self.style_a, self.style_b
        return row


def describe_skipped(skipped: dict[str, int]) -> str:
    """`skipped 25 rows: 17 with model_a and model_b the same system, 3 without a winner, ...`
    (largest count first)."""
    total = sum(skipped.values())
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items(), key=lambda item: (-item[1], item[0])))
    return f"skipped {total} row{'s' if total != 1 else ''}: {parts}" if total else "skipped 0 rows"


class BattleLog:
    """The usable battles of a log file, read lazily, and the rows skipped, counted by reason.

    Iterating yields `BattleRecord`s; afterwards `rows`, `battles` and `skipped` hold the
    counts. Iteration raises `BattleLogError` for a file that is not a log, and at the end
    for a log in which no row was a usable battle.
    """

    def __init__(self, path: Path, fmt: str):
        if fmt not in FORMATS:
            raise BattleLogError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        path = Path(path)
        if not path.is_file():
            raise BattleLogError(f"{path}: no such file")
        self.path, self.fmt = path, fmt
        self.rows = self.battles = 0
        self.skipped: Counter[str] = Counter()

    def __iter__(self) -> Iterator[BattleRecord]:
        self.rows = self.battles = 0
        self.skipped = Counter()
        read_row = _fastchat_record if self.fmt == "fastchat" else _jsonl_record
        rows = _fastchat_rows(self.path) if self.fmt == "fastchat" else _jsonl_rows(self.path)
        for row in rows:
            self.rows += 1
            try:
                record = read_row(row)
            except SkippedRow as skip:
                self.skipped[skip.reason] += 1
                continue
            self.battles += 1
            yield record
        if not self.battles:
            detail = f"; {describe_skipped(self.skipped)}" if self.rows else ""
            raise BattleLogError(f"{self.path}: no usable battle in {self.rows} rows{detail}")

    def describe_skipped(self) -> str:
        return describe_skipped(self.skipped)


def read_battles(path: Path, fmt: str) -> BattleLog:
    return BattleLog(path, fmt)


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8")


def _timestamp(value) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        parsed = dt.datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        raise SkippedRow("with an unreadable tstamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _names(row: dict, field_a: str, field_b: str) -> tuple[str, str]:
    names = []
    for field in (field_a, field_b):
        value = row.get(field)
        if not isinstance(value, str) or not value.strip():
            raise SkippedRow(f"without {field}")
        if len(value.strip()) > MAX_NAME:
            raise SkippedRow(f"with a {field} longer than {MAX_NAME} characters")
        names.append(value.strip())
    if names[0] == names[1]:
        raise SkippedRow(f"with {field_a} and {field_b} the same system")
    return names[0], names[1]


def _fastchat_style(metadata, side: str) -> dict | None:
    if not isinstance(metadata, dict):
        return None
    try:
        headers = metadata.get(f"header_count_{side}", {}) or {}
        lists = metadata.get(f"list_count_{side}", {}) or {}
        bold = metadata.get(f"bold_count_{side}", {}) or {}
        return {
            "length": float(metadata[f"sum_assistant_{side}_tokens"]),
            "headers": float(sum(headers.values())),
            "lists": float(sum(lists.values())),
            "bold": float(sum(bold.values())),
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _fastchat_rows(path: Path) -> Iterator[dict]:
    try:
        with _open(path) as handle:
            rows = json.load(handle)
    except json.JSONDecodeError as exc:
        raise BattleLogError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise BattleLogError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise BattleLogError(f"{path}: not a readable gzip file ({exc})") from None
    if not isinstance(rows, list):
        raise BattleLogError(f"{path}: expected a JSON array of battles, got {type(rows).__name__}")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise BattleLogError(f"{path}: battle {number}: expected an object, got {type(row).__name__}")
        yield row


def _fastchat_record(row: dict) -> BattleRecord:
    """FastChat `clean_battle` JSON: an array of objects with model_a, model_b, winner,
    anony, tstamp, judge and optional conv_metadata (style counts)."""
    system_a, system_b = _names(row, "model_a", "model_b")
    winner = row.get("winner")
    if winner is None:
        raise SkippedRow("without a winner")
    if winner not in FASTCHAT_WINNERS:
        raise SkippedRow("with an unknown winner")
    metadata = row.get("conv_metadata")
    style_a, style_b = _fastchat_style(metadata, "a"), _fastchat_style(metadata, "b")
    return BattleRecord(
        system_a=system_a,
        system_b=system_b,
        outcome=FASTCHAT_WINNERS[winner],
        tstamp=_timestamp(row.get("tstamp")),
        anonymous=bool(row.get("anony", True)),
        judge=str(row.get("judge", ""))[:200],
        category=str(row.get("category", "") or "")[:100],
        style_a=style_a if style_b is not None else None,
        style_b=style_b if style_a is not None else None,
    )


def _jsonl_rows(path: Path) -> Iterator[dict]:
    with _open(path) as handle:
        try:
            for _, row in read_objects(handle):
                yield row
        except JsonlError as exc:
            raise BattleLogError(f"{path}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise BattleLogError(f"{path}: not UTF-8 text (byte {exc.start} of a block)") from None
        except (gzip.BadGzipFile, EOFError) as exc:
            raise BattleLogError(f"{path}: not a readable gzip file ({exc})") from None


def _jsonl_record(row: dict) -> BattleRecord:
    """Duet's battle JSONL, one object a line: system_a, system_b, outcome (a, b, tie,
    both_bad), optional tstamp, anonymous, judge, weight, category, style {a: {...}, b: {...}}."""
    system_a, system_b = _names(row, "system_a", "system_b")
    outcome = row.get("outcome")
    if outcome is None:
        raise SkippedRow("without an outcome")
    if outcome not in OUTCOMES:
        raise SkippedRow("with an unknown outcome")
    try:
        weight = float(row.get("weight", 1.0))
    except (TypeError, ValueError):
        raise SkippedRow("with a weight that is not a number") from None
    if not weight > 0 or weight == float("inf"):
        raise SkippedRow("with a weight that is not a positive number")
    style = row.get("style")
    if style is not None and not (isinstance(style, dict) and isinstance(style.get("a"), dict)
                                  and isinstance(style.get("b"), dict)):  # fmt: skip
        raise SkippedRow('with a style that is not {"a": {...}, "b": {...}}')
    return BattleRecord(
        system_a=system_a,
        system_b=system_b,
        outcome=outcome,
        tstamp=_timestamp(row.get("tstamp")),
        anonymous=bool(row.get("anonymous", True)),
        judge=str(row.get("judge", ""))[:200],
        weight=weight,
        category=str(row.get("category", "") or "")[:100],
        style_a=style["a"] if style else None,
        style_b=style["b"] if style else None,
    )
