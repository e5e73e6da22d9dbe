"""Sparse features in superposition: activations = codes @ (norms * directions) + noise.

The generator plants ``n_features`` directions in ``d_model`` dimensions and draws sparse,
non-negative codes for them, with optional Zipfian firing, low-rank correlated firing (a Gaussian
copula), hierarchies of mutually exclusive children (the setting of feature absorption) and
Gaussian noise. Every sample is a pure function of the config and its index: samples are made in
chunks of ``CHUNK_SIZE``, chunk ``c`` from the NumPy streams ``[seed, 202, c, part]``, so a toy's stored
activations and its unbounded stream agree sample for sample.

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
from scipy.special import ndtri

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
    """Everything the per-chunk sampler needs, fixed by the config."""

    config: SparseFeaturesConfig
    base_probabilities: np.ndarray  # (n_features,) before hierarchy gating
    thresholds: np.ndarray | None  # copula thresholds, (n_features,)
    factors: np.ndarray | None  # (n_features, rank)
    residual_std: np.ndarray | None  # (n_features,)
    levels: tuple[tuple[int, int, int], ...]  # (first child index, n parents, branching) per level
    decoder: np.ndarray  # (n_features, d_model) = norms * directions


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
    factors = residual = thresholds = None
    if config.correlation_rank > 0 and config.correlation_scale > 0:
        factors = rng.normal(0.0, config.correlation_scale, size=(n, config.correlation_rank))
        row_var = (factors**2).sum(axis=1)
        too_big = row_var > 0.95
        factors[too_big] *= np.sqrt(0.95 / row_var[too_big])[:, None]
        residual = np.sqrt(1.0 - (factors**2).sum(axis=1)).astype(np.float32)
        factors = factors.astype(np.float32)
        thresholds = ndtri(base).astype(np.float32)
    parents = _parents(config, levels)
    plan = _Plan(config, base, thresholds, factors, residual, levels, (directions * norms[:, None]).astype(np.float32))
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
    each chunk's draws (a few float64 per feature), the directions and their orthogonalisation."""
    n, d, s = config.n_features, config.d_model, config.n_samples
    active = config.mean_active if config.mean_active is not None else config.p_max * n
    activations = 4.0 * s * d
    codes = 12.0 * s * min(active, n)
    chunk = 8.0 * 3 * min(CHUNK_SIZE, s) * n
    directions = 8.0 * 3 * n * d
    return (activations + codes + chunk + directions,
            f"activations {activations / 2**30:.1f} GiB, codes {codes / 2**30:.1f} GiB, "
            f"per-chunk draws {chunk / 2**30:.1f} GiB, directions {directions / 2**30:.1f} GiB",
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
    draws), and the result does not depend on how many threads there are.
    """
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
    if plan.factors is not None:
        z = rng.standard_normal((n, f), dtype=np.float32)
        z *= plan.residual_std
        z += rng.standard_normal((n, plan.factors.shape[1]), dtype=np.float32) @ plan.factors.T
        fire = z < plan.thresholds
        del z
    else:
        fire = rng.random((n, f)) < plan.base_probabilities  # float64: exact down to p ~ 1e-16
    parent_first = 0
    for first, n_parents, b in plan.levels:
        block = fire[:, first : first + n_parents * b].reshape(n, n_parents, b)
        block &= fire[:, parent_first : parent_first + n_parents, None]
        if config.mutually_exclusive and b > 1:
            # Only groups where two or more siblings fire need a draw: keep one of them uniformly.
            rows, groups = np.nonzero(block.sum(axis=2) >= 2)
            if rows.size:
                clash = block[rows, groups]
                scores = np.where(clash, rng.random(clash.shape, dtype=np.float32), -1.0)
                block[rows, groups] = np.arange(b)[None, :] == scores.argmax(axis=1)[:, None]
        fire[:, first : first + n_parents * b] = block.reshape(n, n_parents * b)
        parent_first = first
    counts = fire.sum(axis=1)
    indices = np.nonzero(fire)[1].astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = _magnitudes(config, rng, indices.size)
    codes = sp.csr_matrix((values, indices, indptr), shape=(n, f))
    acts = np.asarray(codes @ plan.decoder, dtype=np.float32)
    if config.noise_std > 0:
        acts += config.noise_std * rng.standard_normal(acts.shape, dtype=np.float32)
    return codes, acts


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
