"""Judge first; the comparisons the judge is least sure of go to humans until the budget is spent."""

from __future__ import annotations

from .base import Budget, RouteDecision, RoutingCandidate, Policy, describe_no_verdict


def uncertainty_score(candidate: RoutingCandidate) -> float:
    """Higher is less certain, in tiers: no usable verdict (3), orders disagreed (1 + doubt),
    orders agreed or unknown (doubt), with doubt = 1 - confidence, 0 when the judge gave none.

    A judge without confidences (most imported verdicts) leaves every usable verdict at 0,
    and the seeded tie-break makes the choice among them random.
    """
    if not candidate.judge_usable:
        return 3.0
    verdict = candidate.verdict
    doubt = 1.0 - verdict.confidence if verdict.confidence is not None else 0.0
    return doubt + (1.0 if verdict.order_consistent is False else 0.0)


def _signal(candidate: RoutingCandidate) -> str:
    if not candidate.judge_usable:
        return describe_no_verdict(candidate)
    verdict = candidate.verdict
    parts = [f"verdict {verdict.verdict}"]
    parts.append(f"confidence {verdict.confidence:.2f}" if verdict.confidence is not None else "no confidence given")
    if verdict.order_consistent is False:
        parts.append("the two orders disagreed")
    elif verdict.order_consistent:
        parts.append("both orders agreed")
    return ", ".join(parts)


class UncertaintyPolicy(Policy):
    name = "uncertainty"

    def route(self, candidates: list[RoutingCandidate], budget: Budget) -> list[RouteDecision]:
        scores = [uncertainty_score(c) for c in candidates]
        return self.route_top(
            candidates, scores, budget,
            human_reason=lambda c, s, rank, k: f"uncertainty: {_signal(c)}; among the {k} least certain",
            other_reason=lambda c, s, k: f"uncertainty: {_signal(c)}; judge kept (not among the {k} least certain)",
        )
