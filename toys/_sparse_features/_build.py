"""The generator and ``build``: plan, sample the stored chunks, assemble the truth."""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from planted.groundtruth import FeatureToy, FeatureTruth
from planted.toys._checks import require_memory
from planted.toys._sparse_features._config import CHUNK_SIZE, SparseFeaturesConfig
from planted.toys._sparse_features._plan import _labels, _marginals, _parents, make_plan
from planted.toys._sparse_features._sampling import _PARTS, _SLAB, _sample_chunk


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
    plan, directions = make_plan(config)
    norms = np.ones(config.n_features, dtype=np.float32)
    base, levels = plan.base_probabilities, plan.levels
    parents = _parents(config, levels)
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
