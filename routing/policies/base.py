"""The contract every routing policy fulfils: which comparisons go to humans, within a budget.

The judge runs first (it is cheap); a policy then sees each comparison's judge verdict and
features and sends some to the human queue. It never sees a human verdict of a comparison
it is deciding: human verdicts reach a policy only through ``fit``, for comparisons people
have already judged.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from routing.features import comparison_features
from routing.judges.base import JudgeVerdict, PairItem

HUMAN = "human"  # the comparison goes to the human queue
JUDGE = "judge"  # the judge's verdict is kept as the comparison's judgment
NONE = "none"  # over budget and the judge has no usable verdict: left without a judgment
ROUTES = (HUMAN, JUDGE, NONE)


class PolicyError(ValueError):
    """A policy or budget that cannot be built from the given name or value."""


@dataclass(frozen=True)
class Budget:
    """How many comparisons of a batch may go to humans: a ``fraction`` of them or a ``count``."""

    fraction: float | None = None
    count: int | None = None

    def __post_init__(self):
        if (self.fraction is None) == (self.count is None):
            raise PolicyError("a budget is either a fraction or a count")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise PolicyError(f"a budget fraction is between 0 and 1, got {self.fraction}")
        if self.count is not None and self.count < 0:
            raise PolicyError(f"a budget count is at least 0, got {self.count}")

    @classmethod
    def parse(cls, value) -> Budget:
        """"0.25" or "25%" is a fraction, "25" a count; a float is a fraction, an int a count."""
        if isinstance(value, Budget):
            return value
        if isinstance(value, bool):
            raise PolicyError(f"not a budget: {value!r}")
        if isinstance(value, int):
            return cls(count=value)
        if isinstance(value, float):
            return cls(fraction=value)
        text = str(value).strip()
        try:
            if text.endswith("%"):
                return cls(fraction=float(text[:-1]) / 100)
            if any(mark in text.lower() for mark in (".", "e")):
                return cls(fraction=float(text))
            return cls(count=int(text))
        except ValueError:
            raise PolicyError(f"not a budget: {value!r} (use a fraction like 0.2, 20%, or a count like 50)") from None

    def human_count(self, n: int) -> int:
        """Exactly how many of ``n`` comparisons go to humans (a fraction rounds half up)."""
        if self.count is not None:
            return min(self.count, n)
        # The epsilon keeps 0.1 * 35 = 3.5000000000000004 and 0.35 * 10 = 3.4999999999999996 alike.
        return min(n, math.floor(self.fraction * n + 0.5 + 1e-9))

    def batch_share(self, routed_before: int, batch_size: int) -> int:
        """A fraction budget's human count for the next batch, given how many comparisons earlier
        batches held: cumulative rounding, so the batches together spend exactly the budget."""
        if self.fraction is None:
            raise PolicyError("a count budget has no per-batch share; pass the count still unspent")
        return self.human_count(routed_before + batch_size) - self.human_count(routed_before)

    def __str__(self) -> str:
        return f"{self.fraction:g}" if self.fraction is not None else str(self.count)


@dataclass(frozen=True)
class RoutingCandidate:
    """A comparison awaiting routing: the item, the judge's verdict on it (None if not judged), features."""

    item: PairItem
    verdict: JudgeVerdict | None
    features: dict = field(default_factory=dict)

    @classmethod
    def build(cls, item: PairItem, verdict: JudgeVerdict | None) -> RoutingCandidate:
        return cls(item, verdict, comparison_features(item, verdict))

    @property
    def judge_usable(self) -> bool:
        return self.verdict is not None and self.verdict.usable


@dataclass(frozen=True)
class LabelledCandidate:
    """A candidate that a human has judged: what ``fit`` learns from."""

    candidate: RoutingCandidate
    human_verdict: str

    @property
    def judge_disagrees(self) -> bool:
        verdict = self.candidate.verdict
        return verdict is None or verdict.verdict != self.human_verdict


@dataclass(frozen=True)
class RouteDecision:
    item_id: str
    route: str  # HUMAN, JUDGE or NONE
    reason: str  # for the researcher reading the queue: why this route
    score: float | None = None  # the policy's priority for humans; higher went first


class Policy:
    """Decides, for a batch of judged comparisons, which go to humans.

    Subclasses set ``name`` and implement ``route``; a policy that learns implements ``fit``.
    A policy with ``follows_budget`` sends exactly ``budget.human_count(len(candidates))``
    comparisons to humans; the two that do not (human_only, judge_only) say so in every reason.
    Decisions are a function of the candidates, the budget, the seed and what ``fit`` saw:
    the same inputs give the same decisions, whatever the candidates' order.
    """

    name: str = ""
    follows_budget: bool = True

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, labelled: list[LabelledCandidate]) -> None:
        """Learn from comparisons that people have judged. Replaces what was learned before.

        Called again as human judgments accumulate; a policy that learns nothing ignores it.
        """

    def route(self, candidates: list[RoutingCandidate], budget: Budget) -> list[RouteDecision]:
        """One decision per candidate, in the candidates' order, each with its reason."""
        raise NotImplementedError("subclasses of Policy must implement route()")

    def expected_human_count(self, n: int, budget: Budget) -> int:
        return Budget.parse(budget).human_count(n)

    # Helpers -----------------------------------------------------------------------------

    def tie_break(self, item_id: str) -> float:
        """A uniform number in [0, 1) fixed by the seed and the item: random, yet reproducible
        and independent of where the item sits in the batch."""
        digest = hashlib.sha256(f"{self.seed}|{self.name}|{item_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def route_top(self, candidates: list[RoutingCandidate], scores: list[float], budget: Budget,
                  human_reason, other_reason) -> list[RouteDecision]:
        """The ``human_count`` highest scores go to humans (ties broken by ``tie_break``).

        ``human_reason(candidate, score, rank, k)`` and ``other_reason(candidate, score, k)``
        word the reasons; candidates left over without a usable verdict get NONE.
        """
        k = Budget.parse(budget).human_count(len(candidates))
        ranking = sorted(range(len(candidates)),
                         key=lambda i: (-scores[i], self.tie_break(candidates[i].item.id)))
        rank_of = {index: rank for rank, index in enumerate(ranking)}
        decisions = []
        for index, candidate in enumerate(candidates):
            score, rank = scores[index], rank_of[index]
            if rank < k:
                decisions.append(RouteDecision(candidate.item.id, HUMAN, human_reason(candidate, score, rank, k), score))
            elif candidate.judge_usable:
                decisions.append(RouteDecision(candidate.item.id, JUDGE, other_reason(candidate, score, k), score))
            else:
                decisions.append(RouteDecision(candidate.item.id, NONE, f"{self.name}: over the human budget of {k} "
                                               f"and {describe_no_verdict(candidate)}; left without a judgment", score))
        return decisions


def describe_no_verdict(candidate: RoutingCandidate) -> str:
    verdict = candidate.verdict
    if verdict is None:
        return "the judge has not judged it"
    return f"the judge's verdict is {verdict.verdict}" + (f" ({verdict.detail})" if verdict.detail else "")
