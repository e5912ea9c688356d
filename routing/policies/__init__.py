"""Routing policies: which judged comparisons go to humans, within a budget, each with its reason.

``get_policy(name, seed=..., **options)`` builds one; ``policy.fit(labelled)`` lets it learn
from comparisons people already judged; ``policy.route(candidates, budget)`` decides.
scikit-learn is imported only when the learned policy fits.
"""

from __future__ import annotations

from .base import (
    HUMAN,
    JUDGE,
    NONE,
    ROUTES,
    Budget,
    LabelledCandidate,
    Policy,
    PolicyError,
    RouteDecision,
    RoutingCandidate,
)
from .learned import LearnedPolicy
from .simple import HumanOnlyPolicy, JudgeOnlyPolicy, RandomPolicy
from .uncertainty import UncertaintyPolicy, uncertainty_score

__all__ = [
    "HUMAN", "JUDGE", "NONE", "ROUTES", "POLICIES",
    "Budget", "LabelledCandidate", "PolicyError", "Policy", "RouteDecision", "RoutingCandidate",
    "HumanOnlyPolicy", "JudgeOnlyPolicy", "LearnedPolicy", "RandomPolicy", "UncertaintyPolicy",
    "get_policy", "uncertainty_score",
]

POLICIES: dict[str, type[Policy]] = {
    policy.name: policy
    for policy in (HumanOnlyPolicy, JudgeOnlyPolicy, RandomPolicy, UncertaintyPolicy, LearnedPolicy)
}


def get_policy(name: str, seed: int = 0, **options) -> Policy:
    try:
        policy_class = POLICIES[name]
    except KeyError:
        raise PolicyError(f"unknown routing policy {name!r}; choose one of {', '.join(POLICIES)}") from None
    try:
        return policy_class(seed=seed, **options)
    except (TypeError, ValueError) as error:
        raise PolicyError(f"cannot build the {name} policy: {error}") from None
