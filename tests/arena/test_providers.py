"""Providers: one contract suite for every generating provider, then each one's own behaviour."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena.outputs.media import validate_media
from arena.providers import (
    PROVIDER_NAMES,
    Generated,
    GenerationRequest,
    ProviderError,
    get_provider,
    provider_class,
)

PROMPTS = ["What is the capital of France?", "Write a haiku about rain.", "List three primes.",
           "Explain entropy to a child.", "Say hi."]


def requests_for(prompts=PROMPTS) -> list[GenerationRequest]:
    return [GenerationRequest(prompt_text=text, prompt_id=index) for index, text in enumerate(prompts)]


# --- a local OpenAI-compatible server ------------------------------------------------------


class FakeChatServer(ThreadingHTTPServer):
    """Mimics POST {base}/chat/completions. The first path segment picks a scenario:
    ok, flaky (two 500s first), ratelimited (one 429 first), unauthorized, badjson, slow."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.received: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def handle_error(self, request, client_address):
        pass  # the "slow" scenario's client hangs up on purpose: a broken pipe is expected

    def base_url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{scenario}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        server: FakeChatServer = self.server
        scenario, _, rest = self.path.strip("/").partition("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            attempt = server.attempts[scenario] = server.attempts.get(scenario, 0) + 1
            server.received.append({"scenario": scenario, "path": self.path, "body": body,
                                    "authorization": self.headers.get("Authorization")})
        if rest != "v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if scenario == "flaky" and attempt <= 2:
            return self._send(500, {"error": {"message": "upstream overloaded"}})
        if scenario == "ratelimited" and attempt == 1:
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if scenario == "unauthorized":
            return self._send(401, {"error": {"message": "Incorrect API key provided", "type": "auth"}})
        if scenario == "badjson":
            return self._send(200, None, raw=b"<html>gateway</html>")
        if scenario == "slow":
            time.sleep(1.0)
        question = body["messages"][-1]["content"]
        answer = f"**Echo**: {question}\n- from {body['model']}"
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": len(answer.split()), "total_tokens": 0},
        })

    def _send(self, status, payload, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def chat_server():
    server = FakeChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def chat(chat_server):
    chat_server.received.clear()
    chat_server.attempts.clear()
    return chat_server


def openai_config(server: FakeChatServer, scenario: str = "ok", **overrides) -> dict:
    return {"base_url": server.base_url(scenario), "model": "local-echo", "backoff_s": 0, **overrides}


# --- the contract every generating provider keeps -------------------------------------------


@pytest.fixture(params=["transformers-tiny", "openai", "demo_image-circles", "demo_image-stripes",
                        "demo_image-gradient", "demo_image-mosaic", "demo_audio-sine-melody",
                        "demo_audio-chords", "demo_audio-arpeggio"])
def provider(request, tiny_model_dir, chat):
    name, _, variant = request.param.partition("-")
    if name == "transformers":
        return get_provider("transformers", {"model": str(tiny_model_dir), "max_new_tokens": 6, "batch_size": 2})
    if name == "openai":
        return get_provider("openai", openai_config(chat))
    return get_provider(name, {"style": variant})


def test_contract_one_answer_per_request_in_order(provider):
    requests = requests_for()

    answers = provider.generate(requests)

    assert len(answers) == len(requests)
    assert all(isinstance(answer, Generated) for answer in answers)
    assert all(answer.generation_time_s >= 0 for answer in answers)
    assert provider.generate([]) == []


def test_contract_answers_match_the_modality(provider):
    answers = provider.generate(requests_for(PROMPTS[:2]))

    for answer in answers:
        if provider.modality == "text":
            assert isinstance(answer.text, str) and answer.media is None
            assert "tokens" in answer.metadata and "headers" in answer.metadata
        else:
            # media passes the same validation as an upload, and agrees with what it claims
            info = validate_media(answer.media, f"output.{answer.media_extension}")
            assert (info.kind, info.media_type, info.extension) == (
                provider.modality, answer.media_type, answer.media_extension)


def test_contract_metadata_never_names_the_system(provider):
    answer = provider.generate(requests_for(PROMPTS[:1]))[0]

    blob = json.dumps(answer.metadata).lower()
    for secret in ("style", "circles", "stripes", "gradient", "mosaic", "melody", "chords", "arpeggio",
                   "local-echo", "tiny"):
        assert secret not in blob


# --- registry and configuration --------------------------------------------------------------


def test_registry_names_and_modalities():
    assert set(PROVIDER_NAMES) == {"uploaded", "transformers", "openai", "demo_image", "demo_audio"}
    assert provider_class("transformers").modality == "text"
    assert provider_class("openai").modality == "text"
    assert provider_class("demo_image").modality == "image"
    assert provider_class("demo_audio").modality == "audio"


def test_unknown_provider_is_refused():
    with pytest.raises(ProviderError, match="unknown provider 'gpt'; choose one of uploaded, transformers"):
        get_provider("gpt", {})


def test_uploaded_systems_do_not_generate():
    with pytest.raises(ProviderError, match="uploaded systems do not generate; import their outputs"):
        get_provider("uploaded", {}).generate(requests_for())


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("transformers", {"temperature": "hot"}, "temperature must be a number"),
        ("transformers", {"top_p": 1.5}, "top_p must be between"),
        ("transformers", {"batch_size": 0}, "batch_size must be between"),
        ("openai", {"model": "m"}, "base_url must be an http(s) URL"),
        ("openai", {"base_url": "file:///etc/passwd", "model": "m"}, "base_url must be an http(s) URL"),
        ("openai", {"base_url": "http://127.0.0.1:9/v1"}, "model is required"),
        ("demo_image", {"style": "cubism"}, "style must be one of circles, stripes, gradient, mosaic"),
        ("demo_audio", {"style": "techno"}, "style must be one of sine-melody, chords, arpeggio"),
        ("demo_audio", {"duration_s": 0.1}, "duration_s must be between"),
    ],
)
def test_bad_configuration_fails_at_construction(name, config, message):
    with pytest.raises(ProviderError, match=re.escape(message)):
        get_provider(name, config)


