"""Text systems behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, Ollama...).

Plain urllib: one POST per prompt, a few in parallel, transient failures retried with
exponential backoff. The API key is read from an environment variable named in the
config, so it never sits in the database or in an error message.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException

from .base import Generated, GenerationRequest, ProviderBackend, ProviderError, django_setting
from .text import text_metadata

# Rate limits and server-side failures pass; anything else in 4xx is our request's fault.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAICompatibleProvider(ProviderBackend):
    """Config: ``base_url`` (e.g. "https://api.openai.com/v1"), ``model``, ``api_key_env``
    (name of the environment variable holding the key; omit for local servers),
    ``system_prompt``, ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``timeout`` (s),
    ``retries`` (extra attempts after the first), ``backoff_s`` (first wait, doubled each
    retry), ``concurrency`` (requests in flight at once).
    """

    modality = "text"

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.base_url = str(self.config.get("base_url") or "").rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ProviderError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        self.model = str(self.config.get("model") or "")
        if not self.model:
            raise ProviderError("model is required (the model name the endpoint expects)")
        self.api_key_env = str(self.config.get("api_key_env") or "")
        self.system_prompt = str(self.config.get("system_prompt") or "")
        self.temperature = self._number("temperature", 0.7, float, 0.0, 2.0)
        self.top_p = self._number("top_p", None, float, 0.0, 1.0)
        default_tokens = django_setting("GENERATION_MAX_NEW_TOKENS", 384)
        self.max_tokens = self._number("max_tokens", default_tokens, int, 1, 1_000_000)
        self.seed = self._number("seed", None, int)
        self.timeout = self._number("timeout", django_setting("OPENAI_TIMEOUT_SECONDS", 60.0), float, 0.1, 3600)
        self.retries = self._number("retries", 3, int, 0, 10)
        self.backoff_s = self._number("backoff_s", 1.0, float, 0.0, 60.0)
        self.concurrency = self._number("concurrency", 4, int, 1, 64)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def generate(self, requests: list[GenerationRequest]) -> list[Generated]:
        headers = self._headers()  # fails before any call when the key is missing
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._answer(request, headers) for request in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(lambda request: self._answer(request, headers), requests))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "")
            if not key:
                raise ProviderError(f"environment variable {self.api_key_env} (api_key_env) is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, request: GenerationRequest) -> dict:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages.append({"role": "user", "content": request.prompt_text})
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        seed = request.seed if request.seed is not None else self.seed
        if seed is not None:
            body["seed"] = seed
        return body

    def _answer(self, request: GenerationRequest, headers: dict[str, str]) -> Generated:
        body = self._body(request)
        started = time.perf_counter()
        payload = self._post_with_retries(json.dumps(body).encode(), headers)
        text, metadata = _parse_completion(payload)
        metadata["sampling"] = {key: body.get(key) for key in ("temperature", "top_p", "max_tokens", "seed")}
        return Generated(text=text, metadata=metadata, generation_time_s=time.perf_counter() - started)

    def _post_with_retries(self, data: bytes, headers: dict[str, str]) -> bytes:
        for attempt in range(self.retries + 1):
            try:
                return self._post(data, headers)
            except _Transient as error:
                if attempt == self.retries:
                    raise ProviderError(
                        f"{self.url} failed after {attempt + 1} attempts; last error: {error}"
                    ) from error
                wait = self.backoff_s * 2 ** attempt
                if error.retry_after is not None:
                    wait = max(wait, min(error.retry_after, MAX_RETRY_AFTER_S))
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _post(self, data: bytes, headers: dict[str, str]) -> bytes:
        http_request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            detail = _error_detail(error)
            if error.code in RETRYABLE_STATUSES:
                raise _Transient(f"HTTP {error.code}: {detail}", _retry_after(error)) from error
            raise ProviderError(f"{self.url} answered HTTP {error.code}: {detail}") from error
        except urllib.error.URLError as error:  # refused, DNS, TLS: often a server restarting
            raise _Transient(f"cannot reach the endpoint: {error.reason}") from error
        except TimeoutError as error:
            raise _Transient(f"no answer within {self.timeout} s") from error
        except (ConnectionError, HTTPException) as error:
            raise _Transient(f"connection failed: {error!r}") from error


def _parse_completion(payload: bytes) -> tuple[str, dict]:
    try:
        completion = json.loads(payload)
        choice = completion["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ProviderError(f"the endpoint's answer is not a chat completion: {payload[:200]!r}") from error
    if isinstance(content, list):  # content parts, as some servers return
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    text = (content or "").strip()
    usage = completion.get("usage") or {}
    metadata = text_metadata(text, tokens=usage.get("completion_tokens"))
    metadata.update(prompt_tokens=usage.get("prompt_tokens"), finish_reason=choice.get("finish_reason"))
    return text, metadata


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The server's own error message when it sends the usual {"error": {"message": ...}}."""
    try:
        raw = error.read()
    except (OSError, HTTPException):
        return error.reason or ""
    try:
        message = json.loads(raw)["error"]
        return str(message.get("message") if isinstance(message, dict) else message)[:500]
    except (ValueError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace") or str(error.reason)


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    try:
        return float(error.headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
