"""Exports of judgments: preference data sets for training (`trl`, `hf`) and per-judgment
provenance tables (`jsonl`, `csv`, `parquet`).

    result = export_dataset(ExportOptions(output="out.jsonl", format="trl", project="helpfulness"))

`options` says what can be asked for; `selection` which judgments (scope, source, current
only) and the quality math's input; `rows` what a row holds; `writers` one writer per
format; `service` the export itself; `jobs` and `views` run it in the background for the
API and the admin page.

Names are resolved on first use (PEP 562): `from annotation.export import FORMATS` loads
only the options, so commands and URL modules start without the quality math.
"""

from importlib import import_module

_HOMES = {
    "AGGREGATIONS": "options", "ALL_ARENAS": "options", "FORMATS": "options", "PREFERENCE_FORMATS": "options",
    "SOURCES": "options", "ExportError": "options", "ExportOptions": "options",
    "Selection": "selection", "SelectionError": "selection", "SelectedJudgments": "selection",
    "assess_selection": "selection", "load_judgments": "selection", "pseudonym": "selection",
    "quality_dict": "selection", "annotator_name": "selection",
    "ExportResult": "service", "export_dataset": "service",
}  # fmt: skip

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
