"""Replay routing on a labelled file: what accuracy does each human budget buy?

Every item carries several human verdicts and one judge's verdict. The items arrive in
sequential batches (shuffled by the seed), as they would in a deployment. For each batch
the policy is first refitted on what a deployment would know by then, the human verdicts
of items routed to humans in earlier batches, and then routes the batch. An item routed
to a human takes its FIRST human verdict (one annotator per item, as the budget pays
for); an item left to the judge takes the judge's verdict. The final labels are scored
against the majority of each item's human verdicts, which the policy never sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .judges.base import AutomaticJudge
from .judges.files import LabelledPair, majority
from .policies import HUMAN, JUDGE, Budget, LabelledCandidate, RoutingCandidate, Policy, get_policy

DEFAULT_BUDGETS = tuple(round(0.1 * step, 1) for step in range(11))


@dataclass(frozen=True)
class SimulationItem:
    candidate: RoutingCandidate
    first_human: str  # what routing to a human yields
    majority: str  # what the final label is scored against


@dataclass(frozen=True)
class TraceEntry:
    item_id: str
    batch: int
    route: str
    reason: str
    label: str | None  # the item's final label: the first human's, the judge's, or None


@dataclass(frozen=True)
class CurvePoint:
    budget: float
    accuracy: float  # mean over seeds
    random_accuracy: float  # the random policy at the same budget, mean over random seeds
    human_count: int  # comparisons routed to humans at this budget (the same for every seed)


@dataclass(frozen=True)
class RoutingCurve:
    policy: str
    judge: str
    n: int
    batch_size: int
    seeds: int
    random_seeds: int
    judge_accuracy: float  # every item left to the judge (a missing verdict counts as wrong)
    first_human_accuracy: float  # every item to one human
    curve: list[CurvePoint]

    def to_dict(self) -> dict:
        return asdict(self)


def simulation_items(pairs: list[LabelledPair], judge: AutomaticJudge) -> list[SimulationItem]:
    """Items whose human verdicts have a majority, judged by ``judge``.

    Scored against that majority even where the file also names a gold label: the question
    is how close routing gets to what more people would have said.
    """
    usable = [(pair, majority(pair.human_verdicts)) for pair in pairs]
    usable = [(pair, label) for pair, label in usable if label is not None]
    verdicts = judge.judge([pair.item for pair, _ in usable]) if usable else []
    return [SimulationItem(RoutingCandidate.build(pair.item, verdict), pair.human_verdicts[0], label)
            for (pair, label), verdict in zip(usable, verdicts, strict=True)]


def _calibrated(batch: list[SimulationItem], bought: list[tuple], allow_ties: bool) -> list[SimulationItem]:
    """The batch with the judge's verdicts calibrated on the human verdicts bought so far
    (as a deployment would: refitted before each batch); as they are while too few."""
    from dataclasses import replace

    from .calibration import CalibrationError, fit_calibration

    try:
        calibration = fit_calibration([v for v, _ in bought], [h for _, h in bought], allow_ties=allow_ties,
                                      score=False)
    except CalibrationError:
        return batch
    def calibrated(item: SimulationItem) -> SimulationItem:
        verdict = item.candidate.verdict
        if verdict is None:
            return item
        return replace(item, candidate=RoutingCandidate.build(item.candidate.item, calibration.apply(verdict)))

    return [calibrated(item) for item in batch]


def run_policy(items: list[SimulationItem], policy: Policy, budget: float, batch_size: int,
               seed: int = 0, calibrate: bool = False, allow_ties: bool = True) -> list[TraceEntry]:
    """Route ``items`` in sequential batches; each batch's human share is fixed so the total is
    exactly ``Budget(fraction=budget).human_count(len(items))``. With ``calibrate`` the
    judge's verdicts of each batch are first calibrated on the human verdicts bought in
    earlier batches, and the policy sees (and keeps) the calibrated verdicts."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(items)) if seed is not None else range(len(items))
    arriving = [items[i] for i in order]
    total = Budget(fraction=budget)
    seen: list[LabelledCandidate] = []  # human verdicts of items already routed to humans
    bought: list[tuple] = []  # (the judge's raw verdict, the human verdict) of those items
    trace = []
    for batch_number, start in enumerate(range(0, len(arriving), batch_size)):
        batch = arriving[start : start + batch_size]
        raw = {item.candidate.item.id: item.candidate.verdict for item in batch}
        if calibrate and bought:
            batch = _calibrated(batch, bought, allow_ties)
        share = total.batch_share(start, len(batch))
        policy.fit(list(seen))
        decisions = policy.route([item.candidate for item in batch], Budget(count=share))
        for item, decision in zip(batch, decisions, strict=True):
            if decision.route == HUMAN:
                label = item.first_human
                seen.append(LabelledCandidate(item.candidate, item.first_human))
                if raw[item.candidate.item.id] is not None:
                    bought.append((raw[item.candidate.item.id], item.first_human))
            else:
                label = item.candidate.verdict.verdict if decision.route == JUDGE else None
            trace.append(TraceEntry(item.candidate.item.id, batch_number, decision.route, decision.reason, label))
    return trace


def accuracy(items: list[SimulationItem], trace: list[TraceEntry]) -> float:
    majority = {item.candidate.item.id: item.majority for item in items}
    return sum(entry.label == majority[entry.item_id] for entry in trace) / len(trace) if trace else 0.0


def simulate_routing(items: list[SimulationItem], policy: str, budgets=DEFAULT_BUDGETS, seeds: int = 5,
                     random_seeds: int = 20, batch_size: int = 100, judge_name: str = "",
                     policy_options: dict | None = None, calibrate: bool = False) -> RoutingCurve:
    """The accuracy of ``policy`` at each budget (mean over ``seeds`` arrival orders), beside random's."""
    if not items:
        raise ValueError("no items to simulate: each needs a human majority and a human verdict")

    def mean_accuracy(name: str, budget: float, count: int, options: dict) -> float:
        runs = [accuracy(items, run_policy(items, get_policy(name, seed=seed, **options), budget, batch_size, seed,
                                           calibrate=calibrate))
                for seed in range(count)]
        return sum(runs) / len(runs)

    curve = [
        CurvePoint(
            budget=budget,
            accuracy=mean_accuracy(policy, budget, seeds, policy_options or {}),
            random_accuracy=mean_accuracy("random", budget, random_seeds, {}),
            human_count=Budget(fraction=budget).human_count(len(items)),
        )
        for budget in budgets
    ]
    judge_labels = [item.candidate.verdict.verdict if item.candidate.judge_usable else None for item in items]
    return RoutingCurve(
        policy=policy,
        judge=judge_name,
        n=len(items),
        batch_size=batch_size,
        seeds=seeds,
        random_seeds=random_seeds,
        judge_accuracy=sum(label == item.majority for label, item in zip(judge_labels, items)) / len(items),
        first_human_accuracy=sum(item.first_human == item.majority for item in items) / len(items),
        curve=curve,
    )
