"""A project's schema: which verdicts, which aspects, whether a rationale is asked for.

`parse_schema` turns the stored JSON into a typed `Schema` (or says what is wrong with it);
`Schema.check_answer` validates one annotator's aspects and rationale against it.
"""

import re
from dataclasses import dataclass

from arena.models import Verdict

from .errors import InvalidInput

LIKERT, AB = "likert", "ab"
AB_CHOICES = ("a", "b", "tie")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ASPECTS = 12
MAX_RATIONALE_CHARS = 10_000


@dataclass(frozen=True)
class Aspect:
    name: str
    label: str
    scale: str  # LIKERT: rated per side 1..points; AB: one of a / b / tie
    points: int = 5
    required: bool = True

    def to_dict(self) -> dict:
        data = {"name": self.name, "label": self.label, "scale": self.scale, "required": self.required}
        if self.scale == LIKERT:
            data["points"] = self.points
        return data


@dataclass(frozen=True)
class Schema:
    verdicts: tuple[str, ...]
    aspects: tuple[Aspect, ...] = ()
    rationale_enabled: bool = False
    rationale_min_length: int = 0

    def to_dict(self) -> dict:
        return {
            "verdicts": list(self.verdicts),
            "aspects": [aspect.to_dict() for aspect in self.aspects],
            "rationale": {"enabled": self.rationale_enabled, "min_length": self.rationale_min_length},
        }

    def check_answer(self, verdict: str, aspects, rationale) -> tuple[dict, str]:
        """Returns the (aspects, rationale) to store, or raises InvalidInput naming the field."""
        if verdict not in self.verdicts:
            raise InvalidInput(f"verdict must be one of {', '.join(self.verdicts)} in this project; got {verdict!r}")
        return self._check_aspects(aspects), self._check_rationale(rationale)

    def _check_aspects(self, aspects) -> dict:
        aspects = aspects or {}
        if not isinstance(aspects, dict):
            raise InvalidInput("aspects must be an object keyed by aspect name")
        known = {aspect.name: aspect for aspect in self.aspects}
        unknown = sorted(set(aspects) - set(known))
        if unknown:
            rated = ", ".join(known) or "none"
            raise InvalidInput(f"aspects: unknown aspect {unknown[0]!r}; this project rates {rated}")
        cleaned = {}
        for name, aspect in known.items():
            value = aspects.get(name)
            if value in (None, "", {}):
                if aspect.required:
                    raise InvalidInput(f"aspects.{name}: rate {aspect.label} before submitting")
                continue
            cleaned[name] = _check_aspect_value(aspect, value)
        return cleaned

    def _check_rationale(self, rationale) -> str:
        if not isinstance(rationale or "", str):
            raise InvalidInput("rationale must be text")
        rationale = (rationale or "").strip()
        if not self.rationale_enabled:
            if rationale:
                raise InvalidInput("rationale: this project does not collect rationales")
            return ""
        if len(rationale) < self.rationale_min_length:
            raise InvalidInput(
                f"rationale: write at least {self.rationale_min_length} characters "
                f"(you wrote {len(rationale)})"
            )
        if len(rationale) > MAX_RATIONALE_CHARS:
            raise InvalidInput(f"rationale: at most {MAX_RATIONALE_CHARS} characters")
        return rationale


def _check_aspect_value(aspect: Aspect, value):
    where = f"aspects.{aspect.name}"
    if aspect.scale == AB:
        if value not in AB_CHOICES:
            raise InvalidInput(f"{where} must be one of {', '.join(AB_CHOICES)}; got {value!r}")
        return value
    if not isinstance(value, dict) or set(value) != {"a", "b"}:
        raise InvalidInput(f"{where} must rate both sides: {{\"a\": 1-{aspect.points}, \"b\": 1-{aspect.points}}}")
    rated = {}
    for side in ("a", "b"):
        score = value[side]
        # bool is an int in Python; a checkbox's true must not pass as a rating of 1.
        if isinstance(score, str) and score.isdigit():
            score = int(score)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= aspect.points:
            raise InvalidInput(f"{where}.{side} must be a whole number from 1 to {aspect.points}; got {score!r}")
        rated[side] = score
    return rated


def parse_schema(data) -> Schema:
    """Validate a stored or submitted schema. Missing keys take the defaults."""
    if data in (None, ""):
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("schema must be an object with verdicts, aspects and rationale")
    unknown = sorted(set(data) - {"verdicts", "aspects", "rationale"})
    if unknown:
        raise InvalidInput(f"schema: unknown key {unknown[0]!r}")
    verdicts = data.get("verdicts", list(Verdict.values))
    if not isinstance(verdicts, list) or not verdicts:
        raise InvalidInput("schema.verdicts must be a non-empty list")
    for verdict in verdicts:
        if verdict not in Verdict.values:
            raise InvalidInput(f"schema.verdicts: {verdict!r} is not one of {', '.join(Verdict.values)}")
    if len(set(verdicts)) != len(verdicts):
        raise InvalidInput("schema.verdicts lists a verdict twice")
    return Schema(
        verdicts=tuple(verdicts),
        aspects=_parse_aspects(data.get("aspects", [])),
        **_parse_rationale(data.get("rationale", {})),
    )


def _parse_aspects(raw) -> tuple[Aspect, ...]:
    if not isinstance(raw, list):
        raise InvalidInput("schema.aspects must be a list")
    if len(raw) > MAX_ASPECTS:
        raise InvalidInput(f"schema.aspects: at most {MAX_ASPECTS} aspects")
    aspects, seen = [], set()
    for index, entry in enumerate(raw):
        where = f"schema.aspects[{index}]"
        if isinstance(entry, str):  # shorthand: "helpfulness" is a 5-point Likert aspect
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise InvalidInput(f"{where} must be an object with a name")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(f"{where}.name must be lower-case letters, digits or _ (got {name!r})")
        if name in seen:
            raise InvalidInput(f"{where}.name {name!r} is used twice")
        seen.add(name)
        scale = entry.get("scale", LIKERT)
        if scale not in (LIKERT, AB):
            raise InvalidInput(f"{where}.scale must be {LIKERT!r} or {AB!r}")
        points = entry.get("points", 5)
        if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= 10:
            raise InvalidInput(f"{where}.points must be a whole number from 2 to 10")
        label = entry.get("label") or name.replace("_", " ").capitalize()
        aspects.append(Aspect(name=name, label=str(label)[:80], scale=scale, points=points,
                              required=bool(entry.get("required", True))))
    return tuple(aspects)


def _parse_rationale(raw) -> dict:
    if isinstance(raw, bool):
        raw = {"enabled": raw}
    if not isinstance(raw, dict):
        raise InvalidInput("schema.rationale must be an object: {\"enabled\": true, \"min_length\": 20}")
    min_length = raw.get("min_length", 0)
    if isinstance(min_length, bool) or not isinstance(min_length, int) or not 0 <= min_length <= 2000:
        raise InvalidInput("schema.rationale.min_length must be a whole number from 0 to 2000")
    enabled = bool(raw.get("enabled", min_length > 0))
    return {"rationale_enabled": enabled, "rationale_min_length": min_length if enabled else 0}
