"""Exports of judgments: preference data sets for training (`trl`, `hf`) and per-judgment
provenance tables (`jsonl`, `csv`, `parquet`).

    result = export_dataset(ExportOptions(output="out.jsonl", format="trl", project="helpfulness"))

`selection` decides which judgments (scope, source, current only) and builds the quality
math's input; `rows` what a row holds; `writers` one writer per format; `service` the
export itself; `jobs` and `views` run it in the background for the API and the admin page.
"""

from .selection import ALL_ARENAS, Selection, SelectionError, assess_selection, load_judgments, pseudonym, quality_dict
from .service import AGGREGATIONS, ExportError, ExportOptions, ExportResult, export_dataset
from .writers import PREFERENCE_FORMATS, WRITERS

FORMATS = tuple(WRITERS)

__all__ = [
    "AGGREGATIONS",
    "ALL_ARENAS",
    "FORMATS",
    "PREFERENCE_FORMATS",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "Selection",
    "SelectionError",
    "assess_selection",
    "export_dataset",
    "load_judgments",
    "pseudonym",
    "quality_dict",
]
