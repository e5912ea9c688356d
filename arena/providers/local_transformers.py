"""Text systems run in-process with transformers: SmolLM2 by default, or any local model folder."""

from __future__ import annotations

import hashlib
import time

from arena.providers.localmodel import DEFAULT_MODEL, LocalModelError, load_causal_lm

from .base import Generated, GenerationRequest, ProviderBackend, ProviderError, django_setting
from .text import text_metadata


def request_seed(system_seed: int, request: GenerationRequest) -> int:
    """The sampling seed of one request: fixed by the system's seed, the request's seed and the prompt.

    Each row of a batch samples from its own generator seeded with this, so an answer does
    not depend on which other prompts shared its batch (a retried task regroups them).
    """
    material = f"{system_seed}|{request.seed}|{request.prompt_text}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 1


class _PerRowSampler:
    """A logits processor that samples each row with its own torch.Generator.

    It replaces transformers' sampling (the model then decodes greedily on its output):
    transformers samples a whole batch from the global RNG, which ties each answer to its
    batch-mates. Temperature, then nucleus (top-p) filtering, then one draw per row.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        import torch

        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch

        # On CPU generators: the same seed gives the same answer on a GPU host and a laptop.
        # On CUDA this copy is a sync point per token, small next to the forward pass.
        probs = torch.softmax(scores.float().cpu() / self.temperature, dim=-1)  # shape (batch, vocab)
        candidates, token_ids = self._nucleus(probs)  # shape (batch, k) each
        # Inverse-CDF draw: one uniform per row. torch.multinomial over a 49k vocabulary
        # measured ~12 ms per row on CPU, this ~0.05 ms.
        cumulative = candidates.cumsum(dim=-1)
        uniforms = torch.cat([torch.rand(1, generator=g) for g in self.generators])  # shape (batch,)
        picks = torch.searchsorted(cumulative, (uniforms * cumulative[:, -1]).unsqueeze(-1))
        chosen = token_ids.gather(-1, picks.clamp_(max=candidates.shape[-1] - 1))  # shape (batch, 1)
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter_(-1, chosen.to(scores.device), 0.0)

    def _nucleus(self, probs):
        """Per row, the most likely tokens that together hold top_p of the mass (others zeroed).

        Tries a short top-k first: sorting the whole 49k vocabulary costs 15-50 ms per step
        on CPU, as much as SmolLM2's forward pass, while a trained model's nucleus is nearly
        always a few dozen tokens. Flat distributions (untrained models) fall back to a sort.
        """
        import torch

        if self.top_p >= 1.0:
            return probs, torch.arange(probs.shape[-1]).expand_as(probs)
        top, token_ids = probs.topk(min(64, probs.shape[-1]), dim=-1)  # most likely first
        if bool((top.sum(dim=-1) < self.top_p).any()):
            top, token_ids = probs.sort(dim=-1, descending=True)
        # Drop a token when the tokens ranked above it already cover top_p; the first stays.
        top[top.cumsum(dim=-1) - top > self.top_p] = 0.0
        return top, token_ids


class TransformersProvider(ProviderBackend):
    """Generate with a local causal LM through its chat template, in left-padded batches.

    Config: ``model`` ("smollm2-135m-instruct" or a local folder), ``system_prompt``,
    ``temperature`` (0 means greedy), ``top_p``, ``max_new_tokens``, ``seed``,
    ``batch_size``, ``device`` ("cpu", "cuda"; default: CUDA when available).
    """

    modality = "text"

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.model_ref = str(self.config.get("model") or DEFAULT_MODEL)
        self.system_prompt = str(self.config.get("system_prompt") or "")
        self.temperature = self._number("temperature", 0.7, float, 0.0, 5.0)
        self.top_p = self._number("top_p", 0.95, float, 0.01, 1.0)
        default_tokens = django_setting("GENERATION_MAX_NEW_TOKENS", 384)
        self.max_new_tokens = self._number("max_new_tokens", default_tokens, int, 1, 8192)
        self.seed = self._number("seed", 0, int)
        # Batching is most of the speed on CPU. Measured on 2 cores: 8 SmolLM2 answers of up
        # to 160 tokens in ~14 s as one batch on an idle machine; one at a time took ~1.7x longer.
        self.batch_size = self._number("batch_size", django_setting("GENERATION_BATCH_SIZE", 8), int, 1, 512)
        self.device = self.config.get("device") or None

    def generate(self, requests: list[GenerationRequest]) -> list[Generated]:
        if not requests:
            return []
        try:
            model, tokenizer = load_causal_lm(self.model_ref, self.device)
        except (LocalModelError, OSError, ValueError) as error:
            raise ProviderError(f"cannot load model {self.model_ref!r}: {error}") from error
        answers: list[Generated] = []
        for start in range(0, len(requests), self.batch_size):
            answers.extend(self._generate_batch(model, tokenizer, requests[start:start + self.batch_size]))
        return answers

    def _chat(self, prompt_text: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": prompt_text}]

    def _generate_batch(self, model, tokenizer, batch: list[GenerationRequest]) -> list[Generated]:
        import torch

        started = time.perf_counter()
        texts = [tokenizer.apply_chat_template(self._chat(r.prompt_text), tokenize=False,
                                               add_generation_prompt=True) for r in batch]
        # The chat template already holds the special tokens; adding them again would double BOS.
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        self._check_lengths(model, prompt_lengths, batch)

        seeds = [request_seed(self.seed, r) for r in batch]
        options = {"max_new_tokens": self.max_new_tokens, "do_sample": False,
                   "pad_token_id": tokenizer.pad_token_id}
        if self.temperature > 0:
            options["logits_processor"] = [_PerRowSampler(seeds, self.temperature, self.top_p)]
        with torch.inference_mode():
            output = model.generate(**encoded, **options)
        generated = output[:, encoded["input_ids"].shape[1]:].cpu()  # shape (batch, new tokens)

        per_answer = (time.perf_counter() - started) / len(batch)
        stop_ids = _stop_token_ids(model, tokenizer)
        sampling = {"temperature": self.temperature, "top_p": self.top_p if self.temperature > 0 else None,
                    "max_new_tokens": self.max_new_tokens}
        answers = []
        for row, seed, prompt_tokens in zip(generated.tolist(), seeds, prompt_lengths):
            length = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
            text = tokenizer.decode(row[:length], skip_special_tokens=True).strip()
            metadata = text_metadata(text, tokens=length)
            metadata.update(prompt_tokens=prompt_tokens, finish_reason="stop" if length < len(row) else "length",
                            sampling={**sampling, "seed": seed if self.temperature > 0 else None})
            answers.append(Generated(text=text, metadata=metadata, generation_time_s=per_answer))
        return answers

    def _check_lengths(self, model, prompt_lengths: list[int], batch: list[GenerationRequest]) -> None:
        limit = getattr(model.config, "max_position_embeddings", None)
        if not limit:
            return
        for length, request in zip(prompt_lengths, batch):
            if length + self.max_new_tokens > limit:
                which = f"prompt {request.prompt_id}" if request.prompt_id is not None else "a prompt"
                raise ProviderError(
                    f"{which} is {length} tokens; with max_new_tokens="
                    f"{self.max_new_tokens} it exceeds the model's context of {limit} tokens"
                )


def _stop_token_ids(model, tokenizer) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {token for token in ids if token is not None}
