"""What every text provider records about an answer."""

from __future__ import annotations

from arena.outputs.textstats import markdown_counts


def text_metadata(text: str, tokens: int | None) -> dict:
    """Answer length in tokens (None when the backend does not say) and its markdown style counts.

    These are the covariates of the style-controlled leaderboard.
    """
    return {"tokens": tokens, **markdown_counts(text)}
