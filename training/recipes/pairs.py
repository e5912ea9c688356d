"""Preference pairs: normalise Duet's export rows, split by prompt, build datasets.

A pair is ``{prompt, chosen, rejected, weight?, annotator? | source?, id?}`` as written by
Duet's TRL export. ``prompt`` is a string or a list of chat messages; with a message-list
prompt, string completions become one assistant message. ``weight`` is the probability that
the chosen/rejected order is right (a vote share or an aggregation posterior), 1 when absent.
A run's snapshot adds what the training methods (``noise.py``) read: ``judgments``, every
judgment on the comparison with its annotator, source (human or judge), what it prefers and
the quality report's reliability of its annotator; ``label_error``, the quality report's
probability that the pair's label is wrong; ``label_source``, the judgments the label came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NO_ANNOTATOR = "(unattributed)"
PREFERS = ("chosen", "rejected", "tie", "both_bad")
LABEL_SOURCES = ("human", "judge", "all")


@dataclass(frozen=True)
class JudgmentVote:
    """One judgment on a pair's comparison, in the pair's terms."""

    annotator: str  # a pseudonym for people, name@version for automatic judges
    source: str  # "human" or "judge"
    prefers: str  # one of PREFERS
    reliability: float | None = None  # the quality report's expected accuracy of the annotator


@dataclass(frozen=True)
class PreferencePair:
    prompt: str | list[dict]  # a string, or {"role", "content"} messages
    chosen: str | list[dict]
    rejected: str | list[dict]
    weight: float = 1.0
    annotator: str = NO_ANNOTATOR
    pair_id: str = ""
    judgments: tuple[JudgmentVote, ...] = ()
    label_error: float | None = None  # P(label wrong) from the quality report; None: unknown
    label_source: str = "human"

    @property
    def label_judgments(self) -> tuple[JudgmentVote, ...]:
        """The judgments the label was made from (the run's source: humans, judges or both)."""
        return tuple(j for j in self.judgments if self.label_source in ("all", j.source))

    @property
    def conversational(self) -> bool:
        return not isinstance(self.prompt, str)

    @property
    def prompt_key(self) -> str:
        """The prompt as one canonical string: two pairs share a prompt iff their keys are equal."""
        if isinstance(self.prompt, str):
            return self.prompt
        return json.dumps(self.prompt, sort_keys=True, ensure_ascii=False)

    def as_row(self, pair_index: int) -> dict:
        return {
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "weight": self.weight,
            "annotator": self.annotator,
            "pair_id": self.pair_id,
            "pair_index": pair_index,
        }


@dataclass(frozen=True)
class PairSplit:
    train: list[PreferencePair]
    validation: list[PreferencePair]


def normalise_pairs(rows: Iterable[Mapping]) -> list[PreferencePair]:
    """Validate export rows and turn them into PreferencePairs, all in one format."""
    pairs = [_normalise(row, position) for position, row in enumerate(rows)]
    if not pairs:
        raise ValueError("no preference pairs")
    if len({pair.conversational for pair in pairs}) > 1:
        raise ValueError("mixed formats: every prompt must be a string, or every prompt a message list")
    return pairs


def _normalise(row: Mapping, position: int) -> PreferencePair:
    missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
    if missing:
        raise ValueError(f"pair {position}: missing {missing}")
    prompt = row["prompt"]
    conversational = not isinstance(prompt, str)
    chosen, rejected = (_as_format(row[key], conversational) for key in ("chosen", "rejected"))
    weight = row.get("weight")
    weight = 1.0 if weight is None else float(weight)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"pair {position}: weight {weight} is not a probability")
    annotator = row.get("annotator") or row.get("source") or NO_ANNOTATOR
    pair_id = row.get("id")
    label_error = row.get("label_error")
    if label_error is not None and not 0.0 <= float(label_error) <= 1.0:
        raise ValueError(f"pair {position}: label_error {label_error} is not a probability")
    label_source = row.get("label_source") or "human"
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"pair {position}: label_source {label_source!r} is not one of {list(LABEL_SOURCES)}")
    return PreferencePair(
        prompt=prompt if not conversational else [dict(message) for message in prompt],
        chosen=chosen,
        rejected=rejected,
        weight=weight,
        annotator=str(annotator),
        pair_id=str(position if pair_id is None else pair_id),
        judgments=tuple(_judgment(position, index, vote) for index, vote in enumerate(row.get("judgments") or ())),
        label_error=None if label_error is None else float(label_error),
        label_source=label_source,
    )


