"""The pairwise judging protocol: MT-Bench's prompt, both orders, and how two orders combine.

The prompt is MT-Bench's ``pair-v2`` judge prompt (Zheng et al. 2023, "Judging LLM-as-a-judge
with MT-Bench and Chatbot Arena"; FastChat, Apache-2.0): the judge compares two answers and
ends with ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie). LLM judges favour a position, so every item
is judged twice, once with each answer shown first; the two orders are mapped back to the
item's own a/b and averaged, which cancels a constant position bias, and whether they agreed
is recorded. Changing anything here changes what the judges measure: bump PROTOCOL_VERSION.
"""

from __future__ import annotations

import re

from .base import A, B, TIE, UNPARSABLE, VERDICTS, OrderResult, PairItem

PROTOCOL_VERSION = "mtbench-pair-v2.1"
ORDERS = ("ab", "ba")
LETTERS = ("A", "B", "C")  # as printed by the judge: first shown, second shown, tie

SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. You should choose the assistant that "
    "follows the user's instructions and answers the user's question better. Your evaluation "
    "should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and "
    "level of detail of their responses. Begin your evaluation by comparing the two responses and "
    "provide a short explanation. Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as "
    "objective as possible. After providing your explanation, output your final verdict by strictly "
    'following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, '
    'and "[[C]]" for a tie.'
)

USER_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

# The logit judge skips the explanation: the assistant turn starts with this, so the very
# next token is the verdict letter ("[[" is one SmolLM2 token, " [[" another, and the
# letters A, B, C single tokens after either; LogitJudge checks this on its tokenizer).
VERDICT_PREFIX = "My final verdict is: [["

_VERDICT_PATTERN = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def shown(item: PairItem, order: str) -> tuple[str, str]:
    """The answers shown as Assistant A and Assistant B in ``order``."""
    return (item.a, item.b) if order == "ab" else (item.b, item.a)


def messages(item: PairItem, order: str, answer_a: str | None = None, answer_b: str | None = None) -> list[dict]:
    """Chat messages for one order; ``answer_a``/``answer_b`` override the shown texts (truncated)."""
    first, second = shown(item, order)
    user = USER_TEMPLATE.format(
        question=item.prompt,
        answer_a=first if answer_a is None else answer_a,
        answer_b=second if answer_b is None else answer_b,
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def letter_to_verdict(letter: str, order: str) -> str:
    """Map a printed letter back to the item's verdict: in order "ba", [[A]] means b."""
    if letter == "C":
        return TIE
    first = letter == "A"
    return (A if first else B) if order == "ab" else (B if first else A)


def parse_letter(text: str) -> str | None:
    """The verdict letter in a judge's text, or None when there is none or several disagree.

    MT-Bench's own parser takes the first of [[A]], [[B]], [[C]] it finds in a fixed order;
    a small model that echoes the instructions ("[[A]] if assistant A is better, [[B]] ...")
    would then always read as A. Several different verdicts are ambiguous, so unparsable.
    """
    letters = set(_VERDICT_PATTERN.findall(text or ""))
    return letters.pop() if len(letters) == 1 else None


def verdict_span(text: str) -> tuple[str, int] | None:
    """(letter, character offset of the letter) of the unambiguous verdict in ``text``."""
    if parse_letter(text) is None:
        return None
    match = list(_VERDICT_PATTERN.finditer(text))[-1]
    return match.group(1), match.start(1)


def order_from_letter_probs(order: str, probs: dict[str, float], source: str, **extra) -> OrderResult:
    """An OrderResult from probabilities of the printed letters A, B, C (summing to 1)."""
    by_verdict = {letter_to_verdict(letter, order): probs[letter] for letter in LETTERS}
    verdict = max(VERDICTS, key=lambda v: by_verdict[v])
    return OrderResult(order=order, verdict=verdict, p_a=by_verdict[A], p_b=by_verdict[B], p_tie=by_verdict[TIE],
                       source=source, **extra)


def order_from_text(order: str, text: str) -> OrderResult:
    """An OrderResult from generated text: a one-hot on the parsed verdict, or unparsable."""
    letter = parse_letter(text)
    if letter is None:
        return OrderResult(order=order, verdict=UNPARSABLE, raw_text=text)
    probs = {other: float(other == letter) for other in LETTERS}
    return order_from_letter_probs(order, probs, "parsed", raw_text=text)


def combine_orders(orders: tuple[OrderResult, ...]) -> dict:
    """Fields of the item's JudgeVerdict from its per-order results.

    The probabilities of the orders are averaged. The verdict is their argmax; an exact tie
    between the two best (a parsed [[A]] in one order and [[B]] in the other: 0.5/0.5) is a
    tie, MT-Bench's reading of an inconsistent pair. An unparsable order makes the whole
    verdict unparsable: one order alone keeps the position bias the protocol exists to
    cancel, and the router sends unparsable items to humans first.
    """
    if not orders or any(order.verdict == UNPARSABLE for order in orders):
        parsed = ", ".join(f"{o.order}: {o.verdict}" for o in orders)
        return {"verdict": UNPARSABLE, "order_consistent": False, "orders": tuple(orders),
                "detail": f"no verdict in every order ({parsed})"}
    count = len(orders)
    probs = {
        A: sum(o.p_a for o in orders) / count,
        B: sum(o.p_b for o in orders) / count,
        TIE: sum(o.p_tie for o in orders) / count,
    }
    ranked = sorted(VERDICTS, key=lambda v: probs[v], reverse=True)
    verdict = TIE if probs[ranked[0]] == probs[ranked[1]] else ranked[0]
    return {
        "verdict": verdict,
        "p_a": probs[A],
        "p_b": probs[B],
        "p_tie": probs[TIE],
        "confidence": probs[verdict],
        "order_consistent": len({o.verdict for o in orders}) == 1 if count > 1 else None,
        "orders": tuple(orders),
    }
