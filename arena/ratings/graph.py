"""Who has been compared with whom.

Bradley-Terry only pins down differences between systems joined by a path of battles; two
groups that never met have ratings on unrelated scales. And even on a connected graph the
maximum-likelihood estimate is infinite when a group of systems never lost to the rest
(Ford, 1957): its ratings run off to +infinity.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .battles import WIN_CREDIT_A, BattleCounts


def component_labels(counts: BattleCounts) -> np.ndarray:
    """Component index per system, shape (n_systems,). Components are numbered by size,
    largest first, ties broken by the lowest system index, so numbering is stable."""
    n = counts.n_systems
    used = counts.weight > 0
    graph = coo_matrix((np.ones(used.sum()), (counts.a[used], counts.b[used])), shape=(n, n))
    _, raw = connected_components(graph, directed=False)
    return _renumber_by_size(raw)


def _renumber_by_size(raw: np.ndarray) -> np.ndarray:
    n_raw = raw.max() + 1 if len(raw) else 0
    sizes = np.bincount(raw, minlength=n_raw)
    first_member = np.full(n_raw, len(raw))
    np.minimum.at(first_member, raw, np.arange(len(raw)))
    order = np.lexsort((first_member, -sizes))
    new_label = np.empty(n_raw, dtype=np.int64)
    new_label[order] = np.arange(n_raw)
    return new_label[raw]


def components_without_finite_mle(counts: BattleCounts, labels: np.ndarray) -> list[int]:
    """Components (by label) whose unpenalised Bradley-Terry MLE does not exist: the
    directed graph 'i took some win credit from j' is not strongly connected in them."""
    n = counts.n_systems
    credit_a = WIN_CREDIT_A[counts.outcome] * counts.weight
    credit_b = (1.0 - WIN_CREDIT_A[counts.outcome]) * counts.weight
    # Edge j -> i when i took credit from j: i is reachable from j's side.
    rows = np.concatenate([counts.b[credit_a > 0], counts.a[credit_b > 0]])
    cols = np.concatenate([counts.a[credit_a > 0], counts.b[credit_b > 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, strong = connected_components(graph, directed=True, connection="strong")
    bad = []
    for label in np.unique(labels):
        members = labels == label
        if members.sum() > 1 and len(np.unique(strong[members])) > 1:
            bad.append(int(label))
    return bad
