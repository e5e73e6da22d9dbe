"""The plan: what a config fixes before any sample is drawn. Directions, firing probabilities
after hierarchy compensation, their marginals, the copula's loadings and the bound the copula's
sampler thins (``_rate_bound``), or the stacked rates of independent firing."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

from planted.toys._sparse_features._config import _STREAM_PLAN, SparseFeaturesConfig


@dataclasses.dataclass(frozen=True, eq=False)
class _Plan:
    """Everything the per-chunk sampler needs, fixed by the config.

    Features without a parent (roots and features outside the trees) are the ``top`` ones; a
    child is drawn only where its parent fired. With the copula, a feature's latent fires when
    ``e < c = (threshold - F u) / s``, kept here as ``c = offsets - u @ loadings`` on the scale of the
    envelope's grid (see ``_fire_top``).
    """

    config: SparseFeaturesConfig
    base_probabilities: np.ndarray  # (n_features,) before hierarchy gating
    top: np.ndarray  # (n_top,) int64: features without a parent
    levels: tuple[tuple[int, int, int], ...]  # (first child index, n parents, branching) per level
    decoder: np.ndarray  # (n_features, d_model) = norms * directions
    # Copula (None without one): c = threshold / s - u @ (F / s).T for every feature.
    offsets: np.ndarray | None  # (n_features,) float32: threshold / s
    loadings: np.ndarray | None  # (n_features, rank) float32: F / s
    bound_loadings: np.ndarray | None  # (rank + 1, n_top) float32: log g(c) <= [u, 1] @ bound_loadings
    # Independent firing of the top features: a Poisson process with rates -log(1 - p).
    rates: np.ndarray | None  # (n_top features with 0 < p < 1,) float64: -log(1 - p)
    cumulative_rates: np.ndarray | None  # (same,) their running sum, each a little longer (see _sampling)
    rated: np.ndarray | None  # (same,) int64: which features those rates belong to
    always: np.ndarray | None  # int64: top features with p = 1


def make_plan(config: SparseFeaturesConfig) -> tuple[_Plan, np.ndarray]:
    """What the config fixes before any sample: the plan and the directions (unit rows)."""
    rng = np.random.default_rng([config.seed, _STREAM_PLAN])
    n = config.n_features
    directions = _directions(config, rng)
    base = _base_probabilities(config)
    levels = _levels(config)
    if config.compensate_hierarchy:
        base = _compensate(base, levels, config.mutually_exclusive)
    offsets = loadings = bound_loadings = rates = cumulative = rated = always = None
    top = np.concatenate([np.arange(config.hierarchy_roots), np.arange(config.hierarchy_nodes, n)]).astype(np.int64)
    if config.correlation_rank > 0 and config.correlation_scale > 0:
        factors = rng.normal(0.0, config.correlation_scale, size=(n, config.correlation_rank))
        row_var = (factors**2).sum(axis=1)
        too_big = row_var > 0.95
        factors[too_big] *= np.sqrt(0.95 / row_var[too_big])[:, None]
        residual = np.sqrt(1.0 - (factors**2).sum(axis=1))
        with np.errstate(divide="ignore"):
            offsets = (ndtri(base) / residual).astype(np.float32)
        loadings = (factors / residual[:, None]).astype(np.float32)
        bound_loadings = _rate_bound(offsets[top], loadings[top])
    else:
        p = base[top]
        always = top[p >= 1]
        rated = top[(p > 0) & (p < 1)]
        rates = -np.log1p(-base[rated])
        # Raised past the running sum's rounding, so each interval covers its rate; thinned back.
        cumulative = np.cumsum(rates + 8 * np.finfo(np.float64).eps * rates.sum())
    plan = _Plan(config, base, top, levels, directions.astype(np.float32), offsets, loadings,
                 bound_loadings, rates, cumulative, rated, always)
    return plan, directions


def _directions(config: SparseFeaturesConfig, rng: np.random.Generator) -> np.ndarray:
    n, d = config.n_features, config.d_model
    g = rng.standard_normal((n, d))
    if config.geometry == "orthogonal":
        if n <= d:
            q, r = np.linalg.qr(g.T)
            g = (q * np.sign(np.diag(r))).T
        else:
            g = _tight_frame(g / np.linalg.norm(g, axis=1, keepdims=True), config.orthogonalize_steps)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return g.astype(np.float32)


def _tight_frame(v: np.ndarray, steps: int) -> np.ndarray:
    """Projected gradient descent on the frame potential sum_{i!=j} (v_i . v_j)^2, unit rows.

    The gradient 4 (V (V^T V) - |v_i|^2 v_i) costs O(n d^2): no n x n Gram matrix is formed.
    """
    n, d = v.shape
    lr = 0.25 * d / n
    for _ in range(steps):
        grad = v @ (v.T @ v) - v  # rows are unit, so |v_i|^2 v_i = v_i
        v = v - lr * grad / max(n / d, 1.0)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def _base_probabilities(config: SparseFeaturesConfig) -> np.ndarray:
    n = config.n_features
    if config.firing == "uniform":
        p = np.full(n, 1.0)
    elif config.firing == "exponential":
        p = config.decay ** np.arange(n, dtype=np.float64)
    else:
        ranks = np.arange(1, n + 1, dtype=np.float64)
        a = config.zipf_exponent
        if n == 1:
            p = np.array([config.p_max])
        else:
            shape = (ranks**-a - n**-a) / (1 - n**-a)
            p = config.p_min + (config.p_max - config.p_min) * shape
    if config.mean_active is not None:
        p = _scale_to_sum(p, config.mean_active)
    return p


def _scale_to_sum(p: np.ndarray, total: float) -> np.ndarray:
    """Scale ``p`` so it sums to ``total`` with every entry clipped at 1.

    ``sum(min(s p, 1))`` is increasing in ``s``; the scale lies between ``total / sum(p)`` (no entry
    clipped) and the scale that puts the ``ceil(total)``-th largest entry at 1, and is found by
    bisection on log s.
    """
    if total >= p.size:
        return np.ones_like(p)
    ordered = np.sort(p)[::-1]
    lo = math.log(total / p.sum())
    hi = math.log(1.0 / ordered[min(math.ceil(total), p.size) - 1])
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(math.exp(mid) * p, 1.0).sum() < total:
            lo = mid
        else:
            hi = mid
    return np.minimum(math.exp(hi) * p, 1.0)


def _levels(config: SparseFeaturesConfig) -> tuple[tuple[int, int, int], ...]:
    """For each level below the roots: (index of its first feature, parents above it, branching)."""
    if not config.hierarchy_roots:
        return ()
    levels = []
    parents, first = config.hierarchy_roots, config.hierarchy_roots
    for _ in range(config.hierarchy_depth):
        levels.append((first, parents, config.hierarchy_branching))
        first += parents * config.hierarchy_branching
        parents *= config.hierarchy_branching
    return tuple(levels)


def _compensate(base: np.ndarray, levels, mutually_exclusive: bool) -> np.ndarray:
    """Conditional firing probabilities of children so their marginals approach ``base``."""
    out = base.copy()
    parent_first = 0
    for first, n_parents, b in levels:
        p = base[first : first + n_parents * b].reshape(n_parents, b)
        parent = base[parent_first : parent_first + n_parents, None]
        factor = 1.0 / parent
        if mutually_exclusive and b > 1:
            factor = factor * (1.0 + (p.sum(axis=1, keepdims=True) - p) / parent)
        out[first : first + n_parents * b] = np.minimum(p * factor, 1.0).ravel()
        parent_first = first
    return out


def _parents(config: SparseFeaturesConfig, levels) -> np.ndarray | None:
    if not levels:
        return None
    parents = np.full(config.n_features, -1, dtype=np.int32)
    parent_first = 0
    for first, n_parents, b in levels:
        parents[first : first + n_parents * b] = parent_first + np.repeat(np.arange(n_parents), b)
        parent_first = first
    return parents


def _labels(config: SparseFeaturesConfig, parents: np.ndarray | None) -> tuple[str, ...]:
    """``f00012`` for free features; ``t003.1.2`` (root 3, its child 1, that child's child 2) in trees."""
    labels = [f"f{i:05d}" for i in range(config.n_features)]
    if parents is not None:
        seen = np.zeros(config.n_features, dtype=np.int64)
        for i in range(config.hierarchy_nodes):
            p = parents[i]
            if p < 0:
                labels[i] = f"t{i:03d}"
            else:
                labels[i] = f"{labels[p]}.{seen[p]}"
                seen[p] += 1
    return tuple(labels)


def _marginals(base: np.ndarray, levels, mutually_exclusive: bool) -> np.ndarray:
    """Probability each feature is active after gating (independent firing assumed)."""
    m = base.astype(np.float64).copy()
    parent_first = 0
    for first, n_parents, b in levels:
        p = base[first : first + n_parents * b].reshape(n_parents, b)
        if mutually_exclusive and b > 1:
            keep = np.empty_like(p)
            for j in range(b):
                others = np.delete(p, j, axis=1)
                dist = np.ones((n_parents, 1))  # Poisson-binomial distribution of how many others fire
                for c in range(b - 1):
                    q = others[:, c : c + 1]
                    dist = np.concatenate([dist * (1 - q), np.zeros((n_parents, 1))], axis=1) + np.concatenate(
                        [np.zeros((n_parents, 1)), dist * q], axis=1
                    )
                keep[:, j] = p[:, j] * (dist / np.arange(1, b + 1)).sum(axis=1)
            p = keep
        parent_m = m[parent_first : parent_first + n_parents]
        m[first : first + n_parents * b] = (p * parent_m[:, None]).ravel()
        parent_first = first
    return m.astype(np.float32)


_LOG_SLACK = 1e-4  # added to the log bound: covers float32 rounding of the product


def _log_rate(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log g(c)`` and its derivative, ``g(c) = -log(1 - Phi(c))``, accurate for any float64 ``c``.

    ``log g`` is concave (checked in the tests from c = -37 to 37), so its tangent at ``c0`` bounds it
    from above everywhere: ``g(c) <= exp(log g(c0) + slope(c0) (c - c0))``.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tiny = c < -5  # g = Phi + Phi^2 / 2 + ...: log g = log Phi + Phi / 2 to 1e-13
        log_g = np.where(tiny, log_ndtr(c) + 0.5 * ndtr(c), np.log(-log_ndtr(-c)))
        slope = np.exp(-0.5 * c**2 - 0.5 * math.log(2 * math.pi) - log_ndtr(-c) - log_g)
    return log_g, slope


def _rate_bound(offsets: np.ndarray, loadings: np.ndarray) -> np.ndarray:
    """A tangent of ``log g`` for each top feature, as the loadings of ``log g_hat = [u, 1] @ bound``
    (rank + 1, n_top). Any tangent bounds ``g``; each feature's touches at the point that makes the
    expected bound over ``u`` smallest, ``log g(a) + slope(a) (c0 - a) + slope(a)^2 var / 2`` where
    ``c = c0 - u @ loadings`` has variance ``var``. A feature that always fires has constant 1e30 (its
    block is drawn feature by feature); one that never fires has -1e30 (it draws no points)."""
    c0 = offsets.astype(np.float64)
    finite = np.isfinite(c0)
    var = (loadings.astype(np.float64) ** 2).sum(axis=1)
    touch = np.where(finite, c0, 0.0)[:, None] + np.linspace(-3.0, 3.0, 121) * np.sqrt(var)[:, None]
    log_g, slope = _log_rate(touch)
    expected = log_g + slope * (np.where(finite, c0, 0.0)[:, None] - touch) + 0.5 * slope**2 * var[:, None]
    best = np.argmin(expected, axis=1)
    a = touch[np.arange(c0.size), best]
    log_g, slope = log_g[np.arange(c0.size), best], slope[np.arange(c0.size), best]
    bound = np.empty((loadings.shape[1] + 1, c0.size), np.float32)
    bound[:-1] = np.where(finite[:, None], -slope[:, None] * loadings, 0.0).T
    with np.errstate(invalid="ignore"):
        bound[-1] = np.where(finite, log_g + slope * (c0 - a) + _LOG_SLACK, np.sign(c0) * 1e30)
    return bound