# --- transformers ---------------------------------------------------------------------------


def test_transformers_batches_and_counts_tokens(tiny_model_dir):
    provider = get_provider("transformers", {"model": str(tiny_model_dir), "max_new_tokens": 5, "batch_size": 2})

    answers = provider.generate(requests_for())

    for answer in answers:
        assert 0 <= answer.metadata["tokens"] <= 5
        assert answer.metadata["finish_reason"] in ("stop", "length")
        assert answer.metadata["prompt_tokens"] > 0
        assert answer.metadata["sampling"]["temperature"] == 0.7
        assert answer.metadata["chars"] == len(answer.text)


def test_transformers_answers_do_not_depend_on_batching(tiny_model_dir):
    # top_p=1: the untrained model's flat distributions would make every step sort 49k tokens
    config = {"model": str(tiny_model_dir), "max_new_tokens": 6, "seed": 3, "top_p": 1.0}

    one_batch = get_provider("transformers", {**config, "batch_size": 5}).generate(requests_for())
    pairs = get_provider("transformers", {**config, "batch_size": 2}).generate(requests_for())
    reordered = get_provider("transformers", {**config, "batch_size": 5}).generate(requests_for()[::-1])

    assert [a.text for a in one_batch] == [a.text for a in pairs]
    assert [a.text for a in one_batch] == [a.text for a in reordered[::-1]]


def test_transformers_seed_changes_samples_and_greedy_ignores_it(tiny_model_dir):
    def texts(**config):
        provider = get_provider("transformers", {"model": str(tiny_model_dir), "max_new_tokens": 8, "top_p": 1.0,
                                                 **config})
        return [answer.text for answer in provider.generate(requests_for(PROMPTS[:3]))]

    assert texts(seed=1) != texts(seed=2)
    assert texts(temperature=0, seed=1) == texts(temperature=0, seed=2)


def test_sampler_keeps_to_the_nucleus_and_its_seed():
    import torch

    from arena.providers.local_transformers import _PerRowSampler

    # given one peaked row (nucleus: tokens 5 and 9) and one flat row (nucleus: almost all)
    vocab = 5000
    peaked = torch.full((vocab,), -30.0)
    peaked[5], peaked[9] = 5.0, 4.5
    scores = torch.stack([peaked, torch.zeros(vocab)])  # shape (2, vocab)
    # when sampling many steps
    sampler = _PerRowSampler([1, 2], temperature=1.0, top_p=0.9)
    draws = [sampler(None, scores).argmax(dim=-1).tolist() for _ in range(200)]
    # then the peaked row only ever picks its nucleus, the flat one spreads out
    assert {row[0] for row in draws} == {5, 9}
    assert len({row[1] for row in draws}) > 150
    # and a fresh sampler with the same seeds repeats the same draws
    again = _PerRowSampler([1, 2], temperature=1.0, top_p=0.9)
    assert [again(None, scores).argmax(dim=-1).tolist() for _ in range(200)] == draws