def _judgment(position: int, index: int, vote: Mapping) -> JudgmentVote:
    where = f"pair {position}: judgments[{index}]"
    if not isinstance(vote, Mapping) or not vote.get("annotator"):
        raise ValueError(f"{where} needs an annotator")
    if vote.get("prefers") not in PREFERS:
        raise ValueError(f"{where}: prefers must be one of {list(PREFERS)}; got {vote.get('prefers')!r}")
    if vote.get("source", "human") not in ("human", "judge"):
        raise ValueError(f"{where}: source must be 'human' or 'judge'")
    reliability = vote.get("reliability")
    return JudgmentVote(annotator=str(vote["annotator"]), source=vote.get("source", "human"), prefers=vote["prefers"],
                        reliability=None if reliability is None else float(reliability))


def _as_format(completion, conversational: bool):
    if not conversational:
        if not isinstance(completion, str):
            raise ValueError("a string prompt needs string completions")
        return completion
    if isinstance(completion, str):
        return [{"role": "assistant", "content": completion}]
    return [dict(message) for message in completion]


def split_by_prompt(pairs: Sequence[PreferencePair], validation_fraction: float, seed: int = 0) -> PairSplit:
    """Hold out a seeded fraction of the prompts, with every pair of each.

    A prompt's side depends only on a seeded hash of the prompt itself, so it keeps its side
    when the snapshot grows: a retrained model is never evaluated on a prompt an earlier run
    trained on. The held-out share is therefore approximate; at least one prompt is held out
    (and one kept) when there are two or more.
    """
    by_hash = sorted({pair.prompt_key for pair in pairs}, key=lambda key: _unit_hash(seed, key))
    held_out = {key for key in by_hash if _unit_hash(seed, key) < validation_fraction}
    if validation_fraction > 0 and len(by_hash) >= 2:
        if not held_out:
            held_out = {by_hash[0]}
        elif len(held_out) == len(by_hash):
            held_out.discard(by_hash[-1])
    return PairSplit(
        train=[pair for pair in pairs if pair.prompt_key not in held_out],
        validation=[pair for pair in pairs if pair.prompt_key in held_out],
    )


def _unit_hash(seed: int, key: str) -> float:
    """A seeded hash of the key, uniform on [0, 1)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def to_dataset(pairs: Sequence[PreferencePair]):
    """A ``datasets.Dataset`` with prompt/chosen/rejected plus weight, annotator, pair_id, pair_index."""
    from datasets import Dataset

    return Dataset.from_list([pair.as_row(index) for index, pair in enumerate(pairs)])


def estimate_flip_rate(pairs: Sequence[PreferencePair], ceiling: float = 0.45) -> float:
    """ε for rDPO / cDPO: the expected share of wrong labels, mean(1 - weight).

    Capped below 0.5 because rDPO divides by 1 - 2ε.
    """
    if not pairs:
        return 0.0
    return min(sum(1.0 - pair.weight for pair in pairs) / len(pairs), ceiling)


def annotator_codes(pairs: Sequence[PreferencePair]) -> tuple[list[str], list[int]]:
    """(names, code per pair): the groups whose reliability EM estimates."""
    names = sorted({pair.annotator for pair in pairs})
    index = {name: code for code, name in enumerate(names)}
    return names, [index[pair.annotator] for pair in pairs]
