"""What one exported row holds: the column sets and the helpers that fill them.

Two kinds of rows. Preference rows (`trl`, `hf`) are one per comparison with a decided
verdict, in TRL's preference form: `prompt`, `chosen`, `rejected`. Judgment rows (`jsonl`,
`csv`, `parquet`) are one per judgment with its provenance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Column kinds: how each writer encodes a value. "json" is any JSON value (a nested
# object in JSON Lines, a JSON string in CSV and Parquet); "messages" is a list of
# {"role", "content"} dicts, TRL's conversational form.
STRING, FLOAT, INT, BOOL, JSON, MESSAGES = "string", "float", "int", "bool", "json", "messages"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str


def preference_columns(conversational: bool, media: bool) -> tuple[Column, ...]:
    text = MESSAGES if conversational else STRING
    columns = [
        Column("id", STRING),
        Column("prompt", text),
        Column("chosen", text),
        Column("rejected", text),
        Column("weight", FLOAT),
        Column("confidence", FLOAT),
        Column("n_judgments", INT),
        # Only with --include-ties: chosen is side A, rejected side B, and neither is
        # better; a trainer that cannot use ties filters on this column.
        Column("tie", BOOL),
    ]
    if media:
        columns += [Column("chosen_media", STRING), Column("rejected_media", STRING)]
    return tuple(columns)


JUDGMENT_COLUMNS = (
    Column("judgment_id", STRING),
    Column("comparison_id", STRING),
    Column("project", STRING),
    Column("item_id", STRING),  # the project item's external id
    Column("category", STRING),
    Column("prompt", STRING),
    Column("output_a", STRING),
    Column("output_b", STRING),
    Column("output_a_media", STRING),  # member of the media zip beside the rows, or ""
    Column("output_b_media", STRING),
    Column("system_a", STRING),
    Column("system_b", STRING),
    Column("annotator", STRING),  # pseudonym, stable across exports; never the username
    Column("source", STRING),  # "human" or "judge"
    Column("judge_kind", STRING),
    Column("judge", STRING),  # an automatic judge's name@version; "" for people
    Column("annotator_flagged", BOOL),  # flagged for review (arena.board.outliers); true only in exports that keep them
    Column("verdict", STRING),
    Column("aspects", JSON),
    Column("rationale", STRING),
    Column("judge_confidence", FLOAT),  # as the judge gave it, when it did
    Column("time_to_vote_ms", INT),
    Column("weight", FLOAT),  # Dawid-Skene posterior probability that this verdict is right
    Column("reliability", FLOAT),  # the annotator's expected accuracy under Dawid-Skene
    Column("aggregate_verdict", STRING),  # the comparison's aggregated verdict (--aggregate)
    Column("aggregate_confidence", FLOAT),
    Column("supersedes", STRING),  # the judgment this one corrects, if any
    Column("created_at", STRING),  # ISO 8601
)


# HH-RLHF's transcript form: "\n\nHuman: ...\n\nAssistant: ...". A prompt in it is a
# multi-turn dialogue, exported as TRL's conversational messages.
_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def is_dialogue(text: str) -> bool:
    return text.lstrip("\n").startswith("Human:")


def dialogue_messages(text: str) -> list[dict[str, str]]:
    """A prompt as chat messages: a transcript split into turns, anything else one user
    turn. A trailing empty "Assistant:" (the cue for the answer) is dropped: the answer is
    the chosen or rejected message."""
    if not is_dialogue(text):
        return [{"role": "user", "content": text}]
    parts = _TURN.split("\n\n" + text.lstrip("\n"))
    messages = [{"role": _ROLES[role], "content": content.strip()} for role, content in zip(parts[1::2], parts[2::2])]
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


def answer_messages(text: str) -> list[dict[str, str]]:
    # An imported answer may still carry its "Assistant:" label.
    text = text.strip()
    if text.startswith("Assistant:"):
        text = text[len("Assistant:") :].strip()
    return [{"role": "assistant", "content": text}]


def media_member(public_id, storage_name: str) -> str:
    """An output's file inside the media zip, named by the output's public id so a row
    never reveals which system made it before its system column does."""
    extension = storage_name.rsplit(".", 1)[-1].lower() if "." in storage_name else "bin"
    return f"media/{public_id.hex}.{extension}"
