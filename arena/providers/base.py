"""The contract every System provider fulfils: answer a batch of prompts.

A provider is built from a System's ``provider_config`` (a dict stored on the System) and
holds no database state, so a Celery task can build one, call ``generate`` on a bounded
batch, and write the Outputs itself. Providers never touch the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ProviderError(Exception):
    """A provider cannot produce outputs: bad configuration, a failed call, a missing model.

    The message is shown to the researcher who configured the System, so it says what went
    wrong and, where it can, what to change.
    """


@dataclass
class GenerationRequest:
    """One prompt to answer."""

    prompt_text: str
    prompt_id: int | None = None
    seed: int | None = None


@dataclass
class Generated:
    """One answer: text, or media bytes with their type, plus what is known about it."""

    text: str = ""
    media: bytes | None = None  # image or audio file contents
    media_extension: str = ""  # "png", "wav", ...
    media_type: str = ""  # MIME type
    # tokens, markdown counts, duration, width/height, sampling used. Never the system's
    # name or anything that identifies it: outputs are shown blind.
    metadata: dict = field(default_factory=dict)
    generation_time_s: float = 0.0


class ProviderBackend:
    """A way for a System to produce outputs.

    Subclasses set ``modality`` and implement ``generate``. ``__init__`` validates the
    configuration and raises ProviderError for a bad one, so a System with a broken
    configuration fails when it is saved or first used, not half-way through a batch.
    """

    modality: str = "text"  # "text" | "image" | "audio"

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})

    def generate(self, requests: list[GenerationRequest]) -> list[Generated]:
        """Answer every request: exactly one Generated per request, in the same order.

        Text providers fill ``text``; image and audio providers fill ``media``,
        ``media_extension`` and ``media_type``. Deterministic for a given request seed
        where the backend allows it. Raises ProviderError with a clear message on failure;
        a batch either succeeds as a whole or raises.
        """
        raise NotImplementedError("subclasses of ProviderBackend must implement generate()")

    # Helpers for subclasses ------------------------------------------------------------

    def _number(self, key: str, default, kind=float, minimum=None, maximum=None):
        """Read a numeric config value, checked against its range."""
        value = self.config.get(key, default)
        if value is None:
            return None
        try:
            value = kind(value)
        except (TypeError, ValueError):
            raise ProviderError(f"{key} must be a number, got {value!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ProviderError(f"{key} must be between {minimum} and {maximum}, got {value}")
        return value

    def _choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.config.get(key, default)
        if value not in choices:
            raise ProviderError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
        return value


def django_setting(name: str, default):
    """A Django setting when Django is configured, else ``default`` (scripts and bare tests)."""
    from django.conf import settings

    return getattr(settings, name, default) if settings.configured else default

