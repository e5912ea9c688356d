"""The reference points of every routing curve: all humans, all judge, a random share to humans."""

from __future__ import annotations

from .base import HUMAN, Budget, RouteDecision, RoutingCandidate, Policy


class HumanOnlyPolicy(Policy):
    """Every comparison to a human: the judge is not trusted at all (the budget is not applied)."""

    name = "human_only"
    follows_budget = False

    def route(self, candidates: list[RoutingCandidate], budget: Budget) -> list[RouteDecision]:
        return [RouteDecision(c.item.id, HUMAN, "human_only: every comparison goes to a human (budget not applied)")
                for c in candidates]

    def expected_human_count(self, n: int, budget: Budget) -> int:
        return n


class JudgeOnlyPolicy(Policy):
    """Every comparison keeps the judge's verdict; none go to humans (the budget is not applied)."""

    name = "judge_only"
    follows_budget = False

    def route(self, candidates: list[RoutingCandidate], budget: Budget) -> list[RouteDecision]:
        no_scores = [0.0] * len(candidates)
        return self.route_top(
            candidates, no_scores, Budget(count=0), human_reason=None,
            other_reason=lambda c, s, k: "judge_only: the judge's verdict is kept (budget not applied)",
        )

    def expected_human_count(self, n: int, budget: Budget) -> int:
        return 0


class RandomPolicy(Policy):
    """A random share of the comparisons to humans: the baseline a smarter policy must beat."""

    name = "random"

    def route(self, candidates: list[RoutingCandidate], budget: Budget) -> list[RouteDecision]:
        draws = [self.tie_break(c.item.id) for c in candidates]
        return self.route_top(
            candidates, draws, budget,
            human_reason=lambda c, s, rank, k: f"random: drawn for the human budget ({k} of {len(candidates)})",
            other_reason=lambda c, s, k: f"random: not drawn for the human budget ({k} of {len(candidates)})",
        )
