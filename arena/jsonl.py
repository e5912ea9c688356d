"""JSON Lines, one object a line: the one reader for every JSONL file Duet takes (battle
logs, project imports), so an error names its line and column the same way everywhere.

Lines are split on line breaks only, never on the Unicode separators (U+2028, U+0085) that
JSON allows raw inside a string.
"""

import json
from collections.abc import Iterable, Iterator


class JsonlError(ValueError):
    """A line that is not one JSON object; `str()` says where: "line 7, column 3: ..."."""

    def __init__(self, line: int, problem: str, column: int | None = None):
        self.line, self.column, self.problem = line, column, problem
        where = f"line {line}" if column is None else f"line {line}, column {column}"
        super().__init__(f"{where}: {problem}")


def read_objects(lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line, numbered from 1."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonlError(number, f"not valid JSON ({exc.msg})", column=exc.colno) from None
        if not isinstance(row, dict):
            raise JsonlError(number, f"expected a JSON object, got {type(row).__name__}")
        yield number, row
