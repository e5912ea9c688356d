"""Judges that run a local causal LM in-process: SmolLM2 by default, or any local model folder.

``LogitJudge`` is the one Duet uses: it never generates. The assistant turn is pre-filled up
to "[[" so the next token is the verdict letter, and one forward pass over a left-padded
batch of (pair x both orders) rows gives P(A), P(B), P(C) straight from the logits.
``GenerateJudge`` is the conventional way (generate an explanation and a verdict, parse
it), kept as the benchmark's baseline.

torch and transformers are imported inside the methods, so importing this module is free.
"""

from __future__ import annotations

import threading
from pathlib import Path

from arena.providers.localmodel import DEFAULT_MODEL, LocalModelError, default_device, load_causal_lm

from .base import AutomaticJudge, JudgeError, JudgeVerdict, PairItem
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


_judging_lock = threading.Lock()


def _model_name(model_ref: str) -> str:
    return model_ref if model_ref == DEFAULT_MODEL else Path(model_ref).expanduser().resolve().name


class _LocalJudge(AutomaticJudge):
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

    ``batch_size`` counts pairs (default 1 on a CPU, 16 on a GPU); each forward holds 2 x batch_size rows. Pairs are sorted by
    length before batching so a batch pads to similar lengths. Two caches spare the model
    from reading the same tokens twice. With ``share_prefix`` the tokens every row starts
    with (chat template and MT-Bench's instructions: 194 tokens of a median 374 per row on
    PandaLM) go through the model once per call. With ``share_question`` a pair's two orders
    differ only from the first answer on, so the question goes through the model once per
    pair and both orders continue from its keys and values (on PandaLM's longest third, 108
    of a pair's ~670 own tokens). Both give the same letter probabilities as full prompts,
    to float rounding. ``precision`` (default: the DUET_JUDGE_PRECISION setting, int8) is the
    arithmetic on a CPU: int8, bfloat16/bf16, float32/fp32 or auto (see _judging_model).
    """

    method = "logits"

    def __init__(self, model_ref: str = DEFAULT_MODEL, device: str | None = None, batch_size: int | None = None,
                 share_prefix: bool = True, share_question: bool = True, precision: str | None = None, **options):
        super().__init__(model_ref, device, **options)
        self.batch_size = None if batch_size is None else max(1, int(batch_size))
        self.share_prefix = share_prefix
        self.share_question = share_question
        self.precision = judge_precision(precision)
        if self.precision == "int8" and (device or default_device()) == "cpu":
            # int8 linears move the letter probabilities more than bfloat16 rounding does, so
            # their verdicts are told apart from the bfloat16/float32 judge's (a GPU runs bf16).
            self.version = f"{self.version}-int8"

    def _judge_supported(self, items: list[PairItem]) -> list[JudgeVerdict]:
        model, tokenizer = self._load()
        letter_ids = verdict_token_ids(tokenizer)
        texts = [self._prompt_text(tokenizer, item, order) + VERDICT_PREFIX for item in items for order in ORDERS]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        self._check_lengths(model, encoded)
        pairs = [(encoded[2 * index], encoded[2 * index + 1]) for index in range(len(items))]
        # A single pair has nothing to share its prefix with: its question cache covers it.
        autocast = _autocast(model, self.precision)
        model = _judging_model(model, autocast, int8=self.precision == "int8",
                               calibration=lambda: [self._calibration_ids(tokenizer)])
        with autocast:
            shared = _shared_prefix(model, encoded) if self.share_prefix and len(items) > 1 else None

        results: list = [None] * len(items)
        # Sorted by what the batched forward reads: with share_question, the orders' own tokens.
        own = [len(first) + len(second) - (2 * _common_length(first, second) if self.share_question else 0)
               for first, second in pairs]
        by_length = sorted(range(len(pairs)), key=own.__getitem__)
        # One pair per forward on a CPU: with the question cache, measured faster per CPU-second
        # than batches of 2-8 pairs here (padding and wider attention cost more than batching saves).
        size = self.batch_size or (1 if model.device.type == "cpu" else 16)
        for start in range(0, len(by_length), size):
            batch = by_length[start : start + size]
            with autocast:
                probs, mass = _pair_letter_probs(model, tokenizer.pad_token_id, [pairs[index] for index in batch],
                                                 letter_ids, shared, self.share_question)
            for position, index in enumerate(batch):
                results[index] = tuple(
                    order_from_letter_probs(order, dict(zip(LETTERS, probs[2 * position + row])), "logits",
                                            verdict_mass=mass[2 * position + row])
                    for row, order in enumerate(ORDERS))
        return [self._verdict(item.id, **combine_orders(results[index])) for index, item in enumerate(items)]

    def _calibration_ids(self, tokenizer) -> list[int]:
        """One fixed judging prompt (CALIBRATION_PAIR, order ab) as token ids: what the int8
        copy measures its activations on, so that every process builds the same copy."""
        return tokenizer(self._prompt_text(tokenizer, CALIBRATION_PAIR, "ab") + VERDICT_PREFIX,
                         add_special_tokens=False)["input_ids"]

    @staticmethod
    def _check_lengths(model, encoded: list[list[int]]) -> None:
        limit = getattr(model.config, "max_position_embeddings", None)
        longest = max((len(ids) for ids in encoded), default=0)
        if limit and longest > limit:
            raise JudgeError(f"a judging prompt is {longest} tokens, over the model's context of {limit}; "
                             "lower max_answer_tokens")


PRECISIONS = ("int8", "bfloat16", "float32", "auto")
_PRECISION_ALIASES = {"bf16": "bfloat16", "fp32": "float32"}


def judge_precision(precision: str | None = None) -> str:
    """``precision`` checked, or the DUET_JUDGE_PRECISION setting when None: int8 (the default),
    bfloat16 (bf16), float32 (fp32) or auto (bfloat16 where the CPU has it natively)."""
    if precision is None:
        from django.conf import settings

        precision = getattr(settings, "JUDGE_PRECISION", "int8")
    name = _PRECISION_ALIASES.get(str(precision).strip().lower(), str(precision).strip().lower())
    if name not in PRECISIONS:
        raise JudgeError(f"judge precision {precision!r}: use one of int8, bf16, fp32, auto")
    return name


def _autocast(model, precision: str):
    """bfloat16 matmuls on a CPU that has them natively (AVX512-BF16 or AMX), else a no-op.

    Measured on this 2-core AMD EPYC (AVX512-BF16): a forward of 8 rows x 300 tokens takes
    4.6 CPU-seconds under bfloat16 autocast against 10.0 in float32, and moves the verdict
    letters' logits by at most 0.4. Autocast keeps norms, softmax and the residual stream in
    float32; casting the whole model to bfloat16 was no faster and moved the logits twice as
    far. The linear layers' weights are cast once, in a copy (_judging_model), not on every
    forward. The arena's model stays float32. On CUDA the
    model is already bfloat16. Under ``int8`` autocast covers what is not a linear layer
    (attention, the products in the MLP); the linears are int8 in the judging copy.
    """
    import contextlib

    import torch

    if model.device.type != "cpu" or precision == "float32":
        return contextlib.nullcontext()
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    if precision == "bfloat16" or native:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# A weak map, so a model dropped by clear_cache() takes its judging copies with it.
_judging_copies: "weakref.WeakKeyDictionary" = None


# A typical judging prompt (a question, a prose answer, a code answer) for the int8 copy's
# calibration; its exact words matter little, its kinds of text do.
CALIBRATION_PAIR = PairItem(
    "calibration",
    "Write a Python function that returns the n-th Fibonacci number, and explain how fast it is.",
    "The Fibonacci numbers start with 0 and 1, and each next number is the sum of the two before it. "
    "A simple recursive function calls itself twice for every number, so its running time grows "
    "exponentially: computing the 40th number takes billions of calls. Keeping the last two numbers "
    "in a loop instead takes linear time and constant memory, which is what most people should use. "
    "For very large n, matrix exponentiation or the fast doubling identities reach O(log n) steps.",
    "def fibonacci(n: int) -> int:\n    \"\"\"The n-th Fibonacci number (fibonacci(0) == 0).\"\"\"\n"
    "    if n < 0:\n        raise ValueError('n must be >= 0')\n    a, b = 0, 1\n    for _ in range(n):\n"
    "        a, b = b, a + b\n    return a\n\nThis loop runs n times, so it is O(n) in time and O(1) in "
    "memory. print(fibonacci(10)) prints 55.",
)


def _judging_model(model, autocast, int8: bool = False, calibration=None):
    """What the logit judge runs: ``model`` itself, or on a CPU a copy of its decoder whose
    linear layers hold their weights ready: in bfloat16 under bfloat16 autocast, in int8
    with ``int8``.

    Autocast keeps no cast weights under inference_mode, so every forward converted all
    106 M decoder weights again; the copy (202 MiB, once per process, sharing the embedding
    and the float32 model the arena generates with) gives the same numbers without that.
    The copy's attention is SDPA with grouped-query heads passed as they are
    (``enable_gqa``) instead of transformers' default of repeating the 3 key/value heads 3
    times whenever there is a mask (same result). Measured together on PandaLM's longest
    third, in the same run: 0.50 pairs per CPU-second against 0.44 under autocast alone (1.15x).
    With ``int8`` the copy's linears are int8 instead (102 MiB, 1.17x bfloat16 per CPU-second
    on the same long pairs), their MLPs smoothed on ``calibration()``'s token rows.
    """
    import contextlib
    import weakref

    global _judging_copies
    if model.device.type != "cpu" or (isinstance(autocast, contextlib.nullcontext) and not int8):
        return model
    if _judging_copies is None:
        _judging_copies = weakref.WeakKeyDictionary()
    with _judging_lock:
        copies = _judging_copies.setdefault(model, {})
        if int8 not in copies:
            copies[int8] = _JudgingModel(model, int8=int8, bfloat16=not isinstance(autocast, contextlib.nullcontext),
                                         calibration=calibration() if int8 and calibration else None)
        return copies[int8]


class _JudgingModel:
    """The decoder copy described in _judging_model, with the parts of the model _forward uses."""

    def __init__(self, model, int8: bool = False, bfloat16: bool = True, calibration: list[list[int]] | None = None):
        import copy

        import torch

        _register_gqa_attention()
        decoder = model.get_decoder()
        linears = {name: module for name, module in decoder.named_modules() if isinstance(module, torch.nn.Linear)}
        # deepcopy's memo hands it the bfloat16 weights (empty ones for the int8 copy, whose
        # linears are replaced below) and the shared embedding instead of copying the float32 ones.
        def judging_weight(weight):
            ready = weight.detach().new_empty(0, dtype=torch.bfloat16) if int8 else weight.detach().to(torch.bfloat16)
            return torch.nn.Parameter(ready, requires_grad=False)

        memo = {id(module.weight): judging_weight(module.weight) for module in linears.values()}
        memo[id(decoder.embed_tokens)] = decoder.embed_tokens
        self.decoder = copy.deepcopy(decoder, memo)
        self.decoder.config._attn_implementation = GQA_ATTENTION  # the copy's own config
        if int8:
            from .int8 import Int8Linear, smoothed_mlp_weights

            out_dtype = torch.bfloat16 if bfloat16 else torch.float32
            smoothed = smoothed_mlp_weights(decoder, calibration) if calibration else {}
            for name, module in linears.items():
                parent, _, child = name.rpartition(".")
                setattr(self.decoder.get_submodule(parent), child,
                        Int8Linear(module, out_dtype, weight=smoothed.get(name)))
        self.head = model.get_output_embeddings()
        self.device = model.device
        self.config = model.config

    def get_decoder(self):
        return self.decoder

    def get_output_embeddings(self):
        return self.head


GQA_ATTENTION = "duet_sdpa_gqa"


def _register_gqa_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(GQA_ATTENTION, _sdpa_gqa)
    AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)


# Queries per attention call when a forward reads many tokens: one call per block of queries
# reads the keys up to that block's last query only (the later ones are causally masked), so
# blocks skip about a third of the scores of a pair's last forward (~560 queries after ~300
# cached tokens). Measured on that shape, one thread, bfloat16: 31 ms a layer against 41.
ATTENTION_QUERY_BLOCK = 192


def _sdpa_gqa(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' SDPA attention, with the key/value heads shared by ``enable_gqa``.

    sdpa_mask leaves out a mask that is only causal (a row without a cache or padding);
    SDPA's ``is_causal`` would align it top-left, wrong when a cache precedes the queries,
    so the causal mask is written out then. Long query runs go in blocks of
    ATTENTION_QUERY_BLOCK, each without the keys every one of its queries is masked from:
    the same attention, fewer scores.
    """
    import torch

    queries, keys = query.shape[2], key.shape[2]
    if attention_mask is None and queries > 1:
        attention_mask = torch.ones(queries, keys, dtype=torch.bool, device=query.device).tril(keys - queries)
    blocks = [(start, min(queries, start + ATTENTION_QUERY_BLOCK))
              for start in range(0, queries, ATTENTION_QUERY_BLOCK)] if queries > ATTENTION_QUERY_BLOCK else [(0, queries)]
    outputs = []
    for start, end in blocks:
        seen = keys - queries + end  # query end-1 sits at key seen-1; causality hides every later key
        mask = attention_mask[..., start:end, :seen] if attention_mask is not None else None
        outputs.append(torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, :seen], value[:, :, :seen], attn_mask=mask, scale=scaling,
            enable_gqa=True))
    output = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
    return output.transpose(1, 2).contiguous(), None


