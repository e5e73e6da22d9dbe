"""Formation times from a training record: when did each feature form, and when did anything?

A training record is a dict of snapshots: ``steps`` (n_snapshots,), ``losses`` (n_snapshots,),
``weights`` (n_snapshots, n_parameters, n_components) and, for a toy model of superposition,
``biases`` (n_snapshots, n_features). A component is a feature (a column of W, its embedding) or
a node of a planted circuit (its trained parameters); "a feature" below means either. Each
method returns a ``groundtruth.Formation``. ``norm_half_final`` dates a feature when its
embedding first reaches half its final length (a progress measure read off the weights);
``norm_growth`` when its length grows fastest; ``loss_change_points`` reads only the loss curve
and returns the steps where its fall is sharpest (change points, undated to any feature);
``gini_change_points`` the steps where the inequality of the features' lengths (their Gini
coefficient, a progress measure) moves fastest.

References
----------
Elhage et al. (2022), "Toy models of superposition" (features learned one by one, a staircase of
the loss). Olsson et al. (2022), "In-context learning and induction heads" (phase changes in the
loss curve). Nanda et al. (2023), "Progress measures for grokking via mechanistic
interpretability".
"""

from __future__ import annotations

import numpy as np

from planted.groundtruth import Formation, Problems, as_matrix, as_vector


def _record(artifact, where: str):
    if not isinstance(artifact, dict) or not {"steps", "losses", "weights"} <= set(artifact):
        raise ValueError(f"{where}: needs a training record: a dict with steps, losses, weights (and biases)")
    steps = np.asarray(artifact["steps"])
    if steps.ndim != 1 or steps.size < 2 or not np.issubdtype(steps.dtype, np.integer) or (np.diff(steps) <= 0).any() \
            or steps[0] < 0:
        raise ValueError(f"{where}: steps must be at least 2 increasing non-negative integer snapshot steps, got "
                         f"{steps.dtype} {steps.shape}")
    losses = as_vector("losses", artifact["losses"], length=steps.size, dtype=np.float64)
    weights = np.asarray(artifact["weights"], np.float64)
    if weights.ndim != 3 or weights.shape[0] != steps.size:
        raise ValueError(f"{where}: weights must be (n_snapshots, n_parameters, n_components), got {weights.shape}")
    as_matrix("weights", weights.reshape(steps.size, -1))
    return steps.astype(np.int64), losses, weights


def norm_half_final(artifact, *, fraction: float = 0.5, represented: float = 0.5, seed: int = 0) -> Formation:
    """Each feature's formation: the first snapshot at which its embedding length reaches
    ``fraction`` of its final length; -1 when the final length is at most ``represented``."""
    p = Problems()
    p.number("fraction", fraction, low=0, high=1, low_open=True)
    p.number("represented", represented, low=0)
    p.raise_if_any("norm_half_final")
    steps, _, weights = _record(artifact, "norm_half_final")
    norms = np.linalg.norm(weights, axis=1)
    final = norms[-1]
    reached = norms >= fraction * final
    first = np.argmax(reached, axis=0)
    return Formation(steps=np.where(final > represented, steps[first], -1))


def norm_growth(artifact, *, represented: float = 0.5, seed: int = 0) -> Formation:
    """Each feature's formation: the snapshot closing the interval in which its embedding length
    grew fastest per step; -1 when the final length is at most ``represented``."""
    p = Problems()
    p.number("represented", represented, low=0)
    p.raise_if_any("norm_growth")
    steps, _, weights = _record(artifact, "norm_growth")
    norms = np.linalg.norm(weights, axis=1)
    rate = np.diff(norms, axis=0) / np.diff(steps)[:, None]
    return Formation(steps=np.where(norms[-1] > represented, steps[1:][np.argmax(rate, axis=0)], -1))


def _change_points(steps: np.ndarray, series: np.ndarray, threshold: float) -> np.ndarray:
    """The snapshots closing the intervals where ``series`` rises per step at a local maximum at
    least ``threshold`` median absolute deviations above its median rise."""
    rise = np.diff(series) / np.diff(steps)
    centre = np.median(rise)
    spread = np.median(np.abs(rise - centre)) or 1e-12
    score = (rise - centre) / spread
    padded = np.concatenate([[-np.inf], score, [-np.inf]])
    peaks = (score >= padded[:-2]) & (score > padded[2:]) & (score >= threshold)
    return steps[1:][peaks]


def loss_change_points(artifact, *, threshold: float = 2.0, seed: int = 0) -> Formation:
    """Change points of the loss curve: the snapshots where the fall of the log-loss per step is a
    local maximum at least ``threshold`` median absolute deviations above its median (the
    staircase's steps); no feature is dated."""
    p = Problems()
    p.number("threshold", threshold)
    p.raise_if_any("loss_change_points")
    steps, losses, _ = _record(artifact, "loss_change_points")
    return Formation(events=_change_points(steps, -np.log(np.maximum(losses, 1e-12)), threshold))


def gini(values: np.ndarray) -> np.ndarray:
    """The Gini coefficient of non-negative values along the last axis (0: all equal; near 1: one
    holds everything)."""
    x = np.sort(np.asarray(values, np.float64), axis=-1)
    n = x.shape[-1]
    total = x.sum(axis=-1)
    ranks = np.arange(1, n + 1)
    return np.where(total > 0, (2 * (ranks * x).sum(axis=-1) / (n * np.where(total > 0, total, 1.0))) - (n + 1) / n, 0.0)


def gini_change_points(artifact, *, threshold: float = 2.0, seed: int = 0) -> Formation:
    """A progress measure read off the weights (Nanda et al. 2023's Gini coefficient of the
    Fourier norms, here of the features' embedding lengths): the snapshots where the Gini
    coefficient of the lengths changes fastest (local maxima of its absolute change per step,
    at least ``threshold`` median absolute deviations above the median), as events; no feature
    is dated. Each feature that forms changes how unequal the lengths are."""
    p = Problems()
    p.number("threshold", threshold)
    p.raise_if_any("gini_change_points")
    steps, _, weights = _record(artifact, "gini_change_points")
    g = gini(np.linalg.norm(weights, axis=1))
    change = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(g)))])  # rises wherever the Gini moves
    return Formation(events=_change_points(steps, change, threshold))


__all__ = ["gini", "gini_change_points", "loss_change_points", "norm_growth", "norm_half_final"]
