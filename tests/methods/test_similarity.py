"""Similarity measures against independent implementations, their invariances, and the CKA
inversion under superposition that the comparison suite is built to show."""

from __future__ import annotations

import numpy as np
import pytest

from planted import toys
from planted.methods import similarity as S


def _pair(seed=0, n=300, p=10, q=7, noise=0.5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p)) @ rng.standard_normal((p, p))
    y = x @ rng.standard_normal((p, q)) + noise * rng.standard_normal((n, q))
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_cka_is_the_rv_coefficient_of_hoggorm(seed):
    hoggorm = pytest.importorskip("hoggorm")
    x, y = _pair(seed)
    rv = hoggorm.RVcoeff([x - x.mean(0), y - y.mean(0)])[0, 1]
    assert S.linear_cka(x, y) == pytest.approx(rv, abs=1e-9)


@pytest.mark.parametrize("sigma", [0.4, 0.8])
def test_cka_in_kernel_form_with_sklearn_kernels(sigma):
    """CKA as HSIC of centred Gram matrices (sklearn's kernels and KernelCenterer), against the
    feature-space formula (linear) and the kernel code (RBF)."""
    from sklearn.metrics.pairwise import linear_kernel, rbf_kernel
    from sklearn.preprocessing import KernelCenterer

    x, y = _pair(3, n=200)

    def cka(k, l):
        k, l = KernelCenterer().fit_transform(k), KernelCenterer().fit_transform(l)
        return (k * l).sum() / np.linalg.norm(k) / np.linalg.norm(l)

    def gamma(a):
        d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return 1 / (2 * sigma**2 * np.median(d))

    assert S.linear_cka(x, y) == pytest.approx(cka(linear_kernel(x), linear_kernel(y)), abs=1e-9)
    reference = cka(rbf_kernel(x, gamma=gamma(x)), rbf_kernel(y, gamma=gamma(y)))
    assert S.rbf_cka(x, y, sigma=sigma) == pytest.approx(reference, abs=1e-9)


def test_rsa_against_rsatoolbox():
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    for seed in (0, 1):
        x, y = _pair(seed, n=120)
        rdms = [calc_rdm(Dataset(a), method="euclidean") for a in (x, y)]
        reference = float(compare(rdms[0], rdms[1], method="spearman")[0, 0])
        assert S.rsa(x, y) == pytest.approx(reference, abs=1e-9)


def test_procrustes_against_scipy():
    """scipy's disparity (after centring, unit norm, the best rotation and scale) is 1 - s^2 for our
    nuclear-norm similarity s; the narrower side padded with zero columns."""
    from scipy.spatial import procrustes

    for seed in (0, 1, 2):
        x, y = _pair(seed)
        disparity = procrustes(x, np.pad(y, ((0, 0), (0, x.shape[1] - y.shape[1]))))[2]
        assert S.procrustes(x, y) == pytest.approx(np.sqrt(1 - disparity), abs=1e-9)


def test_canonical_correlations_against_sklearn_cca():
    from sklearn.cross_decomposition import CCA

    x, y = _pair(4, noise=2.0)
    u, v = CCA(n_components=3, max_iter=5000, tol=1e-12).fit(x, y).transform(x, y)
    reference = [np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(3)]
    np.testing.assert_allclose(S.canonical_correlations(x, y)[:3], reference, atol=1e-6)


@pytest.mark.parametrize("name", sorted(S.MEASURES))
def test_every_measure_is_one_on_itself_and_blind_to_a_rotation(name):
    rng = np.random.default_rng(5)
    sources = rng.exponential(1.0, (600, 10)) * (rng.random((600, 10)) < 0.2)  # sparse: ICA can find them
    x = sources @ rng.standard_normal((10, 10))
    q = np.linalg.qr(np.random.default_rng(6).standard_normal((10, 10)))[0]
    fn = S.MEASURES[name]
    tolerance = 1e-4 if name == "features_first" else 1e-6  # FastICA converges to 1e-4
    assert fn(x, x) == pytest.approx(1.0, abs=tolerance)
    assert fn(x, 3.0 * x @ q + 1.0) == pytest.approx(1.0, abs=tolerance)  # rotated, scaled, shifted
    unrelated = np.random.default_rng(7).standard_normal(x.shape)
    assert fn(x, unrelated) < 0.5


def test_cca_family_is_blind_to_any_invertible_map_and_cka_is_not():
    x, _ = _pair(8)
    a = np.random.default_rng(9).standard_normal((10, 10)) @ np.diag(np.exp(np.linspace(-2, 2, 10)))
    for name in ("cca", "pwcca", "regression"):
        assert S.MEASURES[name](x, x @ a) == pytest.approx(1.0, abs=1e-6), name
    assert S.linear_cka(x, x @ a) < 0.95


def test_similarities_is_the_pairwise_matrix():
    x, y = _pair(10)
    z = np.random.default_rng(11).standard_normal(x.shape)
    sims = S.similarities([x, y, z], "pwcca")
    assert sims.values.shape == (3, 3) and np.allclose(np.diag(sims.values), 1)
    assert sims.values[0, 1] == pytest.approx(S.pwcca(x, y)) and sims.values[1, 0] == pytest.approx(S.pwcca(y, x))
    first = S.similarities([x, y, z], "features_first")  # each representation's dictionary fitted once
    assert first.values[0, 2] == pytest.approx(S.features_first(x, z)) and first.values[2, 1] == first.values[1, 2]
    with pytest.raises(ValueError, match="unknown similarity measure 'ckaa'; did you mean"):
        S.similarities([x, y], "ckaa")
    with pytest.raises(ValueError, match="same samples"):
        S.linear_cka(x, y[:-1])


def test_cka_inverts_under_superposition():
    """Identical features at superposition 2 and 4 score below two orthonormal views that share
    only half their features (Liu et al. 2026): 256 features, 5 active, 4,000 samples, the
    issue's measured figures (0.34, 0.21 for identical in random frames at d = 128, 64; 0.53 for
    half shared), within 0.03."""
    def view(d, *, offset=0, view, frame="random", pool=256):
        return toys.feature_view(pool, 256, d, offset=offset, n_samples=4000, seed=0, view=view, frame=frame,
                                 mean_active=5.0 * pool / 256).activations

    identical = {d: S.linear_cka(view(d, view=1), view(d, view=2)) for d in (128, 64)}
    half = S.linear_cka(view(256, view=3, frame="orthonormal", pool=512),
                        view(256, view=4, frame="orthonormal", offset=128, pool=512))
    assert identical[128] == pytest.approx(0.34, abs=0.03) and identical[64] == pytest.approx(0.21, abs=0.03)
    assert half == pytest.approx(0.53, abs=0.03)
    assert max(identical.values()) < half
    # CCA, blind to the frame, keeps identical features above half-shared ones at superposition 2
    assert S.cca(view(128, view=1), view(128, view=2)) > S.cca(view(256, view=3, frame="orthonormal", pool=512),
                                                             view(256, view=4, frame="orthonormal", offset=128, pool=512))