class _Past:
    """A key/value cache of a batch of rows, with its attention mask and each row's real length.

    Rows are left-padded segment by segment, so padding can sit between the cached prefix
    and a row's own tokens; the mask hides it and positions count real tokens only.
    """

    def __init__(self, cache, mask, lengths):
        self.cache = cache
        self.mask = mask  # shape (rows, cached width), 1 on real tokens
        self.lengths = lengths  # shape (rows,), real tokens per row

    def repeated(self, times: int, keep_original: bool = True) -> "_Past":
        """Each row ``times`` times in a row (row 0, row 0, row 1, ...).

        A forward appends to its cache, so the cache is copied unless this _Past is not
        used again (``keep_original=False``).
        """
        import copy

        cache = copy.deepcopy(self.cache) if keep_original else self.cache
        cache.batch_repeat_interleave(times)
        return _Past(cache, self.mask.repeat_interleave(times, dim=0), self.lengths.repeat_interleave(times))

    @staticmethod
    def stacked(pasts: list["_Past"], split: int) -> "_Past":
        """One-row pasts of different widths as one batch, each padded at position ``split``.

        The padding goes where a row's own segment starts (after the shared prefix), as
        left-padding that segment would; only attention reads the padded keys, masked.
        """
        import torch
        from transformers import DynamicCache

        width = max(past.mask.shape[1] for past in pasts)

        def padded(tensor, dim: int):
            gap = list(tensor.shape)
            gap[dim] = width - tensor.shape[dim]
            head, tail = tensor.split([split, tensor.shape[dim] - split], dim=dim)
            return torch.cat([head, tensor.new_zeros(gap), tail], dim=dim)

        layers = [
            tuple(torch.cat([padded(getattr(past.cache.layers[layer], name), 2) for past in pasts])
                  for name in ("keys", "values"))
            for layer in range(len(pasts[0].cache.layers))
        ]
        return _Past(DynamicCache(ddp_cache_data=layers), torch.cat([padded(past.mask, 1) for past in pasts]),
                     torch.cat([past.lengths for past in pasts]))


