"""What a voter is sent about a comparison before the vote: the prompt and the two outputs,
never anything that names or hints at a system (no names, ids, metadata or file names)."""

from django.conf import settings

from .models import Comparison, Output
from .rendering import render_markdown


def _side(output: Output) -> dict:
    if output.kind == "text":
        return {"kind": "text", "html": render_markdown(output.text)}
    side = {"kind": output.kind, "url": output.media.url, "media_type": output.media_type}
    if output.kind == "audio":
        side["duration"] = output.metadata.get("duration")
    return side


def comparison_payload(comparison: Comparison, token: str) -> dict:
    payload = {
        "comparison": str(comparison.public_id),
        "token": token,
        "modality": comparison.prompt.modality,
        "prompt": {"text": comparison.prompt.text, "html": render_markdown(comparison.prompt.text)},
        "a": _side(comparison.output_a),
        "b": _side(comparison.output_b),
    }
    if comparison.prompt.modality == "audio":
        payload["audio_min_play_seconds"] = settings.AUDIO_MIN_PLAY_SECONDS
    return payload
