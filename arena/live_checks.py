"""Keeping live votes honest: the identity-leak detector and the prompt filter."""

import json
import logging
import os
import re
import urllib.error
import urllib.request

from django.conf import settings

from . import errors
from .models import System

logger = logging.getLogger(__name__)

# Parts of names too generic to reveal anything ("model", "chat", version tags).
GENERIC_WORDS = frozenset({"model", "chat", "instruct", "base", "demo", "system", "local", "uploaded", "tones",
                           "painter", "large", "small", "mini", "latest", "preview", "turbo", "http", "https"})  # fmt: skip
MODEL_FAMILY_ALIASES = {
    "smollm2": ("smollm", "smollm2", "hugging face", "huggingface"),
    "gpt": ("openai", "chatgpt", "gpt"),
    "llama": ("llama", "meta ai"),
    "claude": ("claude", "anthropic"),
    "gemini": ("gemini", "google"),
    "mistral": ("mistral",),
    "qwen": ("qwen", "alibaba"),
}


def _parts(text: str) -> set[str]:
    words = set()
    for part in re.split(r"[\s_/.:@-]+", text.lower()):
        if len(part) >= 4 and not part.isdigit() and part not in GENERIC_WORDS:
            words.add(part)
    return words


def leak_words(system: System) -> set[str]:
    """Words that identify a system: its name, its provider and its model family, plus
    the configured DUET_LEAK_WORDS."""
    words = _parts(system.name)
    config = system.provider_config or {}
    model = str(config.get("model", ""))
    words |= _parts(model)
    if system.provider == "openai":
        words |= {"openai"} if "openai.com" in str(config.get("base_url", "")) else set()
    haystack = f"{system.name} {model}".lower()
    for family, aliases in MODEL_FAMILY_ALIASES.items():
        if family in haystack:
            words |= set(aliases)
    return words | {w.lower() for w in settings.LEAK_WORDS}


def find_leaks(texts: list[str], systems: list[System]) -> list[str]:
    """The identifying words that occur (as whole words) in any of the texts."""
    words = set().union(*(leak_words(system) for system in systems))
    found = set()
    for text in texts:
        lowered = text.lower()
        for word in words:
            if re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", lowered):
                found.add(word)
    return sorted(found)


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