def _forward(model, pad_id: int, segments: list[list[int]], past: _Past | None, keep: bool):
    """Run ``segments`` (one per row) after ``past``: a new _Past when ``keep``, else the last logits.

    Each segment is left-padded so every row's last token sits at position -1. A plain
    forward numbers positions 0..width-1 whatever the mask; with padding that shifts every
    short row, so positions come from the mask (as generate() does), or a batched row would
    not equal the same row scored alone.
    """
    import torch

    rows, width = len(segments), max(len(ids) for ids in segments)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)  # shape (rows, width)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for row, ids in enumerate(segments):
        if ids:
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
    before = past.lengths if past is not None else torch.zeros(rows, dtype=torch.long)
    positions = before[:, None] + (mask.cumsum(-1) - 1).clamp(min=0)
    full_mask = torch.cat([past.mask, mask], dim=1) if past is not None else mask
    device = model.device
    with torch.inference_mode():
        output = model.get_decoder()(input_ids=input_ids.to(device), attention_mask=full_mask.to(device),
                                     position_ids=positions.to(device), past_key_values=past.cache if past else None,
                                     use_cache=keep)
        if keep:
            return _Past(output.past_key_values, full_mask, before + mask.sum(-1))
        # The lm_head (49k vocabulary) runs on the last position only, and outside autocast:
        # autocast would cast its 28 M weights to bfloat16 on every forward (its weight cache
        # is off under inference_mode) to multiply one row, and float32 reads the letters exactly.
        head = model.get_output_embeddings()
        with torch.autocast(device.type, enabled=False):
            return head(output.last_hidden_state[:, -1, :].to(head.weight.dtype))


