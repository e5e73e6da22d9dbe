"""Views of one sparse code stream: representations of the same inputs whose shared features are
planted, for comparing representations (CKA, CCA, RSA, Procrustes ...).

A feature view carries a window of a pool of planted features, ``[offset, offset + n_features)``,
all drawn from one code stream (the pool's ``sparse_features`` codes with the view's ``seed``),
written in a frame of its own (``view`` picks it): orthonormal directions (a random rotation),
the coordinate axes in a random order (a permutation), or random unit directions (overcomplete,
in superposition, when ``n_features > d_model``); then optionally each coordinate rescaled, noise
added and the top principal components deleted. Two views of one ``seed`` see the same samples
with the same codes, so which features they share (their labels, ``f<pool index>``) is exact:
views of windows that overlap in ``k`` of ``n`` features share the fraction ``k / n``
(``groundtruth.shared_fraction``), whatever their frames.

References
----------
Kornblith, Norouzi, Lee & Hinton (2019), "Similarity of neural network representations
revisited". Ding, Denain & Steinhardt (2021), "Grounding representation similarity with
statistical testing". Klabunde et al. (2024), "ReSi: a comprehensive benchmark for representational
similarity measures".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.groundtruth import Config, FeatureToy, FeatureTruth, Problems
from planted.toys._checks import as_float, require_memory
from planted.toys._family import Family
from planted.toys._feature_storage import check_features, feature_arrays, feature_toy
from planted.toys._sparse_features import MAGNITUDES, SparseFeaturesConfig
from planted.toys._sparse_features import build as _build_stream

FRAMES = ("orthonormal", "axis", "random")
_STREAM_FRAME, _STREAM_NOISE = 303, 304


@dataclasses.dataclass(frozen=True)
class FeatureViewConfig(Config):
    """Config of ``toys.feature_view``; see that function for each field's meaning."""

    kind = "feature_view"

    n_pool: int
    n_features: int
    d_model: int
    offset: int = 0
    n_samples: int = 4000
    seed: int = 0
    view: int = 0
    frame: str = "orthonormal"
    mean_active: float = 5.0
    magnitude: str = "uniform"
    rescale: float = 0.0
    noise_std: float = 0.0
    deleted_pcs: int = 0

    def __post_init__(self) -> None:
        for name in ("mean_active", "rescale", "noise_std"):
            object.__setattr__(self, name, as_float(getattr(self, name)))
        super().__post_init__()

    def _check(self, p: Problems) -> None:
        p.integer("n_pool", self.n_pool, low=1, high=1_000_000)
        p.integer("n_features", self.n_features, low=1, high=self.n_pool if isinstance(self.n_pool, int) else None)
        p.integer("d_model", self.d_model, low=1, high=100_000)
        p.integer("n_samples", self.n_samples, low=2, high=10_000_000)
        p.integer("seed", self.seed, low=0, high=2**63 - 1)
        p.integer("view", self.view, low=0, high=2**31 - 1)
        p.choice("frame", self.frame, FRAMES)
        p.choice("magnitude", self.magnitude, MAGNITUDES)
        p.number("rescale", self.rescale, low=0, high=10)
        p.number("noise_std", self.noise_std, low=0)
        if not p.messages:
            p.integer("offset", self.offset, low=0, high=self.n_pool - self.n_features)
            p.number("mean_active", self.mean_active, low=0, high=self.n_pool, low_open=True)
            p.integer("deleted_pcs", self.deleted_pcs, low=0, high=self.d_model - 1)
            if self.frame in ("orthonormal", "axis") and self.n_features > self.d_model:
                p.add(f"frame {self.frame!r} needs n_features ({self.n_features}) <= d_model ({self.d_model}); "
                      "use frame='random' for features in superposition")

    def stream(self) -> SparseFeaturesConfig:
        """The pool's code stream: ``sparse_features`` with uniform firing (each pool feature fires
        with probability ``mean_active / n_pool``); the same for every view of one ``seed``."""
        return SparseFeaturesConfig(n_features=self.n_pool, d_model=1, n_samples=self.n_samples, seed=self.seed,
                                    firing="uniform", mean_active=self.mean_active, magnitude=self.magnitude)