def test_transformers_missing_model_is_a_provider_error(tmp_path):
    provider = get_provider("transformers", {"model": str(tmp_path / "nowhere")})

    with pytest.raises(ProviderError, match="cannot load model"):
        provider.generate(requests_for())


def test_transformers_prompt_longer_than_the_context_is_refused(tiny_model_dir):
    provider = get_provider("transformers", {"model": str(tiny_model_dir), "max_new_tokens": 4})

    with pytest.raises(ProviderError, match="exceeds the model's context of 2048 tokens"):
        provider.generate([GenerationRequest("word " * 3000, prompt_id=7)])


@pytest.mark.slow
def test_smollm2_answers_in_english(smollm2_dir, monkeypatch):
    from arena.providers import localmodel
    monkeypatch.setattr(localmodel, "default_cache_dir", lambda: smollm2_dir.parent)
    provider = get_provider("transformers", {"temperature": 0, "max_new_tokens": 24})  # the default model

    capital, greeting = provider.generate(requests_for(["What is the capital of France?", "Say hello politely."]))

    assert "Paris" in capital.text
    for answer in (capital, greeting):
        words = re.findall(r"[A-Za-z']+", answer.text)
        assert len(words) >= 3
        assert sum(ch.isascii() for ch in answer.text) / len(answer.text) > 0.95
        assert 0 < answer.metadata["tokens"] <= 24
    # and sampling (the default temperature and top-p) gives text too
    sampled = get_provider("transformers", {"max_new_tokens": 16, "seed": 1}).generate(requests_for(["Name a fruit."]))
    assert len(re.findall(r"[A-Za-z']+", sampled[0].text)) >= 2


# --- OpenAI-compatible ----------------------------------------------------------------------


def test_openai_sends_the_chat_and_reads_the_answer(chat, monkeypatch):
    monkeypatch.setenv("DUET_TEST_KEY", "sk-test-123")
    provider = get_provider("openai", openai_config(
        chat, api_key_env="DUET_TEST_KEY", system_prompt="Be brief.", temperature=0.2, max_tokens=50, seed=9))

    answers = provider.generate(requests_for())

    assert [answer.text.splitlines()[0] for answer in answers] == [f"**Echo**: {text}" for text in PROMPTS]
    sent = sorted(chat.received, key=lambda r: r["body"]["messages"][-1]["content"])[0]
    assert sent["path"] == "/ok/v1/chat/completions"
    assert sent["authorization"] == "Bearer sk-test-123"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (sent["body"]["temperature"], sent["body"]["max_tokens"], sent["body"]["seed"]) == (0.2, 50, 9)
    first = answers[0].metadata
    assert (first["bold"], first["lists"], first["finish_reason"], first["prompt_tokens"]) == (1, 1, "stop", 11)
    assert first["tokens"] == len(answers[0].text.split())


def test_openai_retries_server_errors_then_succeeds(chat):
    answers = get_provider("openai", openai_config(chat, "flaky", retries=3)).generate(requests_for(PROMPTS[:1]))

    assert answers[0].text.startswith("**Echo**")
    assert chat.attempts["flaky"] == 3


def test_openai_honours_rate_limits(chat):
    get_provider("openai", openai_config(chat, "ratelimited")).generate(requests_for(PROMPTS[:1]))

    assert chat.attempts["ratelimited"] == 2


def test_openai_gives_up_after_the_retries(chat):
    provider = get_provider("openai", openai_config(chat, "flaky", retries=1))

    with pytest.raises(ProviderError, match="failed after 2 attempts; last error: HTTP 500: upstream overloaded"):
        provider.generate(requests_for(PROMPTS[:1]))


def test_openai_client_errors_are_not_retried(chat):
    provider = get_provider("openai", openai_config(chat, "unauthorized"))

    with pytest.raises(ProviderError, match="answered HTTP 401: Incorrect API key provided"):
        provider.generate(requests_for(PROMPTS[:1]))
    assert chat.attempts["unauthorized"] == 1


