"""The geometry of learned embeddings (Elhage et al. 2022): feature dimensionality and its changes."""

from __future__ import annotations

import math

import numpy as np

# A feature counts as represented when its embedding column is at least this long (Elhage et
# al. 2022 plot ||W_i|| and call features with norm near 1 represented, near 0 dropped).
REPRESENTED_NORM = 0.5
# Between consecutive snapshots, a jump in some feature's dimensionality larger than this (or a
# change in which features are represented) is a change of geometry.
GEOMETRY_JUMP = 0.1


def dimensionality(weights: np.ndarray) -> np.ndarray:
    """Per-feature dimensionality ``D_i = |W_i|^2 / sum_j (W_i_hat . W_j)^2`` (Elhage et al. 2022).

    ``weights`` is (n_hidden, n_features), or a stack (..., n_hidden, n_features) of them; a
    feature with a zero column has dimensionality 0.
    """
    w = np.asarray(weights, np.float64)
    norms = np.linalg.norm(w, axis=-2)
    safe = np.where(norms > 1e-12, norms, 1.0)
    unit = np.where(norms[..., None, :] > 1e-12, w / safe[..., None, :], 0.0)
    overlaps = (np.swapaxes(unit, -1, -2) @ w) ** 2
    total = overlaps.sum(axis=-1)
    return np.where(total > 0, norms**2 / np.where(total > 0, total, 1.0), 0.0)


def dimensions_per_feature(weights: np.ndarray) -> float:
    """``D* = n_hidden / |W|_F^2``: hidden dimensions per embedded feature (Elhage et al. 2022)."""
    w = np.asarray(weights, np.float64)
    total = float((w**2).sum())
    return float(w.shape[0] / total) if total > 0 else math.inf
