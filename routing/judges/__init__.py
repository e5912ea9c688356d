"""Automatic judges of pairwise comparisons, and the protocol they share.

``get_judge(spec)`` builds one by name; ``judge.judge(items)`` returns one JudgeVerdict per
PairItem. Nothing here imports Django models, torch or transformers at import time: the
local judges load their model on first use.

Specs:
    smollm2                 SmolLM2-135M-Instruct, verdict probabilities from one forward pass
    generate-smollm2        SmolLM2, generate() per pair and parse (the benchmark's baseline)
    model:/path/to/hf/dir   the logit judge on any local causal LM folder
    generate-model:/path    the generate judge on any local causal LM folder
    openai: / openai:MODEL  an OpenAI-compatible endpoint configured from the environment
                            (see ``openai_config_from_env``)
Imported verdicts are not a spec: build ``ImportedJudge(name, records)``.
"""

from __future__ import annotations

import os

from .base import (
    A,
    B,
    NO_VERDICT,
    TIE,
    UNPARSABLE,
    UNSUPPORTED,
    VERDICTS,
    AutomaticJudge,
    JudgeError,
    JudgeVerdict,
    OrderResult,
    PairItem,
)
from .imported import ImportedJudge, normalise_verdict
from .protocol import PROTOCOL_VERSION

__all__ = [
    "DEFAULT_JUDGE", "A", "B", "TIE", "UNPARSABLE", "UNSUPPORTED", "VERDICTS", "NO_VERDICT", "PROTOCOL_VERSION",
    "AutomaticJudge", "ImportedJudge", "JudgeError", "JudgeVerdict", "OrderResult", "PairItem",
    "get_judge", "normalise_verdict", "openai_config_from_env",
]

DEFAULT_JUDGE = "smollm2"


def openai_config_from_env(model: str = "", environ=os.environ) -> dict:
    """The ``openai:`` judge's config: ``DUET_JUDGE_BASE_URL`` (required), ``DUET_JUDGE_MODEL``
    (unless given after the colon), ``DUET_JUDGE_API_KEY_ENV`` (the name of the variable that
    holds the key; unset for local servers), ``DUET_JUDGE_RPS`` (requests a second to the
    endpoint from all workers together, default 2; 0 or "off": not paced),
    ``DUET_JUDGE_LOGPROBS`` ("0" to stop asking for logprobs).
    """
    config = {
        "base_url": environ.get("DUET_JUDGE_BASE_URL", ""),
        "model": model or environ.get("DUET_JUDGE_MODEL", ""),
        "api_key_env": environ.get("DUET_JUDGE_API_KEY_ENV", ""),
        "requests_per_second": environ.get("DUET_JUDGE_RPS", "2"),
        "logprobs": environ.get("DUET_JUDGE_LOGPROBS", "1") not in ("0", "false", "no"),
    }
    if not config["base_url"]:
        raise JudgeError("the openai: judge needs DUET_JUDGE_BASE_URL (e.g. https://api.openai.com/v1)")
    return config


def get_judge(spec: str = DEFAULT_JUDGE, **options) -> AutomaticJudge:
    """Build the judge named by ``spec`` (see the module docstring); ``options`` go to its constructor."""
    from arena.providers.localmodel import DEFAULT_MODEL

    if spec in ("smollm2", "generate-smollm2") or spec.startswith(("model:", "generate-model:")):
        from .local import GenerateJudge, LogitJudge

        generate = spec.startswith("generate-")
        model_ref = spec.split(":", 1)[1] if ":" in spec else DEFAULT_MODEL
        if not model_ref:
            raise JudgeError(f"{spec!r} names no model folder")
        return (GenerateJudge if generate else LogitJudge)(model_ref, **options)
    if spec.startswith("openai:"):
        from .openai_compatible import OpenAICompatibleJudge

        return OpenAICompatibleJudge({**openai_config_from_env(spec.split(":", 1)[1]), **options})
    raise JudgeError(
        f"unknown judge {spec!r}: use smollm2, generate-smollm2, model:/path, generate-model:/path or openai:[MODEL]"
    )
