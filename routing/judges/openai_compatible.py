"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, Ollama...).

Same protocol as the local judge: MT-Bench's prompt, both orders. Chat APIs cannot be
pre-filled up to "[[", so the judge writes its explanation and verdict; where the endpoint
returns ``logprobs``/``top_logprobs``, P(A), P(B), P(C) are read at the verdict letter's
token, otherwise the verdict is parsed from the text (a one-hot), and text without exactly
one verdict is ``unparsable``. The transport is arena's OpenAI-compatible provider (config
checks, API key from an environment variable, retries with backoff on 429/5xx), and every
attempt first waits its turn in the endpoint's budget (arena.ratelimit.Pacer), which every
worker on every host calling the same endpoint and model shares.
"""

from __future__ import annotations

import json
import math
import re
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from arena import ratelimit
from arena.providers.base import ProviderError
from arena.providers.openai_compatible import OpenAICompatibleProvider

from .base import AutomaticJudge, JudgeError, JudgeVerdict, PairItem
from .protocol import (
    ORDERS,
    PROTOCOL_VERSION,
    combine_orders,
    messages,
    order_from_letter_probs,
    order_from_text,
    verdict_span,
)

# A top_logprobs alternative that is the verdict letter, alone or with the brackets merged in
# ("A", " A", "[[A", "A]]"), depending on the endpoint's tokenizer.
_LETTER_TOKEN = re.compile(r"\s*(?:\[\[)?\s*([ABC])\s*(?:\]\])?\s*")


# How long one request may wait for room in the endpoint's budget before the judge gives up:
# long enough for a busy shared endpoint, short of a judging task's patience.
MAX_WAIT_S = 120.0


class _PacedEndpoint(OpenAICompatibleProvider):
    """arena's transport, every attempt (retries included) waiting for the endpoint's
    pacer first (none: not paced)."""

    def __init__(self, config: dict):
        super().__init__(config)
        self.pacer = endpoint_pacer(self.base_url, self.model, config)

    def _post(self, data: bytes, headers: dict[str, str]) -> bytes:
        if self.pacer is not None:
            try:
                self.pacer.acquire()
            except ratelimit.WaitTooLong as error:
                raise ProviderError(str(error)) from error
        return super()._post(data, headers)


def endpoint_pacer(base_url: str, model: str, config: dict) -> ratelimit.Pacer | None:
    """The shared budget of calls to ``model`` at ``base_url``, from the judge's
    ``requests_per_second`` (0 or "off": not paced), ``burst`` and ``max_wait_s``."""
    rate = config.get("requests_per_second", 2.0)
    if str(rate).strip().lower() in ("off", "none") or float(rate) == 0:
        return None
    burst = config.get("burst")
    rate = ratelimit.Rate.per_second(float(rate), float(burst) if burst is not None else None)
    max_wait_s = float(config.get("max_wait_s", MAX_WAIT_S))
    if max_wait_s < 0:
        raise ValueError(f"max_wait_s must be 0 or more seconds, got {max_wait_s}")
    # Every judge naming this server and model, in any worker on any host, shares the budget.
    endpoint = f"{base_url.rstrip('/')} {model}"
    return ratelimit.Pacer(f"judge:{ratelimit.digest(endpoint)}", rate, max_wait_s=max_wait_s,
                           name=f"the judge endpoint {base_url} (model {model})")  # fmt: skip


class OpenAICompatibleJudge(AutomaticJudge):
    """Config: ``base_url``, ``model``, ``api_key_env`` (name of the variable holding the key),
    ``requests_per_second`` (all workers together; default 2; 0 or "off": not paced),
    ``burst`` (requests per window of burst / rate seconds; default: the rate, at least 1),
    ``max_wait_s`` (default 120: longest wait for room in the budget), ``logprobs`` (ask for
    them; default true), ``top_logprobs`` (default 5), ``max_tokens`` (default 512),
    ``seed``, ``timeout``, ``retries``, ``backoff_s``, ``concurrency`` (as arena's provider).
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        try:
            self.top_logprobs = int(config.get("top_logprobs", 5))
            transport = {"temperature": 0.0, "max_tokens": 512, **config}
            self.endpoint = _PacedEndpoint(transport)
        except (ProviderError, TypeError, ValueError) as error:
            raise JudgeError(f"invalid OpenAI-compatible judge config: {error}") from error
        self.logprobs = bool(config.get("logprobs", True))
        self.name = f"openai:{self.endpoint.model}"
        self.version = f"{PROTOCOL_VERSION}/chat"

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        try:
            headers = self.endpoint._headers()  # fails before any call when the key is missing
        except ProviderError as error:
            raise JudgeError(str(error)) from error
        requests = [(item, order) for item in items for order in ORDERS]
        workers = min(self.endpoint.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda request: self._judge_order_in_pool(*request, headers), requests))
        return [self._verdict(item.id, **combine_orders((results[2 * i], results[2 * i + 1])))
                for i, item in enumerate(items)]

    @property
    def pacer(self) -> ratelimit.Pacer | None:
        return self.endpoint.pacer

    def _judge_order_in_pool(self, item: PairItem, order: str, headers: dict):
        try:
            return self._judge_order(item, order, headers)
        finally:
            # The pacer's counts may live in the database: close this pool thread's
            # connection rather than leave one open per thread that ever ran.
            connections.close_all()

    def _judge_order(self, item: PairItem, order: str, headers: dict):
        body = {"model": self.endpoint.model, "messages": messages(item, order),
                "temperature": self.endpoint.temperature, "max_tokens": self.endpoint.max_tokens}
        if self.endpoint.seed is not None:
            body["seed"] = self.endpoint.seed
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        try:
            payload = self.endpoint._post_with_retries(json.dumps(body).encode(), headers)
        except ProviderError as error:
            if body.get("logprobs") and "logprobs" in str(error).lower():
                # The endpoint refuses logprobs (some servers answer 400): parse text from now on.
                self.logprobs = False
                return self._judge_order(item, order, headers)
            raise JudgeError(str(error)) from error
        text, token_logprobs = _read_completion(payload)
        probs = letter_probs(text, token_logprobs) if token_logprobs else None
        if probs is None:
            return order_from_text(order, text)
        return order_from_letter_probs(order, probs, "logprobs", raw_text=text)


