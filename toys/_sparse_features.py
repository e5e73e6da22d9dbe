"""Sparse features in superposition: activations = codes @ (norms * directions) + noise.

The generator plants ``n_features`` directions in ``d_model`` dimensions and draws sparse,
non-negative codes for them, with optional Zipfian firing, low-rank correlated firing (a Gaussian
copula), hierarchies of mutually exclusive children (the setting of feature absorption) and
Gaussian noise. Every sample is a pure function of the config and its index: samples are made in
chunks of ``CHUNK_SIZE``, chunk ``c`` from the NumPy streams ``[seed, 202, c, part]``, so a toy's stored
activations and its unbounded stream agree sample for sample.

Sampling costs work in proportion to the features that fire, not to ``n_features``: features
without a parent fire as Poisson processes (thinned, under the copula, by a bound that is one
low-rank product), and a child is drawn only where its parent fired (see ``_fire``).

References
----------
Sharkey, Braun & Millidge (2022), "Taking features out of superposition with sparse autoencoders".
Chanin et al. (2024), "A is for Absorption: studying feature splitting and absorption in SAEs".
Chanin & Garriga-Alonso (2026), "SynthSAEBench: Evaluating sparse autoencoders on scalable
realistic synthetic data".
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.special import log_ndtr, ndtr, ndtri
from threadpoolctl import threadpool_limits

from planted.groundtruth import Config, FeatureToy, FeatureTruth, Problems
from planted.toys._checks import require_memory
from planted.toys._family import Family
from planted.toys._feature_storage import check_features, feature_arrays, feature_toy

CHUNK_SIZE = 4096
# NumPy stream ids (nonzero: SeedSequence([s, 0]) equals SeedSequence(s)).
_STREAM_PLAN, _STREAM_SAMPLES = 101, 202

FIRINGS = ("uniform", "exponential", "zipf")
MAGNITUDES = ("constant", "uniform", "exponential", "folded_normal")
GEOMETRIES = ("random", "orthogonal")


@dataclasses.dataclass(frozen=True)
class SparseFeaturesConfig(Config):
    """Config of ``toys.sparse_features``; see that function for each field's meaning."""

    kind = "sparse_features"

    n_features: int
    d_model: int
    n_samples: int = 50_000
    seed: int = 0
    firing: str = "uniform"
    mean_active: float | None = 5.0
    decay: float = 0.99
    zipf_exponent: float = 1.0
    p_max: float = 0.3
    p_min: float = 0.01
    magnitude: str = "uniform"
    magnitude_mean: float = 1.0
    magnitude_std: float = 0.5
    correlation_rank: int = 0
    correlation_scale: float = 0.1
    hierarchy_roots: int = 0
    hierarchy_branching: int = 2
    hierarchy_depth: int = 1
    mutually_exclusive: bool = True
    compensate_hierarchy: bool = True
    geometry: str = "random"
    orthogonalize_steps: int = 200
    noise_std: float = 0.0

    def _check(self, p: Problems) -> None:
        p.integer("n_features", self.n_features, low=1, high=1_000_000)
        p.integer("d_model", self.d_model, low=1, high=100_000)
        p.integer("n_samples", self.n_samples, low=1, high=100_000_000)
        p.integer("seed", self.seed, low=0, high=2**63 - 1)
        p.choice("firing", self.firing, FIRINGS)
        p.choice("magnitude", self.magnitude, MAGNITUDES)
        p.choice("geometry", self.geometry, GEOMETRIES)
        p.number("decay", self.decay, low=0, high=1, low_open=True)
        p.number("zipf_exponent", self.zipf_exponent, low=0, low_open=True, high=10)
        p.number("p_max", self.p_max, low=0, high=1, low_open=True)
        p.number("p_min", self.p_min, low=0, high=1, low_open=True)
        if self.firing == "zipf" and _is_number(self.p_min) and _is_number(self.p_max) and self.p_min > self.p_max:
            p.add(f"p_min must be at most p_max ({self.p_max}), got {self.p_min}")
        if self.mean_active is None:
            if self.firing != "zipf":
                p.add(f"mean_active is required for firing={self.firing!r} (None is allowed only for 'zipf')")
        else:
            p.number("mean_active", self.mean_active, low=0, low_open=True)
            if _is_number(self.mean_active) and isinstance(self.n_features, int) and 1 <= self.n_features < self.mean_active:
                p.add(f"mean_active must be at most n_features ({self.n_features}), got {self.mean_active}")
        p.number("magnitude_mean", self.magnitude_mean, low=0, high=1e6, low_open=True)
        p.number("magnitude_std", self.magnitude_std, low=0, high=1e6)
        p.integer("correlation_rank", self.correlation_rank, low=0, high=1024)
        p.number("correlation_scale", self.correlation_scale, low=0, high=1)
        p.integer("hierarchy_roots", self.hierarchy_roots, low=0)
        p.integer("hierarchy_branching", self.hierarchy_branching, low=1, high=64)
        p.integer("hierarchy_depth", self.hierarchy_depth, low=1, high=8)
        p.boolean("mutually_exclusive", self.mutually_exclusive)
        p.boolean("compensate_hierarchy", self.compensate_hierarchy)
        p.integer("orthogonalize_steps", self.orthogonalize_steps, low=0, high=100_000)
        p.number("noise_std", self.noise_std, low=0, high=1e6)
        if not p.messages and self.hierarchy_roots:
            needed = self.hierarchy_nodes
            if needed > self.n_features:
                p.add(
                    f"hierarchy_roots x (1 + branching + ... + branching^depth) = {needed} features, more than "
                    f"n_features ({self.n_features}); lower hierarchy_roots/branching/depth or raise n_features"
                )

    @property
    def hierarchy_nodes(self) -> int:
        """Number of features that belong to a hierarchy tree."""
        if not self.hierarchy_roots:
            return 0
        return self.hierarchy_roots * sum(self.hierarchy_branching**level for level in range(self.hierarchy_depth + 1))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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
    cumulative_rates: np.ndarray | None  # (n_top features with p < 1,) float64
    rated: np.ndarray | None  # (same,) int64: which features those rates belong to
    always: np.ndarray | None  # int64: top features with p = 1


