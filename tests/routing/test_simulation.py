"""Routing simulation: exact budgets, the curve's end points, and no peeking at undecided items' labels."""

from dataclasses import replace

from routing.policies import HUMAN, Budget, LearnedPolicy, RandomPolicy
from routing.simulation import accuracy, run_policy, simulate_routing

from .factories import simulation_items


def _poison(items, ids):
    """Flip the human verdicts (first and majority) of the items in ``ids``."""
    flip = {"a": "b", "b": "a", "tie": "a"}
    return [replace(item, first_human=flip[item.first_human], majority=flip[item.majority])
            if item.candidate.item.id in ids else item for item in items]


def _learned():
    return LearnedPolicy(seed=0, min_train=10, explore=0.0)


def test_learned_policy_never_sees_labels_of_items_it_has_not_routed_yet():
    # given: a run in batches of 40, and the same items with every label from batch 2 on flipped
    items = simulation_items(200)
    trace = run_policy(items, _learned(), budget=0.3, batch_size=40, seed=0)
    undecided = {entry.item_id for entry in trace if entry.batch >= 2}
    poisoned = _poison(items, undecided)

    # when
    poisoned_trace = run_policy(poisoned, _learned(), budget=0.3, batch_size=40, seed=0)

    # then: batches 0-2 are decided exactly as before (batch 2's own labels were poisoned too)
    routes = [(e.item_id, e.route, e.reason) for e in trace if e.batch <= 2]
    assert routes == [(e.item_id, e.route, e.reason) for e in poisoned_trace if e.batch <= 2]


def test_the_leakage_check_can_fail_labels_already_seen_do_change_later_decisions():
    # The test above would pass vacuously if the policy ignored labels altogether.
    items = simulation_items(200)
    trace = run_policy(items, _learned(), budget=0.3, batch_size=40, seed=0)
    seen = {entry.item_id for entry in trace if entry.batch <= 1 and entry.route == HUMAN}
    poisoned_trace = run_policy(_poison(items, seen), _learned(), budget=0.3, batch_size=40, seed=0)
    later = [(e.item_id, e.route) for e in trace if e.batch >= 2]
    assert later != [(e.item_id, e.route) for e in poisoned_trace if e.batch >= 2]


def test_each_budget_is_spent_exactly_across_batches():
    items = simulation_items(97)
    for budget in (0.0, 0.13, 0.5, 1.0):
        for policy in (RandomPolicy(1), _learned()):
            trace = run_policy(items, policy, budget, batch_size=20, seed=2)
            assert sum(e.route == HUMAN for e in trace) == Budget(fraction=budget).human_count(97)


def test_curve_end_points_are_the_judge_alone_and_one_human_each():
    items = simulation_items(120)
    curve = simulate_routing(items, "uncertainty", budgets=(0.0, 0.5, 1.0), seeds=2, random_seeds=3, batch_size=30)
    start, _, end = curve.curve
    assert start.accuracy == start.random_accuracy == curve.judge_accuracy
    assert end.accuracy == end.random_accuracy == curve.first_human_accuracy == 1.0
    assert [point.human_count for point in curve.curve] == [0, 60, 120]


def test_learned_beats_random_when_the_judge_errs_predictably():
    items = simulation_items(300)
    curve = simulate_routing(items, "learned", budgets=(0.2, 0.4), seeds=2, random_seeds=5, batch_size=50,
                             policy_options={"min_train": 10})
    for point in curve.curve:
        assert point.accuracy > point.random_accuracy + 0.05


def test_accuracy_counts_items_left_without_a_label_as_wrong():
    items = simulation_items(10)
    trace = run_policy(items, RandomPolicy(0), 1.0, batch_size=5, seed=0)
    unlabelled = [replace(entry, label=None) for entry in trace]
    assert accuracy(items, trace) == 1.0
    assert accuracy(items, unlabelled) == 0.0