def _read_completion(payload: bytes) -> tuple[str, list | None]:
    try:
        choice = json.loads(payload)["choices"][0]
        content = choice["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise JudgeError(f"the endpoint's answer is not a chat completion: {payload[:200]!r}") from error
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    logprobs = choice.get("logprobs") or {}
    return content, logprobs.get("content") if isinstance(logprobs, dict) else None


def letter_probs(text: str, token_logprobs: list[dict]) -> dict[str, float] | None:
    """P(A), P(B), P(C) at the verdict letter's token, renormalised over the three; None if not found.

    Letters missing from ``top_logprobs`` count as 0: they are below the k-th alternative,
    so this overstates the chosen letter slightly when k is small.
    """
    span = verdict_span(text)
    if span is None:
        return None
    _, offset = span
    position = 0
    for entry in token_logprobs:
        token = entry.get("token") or ""
        if position <= offset < position + len(token):
            break
        position += len(token)
    else:
        return None  # the tokens do not spell out the text (byte-level tokens): parse instead
    mass = dict.fromkeys("ABC", 0.0)
    alternatives = entry.get("top_logprobs") or [{"token": entry.get("token"), "logprob": entry.get("logprob")}]
    for alternative in alternatives:
        match = _LETTER_TOKEN.fullmatch(alternative.get("token") or "")
        logprob = alternative.get("logprob")
        if match and isinstance(logprob, int | float):
            mass[match.group(1)] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {letter: value / total for letter, value in mass.items()}
