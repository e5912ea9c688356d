"""The contract every automatic judge fulfils: give a verdict on a batch of pairwise comparisons.

A judge holds no database state. The Django side turns Comparisons into ``PairItem``s,
calls ``judge`` on a bounded batch, and writes Judgments from the ``JudgeVerdict``s itself
(an ``unparsable`` or ``unsupported`` verdict writes nothing: the comparison goes to a human).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# What a judge may answer. The first three are verdicts a Judgment can hold; the last two
# mean "no usable verdict" and are never turned into a guess.
A, B, TIE = "a", "b", "tie"
UNPARSABLE = "unparsable"  # the judge answered, but not in the protocol's format
UNSUPPORTED = "unsupported"  # the judge cannot see this modality and did not try
VERDICTS = (A, B, TIE)
NO_VERDICT = frozenset({UNPARSABLE, UNSUPPORTED})


class JudgeError(Exception):
    """A judge cannot run: bad configuration, a model that cannot be loaded, a failed endpoint.

    Not raised for a bad answer from the judge: that is an ``unparsable`` verdict.
    """


@dataclass(frozen=True)
class PairItem:
    """One comparison as a judge sees it: a prompt and two answers in a fixed left/right order."""

    id: str
    prompt: str
    a: str
    b: str
    modality: str = "text"
    category: str = ""


@dataclass(frozen=True)
class OrderResult:
    """What the judge said with the answers shown in one order.

    ``order`` is "ab" (a shown as Assistant A) or "ba" (b shown as Assistant A). The verdict and
    probabilities are already mapped back to the item's own a/b, so the two orders of one
    item can be compared directly.
    """

    order: str
    verdict: str
    p_a: float | None = None
    p_b: float | None = None
    p_tie: float | None = None
    # Where the probabilities come from: "logits" (one forward pass), "logprobs" (an API's
    # top_logprobs), "parsed" (a one-hot from the parsed text), "" (none).
    source: str = ""
    raw_text: str = ""
    # Share of the next-token probability that fell on the three verdict tokens: a judge
    # that would rather write something else than a verdict letter shows it here.
    verdict_mass: float | None = None


@dataclass(frozen=True)
class JudgeVerdict:
    """A judge's verdict on one item, both orders combined.

    ``order_consistent`` is True when both orders gave the same verdict, False when they
    differed or one was unparsable, and None when only one order is known (imported verdicts).
    ``confidence`` is the probability of the chosen verdict, None when the judge gave none.
    """

    item_id: str
    verdict: str
    p_a: float | None = None
    p_b: float | None = None
    p_tie: float | None = None
    confidence: float | None = None
    order_consistent: bool | None = None
    orders: tuple[OrderResult, ...] = ()
    judge: str = ""
    judge_version: str = ""
    detail: str = ""  # why a verdict is unparsable or unsupported, in words
    # After calibration (routing.calibration): the judge's own verdict, p_a, p_b, p_tie and
    # confidence, and which calibration replaced them. None and "" for a raw verdict.
    uncalibrated: dict | None = None
    calibration: str = ""

    @property
    def usable(self) -> bool:
        return self.verdict in VERDICTS

    @property
    def raw_text(self) -> str:
        """The generated text of every order that generated any, one order a paragraph."""
        return "\n\n".join(f"[{o.order}] {o.raw_text}" for o in self.orders if o.raw_text)

    def to_dict(self) -> dict:
        """Plain JSON-ready form (what a Judgment's ``metadata`` stores)."""
        data = asdict(self)
        data["orders"] = [asdict(order) for order in self.orders]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> JudgeVerdict:
        """The inverse of ``to_dict``: a verdict back from a stored Judgment's metadata."""
        fields = dict(data)
        fields["orders"] = tuple(OrderResult(**order) for order in fields.get("orders", ()))
        return cls(**fields)


class AutomaticJudge:
    """An automatic judge of pairwise comparisons.

    Subclasses set ``name`` and ``version`` (together they identify the judge whose
    Judgments these are: a new prompt or model is a new version) and implement
    ``_judge_supported``. The public ``judge`` keeps the modality promise for all of them.
    """

    name: str = ""
    version: str = ""
    kind: str = "llm"  # arena.models.JudgeKind value for the Judge row
    # A text LLM cannot see an image or hear a recording; a judge that can says so here.
    modalities: frozenset[str] = frozenset({"text"})

    def supports(self, modality: str) -> bool:
        """Whether this judge can judge comparisons of ``modality`` at all."""
        return modality in self.modalities

    def judge(self, items: list[PairItem]) -> list[JudgeVerdict]:
        """One verdict per item, in the same order.

        Items of a modality the judge does not support get an ``unsupported`` verdict
        without being shown to it. Raises JudgeError when the judge cannot run at all.
        """
        supported = [item for item in items if self.supports(item.modality)]
        verdicts = iter(self._judge_supported(supported) if supported else [])
        results = []
        for item in items:
            if self.supports(item.modality):
                results.append(next(verdicts))
            else:
                results.append(self._verdict(item.id, UNSUPPORTED, detail=f"{self.name} cannot judge {item.modality}"))
        return results

    # Subclasses implement ---------------------------------------------------------------

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        """One verdict per item, in order, for items of supported modalities.

        Every item is judged in both orders (the protocol in ``routing.judges.protocol``)
        unless the judge only replays verdicts it was given. An answer that does not follow
        the format is an ``unparsable`` verdict, never a guess.
        """
        raise NotImplementedError("subclasses of AutomaticJudge must implement _judge_supported()")

    # Helpers -----------------------------------------------------------------------------

    def _verdict(self, item_id: str, verdict: str, **fields) -> JudgeVerdict:
        return JudgeVerdict(item_id=item_id, verdict=verdict, judge=self.name, judge_version=self.version, **fields)

    @property
    def identity(self) -> dict:
        """``kind``, ``name``, ``version``: what a Judge row is looked up by."""
        return {"kind": self.kind, "name": self.name, "version": self.version}

