"""Held-out evaluation: preference accuracy and ranking accuracy.

- Preference accuracy: how often the model's reward prefers the chosen completion. A reward
  model's reward is its output r; a DPO policy's implicit reward is β·(log π − log π_ref), so
  its margin is β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))].
- Ranking accuracy ("Preference Learning Algorithms Do Not Learn Preference Rankings",
  Chen et al. 2024): how often the model itself gives the chosen completion the higher
  likelihood, log π(c|x) > log π(r|x), with log-probabilities SUMMED over the completion's
  tokens (the paper's definition); the per-token mean is reported alongside as
  `*_normalised`, since summed log-probs favour the shorter completion.
Ties (margin exactly 0, e.g. any DPO policy before its first step) count as half right.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SequenceLogps:
    chosen: np.ndarray  # shape (n_pairs,): log π(c|x), summed over completion tokens
    rejected: np.ndarray  # shape (n_pairs,)
    chosen_tokens: np.ndarray  # shape (n_pairs,)
    rejected_tokens: np.ndarray  # shape (n_pairs,)


@dataclass(frozen=True)
class PreferenceMetrics:
    n_pairs: int
    preference_accuracy: float
    mean_reward_margin: float
    base_preference_accuracy: float | None = None  # reward model: its untrained head
    ranking_accuracy: float | None = None  # DPO: the tuned policy
    ranking_accuracy_normalised: float | None = None
    base_ranking_accuracy: float | None = None  # DPO: the reference (base) model
    base_ranking_accuracy_normalised: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy(margins: np.ndarray) -> float:
    """Share of positive margins, ties counting half; NaN for no pairs."""
    margins = np.asarray(margins, dtype=np.float64)
    if margins.size == 0:
        return float("nan")
    return float(np.mean((margins > 0) + 0.5 * (margins == 0)))


def ranking_accuracy(logps: SequenceLogps, normalised: bool = False) -> float:
    if normalised:
        return accuracy(
            logps.chosen / np.maximum(logps.chosen_tokens, 1) - logps.rejected / np.maximum(logps.rejected_tokens, 1)
        )
    return accuracy(logps.chosen - logps.rejected)


def dpo_metrics(policy: SequenceLogps, reference: SequenceLogps, beta: float) -> PreferenceMetrics:
    margins = beta * ((policy.chosen - reference.chosen) - (policy.rejected - reference.rejected))
    return PreferenceMetrics(
        n_pairs=int(margins.size),
        preference_accuracy=accuracy(margins),
        mean_reward_margin=float(np.mean(margins)) if margins.size else float("nan"),
        ranking_accuracy=ranking_accuracy(policy),
        ranking_accuracy_normalised=ranking_accuracy(policy, normalised=True),
        base_ranking_accuracy=ranking_accuracy(reference),
        base_ranking_accuracy_normalised=ranking_accuracy(reference, normalised=True),
    )


def reward_metrics(margins: np.ndarray, base_margins: np.ndarray | None = None) -> PreferenceMetrics:
    """From r(c) − r(r) per pair, after training and (optionally) before."""
    return PreferenceMetrics(
        n_pairs=int(margins.size),
        preference_accuracy=accuracy(margins),
        mean_reward_margin=float(np.mean(margins)) if margins.size else float("nan"),
        base_preference_accuracy=None if base_margins is None else accuracy(base_margins),
    )


def peft_base(model):
    """The transformers model under a PEFT wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _autocast(device: str, bf16: bool):
    import torch

    if bf16:
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# Completion tokens projected through the LM head at a time: SmolLM2's 49,152-word vocabulary
# makes each token's logits 192 KiB in float32, so 512 tokens are 96 MiB, where a batch of
# 8 pairs of 200-token answers at once would be 600 MiB, twice over with the log-softmax.
HEAD_CHUNK_TOKENS = 512


