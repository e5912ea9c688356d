from __future__ import annotations

from .base import Generated, GenerationRequest, ProviderBackend, ProviderError


class UploadedProvider(ProviderBackend):
    """A System whose outputs were produced elsewhere and imported; it never generates."""

    modality = "any"  # the System's own modality decides; imported outputs can be any kind

    def generate(self, requests: list[GenerationRequest]) -> list[Generated]:
        raise ProviderError("uploaded systems do not generate; import their outputs")
