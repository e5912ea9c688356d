"""What an export can be asked for: the options, checked once, and their vocabularies.

No heavy imports here: the commands and the API read these at start-up."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# trl, hf: one preference row per comparison; jsonl, csv, parquet: one row per judgment.
FORMATS = ("trl", "jsonl", "csv", "parquet", "hf")
PREFERENCE_FORMATS = frozenset({"trl", "hf"})
AGGREGATIONS = ("dawid-skene", "majority", "none")
SOURCES = ("human", "judge", "all")
ALL_ARENAS = "all"
# Verdicts that say which side is better. Ties join preference rows only with
# include_ties; both_bad never does: "both are bad" has no chosen answer.
DECISIVE = ("a", "b")


class ExportError(ValueError):
    """Options that cannot make an export."""


@dataclass(frozen=True)
class ExportOptions:
    output: str
    format: str
    project: str | None = None
    arena: str | None = None  # an Arena's name, or ALL_ARENAS
    aggregate: str = "dawid-skene"
    min_confidence: float = 0.0
    include_ties: bool = False
    source: str = "human"
    # Leave out judgments of voters flagged for review (arena.board.outliers). None: the
    # installation's DUET_EXCLUDE_FLAGGED_VOTERS, resolved here so a queued job records
    # the choice made when it was asked for.
    exclude_flagged: bool | None = None

    def __post_init__(self):
        if self.exclude_flagged is None:
            from django.conf import settings

            object.__setattr__(self, "exclude_flagged", bool(settings.EXCLUDE_FLAGGED_VOTERS))
        if self.format not in FORMATS:
            raise ExportError(f"format must be one of {', '.join(FORMATS)}")
        if (self.project is None) == (self.arena is None):
            raise ExportError("choose exactly one of a project or an arena")
        if self.aggregate not in AGGREGATIONS:
            raise ExportError(f"aggregate must be one of {', '.join(AGGREGATIONS)}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ExportError("min_confidence must be between 0 and 1")
        if self.source not in SOURCES:
            raise ExportError(f"source must be one of {', '.join(SOURCES)}")
        if not self.output:
            raise ExportError("an output path is required")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExportOptions:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ExportError(f"unknown export options: {', '.join(sorted(unknown))}")
        return cls(**data)