def _common_length(first: list[int], second: list[int]) -> int:
    """Tokens ``first`` and ``second`` start with in common, leaving each at least its last token."""
    limit = min(len(first), len(second)) - 1
    return next((i for i in range(limit) if first[i] != second[i]), max(limit, 0))


def _shared_prefix(model, encoded: list[list[int]]) -> _Past | None:
    """The longest token prefix common to every row, run through the model once.

    Every row keeps at least one token of its own, since its last position gives the logits.
    None when rows share almost nothing (not worth a separate pass).
    """
    first = encoded[0]
    length = min((_common_length(first, ids) for ids in encoded[1:]), default=len(first) - 1)
    if length < 8:
        return None
    return _forward(model, 0, [first[:length]], None, keep=True)


def _question(model, tokens: list[int], shared: _Past | None) -> _Past:
    """One pair's own common tokens run after the ``shared`` prefix (a copy of it if none)."""
    if not tokens:
        return shared.repeated(1)
    return _forward(model, 0, [tokens], shared.repeated(1) if shared is not None else None, keep=True)


def _pair_letter_probs(model, pad_id: int, pairs: list[tuple[list[int], list[int]]], letter_ids: list[int],
                       shared: _Past | None = None, share_question: bool = True):
    """Per row (pair 0 order ab, pair 0 order ba, pair 1 ...), P(letter) renormalised over
    A, B, C, and the raw share of those three tokens.

    With ``share_question``, each pair's common start (its question) runs once after the
    ``shared`` prefix, one pair at a time so that no padding goes through the linear
    layers; one forward then continues both orders of every pair from those caches.
    """
    import torch

    skip = int(shared.lengths[0]) if shared is not None else 0
    common = [max(_common_length(first, second), skip) if share_question else skip for first, second in pairs]
    if shared is None and min(common) == 0:
        common = [0] * len(pairs)  # a pair whose orders share no first token: nothing to cache
    if max(common) > skip:
        past = _Past.stacked([_question(model, first[skip:end], shared) for (first, _), end in zip(pairs, common)],
                             skip).repeated(2, keep_original=False)
    else:
        past = shared.repeated(2 * len(pairs)) if shared is not None else None
    segments = [ids[end:] for pair, end in zip(pairs, common) for ids in pair]
    logits = _forward(model, pad_id, segments, past, keep=False)
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # shape (rows, vocab)
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

