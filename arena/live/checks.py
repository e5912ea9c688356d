"""Keeping live votes honest: the prompt filter (the identity-leak check is in `arena.live.leaks`)."""

import json
import logging
import os
import re
import urllib.error
import urllib.request

from django.conf import settings

from arena import errors

logger = logging.getLogger(__name__)

def check_prompt(text: str) -> str:
    """Refuse a prompt that the configured filter blocks; returns the cleaned prompt."""
    text = (text or "").strip()
    if not text:
        raise errors.InvalidInput("message is empty: type a prompt first")
    if len(text) > settings.LIVE_MAX_MESSAGE_CHARS:
        raise errors.InvalidInput(
            f"message is {len(text)} characters; the limit is {settings.LIVE_MAX_MESSAGE_CHARS}"
        )
    lowered = text.lower()
    for word in settings.PROMPT_BLOCKLIST:
        if re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", lowered):
            raise errors.InvalidInput("this prompt was refused by the arena's content filter (blocked word)")
    for pattern in settings.PROMPT_BLOCK_PATTERNS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            raise errors.InvalidInput("this prompt was refused by the arena's content filter (blocked pattern)")
    if settings.MODERATION_URL and _moderation_flags(text):
        raise errors.InvalidInput("this prompt was refused by the arena's content filter (moderation)")
    return text


def _moderation_flags(text: str) -> bool:
    """Ask an OpenAI-compatible /moderations endpoint. If it cannot be reached the prompt
    is refused rather than let through unchecked."""
    headers = {"Content-Type": "application/json"}
    if settings.MODERATION_API_KEY_ENV:
        headers["Authorization"] = f"Bearer {os.environ.get(settings.MODERATION_API_KEY_ENV, '')}"
    request = urllib.request.Request(
        settings.MODERATION_URL, data=json.dumps({"input": text}).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        return any(result.get("flagged") for result in body.get("results", []))
    except (urllib.error.URLError, TimeoutError, ValueError, AttributeError) as exc:
        logger.warning("moderation endpoint failed: %s", exc)
        raise errors.DuetError("the content filter is unavailable right now; try again shortly") from None
