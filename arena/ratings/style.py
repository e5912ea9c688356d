"""Style covariates for text battles.

Voters favour longer and more heavily formatted answers. Style control (LMArena, 2024)
adds, for each feature, the side difference (a - b) / (a + b + 1) as a covariate of the
Bradley-Terry margin, so a system's rating is what it would earn with average style.
"""

from __future__ import annotations

import numpy as np

# The raw counts come from the product (`arena.outputs.textstats.style_features`), which
# counts what a reader sees: markdown outside code.
TEXT_STYLE_FEATURES = ("length", "headers", "lists", "bold")


def style_covariates(style_a: np.ndarray, style_b: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Covariates, shape (n_rows, n_features), from raw counts of shape (n_rows, n_features),
    each row standing for `count` battles.

    The difference is antisymmetric: swapping sides flips its sign. So it is scaled by its
    root mean square and not centred: that is the z-score over both orientations of every
    battle, whose mean is zero by symmetry. Centring on one orientation would smuggle in a
    bonus for whichever side the data happens to list first.
    """
    raw = (style_a - style_b) / (style_a + style_b + 1.0)
    weights = count / max(count.sum(), 1)
    rms = np.sqrt(weights @ raw**2)  # shape (n_features,)
    # A feature that never differs between sides carries no information; leave it at zero
    # rather than divide by zero.
    return np.divide(raw, rms, out=np.zeros_like(raw), where=rms > 0)
