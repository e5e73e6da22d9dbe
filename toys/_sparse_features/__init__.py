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

The stages are modules: ``_config`` (the config and the stream's constants), ``_plan`` (what a
config fixes: directions, probabilities, the copula and its bound), ``_sampling`` (chunks of
samples drawn from a plan) and ``_build`` (the generator and ``build``).

References
----------
Sharkey, Braun & Millidge (2022), "Taking features out of superposition with sparse autoencoders".
Chanin et al. (2024), "A is for Absorption: studying feature splitting and absorption in SAEs".
Chanin & Garriga-Alonso (2026), "SynthSAEBench: Evaluating sparse autoencoders on scalable
realistic synthetic data".
"""

from planted.groundtruth import FeatureToy
from planted.toys._family import Family
from planted.toys._feature_storage import check_features, feature_arrays, feature_toy
from planted.toys._sparse_features._build import build, sparse_features
from planted.toys._sparse_features._config import CHUNK_SIZE, FIRINGS, GEOMETRIES, MAGNITUDES, SparseFeaturesConfig
from planted.toys._sparse_features._plan import _log_rate

__all__ = ["CHUNK_SIZE", "FAMILY", "FIRINGS", "GEOMETRIES", "MAGNITUDES", "SparseFeaturesConfig", "build",
           "sparse_features", "_log_rate"]

FAMILY = Family(kind=SparseFeaturesConfig.kind, config=SparseFeaturesConfig, toy=FeatureToy, build=build, generator=sparse_features,
                to_arrays=feature_arrays, from_arrays=feature_toy, check=check_features)
