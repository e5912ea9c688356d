"""A judge that replays verdicts given with the data: for imports, replays and simulation.

Records look like ``{"judge": NAME, "verdict": "a" | "b" | "tie", "confidence": 0.8}``
(confidence optional). PandaLM-style verdicts ("1", "2", "Tie", "0") are read too; anything
else is kept as ``unparsable`` with its text, never mapped to a guess. Only one order is
known, so ``order_consistent`` is None.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import A, B, TIE, UNPARSABLE, AutomaticJudge, JudgeVerdict, PairItem

_VERDICT_SPELLINGS = {
    "a": A, "1": A, "[[a]]": A, "response1": A,
    "b": B, "2": B, "[[b]]": B, "response2": B,
    "tie": TIE, "0": TIE, "c": TIE, "[[c]]": TIE,
}


def normalise_verdict(value) -> str:
    """``a``, ``b``, ``tie`` or ``unparsable`` from the spellings imports use."""
    return _VERDICT_SPELLINGS.get(str(value).strip().lower(), UNPARSABLE)


class ImportedJudge(AutomaticJudge):
    """Verdicts by item id. An item without a record is unparsable ("no verdict imported")."""

    kind = "external_judge"

    def __init__(self, name: str, records: Mapping[str, Mapping], version: str = "imported",
                 modalities: frozenset[str] = frozenset({"text", "image", "audio"})):
        self.name = name
        self.version = version
        # It judged whatever it was given elsewhere; the modality promise is the source's.
        self.modalities = modalities
        self.records = {str(item_id): record for item_id, record in records.items()}

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        return [self._replay(item.id) for item in items]

    def _replay(self, item_id: str) -> JudgeVerdict:
        record = self.records.get(str(item_id))
        if record is None:
            return self._verdict(item_id, UNPARSABLE, detail="no verdict imported for this item")
        raw = record.get("verdict")
        verdict = normalise_verdict(raw)
        if verdict == UNPARSABLE:
            return self._verdict(item_id, UNPARSABLE, detail=f"unreadable verdict {str(raw)[:80]!r}")
        confidence = record.get("confidence")
        confidence = float(confidence) if isinstance(confidence, int | float) else None
        return self._verdict(item_id, verdict, confidence=confidence, order_consistent=None)
