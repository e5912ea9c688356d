"""Answering one turn of a live battle, streaming text as it is produced.

`stream_answer(system, messages, emit, should_stop)` calls `emit(text_so_far)` as tokens
arrive and returns the final `Generated`. Local models stream through transformers'
TextIteratorStreamer; OpenAI-compatible endpoints through `stream: true` server-sent
events; image and audio renderers produce their media in one piece.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from arena.models import Modality, Provider, System
from arena.outputs.textstats import markdown_counts
from arena.providers import Generated, GenerationRequest, ProviderError, get_provider


class Stopped(Exception):
    """The battle was voided while this side was still answering."""


def _chat_messages(system_prompt: str, messages: list[dict]) -> list[dict]:
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + messages


def _stream_transformers(system: System, messages, emit, should_stop, timeout: float) -> Generated:
    import torch
    from transformers import TextIteratorStreamer

    from arena.providers.localmodel import load_causal_lm

    provider = get_provider(system.provider, system.provider_config)
    model, tokenizer = load_causal_lm(provider.model_ref, provider.device)
    text = tokenizer.apply_chat_template(
        _chat_messages(provider.system_prompt, messages), tokenize=False, add_generation_prompt=True
    )
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=60)
    options = {"max_new_tokens": provider.max_new_tokens, "streamer": streamer, "pad_token_id": tokenizer.pad_token_id}
    if provider.temperature > 0:
        options.update(do_sample=True, temperature=provider.temperature, top_p=provider.top_p)
    else:
        options.update(do_sample=False)
    started = time.perf_counter()
    failure: list[BaseException] = []

    def run():
        try:
            with torch.inference_mode():
                model.generate(**encoded, **options)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)
            streamer.end()

    # generate() blocks, so it runs in a thread while this one forwards the text.
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    answer, tokens = "", 0
    for piece in streamer:
        answer += piece
        tokens += 1
        emit(answer)
        if should_stop():
            raise Stopped()
    worker.join()
    if failure:
        raise ProviderError(f"generation failed: {failure[0]}")
    answer = answer.strip()
    metadata = {**markdown_counts(answer), "tokens": len(tokenizer(answer, add_special_tokens=False)["input_ids"])}
    return Generated(text=answer, metadata=metadata, generation_time_s=time.perf_counter() - started)


def _stream_openai(system: System, messages, emit, should_stop, timeout: float) -> Generated:
    provider = get_provider(system.provider, system.provider_config)
    timeout = min(provider.timeout, timeout)
    body = {
        "model": provider.model,
        "messages": _chat_messages(provider.system_prompt, messages),
        "temperature": provider.temperature,
        "max_tokens": provider.max_tokens,
        "stream": True,
    }
    request = urllib.request.Request(
        provider.url, data=json.dumps(body).encode(), headers=provider._headers(), method="POST"
    )
    started = time.perf_counter()
    answer = ""
    try:
        # A socket timeout here (no byte for `timeout` seconds) surfaces as TimeoutError.
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                # An endpoint that ignores `stream` answers in one piece.
                payload = json.loads(response.read())
                answer = payload["choices"][0]["message"]["content"] or ""
                emit(answer)
            else:
                for raw in response:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content") or ""
                    if delta:
                        answer += delta
                        emit(answer)
                    if should_stop():
                        raise Stopped()
    except urllib.error.HTTPError as exc:
        raise ProviderError(f"{provider.url} answered HTTP {exc.code}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise TimeoutError(f"no answer from the endpoint within {timeout:.0f} s") from exc
        raise ProviderError(f"cannot reach {provider.url}: {exc.reason}") from exc
    except ConnectionError as exc:
        raise ProviderError(f"cannot reach {provider.url}: {exc}") from exc
    except (KeyError, IndexError, ValueError) as exc:
        raise ProviderError(f"{provider.url} sent a malformed answer: {exc}") from exc
    answer = answer.strip()
    return Generated(text=answer, metadata=markdown_counts(answer), generation_time_s=time.perf_counter() - started)


def _render_media(system: System, messages, emit, should_stop, timeout: float) -> Generated:
    provider = get_provider(system.provider, system.provider_config)
    prompt = messages[-1]["content"]
    return provider.generate([GenerationRequest(prompt_text=prompt)])[0]


STREAMERS: dict[str, Callable] = {
    Provider.TRANSFORMERS: _stream_transformers,
    Provider.OPENAI: _stream_openai,
    Provider.DEMO_IMAGE: _render_media,
    Provider.DEMO_AUDIO: _render_media,
}
LIVE_PROVIDERS = frozenset(STREAMERS)


def stream_answer(
    system: System, messages: list[dict], emit, should_stop=lambda: False, timeout: float = 120.0
) -> Generated:
    """Answer the conversation `messages` (user/assistant turns, last one the user's).
    Raises TimeoutError when the backend goes silent for `timeout` seconds."""
    streamer = STREAMERS.get(system.provider)
    if streamer is None:
        raise ProviderError(f"provider {system.provider} cannot answer live")
    if system.modality != Modality.TEXT and len(messages) > 1:
        raise ProviderError("image and audio battles have a single turn")
    return streamer(system, messages, emit, should_stop, timeout)
