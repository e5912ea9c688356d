"""Routing policies: one contract suite that every policy passes, then each policy's own behaviour."""

import random

import pytest

from routing.judges.base import UNPARSABLE
from routing.policies import (
    HUMAN,
    JUDGE,
    NONE,
    ROUTES,
    Budget,
    HumanOnlyPolicy,
    JudgeOnlyPolicy,
    LabelledCandidate,
    LearnedPolicy,
    PolicyError,
    RandomPolicy,
    UncertaintyPolicy,
    get_policy,
)

from .factories import candidates, judged_item


def _human_verdict(candidate):
    """The planted pattern: the judge is wrong on "hard" comparisons and right on "easy" ones."""
    if not candidate.judge_usable:
        return "a"
    if candidate.item.category == "hard":
        return "a" if candidate.verdict.verdict == "b" else "b"
    return candidate.verdict.verdict


def _fitted_learned(seed):
    policy = LearnedPolicy(seed=seed, min_train=20, explore=0.2)
    policy.fit([LabelledCandidate(c, _human_verdict(c)) for c in candidates(80, seed=99)])
    assert policy.model is not None
    return policy


POLICY_FACTORIES = {
    "human_only": HumanOnlyPolicy,
    "judge_only": JudgeOnlyPolicy,
    "random": RandomPolicy,
    "uncertainty": UncertaintyPolicy,
    "learned_not_fitted": LearnedPolicy,
    "learned_fitted": _fitted_learned,
}
BUDGETS = [Budget(fraction=0.0), Budget(fraction=0.1), Budget(fraction=0.25), Budget(fraction=0.5),
           Budget(fraction=1.0), Budget(count=0), Budget(count=7), Budget(count=40), Budget(count=1000)]


@pytest.fixture(params=sorted(POLICY_FACTORIES))
def make_policy(request):
    return POLICY_FACTORIES[request.param]


class TestPolicyContract:
    """What every routing Policy promises (SessionTestsMixin-style: one suite, every implementation)."""

    def test_one_decision_per_candidate_in_order(self, make_policy):
        batch = candidates(40)
        decisions = make_policy(0).route(batch, Budget(fraction=0.3))
        assert [d.item_id for d in decisions] == [c.item.id for c in batch]
        assert {d.route for d in decisions} <= set(ROUTES)

    def test_every_decision_has_a_reason_naming_the_policy(self, make_policy):
        policy = make_policy(0)
        for decision in policy.route(candidates(40), Budget(fraction=0.3)):
            assert isinstance(decision.reason, str) and decision.reason.startswith(policy.name)

    @pytest.mark.parametrize("budget", BUDGETS, ids=str)
    def test_budget_is_respected_exactly(self, make_policy, budget):
        policy = make_policy(0)
        batch = candidates(40)
        humans = sum(d.route == HUMAN for d in policy.route(batch, budget))
        assert humans == policy.expected_human_count(len(batch), budget)
        if policy.follows_budget:
            assert humans == budget.human_count(len(batch))

    def test_deterministic_under_seed_and_independent_of_order(self, make_policy):
        batch = candidates(40)
        first = make_policy(3).route(batch, Budget(fraction=0.3))
        again = make_policy(3).route(batch, Budget(fraction=0.3))
        shuffled = batch[:]
        random.Random(1).shuffle(shuffled)
        reordered = {d.item_id: d.route for d in make_policy(3).route(shuffled, Budget(fraction=0.3))}
        assert first == again
        assert {d.item_id: d.route for d in first} == reordered

    def test_a_comparison_without_a_usable_verdict_never_keeps_the_judge(self, make_policy):
        batch = candidates(40)
        for candidate, decision in zip(batch, make_policy(0).route(batch, Budget(fraction=0.05))):
            if not candidate.judge_usable:
                assert decision.route in (HUMAN, NONE)
            if decision.route == NONE:
                assert not candidate.judge_usable

    def test_empty_batch(self, make_policy):
        assert make_policy(0).route([], Budget(fraction=0.5)) == []


