"""Reference interpretability methods: the baselines every benchmark runs.

A method receives an artifact (never a truth object) and returns a prediction record from
``groundtruth``. Features methods take activations (n_samples, d_model) and return a
``groundtruth.Dictionary``. Circuit methods (``methods.circuits``) take a circuit artifact and a
task and return ``groundtruth.ComponentScores``; ``methods.graphs`` holds the graph measures
(centralities, communities, functional connectivity) shared with the connectome toys.
Connectivity methods (``methods.connectivity``) take a connectome ``Recording`` and return a
``(n_observed, n_observed)`` score matrix ``scores[pre, post]``.
"""

from planted.methods.connectivity import (
    correlation,
    granger,
    lagged_correlation,
    partial_correlation,
)
from planted.methods.decomposition import ica, nmf, pca
from planted.methods.sae import sae

__all__ = [
    "correlation",
    "granger",
    "ica",
    "lagged_correlation",
    "nmf",
    "partial_correlation",
    "pca",
    "sae",
]
