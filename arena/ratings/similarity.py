"""Boards for prompts like one prompt: Bradley-Terry on battles weighted by how close their
prompt is to a query prompt.

The weight of a battle is its own weight times ``max(0, cos)^power``, where ``cos`` is the
cosine similarity between the embeddings of its prompt and of the query. Why a power and
not a softmax with a temperature: the power keeps a battle on the very same prompt at
weight 1 whatever the rest of the arena holds, so weights mean the same from one query to
the next, and prompts at or below orthogonal (``cos <= 0``) count for nothing instead of
for a little. With sentence embeddings (all-MiniLM-L6-v2) unrelated prompts sit near
cos 0.1 and paraphrases above 0.7; power 4 gives them 1e-4 and 0.24: the default.

Intervals are the sandwich on the weighted likelihood (`BradleyTerry.robust_covariance`
already carries the squared weights in its meat), so a board fitted on a few heavy
battles gets wide intervals rather than the narrow ones its summed weight would suggest.
How many votes the board stands on is Kish's effective number, ``(sum w)^2 / sum w^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .battles import Battles
from .leaderboard import Leaderboard, compute_leaderboard

DEFAULT_POWER = 4.0


def cosine_similarities(embeddings: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine of each row of `embeddings` (shape (n, d)) with `query` (shape (d,)), shape (n,).
    A zero vector has cosine 0 with everything."""
    query = np.asarray(query, dtype=np.float64)
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[1] != query.shape[-1]:
        raise ValueError(f"embeddings of shape {embeddings.shape} cannot be compared with a query of {query.shape[-1]} dims")
    norms = np.linalg.norm(embeddings, axis=1) * np.linalg.norm(query)
    dots = embeddings @ query
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def similarity_weights(cosines: np.ndarray, power: float = DEFAULT_POWER) -> np.ndarray:
    """``max(0, cos)^power``, same shape as `cosines`."""
    if not np.isfinite(power) or power <= 0:
        raise ValueError(f"power must be a positive number, got {power!r}")
    cosines = np.asarray(cosines, dtype=np.float64)
    if not np.all(np.isfinite(cosines)):
        raise ValueError("cosine similarities must be finite")
    return np.clip(cosines, 0.0, 1.0) ** power


def kish_effective_n(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``; 0 when every weight is 0."""
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("weights must be finite and non-negative")
    squares = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0


@dataclass(frozen=True)
class SimilarBoard:
    """A leaderboard fitted on similarity-weighted battles, and what it stands on."""

    board: Leaderboard
    power: float
    n_battles: int  # battles given
    n_battles_weighted: int  # of them, those with a positive weight
    effective_n: float  # Kish, over every battle's final weight
    total_weight: float
    effective_votes: dict[str, float] = field(default_factory=dict)  # Kish per system

    def to_dict(self) -> dict[str, Any]:
        data = self.board.to_dict()
        for row in data["systems"]:
            row["effective_votes"] = self.effective_votes.get(row["system"], 0.0)
        data["similarity"] = {
            "weighting": "max(0, cos)^power",
            "power": self.power,
            "n_battles": self.n_battles,
            "n_battles_weighted": self.n_battles_weighted,
            "effective_n": self.effective_n,
            "total_weight": self.total_weight,
        }
        return data


def similar_board(
    battles: Battles,
    cosines: np.ndarray,
    *,
    power: float = DEFAULT_POWER,
    both_bad: str = "tie",
    confidence: float = 0.95,
    min_votes: int = 0,
) -> SimilarBoard:
    """Bradley-Terry with sandwich intervals on `battles`, battle i weighted by its own weight
    times ``max(0, cosines[i])^power``. Systems left with no weighted battle are left out."""
    cosines = np.asarray(cosines, dtype=np.float64)
    if cosines.shape != (len(battles),):
        raise ValueError(f"one cosine per battle expected: {len(battles)} battles, cosines of shape {cosines.shape}")
    weights = battles.weight * similarity_weights(cosines, power)  # shape (n_battles,)
    keep = weights > 0
    used = np.unique(np.concatenate([battles.a[keep], battles.b[keep]]))  # sorted system indices
    remap = np.full(len(battles.systems), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    weighted = Battles.from_arrays(
        [battles.systems[i] for i in used],
        remap[battles.a[keep]],
        remap[battles.b[keep]],
        battles.outcome[keep],
        weights[keep],
    )
    if both_bad == "drop":
        weighted = weighted.resolve_both_bad("drop")
    board = compute_leaderboard(
        weighted.aggregate(), method="bt", ci="sandwich", both_bad=both_bad, min_votes=min_votes, confidence=confidence
    )
    per_system = {}
    for index, name in enumerate(weighted.systems):
        involved = (weighted.a == index) | (weighted.b == index)
        per_system[name] = kish_effective_n(weighted.weight[involved])
    return SimilarBoard(
        board=board,
        power=float(power),
        n_battles=len(battles),
        n_battles_weighted=int(keep.sum()),
        effective_n=kish_effective_n(weighted.weight),
        total_weight=float(weighted.weight.sum()),
        effective_votes=per_system,
    )
