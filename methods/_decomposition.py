"""Linear decompositions from scikit-learn as feature-recovery baselines: PCA, FastICA, NMF."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import NMF, PCA, FastICA

from planted.groundtruth import Dictionary, Encoder, Problems
from planted.groundtruth import as_matrix
from planted.groundtruth._threads import one_blas_thread


def _check_components(where: str, n_components, x: np.ndarray, *, at_most_d: bool) -> int:
    """``n_components`` as an int in [1, min(n_samples, d_model)] (or [1, n_samples]), else a ValueError."""
    n, d = x.shape
    p = Problems()
    p.integer("n_components", n_components, low=1, high=min(n, d) if at_most_d else n)
    p.raise_if_any(where)
    return int(n_components)


def _one_thread():
    """BLAS on one thread: a matrix product's sums are split by thread count, so FastICA's
    iterations (and with them its result) moved with the number of threads, and so did the codes
    (OpenBLAS 0.3.31's float32 products differ in their last bits between one thread and two); on
    one thread the result is the same bit for bit whatever the machine's thread settings."""
    return one_blas_thread()


def pca(activations, n_components: int) -> Dictionary:
    """Principal components as a dictionary.

    Parameters
    ----------
    activations : (n_samples, d_model)
    n_components : int in [1, min(n_samples, d_model)]

    Returns
    -------
    Dictionary
        ``directions`` are the components (unit rows, by explained variance); the encoder projects
        centred activations onto them; ``decoder_bias`` is the mean; ``codes`` the projections.
    """
    x = as_matrix("activations", activations)
    n_components = _check_components("pca", n_components, x, at_most_d=True)
    with _one_thread():
        model = PCA(n_components=n_components, svd_solver="full").fit(x)
    components = model.components_.astype(np.float32)
    mean = model.mean_.astype(np.float32)
    encoder = Encoder(weights=components.T, bias=np.zeros(n_components), pre_bias=mean, activation="identity")
    codes = encoder(x)  # its products run on one BLAS thread too, its blocks side by side
    return Dictionary(directions=components, codes=codes, encoder=encoder, decoder_bias=mean, method="pca")


def ica(activations, n_components: int, *, seed: int, max_iter: int = 400) -> Dictionary:
    """FastICA (Hyvarinen & Oja 2000) as a dictionary.

    Parameters
    ----------
    activations : (n_samples, d_model)
    n_components : int in [1, min(n_samples, d_model)]
        ICA cannot find more sources than dimensions: in superposition it is capped at d_model.
    seed : int
    max_iter : int

    Returns
    -------
    Dictionary
        ``directions`` are the mixing matrix's columns (one per source), the encoder the unmixing
        matrix, ``codes`` the estimated sources, ``decoder_bias`` the mean.
    """
    x = as_matrix("activations", activations)
    n_components = _check_components("ica", n_components, x, at_most_d=True)
    model = FastICA(
        n_components=n_components, whiten="unit-variance", random_state=seed, max_iter=max_iter, tol=1e-4
    )
    with warnings.catch_warnings(), _one_thread():
        warnings.filterwarnings("ignore", message=".*did not converge.*")
        model.fit(x)
    mean = model.mean_.astype(np.float32)
    encoder = Encoder(
        weights=model.components_.T.astype(np.float32), bias=np.zeros(n_components), pre_bias=mean, activation="identity"
    )
    directions = model.mixing_.T.astype(np.float32)
    codes = encoder(x)
    return Dictionary(directions=directions, codes=codes, encoder=encoder, decoder_bias=mean, method="ica")


def nmf(activations, n_components: int, *, seed: int, max_iter: int = 300) -> Dictionary:
    """Non-negative matrix factorisation (Lee & Seung 1999) as a dictionary.

    Activations can be negative while NMF needs non-negative data, so the data are split into
    positive and negative parts, ``x = x+ - x-``, and ``[x+, x-] ~ W [H+, H-]`` is factorised with
    non-negative codes ``W``; a direction is ``H+ - H-`` (so ``x ~ W (H+ - H-)``).

    Parameters
    ----------
    activations : (n_samples, d_model)
    n_components : int in [1, n_samples]
    seed : int
    max_iter : int

    Returns
    -------
    Dictionary
        ``directions`` (n_components, d_model), non-negative ``codes``; no encoder (NMF codes of
        new data need a fit of their own).
    """
    x = as_matrix("activations", activations)
    n_components = _check_components("nmf", n_components, x, at_most_d=False)
    split = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=1)
    model = NMF(n_components=n_components, init="nndsvda", random_state=seed, max_iter=max_iter)
    with warnings.catch_warnings(), _one_thread():
        warnings.filterwarnings("ignore", message=".*Maximum number of iterations.*")
        codes = model.fit_transform(split).astype(np.float32)
    d = x.shape[1]
    h = model.components_
    directions = (h[:, :d] - h[:, d:]).astype(np.float32)
    return Dictionary(directions=directions, codes=codes, method="nmf")
