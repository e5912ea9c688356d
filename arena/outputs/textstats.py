"""Markdown style features of an answer, as LMArena's style control counts them.

Style control (Chiang et al., "Does style matter?", LMArena 2024) adds the difference in
length, headers, list items and bold spans between two answers as covariates of the
Bradley-Terry model, so a system is not rewarded merely for formatting. The regexes follow
FastChat's ``count_markdown_elements``; like it, code is not counted: a ``# comment`` or a
``- x`` inside a fenced block is code, not formatting.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
_CLOSING_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})[ \t]*$")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_HEADER = re.compile(r"^#{1,6}[ \t]", re.MULTILINE)
_UNORDERED_ITEM = re.compile(r"^[ \t]*[-*+][ \t]", re.MULTILINE)
_ORDERED_ITEM = re.compile(r"^[ \t]*\d+\.[ \t]", re.MULTILINE)
_BOLD_STARS = re.compile(r"\*\*[^*\n]+\*\*")
_BOLD_UNDERSCORES = re.compile(r"__[^_\n]+__")


def strip_code(text: str) -> str:
    """Remove fenced code blocks (``` or ~~~; an unclosed fence runs to the end) and inline code."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        if fence is None:
            opening = _FENCE.match(line)
            if opening:
                fence = opening.group(1)
            else:
                kept.append(line)
            continue
        closing = _CLOSING_FENCE.match(line)
        # CommonMark: a fence closes only with the same character, at least as many of them.
        if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
            fence = None
    return _INLINE_CODE.sub("", "\n".join(kept))


def markdown_counts(text: str) -> dict[str, int]:
    """Count the style features of ``text``.

    Returns ``headers`` (ATX headers ``#`` to ``######``), ``lists`` (bullet plus numbered
    items, also given apart as ``unordered_lists`` and ``ordered_lists``), ``bold``
    (``**x**`` and ``__x__`` spans) and ``chars`` (length of the whole answer, code included,
    since code is still length a reader has to read).
    """
    prose = strip_code(text or "")
    unordered = len(_UNORDERED_ITEM.findall(prose))
    ordered = len(_ORDERED_ITEM.findall(prose))
    return {
        "headers": len(_HEADER.findall(prose)),
        "lists": unordered + ordered,
        "unordered_lists": unordered,
        "ordered_lists": ordered,
        "bold": len(_BOLD_STARS.findall(prose)) + len(_BOLD_UNDERSCORES.findall(prose)),
        "chars": len(text or ""),
    }


def style_features(text: str, tokens: int | None = None) -> dict[str, float]:
    """The raw values of the style-control covariates (`arena.ratings.TEXT_STYLE_FEATURES`)
    of one answer, from `markdown_counts`. `length` is the token count when the caller has
    one (LMArena uses tokens) and the character count otherwise; the covariate is a ratio,
    so either unit works as long as one arena uses one."""
    counts = markdown_counts(text)
    return {
        "length": float(counts["chars"] if tokens is None else tokens),
        "headers": float(counts["headers"]),
        "lists": float(counts["lists"]),
        "bold": float(counts["bold"]),
    }
