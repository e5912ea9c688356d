"""Reading battle logs: FastChat's `clean_battle` JSON and Duet's own JSONL.

Real logs hold rows that cannot be a battle (the same system on both sides, no winner,
a missing model, an unreadable time). Such a row is skipped and counted by reason, so a
log is never refused for a few of them; the counts go into the command's output and the
board's notes. A file that is not a log at all (not JSON, not an array of objects, a line
that is not JSON) is refused naming the line, and so is a log with no usable battle.

Two readers share those rules. `read_battles` yields one `BattleRecord` a row, for the
import. `read_battle_columns` gives the usable battles as numpy columns, for a leaderboard
straight from a file: a FastChat log is decoded by msgspec into slim structs holding only
the fields asked for, and every check runs once per distinct value (a million rows name a
hundred systems), not once per row. Any file the slim decoder refuses (bad JSON, a field of
an unexpected type) is read row by row instead, so errors and skip counts stay the same.
"""

import datetime as dt
import gzip
import json
import mmap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from arena.jsonl import JsonlError, read_objects

FASTCHAT_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
OUTCOMES = ("a", "b", "tie", "both_bad")  # also the Outcome codes 0..3 of arena.ratings
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


# --- columns -------------------------------------------------------------------------

STYLE_FEATURES = ("length", "headers", "lists", "bold")  # arena.ratings.TEXT_STYLE_FEATURES
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)
# Numeric tstamps strictly inside these bounds (years 1 and 9999, two days in) are surely
# readable; values outside, and non-finite ones, go through `_timestamp` one by one.
SAFE_TSTAMP = (-62135596800.0 + 2 * 86400, 253402300800.0 - 2 * 86400)


@dataclass(frozen=True, eq=False)
class BattleColumns:
    """The usable battles of a log as columns, in file order, and the rows skipped.

    Optional columns are None unless asked for: reading the anonymous flag, a category, a
    time or style counts for a million rows costs what the leaderboard then does not need."""

    path: Path
    systems: tuple[str, ...]  # every system a usable battle names, sorted
    a: np.ndarray  # shape (n_battles,) int64 index into systems
    b: np.ndarray  # shape (n_battles,)
    outcome: np.ndarray  # shape (n_battles,) int8 index into OUTCOMES
    weight: np.ndarray  # shape (n_battles,) float64
    rows: int  # rows in the file, skipped ones included
    skipped: Counter
    anonymous: np.ndarray | None = None  # shape (n_battles,) bool
    category: np.ndarray | None = None  # shape (n_battles,) object (str)
    tstamp: np.ndarray | None = None  # shape (n_battles,) int64 microseconds since 1970 UTC
    style_a: np.ndarray | None = None  # shape (n_battles, 4) STYLE_FEATURES; NaN rows: none given
    style_b: np.ndarray | None = None  # shape (n_battles, 4)

    @property
    def battles(self) -> int:
        return len(self.a)

    def describe_skipped(self) -> str:
        return describe_skipped(self.skipped)

    def take(self, index: np.ndarray) -> "BattleColumns":
        """The battles picked by a boolean mask or an index array, in that order."""
        def pick(column):
            return None if column is None else column[index]

        return BattleColumns(
            self.path, self.systems, self.a[index], self.b[index], self.outcome[index], self.weight[index],
            self.rows, self.skipped, pick(self.anonymous), pick(self.category), pick(self.tstamp),
            pick(self.style_a), pick(self.style_b),
        )  # fmt: skip

    def in_time_order(self) -> "BattleColumns":
        """Stable: battles with the same time keep their file order."""
        if self.tstamp is None:
            raise ValueError("the log was read without tstamps")
        return self.take(np.argsort(self.tstamp, kind="stable"))

    def to_battles(self, style: bool = False):
        """`arena.ratings.Battles` in this order, over the systems these battles name."""
        from arena.ratings.battles import Battles

        used = np.flatnonzero(np.bincount(np.concatenate([self.a, self.b]), minlength=len(self.systems)))
        renumber = np.zeros(len(self.systems), dtype=np.int64)
        renumber[used] = np.arange(len(used))
        return Battles.from_arrays(
            [self.systems[i] for i in used.tolist()],
            renumber[self.a],
            renumber[self.b],
            self.outcome,
            self.weight,
            self.style_a if style else None,
            self.style_b if style else None,
            STYLE_FEATURES if style else (),
        )

    def has_style(self) -> np.ndarray:
        """shape (n_battles,) bool: style counts given for both sides."""
        if self.style_a is None:
            raise ValueError("the log was read without style counts")
        return ~(np.isnan(self.style_a).any(axis=1) | np.isnan(self.style_b).any(axis=1))