def test_budget_parsing():
    assert Budget.parse("0.25") == Budget(fraction=0.25)
    assert Budget.parse("25%") == Budget(fraction=0.25)
    assert Budget.parse("25") == Budget(count=25)
    assert Budget.parse(0.5) == Budget(fraction=0.5)
    assert Budget.parse(3) == Budget(count=3)
    # Rounds half up, and does not let binary fractions round 3.5 down.
    assert Budget(fraction=0.1).human_count(35) == 4
    assert Budget(fraction=0.35).human_count(10) == 4
    for bad in ("1.5", "-2", "lots", True):
        with pytest.raises(PolicyError):
            Budget.parse(bad)


def test_batch_shares_add_up_to_the_budget():
    budget = Budget(fraction=0.3)
    shares = [budget.batch_share(start, min(7, 50 - start)) for start in range(0, 50, 7)]
    assert sum(shares) == budget.human_count(50) == 15
    full_batches = shares[:-1]  # the last batch holds a single comparison
    assert max(full_batches) - min(full_batches) <= 1
    assert shares[-1] in (0, 1)


def test_get_policy_names_every_policy():
    for name in ("human_only", "judge_only", "random", "uncertainty", "learned"):
        assert get_policy(name, seed=1).name == name
    with pytest.raises(PolicyError, match="unknown routing policy"):
        get_policy("oracle")


def test_random_policy_draws_differently_per_seed():
    batch = candidates(40)
    picks = {seed: {d.item_id for d in RandomPolicy(seed).route(batch, Budget(count=10)) if d.route == HUMAN}
             for seed in range(3)}
    assert len({frozenset(p) for p in picks.values()}) == 3


def test_uncertainty_sends_no_verdict_then_inconsistent_then_least_confident():
    # given
    batch = [
        judged_item(0, "a", 0.95),
        judged_item(1, "b", 0.40),
        judged_item(2, "a", 0.90, consistent=False),
        judged_item(3, UNPARSABLE, None),
        judged_item(4, "tie", 0.60),
    ]
    # when
    policy = UncertaintyPolicy()
    routed = [{d.item_id for d in policy.route(batch, Budget(count=k)) if d.route == HUMAN} for k in (1, 2, 3, 4)]
    # then
    assert routed == [{"item-3"}, {"item-3", "item-2"}, {"item-3", "item-2", "item-1"},
                      {"item-3", "item-2", "item-1", "item-4"}]
    reasons = {d.item_id: d.reason for d in policy.route(batch, Budget(count=2))}
    assert "unparsable" in reasons["item-3"] and "disagreed" in reasons["item-2"]
    assert "judge kept" in reasons["item-0"]


def test_learned_policy_finds_the_planted_judge_errors():
    policy = _fitted_learned(0)
    batch = [judged_item(i, "a", 0.8, category="hard" if i % 4 == 0 else "easy") for i in range(40)]
    decisions = policy.route(batch, Budget(count=10))
    exploited = [d for d in decisions if d.route == HUMAN and "exploration" not in d.reason]
    assert len(exploited) == 8  # 10 less 20% exploration
    assert all(c.item.category == "hard" for c, d in zip(batch, decisions) if d in exploited)
    assert all("P(judge disagrees with a human)" in d.reason for d in exploited)


def test_learned_policy_routes_as_uncertainty_until_it_can_fit():
    policy = LearnedPolicy(min_train=30)
    few = [LabelledCandidate(c, "a") for c in candidates(10)]
    policy.fit(few)
    decisions = policy.route(candidates(20), Budget(count=5))
    assert policy.model is None
    assert all(d.reason.startswith("learned (not fitted: 10 human-judged comparisons") for d in decisions)
    assert [d.route for d in decisions] == [d.route for d in UncertaintyPolicy().route(candidates(20), Budget(count=5))]


def test_judge_only_leaves_unjudgeable_items_without_a_judgment():
    batch = [judged_item(0, "a", 0.9), judged_item(1, UNPARSABLE, None)]
    assert [d.route for d in JudgeOnlyPolicy().route(batch, Budget(fraction=0.5))] == [JUDGE, NONE]
