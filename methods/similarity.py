"""Representational similarity measures: how alike two representations of the same inputs are.

Each measure takes two activation matrices of the same samples, ``x`` (n_samples, p) and ``y``
(n_samples, q), and returns a number, higher for more alike: 1 for a representation compared with
itself. ``MEASURES`` lists them by name; ``similarities`` computes one for every pair of a list
of representations (a ``groundtruth.Similarities``). None of them sees which features were planted.

References
----------
Kornblith, Norouzi, Lee & Hinton (2019), "Similarity of neural network representations
revisited" (linear and RBF CKA, linear regression). Hotelling (1936), "Relations between two sets
of variates" (CCA). Raghu, Gilmer, Yosinski & Sohl-Dickstein (2017), "SVCCA". Morcos, Raghu &
Bengio (2018), "Insights on representational similarity in neural networks with canonical
correlation" (PWCCA). Kriegeskorte, Mur & Bandettini (2008), "Representational similarity
analysis". Hyvarinen & Oja (2000), "Independent component analysis: algorithms and applications"
(the features-first dictionary). Williams, Kunz, Kornblith & Linderman (2021), "Generalized shape metrics on neural
representations" (orthogonal Procrustes). Ding, Denain & Steinhardt (2021), "Grounding
representation similarity with statistical testing".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from planted.groundtruth import Similarities, as_matrix, nearest


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=0)


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_matrix("x", x, dtype=np.float64), as_matrix("y", y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same samples (rows): got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < 3:
        raise ValueError(f"a similarity needs at least 3 samples, got {x.shape[0]}")
    return x, y


def _check_samples(max_samples) -> None:
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 3:
        raise ValueError(f"max_samples must be an integer >= 3, got {max_samples!r}")


def linear_cka(x, y) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019): ``||Y'X||_F^2 / (||X'X||_F
    ||Y'Y||_F)`` on centred columns; equal to the RV coefficient (Robert & Escoufier 1976). 0
    when either side is constant."""
    x, y = _pair(x, y)
    x, y = _centred(x), _centred(y)
    cross = np.linalg.norm(y.T @ x) ** 2
    scale = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / scale) if scale > 0 else 0.0


def _centred_gram(k: np.ndarray) -> np.ndarray:
    return k - k.mean(axis=0) - k.mean(axis=1)[:, None] + k.mean()


def _rbf_gram(x: np.ndarray, sigma: float) -> np.ndarray:
    sq = (x * x).sum(axis=1)
    distances = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    median = np.median(distances)  # over the whole matrix, diagonal included, as Kornblith et al.'s code
    width = sigma**2 * (median if median > 0 else 1.0)
    return np.exp(-distances / (2 * width))


def rbf_cka(x, y, *, sigma: float = 0.8, max_samples: int = 2000) -> float:
    """CKA with Gaussian kernels ``exp(-|a - b|^2 / (2 sigma^2 m))``, ``m`` the median squared
    distance between samples (Kornblith et al. 2019, who use sigma 0.2 to 0.8), on the first
    ``max_samples`` samples (the kernels are ``max_samples`` squared)."""
    x, y = _pair(x, y)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    _check_samples(max_samples)
    x, y = x[:max_samples], y[:max_samples]
    k, l = _centred_gram(_rbf_gram(x, sigma)), _centred_gram(_rbf_gram(y, sigma))
    scale = np.linalg.norm(k) * np.linalg.norm(l)
    return float((k * l).sum() / scale) if scale > 0 else 0.0


def _basis(x: np.ndarray, keep: float | None = None) -> np.ndarray:
    """An orthonormal basis (n, r) of the centred columns' span: the directions with singular
    value above ``max(n, p) * eps * s_max`` (``eps`` of float32, the precision activations come
    in, so rounding noise is not taken for dimensions), or, with ``keep``, the fewest top ones
    explaining that fraction of the variance (SVCCA's reduction)."""
    centred = _centred(x)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    rank = int((s > max(centred.shape) * np.finfo(np.float32).eps * s[0]).sum())
    if keep is not None:
        variance = np.cumsum(s[:rank] ** 2) / (s[:rank] ** 2).sum()
        rank = int(np.searchsorted(variance, keep - 1e-12) + 1)
    return u[:, :rank]


def canonical_correlations(x, y) -> np.ndarray:
    """The canonical correlations of ``x`` and ``y`` (Hotelling 1936), largest first: the
    singular values of ``Qx' Qy`` for orthonormal bases of their centred column spans."""
    x, y = _pair(x, y)
    return np.clip(np.linalg.svd(_basis(x).T @ _basis(y), compute_uv=False), 0.0, 1.0)


