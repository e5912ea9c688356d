"""What a router knows about a comparison before any human has seen it.

The judge's own signals (its verdict, confidence, whether the two orders agreed) and cheap
properties of the pair that predict where judges go wrong: near-identical answers (people
call those ties, judges rarely do), a large length gap (judges favour the longer answer),
the prompt's length, category and modality. Plain Python, no Django, no numpy: the learned
policy vectorises these dicts.
"""

from __future__ import annotations

import math
import re

from .judges.base import NO_VERDICT, JudgeVerdict, PairItem

_WORD = re.compile(r"\w+", re.UNICODE)

NUMERIC_FEATURES = (
    "judge_confidence",
    "confidence_known",
    "order_consistent",
    "order_known",
    "judge_no_verdict",
    "length_difference",
    "relative_length_difference",
    "judge_picked_longer",
    "prompt_length",
    "output_similarity",
)
CATEGORICAL_FEATURES = ("judge_verdict", "category", "modality")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_jaccard(first: str, second: str) -> float:
    """|shared word types| / |all word types|; 1.0 for two empty answers (they are the same)."""
    a, b = set(words(first)), set(words(second))
    return len(a & b) / len(a | b) if a | b else 1.0


def comparison_features(item: PairItem, verdict: JudgeVerdict | None) -> dict[str, float | str]:
    """One comparison's features as a flat dict: numbers, and strings for categories.

    Lengths are in words on a log scale, so one long answer does not dominate a linear
    model. Unknown judge signals are 0 with a ``*_known`` flag beside them, so "the judge
    gave no confidence" is not read as "the judge had no confidence".
    """
    length_a, length_b = len(words(item.a)), len(words(item.b))
    has_verdict = verdict is not None and verdict.verdict not in NO_VERDICT
    confidence = verdict.confidence if has_verdict and verdict.confidence is not None else None
    consistent = verdict.order_consistent if verdict is not None else None
    picked_longer = 0.0
    if has_verdict and verdict.verdict in ("a", "b") and length_a != length_b:
        picked_longer = 1.0 if (verdict.verdict == "a") == (length_a > length_b) else -1.0
    return {
        "judge_confidence": confidence if confidence is not None else 0.0,
        "confidence_known": float(confidence is not None),
        "order_consistent": float(bool(consistent)),
        "order_known": float(consistent is not None),
        "judge_no_verdict": float(not has_verdict),
        "length_difference": math.log1p(abs(length_a - length_b)),
        "relative_length_difference": abs(length_a - length_b) / max(length_a, length_b, 1),
        "judge_picked_longer": picked_longer,
        "prompt_length": math.log1p(len(words(item.prompt))),
        "output_similarity": token_jaccard(item.a, item.b),
        "judge_verdict": verdict.verdict if verdict is not None else "none",
        "category": item.category or "none",
        "modality": item.modality,
    }