def read_battle_columns(
    path: Path, fmt: str, *, anonymous: bool = False, category: bool = False, tstamp: bool = False, style: bool = False
) -> BattleColumns:
    """The usable battles of a log as columns (see `BattleColumns`); the optional columns
    only when asked. Raises `BattleLogError` as `read_battles` does, with the same text."""
    log = BattleLog(path, fmt)  # checks the format and that the file exists
    if fmt == "fastchat":
        columns = _fastchat_columns(log.path, anonymous=anonymous, category=category, tstamp=tstamp, style=style)
        if columns is not None:
            return columns
    return _columns_from_records(log, anonymous=anonymous, category=category, tstamp=tstamp, style=style)


def _columns_from_records(
    log: BattleLog, *, anonymous: bool, category: bool, tstamp: bool, style: bool
) -> BattleColumns:
    """Columns from the row reader: any format, any file, one Python object a row."""
    names_a, names_b, outcomes, weights, anonymity, categories, times, styles_a, styles_b = ([] for _ in range(9))
    outcome_code = {outcome: code for code, outcome in enumerate(OUTCOMES)}
    for record in log:
        names_a.append(record.system_a)
        names_b.append(record.system_b)
        outcomes.append(outcome_code[record.outcome])
        weights.append(record.weight)
        anonymity.append(record.anonymous)
        if category:
            categories.append(record.category)
        if tstamp:
            times.append((record.tstamp - EPOCH) // MICROSECOND)
        if style:
            side_a, side_b = _style_counts(record.style_a), _style_counts(record.style_b)
            if side_a is None or side_b is None:
                side_a = side_b = [np.nan] * len(STYLE_FEATURES)
            styles_a.append(side_a)
            styles_b.append(side_b)
    systems = sorted(set(names_a) | set(names_b))
    index = {name: i for i, name in enumerate(systems)}
    return BattleColumns(
        path=log.path,
        systems=tuple(systems),
        a=np.array([index[name] for name in names_a], dtype=np.int64),
        b=np.array([index[name] for name in names_b], dtype=np.int64),
        outcome=np.array(outcomes, dtype=np.int8),
        weight=np.array(weights, dtype=np.float64),
        anonymous=np.array(anonymity, dtype=bool) if anonymous else None,
        rows=log.rows,
        skipped=log.skipped,
        category=np.array(categories, dtype=object) if category else None,
        tstamp=np.array(times, dtype=np.int64) if tstamp else None,
        style_a=np.array(styles_a, dtype=np.float64).reshape(-1, len(STYLE_FEATURES)) if style else None,
        style_b=np.array(styles_b, dtype=np.float64).reshape(-1, len(STYLE_FEATURES)) if style else None,
    )


def _style_counts(style: dict | None) -> list[float] | None:
    """The four counts of a side, or None when the side has none (or not all four)."""
    if not isinstance(style, dict):
        return None
    try:
        return [float(style[feature]) for feature in STYLE_FEATURES]
    except (KeyError, TypeError, ValueError):
        return None


_FASTCHAT_SKIPS = (
    "without model_a",
    f"with a model_a longer than {MAX_NAME} characters",
    "without model_b",
    f"with a model_b longer than {MAX_NAME} characters",
    "with model_a and model_b the same system",
    "without a winner",
    "with an unknown winner",
    "with an unreadable tstamp",
)  # in the order `_fastchat_record` checks them: a row is counted under its first
_OK, _MISSING, _TOO_LONG = 0, 1, 2


def _fastchat_decoder(anonymous: bool, category: bool, style: bool):
    import msgspec

    # A field of another type (a number for a name, true for a tstamp) fails the decode,
    # and the file is then read row by row, where each such value has its own rule.
    fields: list[tuple[str, Any, Any]] = [
        ("model_a", str | None, None),
        ("model_b", str | None, None),
        ("winner", str | None, None),
        ("tstamp", float | str | None, None),
    ]
    if anonymous:
        fields.append(("anony", Any, True))
    if category:
        fields.append(("category", Any, ""))
    if style:
        fields.append(("conv_metadata", Any, None))
    # gc=False: a million structs the cycle collector would otherwise rescan as they are
    # made (JSON values cannot form cycles).
    row = msgspec.defstruct("FastChatRow", fields, frozen=True, gc=False)
    return msgspec.json.Decoder(list[row]), (msgspec.DecodeError, msgspec.ValidationError)


class _Names:
    """Codes for raw name values, one per cleaned spelling, shared by both sides; each
    distinct raw value is checked once."""

    def __init__(self):
        self.code: dict[str, int] = {}  # cleaned spelling -> code

    def column(self, values: list) -> tuple[np.ndarray, np.ndarray]:
        """(code, status) per row, shape (n_rows,) each; code -1 where the status is not _OK."""
        raw = {value: k for k, value in enumerate(dict.fromkeys(values))}
        index = _codes(raw, values)
        codes, status = np.full(len(raw), -1, dtype=np.int64), np.zeros(len(raw), dtype=np.int8)
        for k, value in enumerate(raw):
            name = value.strip() if isinstance(value, str) else ""
            status[k] = _MISSING if not name else _TOO_LONG if len(name) > MAX_NAME else _OK
            if status[k] == _OK:
                codes[k] = self.code.setdefault(name, len(self.code))
        return codes[index], status[index]


def _codes(index: dict, values: list) -> np.ndarray:
    """index[value] for each value, shape (len(values),) int64 (map over a C method: about
    three times a comprehension's speed)."""
    return np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))