def cca(x, y) -> float:
    """Mean canonical correlation (Raghu et al. 2017's mean CCA similarity)."""
    rho = canonical_correlations(x, y)
    return float(rho.mean()) if rho.size else 0.0


def svcca(x, y, *, keep: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): each side reduced to the top singular directions explaining
    ``keep`` of its variance, then the mean canonical correlation."""
    x, y = _pair(x, y)
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep!r}")
    rho = np.linalg.svd(_basis(x, keep).T @ _basis(y, keep), compute_uv=False)
    return float(np.clip(rho, 0, 1).mean()) if rho.size else 0.0


def pwcca(x, y) -> float:
    """Projection-weighted CCA (Morcos et al. 2018): canonical correlations weighted by how much
    of ``x``'s units each canonical variate accounts for (``sum_j |<h_i, x_j>|``); weighted from
    ``x``'s side, so not symmetric."""
    x, y = _pair(x, y)
    qx, qy = _basis(x), _basis(y)
    if not qx.shape[1] or not qy.shape[1]:
        return 0.0
    u, rho, _ = np.linalg.svd(qx.T @ qy, full_matrices=False)
    variates = qx @ u  # (n, r) canonical variates of x, unit norm
    weights = np.abs(variates.T @ _centred(x)).sum(axis=1)[: rho.size]
    if weights.sum() <= 0:
        return 0.0
    return float((weights * np.clip(rho, 0, 1)).sum() / weights.sum())


def _rdm(x: np.ndarray) -> np.ndarray:
    """The upper triangle of the squared Euclidean distances between samples, per unit."""
    sq = (x * x).sum(axis=1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0) / x.shape[1]
    return d[np.triu_indices_from(d, 1)]


def rsa(x, y, *, max_samples: int = 500) -> float:
    """Representational similarity analysis (Kriegeskorte et al. 2008): the Spearman correlation of
    the two representational dissimilarity matrices (squared Euclidean distance between samples)
    over the first ``max_samples`` samples."""
    x, y = _pair(x, y)
    _check_samples(max_samples)
    a, b = _rdm(x[:max_samples]), _rdm(y[:max_samples])
    ra, rb = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2
    scale = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / scale) if scale > 0 else 0.0


def procrustes(x, y) -> float:
    """Orthogonal Procrustes similarity (Williams et al. 2021): with both sides centred, scaled to
    unit Frobenius norm and the narrower padded with zero columns, ``max_R <X, Y R> = ||X'Y||_*``
    over rotations ``R``; ``1 - d^2 / 2`` for the Procrustes distance ``d``."""
    x, y = _pair(x, y)
    x, y = _centred(x), _centred(y)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 0.0
    return float(np.linalg.svd((x / nx).T @ (y / ny), compute_uv=False).sum())


def regression(x, y) -> float:
    """Linear regression (stitching) fit: the fraction of ``y``'s centred variance a least-squares
    linear map from ``x`` explains (Kornblith et al. 2019's R^2; Bansal et al. 2021's stitching
    with a linear layer); not symmetric."""
    x, y = _pair(x, y)
    qx, y = _basis(x), _centred(y)
    total = (y * y).sum()
    if total == 0:
        return 0.0
    fitted = qx @ (qx.T @ y)
    return float((fitted * fitted).sum() / total)


DICTIONARIES = ("ica", "sae")


def _codes(x: np.ndarray, components: float = 1.0, seed: int = 0, dictionary: str = "ica", k: int = 8,
           n_steps: int = 800) -> np.ndarray:
    """(n_samples, n) standardised codes of a dictionary of ``x`` with ``components`` times its
    width features: ICA sources (at most its width: ICA finds no more sources than dimensions),
    or the latents of a TopK sparse autoencoder (``k`` active, ``n_steps`` steps; it may be
    overcomplete). A latent that never varies has codes 0."""
    from planted.methods._decomposition import ica
    from planted.methods._sae import sae

    if isinstance(components, bool) or not isinstance(components, (int, float)) or not components > 0 \
            or not np.isfinite(components):
        raise ValueError(f"components must be a positive number (features per dimension), got {components!r}")
    if dictionary not in DICTIONARIES:
        raise ValueError(f"dictionary must be one of {DICTIONARIES}, got {dictionary!r}")
    if dictionary == "ica":
        n = max(1, min(int(round(components * x.shape[1])), *x.shape))
        codes = np.asarray(ica(x.astype(np.float32), n, seed=seed).codes, np.float64)
    else:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer (active latents per sample), got {k!r}")
        n = max(1, int(round(components * x.shape[1])))
        fitted = sae(x.astype(np.float32), n, kind="topk", k=min(int(k), n), seed=seed, n_steps=n_steps,
                     batch_size=min(512, x.shape[0]), progress=False)
        codes = fitted.codes.toarray() if hasattr(fitted.codes, "toarray") else np.asarray(fitted.codes)
        codes = codes.astype(np.float64)
    codes = codes - codes.mean(axis=0)
    scale = codes.std(axis=0)
    return codes / np.where(scale > 0, scale, np.inf)


