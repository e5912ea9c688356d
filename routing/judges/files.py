"""Labelled pairwise files, read into PairItems with their human and judge verdicts.

Two formats:

* Duet JSONL, one comparison a line::

    {"id": "q1", "prompt": "...", "a": {"text": "..."}, "b": {"text": "..."},
     "modality": "text", "category": "coding", "gold": "a",
     "judgments": [{"annotator": "ann-1", "verdict": "a"},
                   {"judge": "gpt-4o", "verdict": "b", "confidence": 0.7}]}

  ``a``/``b`` may also be plain strings; ``gold`` is optional (else the human majority);
  ``both_bad`` is read as a tie, since judges answer a, b or tie.

* PandaLM's test set: a JSON list of ``instruction``, ``input``, ``response1``,
  ``response2``, ``annotator1..3`` (0 tie, 1 first, 2 second), ``motivation_app`` (read as
  the category). Its judges' verdicts come from a separate file (``judge_file``) of
  ``{"idx", "gpt_result", "gpt_reason"}`` records (or ``{"id", "verdict", "confidence"}``),
  matched by ``idx``.

Reading needs no database: commands replay files.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .base import A, B, TIE, UNPARSABLE, PairItem
from .imported import normalise_verdict

_PANDALM_LABELS = {0: TIE, 1: A, 2: B}


@dataclass(frozen=True)
class LabelledPair:
    """A comparison with what people and judges said about it.

    ``human_verdicts`` keep the file's order: routing simulation gives an item routed to a
    human its first one. ``gold`` is the file's gold label, else the majority of the human
    verdicts, None when there is no single most common one.
    """

    item: PairItem
    human_verdicts: tuple[str, ...] = ()
    gold: str | None = None
    judge_records: dict[str, dict] = field(default_factory=dict)  # judge name -> {"verdict", "confidence"?}


class LabelledFileError(ValueError):
    """A file that is not in either format, with where and why."""


def majority(verdicts) -> str | None:
    """The single most common verdict; None when none, or when two are tied for most common."""
    counts = Counter(v for v in verdicts if v != UNPARSABLE).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def read_labelled_pairs(path, judge_file=None, judge_name: str = "", limit: int | None = None) -> list[LabelledPair]:
    """Read a Duet JSONL or PandaLM JSON file; ``judge_file`` adds ``judge_name``'s verdicts."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(text)
        pandalm = bool(rows) and isinstance(rows[0], dict) and "response1" in rows[0]
        pairs = [_pandalm_pair(row, n) if pandalm else _duet_pair(row, n) for n, row in enumerate(rows)]
    else:
        pairs = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise LabelledFileError(f"{path}:{line_number}: not JSON ({error})") from None
            pairs.append(_duet_pair(row, line_number - 1, where=f"{path}:{line_number}"))
    if judge_file is not None:
        pairs = _attach_judge_file(pairs, Path(judge_file), judge_name or Path(judge_file).stem)
    return pairs[:limit] if limit is not None else pairs


def _verdict(value) -> str:
    return normalise_verdict("tie" if str(value).strip().lower() == "both_bad" else value)


def _text(value, where: str, side: str) -> str:
    if isinstance(value, dict):
        value = value.get("text")
    if not isinstance(value, str):
        raise LabelledFileError(f"{where}: answer {side!r} needs text (a string or {{\"text\": ...}})")
    return value


def _duet_pair(row: dict, position: int, where: str = "") -> LabelledPair:
    where = where or f"item {position}"
    if not isinstance(row, dict) or "prompt" not in row:
        raise LabelledFileError(f"{where}: expected an object with prompt, a, b")
    item = PairItem(
        id=str(row.get("id", position)),
        prompt=str(row["prompt"]),
        a=_text(row.get("a"), where, "a"),
        b=_text(row.get("b"), where, "b"),
        modality=str(row.get("modality") or "text"),
        category=str(row.get("category") or ""),
    )
    humans, judges = [], {}
    for judgment in row.get("judgments") or []:
        if "judge" in judgment:
            judges[str(judgment["judge"])] = judgment
        else:
            humans.append(_verdict(judgment.get("verdict")))
    gold = _verdict(row["gold"]) if row.get("gold") is not None else majority(humans)
    return LabelledPair(item, tuple(humans), gold if gold != UNPARSABLE else None, judges)


def _pandalm_pair(row: dict, position: int) -> LabelledPair:
    prompt = row["instruction"] if not row.get("input") else f"{row['instruction']}\n\n{row['input']}"
    # Six PandaLM answers are the JSON literal true (the model answered "True"): kept as text.
    item = PairItem(id=str(row.get("idx", position)), prompt=str(prompt), a=str(row["response1"]),
                    b=str(row["response2"]), category=str(row.get("motivation_app") or ""))
    humans = tuple(_PANDALM_LABELS.get(row.get(f"annotator{n}"), UNPARSABLE) for n in (1, 2, 3))
    return LabelledPair(item, humans, majority(humans))


def _attach_judge_file(pairs: list[LabelledPair], judge_file: Path, judge_name: str) -> list[LabelledPair]:
    text = judge_file.read_text(encoding="utf-8")
    records = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]
    by_id = {}
    for position, record in enumerate(records):
        key = str(record.get("idx", record.get("id", position)))
        verdict = record.get("gpt_result", record.get("verdict"))
        by_id[key] = {"judge": judge_name, "verdict": verdict, "confidence": record.get("confidence"),
                      "rationale": record.get("gpt_reason", record.get("rationale", ""))}
    return [
        LabelledPair(p.item, p.human_verdicts, p.gold,
                     {**p.judge_records, **({judge_name: by_id[p.item.id]} if p.item.id in by_id else {})})
        for p in pairs
    ]


def judge_for_pairs(spec: str, pairs: list[LabelledPair], **options):
    """The judge ``spec`` for these pairs: a replay of its verdicts when the file carries them
    (``judgments`` entries, or a judge file, under that name), else the live judge ``spec``."""
    from . import ImportedJudge, get_judge

    name = spec.removeprefix("imported:")
    records = {pair.item.id: pair.judge_records[name] for pair in pairs if name in pair.judge_records}
    if records or spec.startswith("imported:"):
        return ImportedJudge(name, records)
    return get_judge(spec, **options)
