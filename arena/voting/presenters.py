"""What a voter is sent about a comparison before the vote: the prompt and the two outputs,
never anything that names or hints at a system (no names, ids, metadata or file names)."""

from django.conf import settings

from arena.hotcache import Memo
from arena.models import Comparison, Output
from arena.outputs.rendered import rendered
from arena.outputs.rendering import render_markdown
from arena import fastpath as rows

# An output's or prompt's HTML depends only on its text, and sanitising markdown is the
# costliest step of serving a comparison (about 1 ms per output): an output's is made once
# and kept on its row (arena.outputs.rendered), and each process keeps copies (see
# arena.hotcache for how long a copy is trusted).
_sides: Memo[dict] = Memo("rendered outputs", ttl=600, invalidated_by=("arena.Output:edited",))
_prompts: Memo[dict] = Memo("rendered prompts", ttl=600, invalidated_by=("arena.Prompt:edited",))


def _side(output: Output) -> dict:
    if output.kind == "text":
        return {"kind": "text", "html": rendered(output)["html"]}
    side = {"kind": output.kind, "url": output.media.url, "media_type": output.media_type}
    if output.kind == "audio":
        side["duration"] = output.metadata.get("duration")
    return side


def comparison_payload(comparison: Comparison, token: str) -> dict:
    # The lambdas run only on a miss; the first to run reads the prompt and both outputs
    # in one statement.
    def loaded() -> Comparison:
        return rows.load_served_parts(comparison)

    prompt = _prompts.get(
        comparison.prompt_id,
        lambda: {"modality": loaded().prompt.modality, "text": loaded().prompt.text,
                 "html": render_markdown(loaded().prompt.text)},
    )  # fmt: skip
    payload = {
        "comparison": str(comparison.public_id),
        "token": token,
        "modality": prompt["modality"],
        "prompt": {"text": prompt["text"], "html": prompt["html"]},
        "a": dict(_sides.get(comparison.output_a_id, lambda: _side(loaded().output_a))),
        "b": dict(_sides.get(comparison.output_b_id, lambda: _side(loaded().output_b))),
    }
    if prompt["modality"] == "audio":
        payload["audio_min_play_seconds"] = settings.AUDIO_MIN_PLAY_SECONDS
    return payload