def _match_codes(a: np.ndarray, b: np.ndarray) -> float:
    """The mean |correlation| of the one-to-one matching of two sets of standardised codes that
    maximises it (Hungarian), over ``min(k_a, k_b)`` pairs."""
    from scipy.optimize import linear_sum_assignment

    corr = np.abs(a.T @ b) / a.shape[0]
    rows, cols = linear_sum_assignment(-corr)
    return float(corr[rows, cols].mean())


def features_first(x, y, *, components: float = 1.0, seed: int = 0, dictionary: str = "ica", k: int = 8,
                   n_steps: int = 800) -> float:
    """"Features first": a dictionary on each side, then their features matched across sides. Each
    side gets an ICA dictionary (FastICA, Hyvarinen & Oja 2000: ``methods.ica``, ``components``
    times its width sources) or, with ``dictionary="sae"``, a TopK sparse autoencoder
    (``components`` times its width latents, ``k`` active, ``n_steps`` steps: overcomplete where
    ICA cannot be); the features are matched one to one across sides by the absolute
    correlation of their codes on the shared samples (Hungarian; the two sides' decoder
    directions live in different frames, so codes are what can be compared), and the similarity
    is the mean matched correlation. 1 for the same sources in any frame."""
    x, y = _pair(x, y)
    params = dict(components=components, seed=seed, dictionary=dictionary, k=k, n_steps=n_steps)
    return _match_codes(_codes(x, **params), _codes(y, **params))


MEASURES: dict[str, Callable[..., float]] = {
    "linear_cka": linear_cka,
    "rbf_cka": rbf_cka,
    "cca": cca,
    "svcca": svcca,
    "pwcca": pwcca,
    "rsa": rsa,
    "procrustes": procrustes,
    "regression": regression,
    "features_first": features_first,
}
# Measures that first compute something of each representation alone: (prepare, compare), so
# ``similarities`` prepares each representation once, not once per pair.
_PREPARED = {features_first: (_codes, _match_codes)}


def similarities(artifacts: Sequence[np.ndarray], measure: str = "linear_cka", **params) -> Similarities:
    """``measure`` on every ordered pair of ``artifacts`` (activations of the same samples, any
    widths): a ``Similarities`` whose ``values[i, j]`` is ``measure(artifacts[i], artifacts[j])``."""
    if measure not in MEASURES:
        raise nearest(measure, MEASURES, "similarity measure")
    fn = MEASURES[measure]
    views = [as_matrix(f"artifacts[{i}]", a, dtype=np.float64) for i, a in enumerate(artifacts)]
    if len(views) < 2:
        raise ValueError(f"a comparison needs at least 2 representations, got {len(views)}")
    k = len(views)
    values = np.eye(k)
    if fn in _PREPARED:
        prepare, compare = _PREPARED[fn]
        for i, v in enumerate(views):
            _pair(v, views[0])
        prepared = [prepare(v, **params) for v in views]
        for i in range(k):
            for j in range(i + 1, k):
                values[i, j] = values[j, i] = compare(prepared[i], prepared[j])
        return Similarities(values, method=measure)
    for i in range(k):
        for j in range(k):
            if i != j and (j > i or fn in _ASYMMETRIC):
                values[i, j] = fn(views[i], views[j], **params)
            elif i != j:
                values[i, j] = values[j, i]
    return Similarities(values, method=measure)


_ASYMMETRIC = (pwcca, regression)

__all__ = [
    "MEASURES",
    "canonical_correlations",
    "cca",
    "features_first",
    "linear_cka",
    "procrustes",
    "pwcca",
    "rbf_cka",
    "regression",
    "rsa",
    "similarities",
    "svcca",
]
