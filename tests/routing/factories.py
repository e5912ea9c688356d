"""Synthetic judged comparisons with a known pattern of judge errors, for policy and simulation tests."""

from __future__ import annotations

import random

from routing.judges.base import UNPARSABLE, JudgeVerdict, PairItem
from routing.policies import RoutingCandidate
from routing.simulation import SimulationItem

VERDICT_CHOICES = ("a", "b", "tie")


def judged_item(index: int, verdict: str, confidence: float | None, consistent: bool | None = True,
                category: str = "easy") -> RoutingCandidate:
    item = PairItem(id=f"item-{index}", prompt=f"Question {index} about {category}?",
                    a=f"answer one to {index} " * (1 + index % 3), b=f"another reply for {index}", category=category)
    probs = {}
    if verdict != UNPARSABLE and confidence is not None:
        rest = (1 - confidence) / 2
        probs = {key: (confidence if key == f"p_{verdict}" else rest) for key in ("p_a", "p_b", "p_tie")}
    judged = JudgeVerdict(item_id=item.id, verdict=verdict, confidence=confidence if verdict != UNPARSABLE else None,
                          order_consistent=consistent if verdict != UNPARSABLE else False, judge="synthetic",
                          **probs)
    return RoutingCandidate.build(item, judged)


def candidates(n: int = 40, seed: int = 0) -> list[RoutingCandidate]:
    """A mix: some unparsable, some order-inconsistent, confidences spread, two categories."""
    rng = random.Random(seed)
    made = []
    for index in range(n):
        if index % 10 == 3:
            made.append(judged_item(index, UNPARSABLE, None, category="hard"))
            continue
        made.append(judged_item(index, rng.choice(VERDICT_CHOICES), round(rng.uniform(0.34, 0.99), 3),
                                consistent=index % 7 != 0, category=rng.choice(("easy", "hard"))))
    return made


def simulation_items(n: int = 200, seed: int = 0) -> list[SimulationItem]:
    """Items whose judge is right on "easy" comparisons and usually wrong on "hard" ones.

    The judge gives no confidence, so only a policy that learns the category can find its
    mistakes: what the learned policy is for.
    """
    rng = random.Random(seed)
    items = []
    for index in range(n):
        category = "hard" if rng.random() < 0.3 else "easy"
        truth = rng.choice(("a", "b"))
        wrong = category == "hard" and rng.random() < 0.8
        said = ("b" if truth == "a" else "a") if wrong else truth
        candidate = judged_item(index, said, None, consistent=None, category=category)
        items.append(SimulationItem(candidate, first_human=truth, majority=truth))
    return items
