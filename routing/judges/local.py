"""Judges that run a local causal LM in-process: SmolLM2 by default, or any local model folder.

``LogitJudge`` is the one Duet uses: it never generates. The assistant turn is pre-filled up
to "[[" so the next token is the verdict letter, and one forward pass over a left-padded
batch of (pair x both orders) rows gives P(A), P(B), P(C) straight from the logits.
``GenerateJudge`` is the conventional way (generate an explanation and a verdict, parse
it), kept as the benchmark's baseline.

torch and transformers are imported inside the methods, so importing this module is free.
"""

from __future__ import annotations

from pathlib import Path

from arena.localmodel import DEFAULT_MODEL, LocalModelError, load_causal_lm

from .base import Judge, JudgeError, JudgeVerdict, PairItem
from .protocol import (
    LETTERS,
    ORDERS,
    PROTOCOL_VERSION,
    VERDICT_PREFIX,
    combine_orders,
    messages,
    order_from_letter_probs,
    order_from_text,
    shown,
)


# The truncation budget, in tokens: 2 x 192 + 256 + MT-Bench's ~230 tokens of template keeps
# every judging prompt under ~900 tokens. On PandaLM's longest third it cuts 10% of the
# answers (p90 ~200 tokens) and 14% of the questions (p90 ~270).
MAX_ANSWER_TOKENS = 192
MAX_QUESTION_TOKENS = 256


def _model_name(model_ref: str) -> str:
    return model_ref if model_ref == DEFAULT_MODEL else Path(model_ref).expanduser().resolve().name


class _LocalJudge(Judge):
    """Shared by both local judges: loading, truncation, the chat prompt of one order."""

    method = ""

    def __init__(self, model_ref: str = DEFAULT_MODEL, device: str | None = None,
                 max_answer_tokens: int = MAX_ANSWER_TOKENS, max_question_tokens: int = MAX_QUESTION_TOKENS):
        self.model_ref = model_ref
        self.device = device
        self.max_answer_tokens = int(max_answer_tokens)
        self.max_question_tokens = int(max_question_tokens)
        self.name = f"{_model_name(model_ref)}:{self.method}"
        # The truncation budget changes what the judge reads, so it is part of the version.
        self.version = f"{PROTOCOL_VERSION}/{self.method}-a{self.max_answer_tokens}q{self.max_question_tokens}"

    def _load(self):
        try:
            return load_causal_lm(self.model_ref, self.device)
        except (LocalModelError, OSError, ValueError) as error:
            raise JudgeError(f"cannot load judge model {self.model_ref!r}: {error}") from error

    def _prompt_text(self, tokenizer, item: PairItem, order: str) -> str:
        first, second = (self._cut(tokenizer, text, self.max_answer_tokens) for text in shown(item, order))
        question = self._cut(tokenizer, item.prompt, self.max_question_tokens)
        chat = messages(PairItem(item.id, question, item.a, item.b), order, first, second)
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    @staticmethod
    def _cut(tokenizer, text: str, limit: int) -> str:
        return cut_middle(tokenizer, text, limit)


