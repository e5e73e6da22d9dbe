"""Reference interpretability methods: the baselines every benchmark runs.

A method receives an artifact (never a truth object) and returns a prediction record from
``groundtruth``. Features methods take activations (n_samples, d_model) and return a
``groundtruth.Dictionary``.
"""

from methods.decomposition import ica, nmf, pca
from methods.sae import sae

__all__ = ["ica", "nmf", "pca", "sae"]