def feature_view(
    n_pool: int,
    n_features: int,
    d_model: int,
    *,
    offset: int = 0,
    n_samples: int = 4000,
    seed: int,
    view: int = 0,
    frame: str = "orthonormal",
    mean_active: float = 5.0,
    magnitude: str = "uniform",
    rescale: float = 0.0,
    noise_std: float = 0.0,
    deleted_pcs: int = 0,
) -> FeatureToy:
    """A view of a pool of planted sparse features: its activations and exactly which features it carries.

    Parameters
    ----------
    n_pool : int
        Planted features in the code stream every view of ``seed`` shares.
    n_features, offset : int
        The view carries pool features ``offset`` to ``offset + n_features - 1``.
    d_model : int
        The view's dimension; ``n_features / d_model`` is its superposition.
    n_samples : int
        Samples (the same inputs in every view of ``seed``).
    seed : int
        The code stream (and, with ``view``, the frame).
    view : int
        Which frame: views that differ only here carry the same features in independent frames.
    frame : {"orthonormal", "axis", "random"}
        Orthonormal directions (a random rotation; ``n_features <= d_model``), the coordinate
        axes in a random order (a permutation), or random unit directions (superposition when
        ``n_features > d_model``).
    mean_active : float
        Expected active pool features per sample (uniform firing).
    magnitude : {"constant", "uniform", "exponential", "folded_normal"}
        An active feature's coefficient, mean 1 (as ``sparse_features``).
    rescale : float
        Each coordinate multiplied by ``exp(rescale * N(0, 1))`` (0: none): an invertible
        linear change no measure of shared features should care about, which CKA and
        Procrustes do.
    noise_std : float
        Isotropic Gaussian noise added to every entry.
    deleted_pcs : int
        The top principal components of the view's activations projected out (Ding et al. 2021's
        sensitivity test); the truth's directions are the features' directions after the
        projection (``norms`` say how much of each is left).

    Returns
    -------
    FeatureToy
        ``activations`` (n_samples, d_model) float32; ``truth.directions`` (n_features, d_model)
        unit rows, ``truth.norms``, ``truth.codes`` (n_samples, n_features), ``truth.labels``
        ``f<pool index>``.
    """
    return build(FeatureViewConfig(n_pool=n_pool, n_features=n_features, d_model=d_model, offset=offset,
                                   n_samples=n_samples, seed=seed, view=view, frame=frame, mean_active=mean_active,
                                   magnitude=magnitude, rescale=rescale, noise_std=noise_std, deleted_pcs=deleted_pcs))


def build(config: FeatureViewConfig) -> FeatureToy:
    """Generate the view a ``FeatureViewConfig`` describes."""
    if not isinstance(config, FeatureViewConfig):
        raise ValueError(f"config must be a FeatureViewConfig, got {type(config).__name__}")
    s, n, d = config.n_samples, config.n_features, config.d_model
    dense = 4.0 * s * (2 * d + n)
    require_memory(config.kind, dense, f"activations and codes {dense / 2**30:.1f} GiB", "n_samples or d_model")
    stream = _build_stream(config.stream()).truth
    codes = stream.codes[:, config.offset:config.offset + n].tocsr()
    rng = np.random.default_rng([config.seed, _STREAM_FRAME, config.view])
    weights = _frame(config, rng)
    if config.rescale > 0:
        weights = weights * np.exp(config.rescale * rng.standard_normal(d))[None, :]
    x = np.asarray(codes @ weights, dtype=np.float64)
    if config.noise_std > 0:
        noise = np.random.default_rng([config.seed, _STREAM_NOISE, config.view])
        x += config.noise_std * noise.standard_normal(x.shape)
    if config.deleted_pcs:
        centred = x - x.mean(axis=0)
        top = np.linalg.svd(centred, full_matrices=False)[2][: config.deleted_pcs]
        x -= centred @ top.T @ top
        weights = weights - weights @ top.T @ top
    norms = np.linalg.norm(weights, axis=1)
    directions = weights / np.maximum(norms, 1e-30)[:, None]
    truth = FeatureTruth(
        directions=directions.astype(np.float32),
        norms=norms.astype(np.float32),
        represented=norms > 1e-6,
        codes=codes,
        firing_probabilities=stream.firing_probabilities[config.offset:config.offset + n],
        labels=tuple(f"f{config.offset + i}" for i in range(n)),
    )
    return FeatureToy(config=config, truth=truth, activations=x.astype(np.float32), chunk_size=4096)


def _frame(config: FeatureViewConfig, rng: np.random.Generator) -> np.ndarray:
    """(n_features, d_model) rows: the features' directions in the view's frame."""
    n, d = config.n_features, config.d_model
    if config.frame == "axis":
        return np.eye(d)[rng.permutation(d)[:n]]
    g = rng.standard_normal((d, d) if config.frame == "orthonormal" else (n, d))
    if config.frame == "orthonormal":
        q, r = np.linalg.qr(g)
        return (q * np.sign(np.diag(r)))[:n]  # Haar-distributed rotation (Mezzadri 2007)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


FAMILY = Family(kind=FeatureViewConfig.kind, config=FeatureViewConfig, toy=FeatureToy, build=build,
                generator=feature_view, to_arrays=feature_arrays, from_arrays=feature_toy, check=check_features)
