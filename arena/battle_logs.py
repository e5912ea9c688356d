"""Reading battle logs: FastChat's `clean_battle` JSON and Duet's own JSONL.

Both readers yield `BattleRecord`s and raise `BattleLogError` naming the item or line
and the field at the first bad row, so an import can refuse the whole file.
"""

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FASTCHAT_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
OUTCOMES = ("a", "b", "tie", "both_bad")
FORMATS = ("fastchat", "jsonl")


class BattleLogError(ValueError):
    pass


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


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8")


def _timestamp(value, where: str) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        parsed = dt.datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        raise BattleLogError(f"{where}: field 'tstamp' is not a Unix time or ISO date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _name(row: dict, field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BattleLogError(f"{where}: field '{field}' is missing or not a system name")
    if len(value) > 200:
        raise BattleLogError(f"{where}: field '{field}' is longer than 200 characters")
    return value.strip()


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


def read_fastchat(path: Path) -> Iterator[BattleRecord]:
    """FastChat `clean_battle` JSON: an array of objects with model_a, model_b, winner,
    anony, tstamp, judge and optional conv_metadata (style counts)."""
    try:
        with _open(path) as handle:
            rows = json.load(handle)
    except json.JSONDecodeError as exc:
        raise BattleLogError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(rows, list):
        raise BattleLogError(f"{path}: expected a JSON array of battles")
    for number, row in enumerate(rows, start=1):
        where = f"battle {number}"
        if not isinstance(row, dict):
            raise BattleLogError(f"{where}: expected an object")
        winner = row.get("winner")
        if winner not in FASTCHAT_WINNERS:
            raise BattleLogError(
                f"{where}: field 'winner' must be one of {', '.join(FASTCHAT_WINNERS)}; got {winner!r}"
            )
        system_a, system_b = _name(row, "model_a", where), _name(row, "model_b", where)
        if system_a == system_b:
            raise BattleLogError(f"{where}: model_a and model_b are the same system {system_a!r}")
        metadata = row.get("conv_metadata")
        style_a, style_b = _fastchat_style(metadata, "a"), _fastchat_style(metadata, "b")
        yield BattleRecord(
            system_a=system_a,
            system_b=system_b,
            outcome=FASTCHAT_WINNERS[winner],
            tstamp=_timestamp(row.get("tstamp"), where),
            anonymous=bool(row.get("anony", True)),
            judge=str(row.get("judge", ""))[:200],
            category=str(row.get("category", "") or "")[:100],
            style_a=style_a if style_b is not None else None,
            style_b=style_b if style_a is not None else None,
        )


def read_jsonl(path: Path) -> Iterator[BattleRecord]:
    """Duet's battle JSONL, one object a line: system_a, system_b, outcome (a, b, tie,
    both_bad), optional tstamp, anonymous, judge, weight, category, style {a: {...}, b: {...}}."""
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BattleLogError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise BattleLogError(f"{where}: expected an object")
            outcome = row.get("outcome")
            if outcome not in OUTCOMES:
                raise BattleLogError(f"{where}: field 'outcome' must be one of {', '.join(OUTCOMES)}; got {outcome!r}")
            system_a, system_b = _name(row, "system_a", where), _name(row, "system_b", where)
            if system_a == system_b:
                raise BattleLogError(f"{where}: system_a and system_b are the same system {system_a!r}")
            try:
                weight = float(row.get("weight", 1.0))
            except (TypeError, ValueError):
                raise BattleLogError(f"{where}: field 'weight' is not a number") from None
            if not weight > 0:
                raise BattleLogError(f"{where}: field 'weight' must be positive")
            style = row.get("style")
            if style is not None and not (isinstance(style, dict) and isinstance(style.get("a"), dict)
                                          and isinstance(style.get("b"), dict)):  # fmt: skip
                raise BattleLogError(f"{where}: field 'style' must be {{\"a\": {{...}}, \"b\": {{...}}}}")
            yield BattleRecord(
                system_a=system_a,
                system_b=system_b,
                outcome=outcome,
                tstamp=_timestamp(row.get("tstamp"), where),
                anonymous=bool(row.get("anonymous", True)),
                judge=str(row.get("judge", ""))[:200],
                weight=weight,
                category=str(row.get("category", "") or "")[:100],
                style_a=style["a"] if style else None,
                style_b=style["b"] if style else None,
            )


def read_battles(path: Path, fmt: str) -> Iterator[BattleRecord]:
    if fmt not in FORMATS:
        raise BattleLogError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not Path(path).is_file():
        raise BattleLogError(f"{path}: no such file")
    return read_fastchat(Path(path)) if fmt == "fastchat" else read_jsonl(Path(path))