def test_openai_rejects_an_answer_that_is_not_a_completion(chat):
    with pytest.raises(ProviderError, match="not a chat completion"):
        get_provider("openai", openai_config(chat, "badjson")).generate(requests_for(PROMPTS[:1]))


def test_openai_timeouts_are_retried_then_reported(chat):
    provider = get_provider("openai", openai_config(chat, "slow", timeout=0.2, retries=1))

    with pytest.raises(ProviderError, match="failed after 2 attempts"):
        provider.generate(requests_for(PROMPTS[:1]))


def test_openai_unreachable_endpoint(chat):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = get_provider("openai", {"base_url": f"http://127.0.0.1:{port}/v1", "model": "m",
                                       "retries": 1, "backoff_s": 0})

    with pytest.raises(ProviderError, match="cannot reach the endpoint"):
        provider.generate(requests_for(PROMPTS[:1]))


def test_openai_missing_key_fails_before_any_call(chat, monkeypatch):
    monkeypatch.delenv("DUET_ABSENT_KEY", raising=False)
    provider = get_provider("openai", openai_config(chat, api_key_env="DUET_ABSENT_KEY"))

    with pytest.raises(ProviderError, match="environment variable DUET_ABSENT_KEY"):
        provider.generate(requests_for())
    assert chat.received == []


# --- demo image -----------------------------------------------------------------------------


def _image(answer: Generated):
    from PIL import Image

    return Image.open(io.BytesIO(answer.media))


def test_demo_image_is_deterministic_and_prompt_driven():
    provider = get_provider("demo_image", {"style": "circles"})

    first, again, other = provider.generate(requests_for(["a red fox", "a red fox", "a blue whale"]))

    assert first.media == again.media
    assert first.media != other.media
    image = _image(first)
    assert image.size == (512, 512) and image.format == "PNG"
    assert first.metadata == {"width": 512, "height": 512}
    assert not image.info.get("text") and not any(key.lower() in ("comment", "software") for key in image.info)


def test_demo_image_styles_look_different():
    import numpy as np

    request = requests_for(["sunset over the mountains"])
    pictures = {style: np.asarray(_image(get_provider("demo_image", {"style": style}).generate(request)[0]),
                                  dtype=float)
                for style in ("circles", "stripes", "gradient", "mosaic")}

    styles = list(pictures)
    for i, a in enumerate(styles):
        for b in styles[i + 1:]:
            assert np.abs(pictures[a] - pictures[b]).mean() > 10, (a, b)


def test_demo_image_words_set_the_colours():
    from arena.providers.demo_image import word_palette

    assert word_palette("ocean", 0.6, 0.5) == word_palette("OCEAN!", 0.6, 0.5)
    assert word_palette("ocean", 0.6, 0.5) != word_palette("desert", 0.6, 0.5)
    assert len(word_palette("one two three two", 0.6, 0.5)) == 3


# --- demo audio -----------------------------------------------------------------------------


def test_demo_audio_is_deterministic_long_enough_and_described():
    provider = get_provider("demo_audio", {"style": "sine-melody"})

    first, again, other = provider.generate(requests_for(["rain on a roof", "rain on a roof", "a busy market"]))

    assert first.media == again.media
    assert first.media != other.media
    for answer in (first, other):
        with wave.open(io.BytesIO(answer.media)) as reader:
            assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
            duration = reader.getnframes() / reader.getframerate()
        assert 6.0 <= duration <= 10.0  # a 5 s listening gate must be reachable and meaningful
        assert answer.metadata["duration"] == pytest.approx(duration, abs=0.001)
        assert answer.metadata["sample_rate"] == 22050


def test_demo_audio_styles_sound_different():
    import numpy as np

    request = requests_for(["rain on a roof"])
    clips = {}
    for style in ("sine-melody", "chords", "arpeggio"):
        answer = get_provider("demo_audio", {"style": style, "duration_s": 6}).generate(request)[0]
        with wave.open(io.BytesIO(answer.media)) as reader:
            clips[style] = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(float)

    # different spectra, not merely different phases: compare magnitude spectra
    spectra = {style: np.abs(np.fft.rfft(clip)) for style, clip in clips.items()}
    styles = list(spectra)
    for i, a in enumerate(styles):
        for b in styles[i + 1:]:
            correlation = np.corrcoef(spectra[a], spectra[b])[0, 1]
            assert correlation < 0.9, (a, b, correlation)