def sparse_features(
    n_features: int,
    d_model: int,
    n_samples: int = 50_000,
    *,
    seed: int,
    firing: str = "uniform",
    mean_active: float | None = 5.0,
    decay: float = 0.99,
    zipf_exponent: float = 1.0,
    p_max: float = 0.3,
    p_min: float = 0.01,
    magnitude: str = "uniform",
    magnitude_mean: float = 1.0,
    magnitude_std: float = 0.5,
    correlation_rank: int = 0,
    correlation_scale: float = 0.1,
    hierarchy_roots: int = 0,
    hierarchy_branching: int = 2,
    hierarchy_depth: int = 1,
    mutually_exclusive: bool = True,
    compensate_hierarchy: bool = True,
    geometry: str = "random",
    orthogonalize_steps: int = 200,
    noise_std: float = 0.0,
) -> FeatureToy:
    """Generate sparse features in superposition with known directions and codes.

    Parameters
    ----------
    n_features, d_model : int
        Number of planted features and the activation dimension; ``n_features / d_model`` is the
        superposition ratio (any value, e.g. 32).
    n_samples : int
        Samples stored in ``toy.activations``; ``toy.batches`` streams any number more.
    seed : int
        Root seed; same seed, same arrays.
    firing : {"uniform", "exponential", "zipf"}
        Base firing probabilities: equal; ``decay**i`` (Sharkey et al. 2022); or Zipfian
        ``p_min + (p_max - p_min) * (r**-a - N**-a) / (1 - N**-a)`` over ranks ``r = i + 1`` with
        exponent ``a = zipf_exponent`` (the SynthSAEBench form). Feature 0 fires most often.
    mean_active : float or None
        For uniform and exponential firing, the probabilities are scaled to sum to this (the
        expected number of active features before hierarchy gating). With ``zipf``, None keeps
        p_max/p_min as given and a number rescales them to that sum.
    magnitude : {"constant", "uniform", "exponential", "folded_normal"}
        Distribution of an active feature's coefficient, with mean ``magnitude_mean``: constant;
        uniform on [0, 2 mean]; exponential; or |N(mean, magnitude_std)|.
    correlation_rank, correlation_scale : int, float
        Low-rank correlated firing through a Gaussian copula: latent ``z = F u + s e`` with
        ``F`` (n_features, rank) of N(0, scale^2) entries and ``s`` chosen so var z = 1; a
        feature fires when ``z < Phi^-1(p)``, which keeps every marginal probability exact.
    hierarchy_roots, hierarchy_branching, hierarchy_depth : int
        Plant ``roots`` trees, each node with ``branching`` children, ``depth`` levels below
        the root. Tree features take the lowest indices in level order (roots first). A child can
        fire only when its parent fires.
    mutually_exclusive : bool
        When True, at most one child of a parent fires on a sample (one of the children that
        would fire, chosen uniformly): the setting that produces feature absorption.
    compensate_hierarchy : bool
        When True (as SynthSAEBench does), a child's probability of firing given its parent is
        ``p_child / p_parent``, times ``1 + sum(p_sibling) / p_parent`` under mutual exclusion,
        capped at 1, so each feature's marginal stays near its base probability. Where the cap
        binds (a child whose base probability is at least its parent's, or siblings whose sum
        is), the child fires whenever its parent fires and exclusion lets it, so its marginal is
        its parent's marginal (under exclusion, that share of it), below its base probability;
        ``truth.firing_probabilities`` give these marginals exactly, not the base ones. When
        False a child fires with its base probability given its parent.
    geometry : {"random", "orthogonal"}
        Random unit directions, or orthogonalised as far as ``d_model`` allows: orthonormal when
        ``n_features <= d_model``, else ``orthogonalize_steps`` steps of gradient descent on the
        frame potential ``sum_{i != j} (d_i . d_j)^2`` with unit rows (towards a tight frame).
    noise_std : float
        Standard deviation of isotropic Gaussian noise added to every activation entry.

    Returns
    -------
    FeatureToy
        ``toy.activations`` (n_samples, d_model) float32 and ``toy.truth`` (``FeatureTruth``):
        ``directions`` (n_features, d_model) unit rows, ``norms`` (all 1), ``represented``,
        ``codes`` CSR (n_samples, n_features), ``firing_probabilities`` (marginals after gating;
        exact unless correlation and hierarchy are combined, in which case they assume
        independence between a parent and its children), ``labels`` and ``parents``.

    References
    ----------
    Sharkey, Braun & Millidge (2022), "Taking features out of superposition with sparse
    autoencoders". Chanin & Garriga-Alonso (2026), "SynthSAEBench".
    """
    config = SparseFeaturesConfig(
        n_features=n_features,
        d_model=d_model,
        n_samples=n_samples,
        seed=seed,
        firing=firing,
        mean_active=mean_active,
        decay=decay,
        zipf_exponent=zipf_exponent,
        p_max=p_max,
        p_min=p_min,
        magnitude=magnitude,
        magnitude_mean=magnitude_mean,
        magnitude_std=magnitude_std,
        correlation_rank=correlation_rank,
        correlation_scale=correlation_scale,
        hierarchy_roots=hierarchy_roots,
        hierarchy_branching=hierarchy_branching,
        hierarchy_depth=hierarchy_depth,
        mutually_exclusive=mutually_exclusive,
        compensate_hierarchy=compensate_hierarchy,
        geometry=geometry,
        orthogonalize_steps=orthogonalize_steps,
        noise_std=noise_std,
    )
    return build(config)