def cut_middle(tokenizer, text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` tokens by dropping its middle: the first third of the
    budget and the last two thirds are kept, joined by " [...] ".

    The end of an answer is where it concludes (the final result, the code's last lines, a
    truncated reply's missing ending), and judges are misled by a text cut before it.
    """
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) <= limit:
        return text
    head = limit // 3
    return tokenizer.decode(ids[:head]) + " [...] " + tokenizer.decode(ids[len(ids) - (limit - head):])


def verdict_token_ids(tokenizer) -> list[int]:
    """Token ids of "A", "B", "C" as the token right after VERDICT_PREFIX, checked.

    Reading P(verdict) from one next-token distribution is only right if the prefix
    tokenises the same with or without the letter after it, and each letter is one whole
    token there. True for SmolLM2's tokenizer ("[[" then "A"); a tokenizer that merges
    "[[A" would fail here instead of silently scoring the wrong tokens.
    """
    probe = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                          add_generation_prompt=True) + VERDICT_PREFIX
    base = tokenizer.encode(probe, add_special_tokens=False)
    ids = []
    for letter in LETTERS:
        full = tokenizer.encode(probe + letter + "]]", add_special_tokens=False)
        token = full[len(base)] if full[: len(base)] == base and len(full) > len(base) else None
        if token is None or tokenizer.decode([token]).strip() != letter:
            raise JudgeError(f"this tokenizer does not give {letter!r} its own token after {VERDICT_PREFIX!r}; "
                             "the logit judge cannot read its verdict in one step")
        ids.append(token)
    return ids


class LogitJudge(_LocalJudge):
    """P(A), P(B), P(tie) from one forward pass, both orders, many pairs per batch.

    ``batch_size`` counts pairs; each forward holds 2 x batch_size rows. Rows are sorted by
    length before batching so a batch pads to similar lengths. With ``share_prefix`` the
    tokens every row starts with (chat template and MT-Bench's instructions: 194 tokens of a
    median 374 per row on PandaLM) go through the model once per call, and each batch
    continues from their cached keys and values.
    """

    method = "logits"

    def __init__(self, model_ref: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 16,
                 share_prefix: bool = True, precision: str = "auto", **options):
        super().__init__(model_ref, device, **options)
        self.batch_size = max(1, int(batch_size))
        self.share_prefix = share_prefix
        if precision not in PRECISIONS:
            raise JudgeError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        self.precision = precision

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        model, tokenizer = self._load()
        letter_ids = verdict_token_ids(tokenizer)
        rows = [(index, order) for index in range(len(items)) for order in ORDERS]
        texts = [self._prompt_text(tokenizer, items[index], order) + VERDICT_PREFIX for index, order in rows]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        self._check_lengths(model, encoded)
        # One pair's two rows are the same length, so they need no padding mask and attention
        # takes its fast causal path; a cached prefix needs an explicit mask, and measured no
        # faster for a single pair. From two pairs on it wins (1.5-2.5x on this 2-core CPU).
        autocast = _autocast(model, self.precision)
        with autocast:
            shared = _shared_prefix(model, encoded) if self.share_prefix and len(items) > 1 else None

        results: list = [None] * len(rows)
        by_length = sorted(range(len(rows)), key=lambda row: len(encoded[row]))
        step = 2 * self.batch_size
        for start in range(0, len(by_length), step):
            batch = by_length[start : start + step]
            with autocast:
                probs, mass = _letter_probs(model, tokenizer.pad_token_id, [encoded[row] for row in batch],
                                            letter_ids, shared)
            for position, row in enumerate(batch):
                letter_probs = dict(zip(LETTERS, probs[position]))
                results[row] = order_from_letter_probs(rows[row][1], letter_probs, "logits", verdict_mass=mass[position])
        return [
            self._verdict(item.id, **combine_orders((results[2 * index], results[2 * index + 1])))
            for index, item in enumerate(items)
        ]

    @staticmethod
    def _check_lengths(model, encoded: list[list[int]]) -> None:
        limit = getattr(model.config, "max_position_embeddings", None)
        longest = max((len(ids) for ids in encoded), default=0)
        if limit and longest > limit:
            raise JudgeError(f"a judging prompt is {longest} tokens, over the model's context of {limit}; "
                             "lower max_answer_tokens")


PRECISIONS = ("auto", "float32", "bfloat16")


def _autocast(model, precision: str):
    """bfloat16 matmuls on a CPU that has them natively (AVX512-BF16 or AMX), else a no-op.

    Measured on this 2-core AMD EPYC (AVX512-BF16): a forward of 8 rows x 300 tokens takes
    4.6 CPU-seconds under bfloat16 autocast against 10.0 in float32, and moves the verdict
    letters' logits by at most 0.4. Autocast keeps the float32 weights (the same loaded
    model the arena generates with) and norms and softmax in float32; casting the weights
    themselves to bfloat16 was no faster and moved the logits twice as far. On CUDA the
    model is already bfloat16.
    """
    import contextlib

    import torch

    if model.device.type != "cpu" or precision == "float32":
        return contextlib.nullcontext()
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    if precision == "bfloat16" or native:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _shared_prefix(model, encoded: list[list[int]]):
    """(length, cache) of the longest token prefix common to every row, run through the model once.

    Every row keeps at least one token of its own, since its last position gives the logits.
    None when rows share almost nothing (not worth a separate pass).
    """
    import torch

    length = min(len(ids) for ids in encoded) - 1
    first = encoded[0]
    for ids in encoded[1:]:
        length = next((i for i in range(length) if ids[i] != first[i]), length)
    if length < 8:
        return None
    with torch.inference_mode():
        cache = model(input_ids=torch.tensor([first[:length]], device=model.device), use_cache=True).past_key_values
    return length, cache


def _letter_probs(model, pad_id: int, sequences: list[list[int]], letter_ids: list[int], shared=None):
    """Per row, P(letter) renormalised over A, B, C, and the raw share of those three tokens.

    One forward pass for the whole batch. Rows are left-padded so every row's last token
    sits at position -1; with a shared prefix the padding goes between the cached prefix
    and each row's own tokens, masked out the same way.
    """
    import copy

    import torch

    skip, cache = shared if shared is not None else (0, None)
    sequences = [ids[skip:] for ids in sequences]
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # shape (rows, width)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        attention[row, width - len(ids):] = 1
    # A plain forward numbers positions 0..width-1 whatever the mask; with padding that
    # shifts every short row. generate() derives positions from the mask, so do we, or a
    # batched row would not equal the same row scored alone.
    positions = skip + (attention.cumsum(-1) - 1).clamp(min=0)
    options = {"use_cache": False}
    if cache is not None:
        cache = copy.deepcopy(cache)  # the forward appends to it; the prefix is reused per batch
        cache.batch_repeat_interleave(len(sequences))
        attention = torch.cat([torch.ones((len(sequences), skip), dtype=torch.long), attention], dim=1)
        options = {"use_cache": True, "past_key_values": cache}
    device = model.device
    with torch.inference_mode():
        # logits_to_keep=1: the lm_head (49k vocabulary) runs on the last position only;
        # on every position it would cost about as much as the rest of SmolLM2's forward.
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                       position_ids=positions.to(device), logits_to_keep=1, **options).logits
    log_probs = torch.log_softmax(logits[:, -1, :].float(), dim=-1)  # shape (rows, vocab)
    letters = log_probs[:, letter_ids]  # shape (rows, 3)
    return torch.softmax(letters, dim=-1).tolist(), letters.exp().sum(dim=-1).tolist()


class GenerateJudge(_LocalJudge):
    """The conventional judge, for comparison: ``generate()`` per pair and order, then parse.

    Greedy, up to ``max_new_tokens`` (MT-Bench asks for an explanation before the verdict;
    FastChat allows the judge 2048 tokens, 128 here is generous to this baseline's speed).
    """

    method = "generate"

    def __init__(self, model_ref: str = DEFAULT_MODEL, device: str | None = None, max_new_tokens: int = 128,
                 **options):
        super().__init__(model_ref, device, **options)
        self.max_new_tokens = int(max_new_tokens)
        self.version = f"{self.version}-{self.max_new_tokens}"

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        model, tokenizer = self._load()
        verdicts = []
        for item in items:
            orders = tuple(order_from_text(order, self._generate(model, tokenizer, item, order)) for order in ORDERS)
            verdicts.append(self._verdict(item.id, **combine_orders(orders)))
        return verdicts

    def _generate(self, model, tokenizer, item: PairItem, order: str) -> str:
        import torch

        encoded = tokenizer(self._prompt_text(tokenizer, item, order), return_tensors="pt",
                            add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            output = model.generate(**encoded, max_new_tokens=self.max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip()

