"""Providers: the ways a System produces outputs.

``get_provider(system.provider, system.provider_config)`` builds one; its ``generate``
answers a batch of GenerationRequests. Implementations are imported on first use, so
importing this package costs nothing beyond the dataclasses.
"""

from __future__ import annotations

import importlib

from .base import Generated, GenerationRequest, ProviderBackend, ProviderError

__all__ = [
    "PROVIDER_NAMES",
    "Generated",
    "GenerationRequest",
    "ProviderBackend",
    "ProviderError",
    "get_provider",
    "provider_class",
]

_REGISTRY = {
    "uploaded": "arena.providers.uploaded.UploadedProvider",
    "transformers": "arena.providers.local_transformers.TransformersProvider",
    "openai": "arena.providers.openai_compatible.OpenAICompatibleProvider",
    "demo_image": "arena.providers.demo_image.DemoImageProvider",
    "demo_audio": "arena.providers.demo_audio.DemoAudioProvider",
}
PROVIDER_NAMES = tuple(_REGISTRY)


def provider_class(name: str) -> type[ProviderBackend]:
    """The ProviderBackend subclass registered under ``name`` (for its ``modality``, without building one)."""
    try:
        dotted = _REGISTRY[name]
    except KeyError:
        raise ProviderError(f"unknown provider {name!r}; choose one of {', '.join(PROVIDER_NAMES)}") from None
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)


def get_provider(name: str, config: dict | None = None) -> ProviderBackend:
    """Build the provider ``name`` from a System's config; ProviderError if either is invalid."""
    return provider_class(name)(config or {})