def build(config: SparseFeaturesConfig) -> FeatureToy:
    """Generate the toy a ``SparseFeaturesConfig`` describes."""
    if not isinstance(config, SparseFeaturesConfig):
        raise ValueError(f"config must be a SparseFeaturesConfig, got {type(config).__name__}")
    require_memory(config.kind, *_memory(config))
    rng = np.random.default_rng([config.seed, _STREAM_PLAN])
    n = config.n_features
    directions = _directions(config, rng)
    norms = np.ones(n, dtype=np.float32)
    base = _base_probabilities(config)
    levels = _levels(config)
    if config.compensate_hierarchy:
        base = _compensate(base, levels, config.mutually_exclusive)
    offsets = loadings = bound_loadings = cumulative = rated = always = None
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
    parents = _parents(config, levels)
    plan = _Plan(config, base, top, levels, (directions * norms[:, None]).astype(np.float32), offsets, loadings,
                 bound_loadings, cumulative, rated, always)
    sampler = functools.partial(_sample_chunk, plan)
    n_chunks = -(-config.n_samples // CHUNK_SIZE)
    acts, codes = zip(*(sampler(c) for c in range(n_chunks)))
    activations = np.concatenate(acts)[: config.n_samples]
    all_codes = sp.vstack(codes, format="csr")[: config.n_samples]
    marginals = _marginals(base, levels, config.mutually_exclusive)
    truth = FeatureTruth(
        directions=directions,
        norms=norms,
        represented=(marginals > 0) & (norms > 0),
        codes=all_codes,
        firing_probabilities=marginals,
        labels=_labels(config, parents),
        parents=parents,
    )
    return FeatureToy(config=config, truth=truth, activations=activations, sampler=sampler, chunk_size=CHUNK_SIZE)


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


def _memory(config: SparseFeaturesConfig) -> tuple[float, str, str]:
    """An estimate of the bytes ``build`` holds at its peak, what makes them, and the parameters
    that set them: the activations (float32) and the codes (float32 values, int64 indices),
    each chunk's copula bounds (a float32 slab per part), the directions and their orthogonalisation."""
    n, d, s = config.n_features, config.d_model, config.n_samples
    active = config.mean_active if config.mean_active is not None else config.p_max * n
    activations = 4.0 * s * d
    codes = 12.0 * s * min(active, n)
    chunk = 4.0 * _PARTS * min(_SLAB, CHUNK_SIZE // _PARTS * n) if config.correlation_rank else 0.0
    directions = 8.0 * 3 * n * d
    return (activations + codes + chunk + directions,
            f"activations {activations / 2**30:.1f} GiB, codes {codes / 2**30:.1f} GiB, "
            f"per-chunk bounds {chunk / 2**30:.1f} GiB, directions {directions / 2**30:.1f} GiB",
            "n_samples" if activations + codes >= chunk + directions else "n_features or d_model")


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


def _sample_chunk(plan: _Plan, chunk: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Samples ``chunk * CHUNK_SIZE ...`` of the stream: (activations, codes).

    The chunk is cut into ``_PARTS`` fixed parts, part ``j`` drawn from the stream
    ``[seed, 202, chunk, j + 1]``; parts run on a thread pool (NumPy releases the GIL while it
    draws) with the BLAS on one thread each, and the result does not depend on how many threads
    there are.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        parts = list(_pool().map(functools.partial(_sample_part, plan, chunk), range(_PARTS)))
    codes = sp.vstack([p[0] for p in parts], format="csr")
    acts = np.concatenate([p[1] for p in parts])
    return acts, codes


_PARTS = 4
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(_PARTS, os.cpu_count() or 1))
    return _POOL


def _sample_part(plan: _Plan, chunk: int, part: int) -> tuple[sp.csr_matrix, np.ndarray]:
    config = plan.config
    rng = np.random.default_rng([config.seed, _STREAM_SAMPLES, chunk, part + 1])
    n, f = CHUNK_SIZE // _PARTS, config.n_features
    key = np.sort(np.concatenate([rows * f + feats for rows, feats in _fire(plan, rng, n)]))
    rows, feats = key // f, key % f
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    values = _magnitudes(config, rng, feats.size)
    codes = sp.csr_matrix((values, feats.astype(np.int32), indptr), shape=(n, f))
    acts = np.asarray(codes @ plan.decoder, dtype=np.float32)
    if config.noise_std > 0:
        acts += config.noise_std * rng.standard_normal(acts.shape, dtype=np.float32)
    return codes, acts


def _fire(plan: _Plan, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Which features fire on ``n`` samples: (rows, features) int64 arrays per level, each pair once.

    Work is proportional to the features that fire (plus the copula's low-rank product): the top
    features are drawn as a whole, then each level's children only under the parents that fired.
    Given the copula's factor ``u``, features fire independently with probability ``Phi(c)``.
    """
    u = None
    if plan.loadings is not None:
        u = rng.standard_normal((n, plan.loadings.shape[1]), dtype=np.float32)
        rows, feats = _fire_top_copula(plan, rng, u)
    else:
        rows, feats = _fire_top_independent(plan, rng, n)
    key = np.sort(rows * plan.config.n_features + feats)
    key = key[np.concatenate([key[:1] == key[:1], key[1:] != key[:-1]])]  # a feature hit twice fires once
    rows, feats = key // plan.config.n_features, key % plan.config.n_features
    out = [(rows, feats)]
    parent_first = 0
    for first, n_parents, b in plan.levels:
        fired = (feats >= parent_first) & (feats < parent_first + n_parents)
        rows, parent = rows[fired], feats[fired] - parent_first
        children = first + parent[:, None] * b + np.arange(b)  # (fired parents, b)
        if u is not None:
            c = plan.offsets[children] - np.einsum("ir,ijr->ij", u[rows], plan.loadings[children])
            p = ndtr(c.astype(np.float64))
        else:
            p = plan.base_probabilities[children]
        fire = rng.random(children.shape) < p
        if plan.config.mutually_exclusive and b > 1:
            # Where two or more siblings fire, keep one of them uniformly.
            clash = np.nonzero(fire.sum(axis=1) >= 2)[0]
            if clash.size:
                scores = np.where(fire[clash], rng.random((clash.size, b)), -1.0)
                fire[clash] = np.arange(b) == scores.argmax(axis=1)[:, None]
        i, j = np.nonzero(fire)
        rows, feats = rows[i], children[i, j]
        out.append((rows, feats))
        parent_first = first
    return out


def _fire_top_independent(plan: _Plan, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent firing of the top features as a Poisson process over their stacked rates.

    Feature ``i`` owns an interval of length ``-log(1 - p_i)`` on a line of total length
    ``L``; each sample draws ``Poisson(L)`` uniform points on it and feature ``i`` fires when at least
    one lands in its interval, which happens with probability ``1 - exp(-rate) = p_i``,
    independently across features. The intervals are a little longer than the rates, so that
    rounding never shortens one, and a point is kept with probability ``rate / interval``. The cost
    is the number of points, about the number that fire.
    """
    rows = [np.repeat(np.arange(n), plan.always.size)]
    feats = [np.tile(plan.always, n)]
    if plan.rated.size:
        total = plan.cumulative_rates[-1]
        counts = rng.poisson(total, n)
        points = rng.random(int(counts.sum())) * total
        at = np.minimum(np.searchsorted(plan.cumulative_rates, points, side="right"), plan.rated.size - 1)
        interval = plan.cumulative_rates[at] - np.where(at > 0, plan.cumulative_rates[at - 1], 0.0)
        rate = -np.log1p(-plan.base_probabilities[plan.rated[at]])
        keep = rng.random(at.size) * interval < rate
        rows.append(np.repeat(np.arange(n, dtype=np.int64), counts)[keep])
        feats.append(plan.rated[at[keep]])
    return np.concatenate(rows), np.concatenate(feats)


_BLOCK = 16  # features per block of the copula's thinned Poisson draws
_EXACT_ABOVE = 8.0 * _BLOCK  # a block whose bound sums above this is drawn feature by feature instead
_SLAB = 1 << 22  # samples x top features held at once
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


def _fire_top_copula(plan: _Plan, rng: np.random.Generator, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top features under the copula, given the factor ``u``: fire with probability ``Phi(c)``.

    Thinned Poisson processes. ``g(c) = -log(1 - Phi(c))`` is bounded by ``g_hat``, the exponential of
    its tangent in log space, which is linear in ``u`` and so one matrix product for all features.
    Each sample draws ``Poisson(sum of g_hat)`` points, spread over blocks of ``_BLOCK`` features by
    their sums; a point picks a feature of its block in proportion to ``g_hat`` and is kept with
    probability ``g(c) / g_hat``. A feature fires when a kept point lands on it: probability
    ``1 - exp(-g(c)) = Phi(c)``, independently. The work per feature is the product and one
    exponential; the draws are about as many as the features that fire. A block whose bound is
    large is drawn with one Bernoulli draw per feature instead.
    """
    top = plan.top
    n, f = u.shape[0], top.size
    n_blocks = -(-f // _BLOCK)
    slab = max(1, _SLAB // (n_blocks * _BLOCK))
    rows, feats = [], []
    for start in range(0, n, slab):
        us = u[start : start + slab]
        m = us.shape[0]
        rate = np.empty((m, n_blocks * _BLOCK), np.float32)
        rate[:, f:] = 0.0
        np.matmul(np.concatenate([us, np.ones((m, 1), np.float32)], axis=1), plan.bound_loadings, out=rate[:, :f])
        with np.errstate(over="ignore"):
            np.exp(rate[:, :f], out=rate[:, :f])
        rate = rate.reshape(m, n_blocks, _BLOCK)
        totals = (rate.reshape(-1, _BLOCK) @ np.ones(_BLOCK, np.float32)).reshape(m, n_blocks)  # a BLAS sum
        exact = ~(totals <= _EXACT_ABOVE)
        totals = totals.astype(np.float64)
        totals[exact] = 0.0
        # One Poisson count per sample, its points spread over the sample's blocks by their totals.
        # Each total is raised past the float32 sum's rounding and the float64 running sum's, so a
        # block's interval on the line always covers its exact sum; the excess is thinned below.
        totals += (totals * 4e-6 + 8 * np.finfo(np.float64).eps * totals.sum()) * (totals > 0)
        cumulative = np.cumsum(totals.ravel())
        row_end = cumulative[n_blocks - 1 :: n_blocks]
        row_start = np.concatenate([[0.0], row_end[:-1]])
        counts = rng.poisson(row_end - row_start)
        r = np.repeat(np.arange(m), counts)
        position = row_start[r] + rng.random(r.size) * (row_end - row_start)[r]
        position = np.minimum(position, np.nextafter(row_end, -np.inf)[r])  # never past the row
        at = np.searchsorted(cumulative, position, side="right")
        interval = cumulative[at] - np.where(at > 0, cumulative[at - 1], 0.0)
        blk = at - r * n_blocks
        cumulative = np.cumsum(rate[r, blk], axis=1, dtype=np.float64)
        target = rng.random(r.size) * cumulative[:, -1]
        j = np.minimum((cumulative <= target[:, None]).sum(axis=1), _BLOCK - 1)
        points = np.arange(r.size)
        bound = cumulative[points, j] - np.where(j > 0, cumulative[points, j - 1], 0.0)
        feat = top[blk * _BLOCK + j]
        c = plan.offsets[feat] - np.einsum("ir,ir->i", us[r], plan.loadings[feat])
        # kept at rate interval * (sum / interval) * (g_hat / sum) * (g / g_hat) = g
        keep = rng.random(r.size) * bound * interval < -log_ndtr(-c.astype(np.float64)) * cumulative[:, -1]
        rows.append(r[keep] + start)
        feats.append(feat[keep])
        r, blk = np.nonzero(exact)
        if r.size:
            cols = blk[:, None] * _BLOCK + np.arange(_BLOCK)
            valid = cols < f
            cols = top[np.minimum(cols, f - 1)]
            c = plan.offsets[cols] - np.einsum("ir,ijr->ij", us[r], plan.loadings[cols])
            i, j = np.nonzero((rng.random(cols.shape) < ndtr(c.astype(np.float64))) & valid)
            rows.append(r[i] + start)
            feats.append(cols[i, j])
    return np.concatenate(rows).astype(np.int64), np.concatenate(feats).astype(np.int64)


def _magnitudes(config: SparseFeaturesConfig, rng: np.random.Generator, size: int) -> np.ndarray:
    mean = config.magnitude_mean
    if config.magnitude == "constant":
        return np.full(size, mean, dtype=np.float32)
    if config.magnitude == "uniform":
        return (2 * mean * rng.random(size, dtype=np.float32)).astype(np.float32)
    if config.magnitude == "exponential":
        return rng.exponential(mean, size).astype(np.float32)
    return np.abs(rng.normal(mean, config.magnitude_std, size)).astype(np.float32)


FAMILY = Family(kind=SparseFeaturesConfig.kind, config=SparseFeaturesConfig, toy=FeatureToy, build=build, generator=sparse_features,
                to_arrays=feature_arrays, from_arrays=feature_toy, check=check_features)