_UNREADABLE = np.iinfo(np.int64).min


def _tstamp_column(values: list, convert: bool = True) -> np.ndarray:
    """Microseconds since 1970 UTC, shape (n_rows,), _UNREADABLE where `_timestamp` would
    refuse the value; the same instant `_timestamp` gives, rounded the same way. With
    `convert` False only the refusals are found (readable numbers are left at 0)."""
    n = len(values)
    if set(map(type, values)) <= {float}:
        seconds, odd = np.array(values, dtype=np.float64), []
    else:
        seconds = np.array([value if type(value) is float else np.nan for value in values], dtype=np.float64)
        odd = [i for i, value in enumerate(values) if type(value) is not float]
    # datetime.fromtimestamp splits whole seconds from the fraction, then rounds the
    # fraction's microseconds half to even; so does this, so times sort as they did.
    safe = (seconds > SAFE_TSTAMP[0]) & (seconds < SAFE_TSTAMP[1])
    micros = np.full(n, _UNREADABLE, dtype=np.int64)
    if convert:
        fraction, whole = np.modf(seconds[safe])
        micros[safe] = whole.astype(np.int64) * 1_000_000 + np.round(fraction * 1e6).astype(np.int64)
    else:
        micros[safe] = 0
    odd_set = set(odd)
    parsed: dict[Any, int] = {}
    for i in [*odd, *(i for i in np.flatnonzero(~safe).tolist() if i not in odd_set)]:
        value = values[i]
        if value not in parsed or value is None:  # None means "now", read per row
            try:
                parsed[value] = (_timestamp(value) - EPOCH) // MICROSECOND
            except SkippedRow:
                parsed[value] = _UNREADABLE
        micros[i] = parsed[value]
    return micros


def _fastchat_style_columns(metadata: list) -> tuple[np.ndarray, np.ndarray]:
    """Style counts of both sides, shape (n_rows, 4) each; NaN rows where a side has none."""
    style_a = np.full((len(metadata), len(STYLE_FEATURES)), np.nan)
    style_b = np.full((len(metadata), len(STYLE_FEATURES)), np.nan)
    for i, row in enumerate(metadata):
        side_a, side_b = _fastchat_style(row, "a"), _fastchat_style(row, "b")
        if side_a is not None and side_b is not None:
            style_a[i] = [side_a[feature] for feature in STYLE_FEATURES]
            style_b[i] = [side_b[feature] for feature in STYLE_FEATURES]
    return style_a, style_b