def completion_logps(model, rows, pad_token_id: int, max_length: int | None, batch_size: int = 8,
                     bf16: bool = False, on_batch: Callable[[int], None] | None = None) -> SequenceLogps:
    """Summed log π(completion|prompt) for rows tokenized by TRL (prompt_ids, chosen_ids, rejected_ids).

    Projects only the completion positions through the LM head, a chunk of tokens at a time.
    ``on_batch`` is called with the number of pairs after each batch.
    """
    import torch
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    collate = DataCollatorForPreference(pad_token_id=pad_token_id, max_length=max_length)
    causal_lm = peft_base(model)
    sums, counts = [], []
    was_training = model.training
    model.eval()
    device_type = next(causal_lm.parameters()).device.type
    with torch.no_grad(), _autocast(device_type, bf16):
        for start in range(0, len(rows), batch_size):
            batch = collate([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
            sums.append(batch_completion_logps(causal_lm, batch).cpu())
            counts.append(batch["completion_mask"][:, 1:].sum(1))
            if on_batch is not None:
                on_batch(len(sums[-1]) // 2)
    model.train(was_training)
    if not sums:
        empty = np.zeros(0)
        return SequenceLogps(empty, empty, empty, empty)
    chosen, rejected = _halves(torch.cat([s.view(2, -1) for s in sums], dim=1))
    chosen_tokens, rejected_tokens = _halves(torch.cat([c.view(2, -1) for c in counts], dim=1))
    return SequenceLogps(chosen, rejected, chosen_tokens, rejected_tokens)


def batch_completion_logps(causal_lm, batch):
    """Summed log-probs of each row's completion tokens in one collated batch: shape (rows,).

    ``causal_lm`` is the transformers model (under PEFT, its LoRA layers still apply). Only
    the completion positions go through the LM head, a chunk of tokens at a time: for a
    SmolLM2 pair the head over every position was a third of the forward's time here.
    """
    import torch

    head = causal_lm.get_output_embeddings()
    device = next(causal_lm.parameters()).device
    input_ids = batch["input_ids"].to(device)
    hidden = causal_lm.base_model(
        input_ids=input_ids, attention_mask=batch["attention_mask"].to(device), use_cache=False
    ).last_hidden_state[:, :-1]
    mask = batch["completion_mask"][:, 1:].bool().to(device)
    targets = input_ids[:, 1:][mask]  # shape (n_tokens,)
    token_logps = torch.cat([
        _token_logps(head(states).float(), labels)
        for states, labels in zip(hidden[mask].split(HEAD_CHUNK_TOKENS), targets.split(HEAD_CHUNK_TOKENS), strict=True)
    ])
    row_of_token = torch.arange(mask.size(0), device=device)[:, None].expand_as(mask)[mask]
    return torch.zeros(mask.size(0), device=device).index_add_(0, row_of_token, token_logps)


def _token_logps(logits, targets):
    """log softmax(logits)[target] without a second (tokens, vocab) tensor for the softmax."""
    return logits.gather(-1, targets[:, None]).squeeze(-1) - logits.logsumexp(-1)


def _halves(stacked) -> tuple[np.ndarray, np.ndarray]:
    # Each batch is [chosen..., rejected...]; viewed as (2, batch) per batch and concatenated.
    return stacked[0].double().numpy(), stacked[1].double().numpy()


@contextlib.contextmanager
def feature_dropout(model, rate: float):
    """MC dropout on the reward head's input features, whatever dropout the backbone has.

    Llama has no dropout modules at all (attention dropout is 0), so switching the model to
    train mode would change nothing; dropping features before the head works for any
    AutoModelForSequenceClassification with a `score` head.
    """
    import torch.nn.functional as F

    if rate <= 0:
        yield
        return
    head = peft_base(model).score
    handle = head.register_forward_pre_hook(lambda module, args: (F.dropout(args[0], rate, training=True),))
    try:
        yield
    finally:
        handle.remove()


def reward_margins(model, rows, pad_token_id: int, batch_size: int = 8, bf16: bool = False,
                   passes: int = 1, dropout: float = 0.0,
                   on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """r(c) − r(r) per pair, shape (passes, n_pairs); rows hold chosen_ids and rejected_ids.
    ``on_batch`` is called with the number of pairs after each batch."""
    import torch
    from trl.trainer.reward_trainer import DataCollatorForPreference

    collate = DataCollatorForPreference(pad_token_id=pad_token_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    margins = np.zeros((passes, len(rows)))
    with torch.no_grad(), _autocast(device.type, bf16), feature_dropout(model, dropout):
        for start in range(0, len(rows), batch_size):
            stop = min(start + batch_size, len(rows))
            batch = collate([rows[i] for i in range(start, stop)])
            inputs = {key: batch[key].to(device) for key in ("input_ids", "attention_mask")}
            for k in range(passes):
                rewards = model(**inputs, use_cache=False).logits[:, 0].float()
                chosen, rejected = rewards.chunk(2)
                margins[k, start:stop] = (chosen - rejected).cpu().numpy()
            if on_batch is not None:
                on_batch(stop - start)
    model.train(was_training)
    return margins
