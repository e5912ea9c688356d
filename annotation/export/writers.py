"""One writer per file format, all with the same contract, so the export streams rows the
same way whatever lands on disk."""

from __future__ import annotations

import csv
import json
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from .rows import BOOL, FLOAT, INT, JSON, MESSAGES, Column


class RowWriter(ABC):
    """Writes rows to one path.

    Contract: `write(rows)` appends a batch, a list of dicts keyed by the writer's column
    names; `close()` finishes the file and must be called once after the last batch. A
    writer holds at most one batch in memory, so an export of any size runs in the memory
    of one batch. The path is a temporary one: the export renames it into place only
    after `close()` returns.
    """

    def __init__(self, path: Path, columns: tuple[Column, ...]):
        self.path = path
        self.columns = columns
        self.n_rows = 0

    @abstractmethod
    def write(self, rows: list[dict]) -> None:
        """Append `rows`."""

    @abstractmethod
    def close(self) -> None:
        """Finish the file (footers, flushes, conversions)."""


class JsonLinesWriter(RowWriter):
    def __init__(self, path, columns):
        super().__init__(path, columns)
        self._file = open(path, "w", encoding="utf-8")

    def write(self, rows):
        names = [column.name for column in self.columns]
        lines = (json.dumps({name: row[name] for name in names}, ensure_ascii=False) + "\n" for row in rows)
        self._file.writelines(lines)
        self.n_rows += len(rows)

    def close(self):
        self._file.close()


class CsvWriter(RowWriter):
    def __init__(self, path, columns):
        super().__init__(path, columns)
        # newline="" is the csv module's requirement: it writes its own \r\n line ends and
        # must see newlines inside quoted fields untouched.
        self._file = open(path, "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow([column.name for column in columns])

    def write(self, rows):
        self._csv.writerows([_flat(column, row[column.name]) for column in self.columns] for row in rows)
        self.n_rows += len(rows)

    def close(self):
        self._file.close()


def _flat(column: Column, value):
    if value is None:
        return ""
    if column.kind in (JSON, MESSAGES):
        return json.dumps(value, ensure_ascii=False)
    return value


class ParquetWriter(RowWriter):
    """pyarrow's ParquetWriter, one row group per batch."""

    def __init__(self, path, columns):
        super().__init__(path, columns)
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self.schema = pa.schema([(column.name, _arrow_type(pa, column.kind)) for column in columns])
        self._writer = pq.ParquetWriter(str(path), self.schema)

    def write(self, rows):
        if not rows:
            return
        encoded = [{column.name: _cell(column, row[column.name]) for column in self.columns} for row in rows]
        self._writer.write_table(self._pa.Table.from_pylist(encoded, schema=self.schema))
        self.n_rows += len(rows)

    def close(self):
        self._writer.close()


def _cell(column: Column, value):
    return json.dumps(value, ensure_ascii=False) if column.kind == JSON else value


def _arrow_type(pa, kind: str):
    if kind == FLOAT:
        return pa.float64()
    if kind == INT:
        return pa.int64()
    if kind == BOOL:
        return pa.bool_()
    if kind == MESSAGES:
        return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.string()  # STRING, and JSON encoded as a string


class HuggingFaceWriter(RowWriter):
    """A `datasets` directory (`save_to_disk`). Rows stream into a Parquet file first;
    `datasets` converts it to Arrow batch by batch, so neither step holds the data set."""

    def __init__(self, path, columns):
        super().__init__(path, columns)
        self._staging = path.parent / f"{path.name}.staging"
        self._staging.mkdir()
        self._parquet = ParquetWriter(self._staging / "rows.parquet", columns)

    def write(self, rows):
        self._parquet.write(rows)
        self.n_rows += len(rows)

    def close(self):
        import datasets

        self._parquet.close()
        dataset = datasets.Dataset.from_parquet(
            str(self._parquet.path), cache_dir=str(self._staging / "cache"), features=_features(datasets, self.columns)
        )
        dataset.save_to_disk(str(self.path))
        del dataset  # release the memory map of the staging cache before deleting it
        shutil.rmtree(self._staging)


def _features(datasets, columns: tuple[Column, ...]):
    # Explicit features, so an export with no rows still has its columns and types.
    value = {FLOAT: "float64", INT: "int64", BOOL: "bool"}
    features = {}
    for column in columns:
        if column.kind == MESSAGES:
            features[column.name] = datasets.List(
                {"role": datasets.Value("string"), "content": datasets.Value("string")}
            )
        else:
            features[column.name] = datasets.Value(value.get(column.kind, "string"))
    return datasets.Features(features)


WRITERS: dict[str, type[RowWriter]] = {
    "trl": JsonLinesWriter,
    "jsonl": JsonLinesWriter,
    "csv": CsvWriter,
    "parquet": ParquetWriter,
    "hf": HuggingFaceWriter,
}