def _decode_utf8_json(path: Path, decoder):
    """`decoder.decode` of the file, refusing (UnicodeDecodeError) any file that is not UTF-8,
    as the row reader does: msgspec checks the strings it keeps, not the fields it skips."""
    if str(path).endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            data = handle.read()
        return decoder.decode(data if data.isascii() else data.decode("utf-8"))
    # Mapped, not read: no copy of the file (300 MB for a million rows, ~0.3 s of CPU).
    # An empty file cannot be mapped (ValueError): the row reader then names the problem.
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        is_ascii = bool(np.frombuffer(mapped, dtype=np.uint8).max() < 0x80)
        return decoder.decode(mapped if is_ascii else bytes(mapped).decode("utf-8"))


def _fastchat_columns(
    path: Path, *, anonymous: bool, category: bool, tstamp: bool, style: bool
) -> BattleColumns | None:
    """Columns of a FastChat log, or None for a file the slim decoder cannot read (then
    the row reader reads it, and names the problem if it is not a log)."""
    decoder, refused = _fastchat_decoder(anonymous, category, style)
    try:
        rows = _decode_utf8_json(path, decoder)
    except (*refused, UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError, ValueError):
        return None
    n = len(rows)

    names = _Names()
    name_a, status_a = names.column(list(map(attrgetter("model_a"), rows)))
    name_b, status_b = names.column(list(map(attrgetter("model_b"), rows)))
    winner_column = list(map(attrgetter("winner"), rows))
    winner_index = {value: k for k, value in enumerate(dict.fromkeys(winner_column))}
    winners = _codes(winner_index, winner_column)
    codes = {outcome: code for code, outcome in enumerate(OUTCOMES)}
    # -1: no winner, -2: not a FastChat outcome
    outcome_of = np.array(
        [-1 if w is None else codes[FASTCHAT_WINNERS[w]] if w in FASTCHAT_WINNERS else -2 for w in winner_index],
        dtype=np.int8,
    )
    outcome = outcome_of[winners] if n else np.zeros(0, dtype=np.int8)
    # Every tstamp is checked, even when order does not matter: an unreadable one skips its row.
    times = _tstamp_column(list(map(attrgetter("tstamp"), rows)), convert=tstamp)

    checks = (
        status_a == _MISSING,
        status_a == _TOO_LONG,
        status_b == _MISSING,
        status_b == _TOO_LONG,
        (status_a == _OK) & (status_b == _OK) & (name_a == name_b),
        outcome == -1,
        outcome == -2,
        times == _UNREADABLE,
    )
    reason = np.full(n, -1, dtype=np.int8)
    for code, bad in enumerate(checks):
        reason[(reason < 0) & bad] = code
    per_reason = np.bincount(reason[reason >= 0], minlength=len(_FASTCHAT_SKIPS))
    skipped = Counter({_FASTCHAT_SKIPS[code]: int(k) for code, k in enumerate(per_reason) if k})
    keep = np.flatnonzero(reason < 0)
    if not len(keep):
        detail = f"; {describe_skipped(skipped)}" if n else ""
        raise BattleLogError(f"{path}: no usable battle in {n} rows{detail}")

    # Number the systems the kept battles name in sorted order, as the row reader does.
    spelling = list(names.code)  # code -> cleaned name
    used = np.flatnonzero(np.bincount(np.concatenate([name_a[keep], name_b[keep]]), minlength=len(spelling)))
    systems = sorted(spelling[code] for code in used.tolist())
    position = {name: i for i, name in enumerate(systems)}
    renumber = np.zeros(len(spelling), dtype=np.int64)
    renumber[used] = [position[spelling[code]] for code in used.tolist()]
    kept = rows if len(keep) == n else [rows[i] for i in keep.tolist()]
    style_a, style_b = _fastchat_style_columns([row.conv_metadata for row in kept]) if style else (None, None)
    return BattleColumns(
        path=path,
        systems=tuple(systems),
        a=renumber[name_a[keep]],
        b=renumber[name_b[keep]],
        outcome=outcome[keep].astype(np.int8),
        weight=np.ones(len(keep)),
        anonymous=np.fromiter(map(bool, map(attrgetter("anony"), kept)), dtype=bool, count=len(kept))
        if anonymous else None,
        rows=n,
        skipped=skipped,
        category=np.array([str(row.category or "")[:100] for row in kept], dtype=object) if category else None,
        tstamp=times[keep] if tstamp else None,
        style_a=style_a,
        style_b=style_b,
    )
