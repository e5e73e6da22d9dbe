"""Statistical and structural tests of toys.sparse_features: measured statistics match the config."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given

from planted import toys
from planted.groundtruth import FeatureToy
from planted.toys import strategies as gst


def _active(toy):
    a = toy.truth.codes.copy()
    a.data = (a.data > 0).astype(np.float32)
    return a


def test_activations_are_codes_times_directions():
    toy = toys.sparse_features(64, 16, 2000, mean_active=3, seed=0)
    assert isinstance(toy, FeatureToy)
    assert toy.activations.shape == (2000, 16) and toy.activations.dtype == np.float32
    assert isinstance(toy.truth.codes, sp.csr_matrix) and toy.truth.codes.shape == (2000, 64)
    np.testing.assert_allclose(np.linalg.norm(toy.truth.directions, axis=1), 1, atol=1e-5)
    expected = toy.truth.codes @ (toy.truth.directions * toy.truth.norms[:, None])
    np.testing.assert_allclose(toy.activations, expected, atol=1e-5)


@pytest.mark.parametrize("firing", ["uniform", "exponential"])
def test_measured_l0_and_firing_rates_match_config(firing):
    n = 40_000
    toy = toys.sparse_features(100, 32, n, mean_active=5, firing=firing, decay=0.97, seed=1)
    active = _active(toy)
    l0 = active.sum(axis=1).A1
    # The expected L0 is the sum of probabilities; its standard error over n samples is tiny.
    assert toy.truth.firing_probabilities.sum() == pytest.approx(5.0, rel=1e-4)
    assert l0.mean() == pytest.approx(5.0, abs=5 * np.sqrt(5.0 / n))
    rates = active.mean(axis=0).A1
    p = toy.truth.firing_probabilities
    assert np.all(np.abs(rates - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9)


@pytest.mark.parametrize(
    "magnitude, mean, std, expected_mean, expected_std",
    [
        ("constant", 2.0, 0.0, 2.0, 0.0),
        ("uniform", 0.5, 0.0, 0.5, 1 / np.sqrt(12)),
        ("exponential", 1.5, 0.0, 1.5, 1.5),
    ],
)
def test_magnitudes_match_their_law(magnitude, mean, std, expected_mean, expected_std):
    toy = toys.sparse_features(50, 16, 20_000, mean_active=4, magnitude=magnitude, magnitude_mean=mean, seed=2)
    values = toy.truth.codes.data
    assert values.min() >= 0
    assert values.mean() == pytest.approx(expected_mean, rel=0.02)
    assert values.std() == pytest.approx(expected_std, rel=0.03, abs=1e-6)


def test_noise_level_matches_config():
    clean = toys.sparse_features(30, 64, 5000, mean_active=2, seed=4)
    noisy = toys.sparse_features(30, 64, 5000, mean_active=2, seed=4, noise_std=0.2)
    np.testing.assert_array_equal(clean.truth.codes.toarray(), noisy.truth.codes.toarray())
    residual = noisy.activations - clean.activations
    assert residual.std() == pytest.approx(0.2, rel=0.01)
    assert abs(residual.mean()) < 0.01


def test_zipf_firing_spans_p_max_to_p_min():
    toy = toys.sparse_features(200, 16, 100, firing="zipf", zipf_exponent=0.7, p_max=0.4, p_min=0.01, mean_active=None, seed=0)
    p = toy.truth.firing_probabilities
    assert p[0] == pytest.approx(0.4) and p[-1] == pytest.approx(0.01)
    assert np.all(np.diff(p) <= 0)


def test_correlated_firing_keeps_marginals_and_correlates():
    n = 40_000
    toy = toys.sparse_features(40, 16, n, mean_active=8, correlation_rank=2, correlation_scale=0.6, seed=5)
    active = _active(toy).toarray()
    p = toy.truth.firing_probabilities
    assert np.all(np.abs(active.mean(axis=0) - p) <= 5 * np.sqrt(p * (1 - p) / n))
    corr = np.corrcoef(active.T)
    off = np.abs(corr[~np.eye(40, dtype=bool)])
    independent = toys.sparse_features(40, 16, n, mean_active=8, seed=5)
    off_ind = np.abs(np.corrcoef(_active(independent).toarray().T)[~np.eye(40, dtype=bool)])
    assert off.mean() > 3 * off_ind.mean()


def _reference_firing(plan, n: int, seed: int) -> np.ndarray:
    """The textbook sampler, one normal per feature per sample: fire when ``z = F u + s e < t``
    (as ``e < (t - F u) / s``), children gated by their parents, one clashing sibling kept."""
    rng = np.random.default_rng(seed)
    if plan.loadings is None:
        fire = rng.random((n, plan.base_probabilities.size)) < plan.base_probabilities
    else:
        f, r = plan.loadings.shape
        u = rng.standard_normal((n, r))
        fire = rng.standard_normal((n, f)) < plan.offsets - u @ plan.loadings.T
    parent_first = 0
    for first, n_parents, b in plan.levels:
        block = fire[:, first : first + n_parents * b].reshape(n, n_parents, b)
        block &= fire[:, parent_first : parent_first + n_parents, None]
        rows, groups = np.nonzero(block.sum(axis=2) >= 2)
        scores = np.where(block[rows, groups], rng.random((rows.size, b)), -1.0)
        block[rows, groups] = np.arange(b) == scores.argmax(axis=1)[:, None]
        fire[:, first : first + n_parents * b] = block.reshape(n, -1)
        parent_first = first
    return fire


@pytest.mark.parametrize("firing, mean_active, rank", [("exponential", 6.0, 3), ("uniform", 16.0, 3), ("exponential", 6.0, 0)])
def test_sampler_matches_the_textbook_sampler(firing, mean_active, rank):
    """The Poisson samplers draw the same distribution as one draw per feature: equal firing rates
    and equal co-firing of every pair, hierarchy and exclusion included, with and without the
    copula. The uniform case has features that always fire (p = 1 before gating) and children whose
    probability is 1."""
    n = 40_000
    toy = toys.sparse_features(24, 8, n, firing=firing, decay=0.8, mean_active=mean_active, correlation_rank=rank,
                               correlation_scale=0.5, hierarchy_roots=2, hierarchy_branching=3, seed=3)
    plan = toy.sampler.args[0]
    ours = _active(toy).toarray()
    reference = _reference_firing(plan, n, seed=11).astype(np.float64)
    pair_ours, pair_ref = ours.T @ ours / n, reference.T @ reference / n  # diagonal: the firing rates
    se = np.sqrt((pair_ours * (1 - pair_ours) + pair_ref * (1 - pair_ref)) / n) + 1e-12
    z = (pair_ours - pair_ref) / se
    assert np.abs(z).max() < 5, np.abs(z).max()
    assert np.mean(z[np.triu_indices(24)] ** 2) < 1.5  # about 1 when the laws agree
    # Marginals are exact where no sibling exclusion meets the correlation (see firing_probabilities).
    top = toy.truth.parents < 0
    np.testing.assert_allclose(ours.mean(axis=0)[top], toy.truth.firing_probabilities[top], atol=5 * np.sqrt(0.25 / n))


@pytest.mark.parametrize("rank", [0, 2])
def test_samples_where_nothing_fires(rank):
    toy = toys.sparse_features(8, 4, 5000, mean_active=1e-4, correlation_rank=rank, seed=0, orthogonalize_steps=0)
    assert toy.truth.codes.nnz <= 10 and not toy.activations[toy.truth.codes.getnnz(axis=1) == 0].any()


def test_the_copula_rate_bound_lies_above_the_rate():
    """The thinned sampler is exact only where its bound g_hat >= g(c) = -log(1 - Phi(c)): the
    tangent of log g, which is concave, at every c0 from -37 to 37 lies above it at every c."""
    from scipy.special import log_ndtr, ndtr

    from planted.toys._sparse_features import _log_rate

    c = np.linspace(-37, 37, 3001)
    with np.errstate(divide="ignore"):
        reference = np.where(c < 0, np.log(-np.log1p(-ndtr(c))), np.log(-log_ndtr(-np.abs(c))))
    log_g, slope = _log_rate(c)
    np.testing.assert_allclose(log_g, reference, rtol=1e-10, atol=1e-12)
    h = 1e-5
    numeric = (_log_rate(c + h)[0] - _log_rate(c - h)[0]) / (2 * h)
    np.testing.assert_allclose(slope, numeric, rtol=1e-5)
    c0 = np.linspace(-37, 37, 297)[:, None]
    lg0, s0 = _log_rate(c0)
    assert np.all(lg0 + s0 * (c - c0) >= log_g - 1e-9 * np.abs(log_g))
    # The sampler's float32 bound holds on the samples it draws, where the rate matters.
    toy = toys.preset("synth16k", seed=0, n_samples=1)
    plan = toy.sampler.args[0]
    u = np.random.default_rng(0).standard_normal((256, plan.loadings.shape[1])).astype(np.float32)
    bound = np.concatenate([u, np.ones((256, 1), np.float32)], axis=1) @ plan.bound_loadings
    c = plan.offsets[plan.top] - u @ plan.loadings[plan.top].T
    exact = _log_rate(c.astype(np.float64))[0]
    assert np.all(bound >= exact), (exact - bound).max()
    assert np.exp(bound).sum() < 1.25 * np.exp(exact).sum()  # a tight bound: few points are thinned


def test_hierarchy_gates_children_and_siblings_exclude():
    toy = toys.sparse_features(
        60, 16, 20_000, mean_active=10, hierarchy_roots=3, hierarchy_branching=3, hierarchy_depth=2, seed=6
    )
    parents = toy.truth.parents
    assert (parents[:3] == -1).all() and (parents[3:12] == np.repeat(np.arange(3), 3)).all()
    assert (parents[12:39] == 3 + np.repeat(np.arange(9), 3)).all() and (parents[39:] == -1).all()
    active = _active(toy).toarray() > 0
    children = np.flatnonzero(parents >= 0)
    # A child is never active without its parent.
    assert not np.any(active[:, children] & ~active[:, parents[children]])
    # Mutually exclusive: at most one child of a parent per sample.
    for p in np.unique(parents[children]):
        assert active[:, parents == p].sum(axis=1).max() <= 1
    # Marginals after gating (computed analytically) match what is measured.
    rates = active.mean(axis=0)
    probs = toy.truth.firing_probabilities
    assert np.all(np.abs(rates - probs) <= 5 * np.sqrt(probs * (1 - probs) / 20_000) + 1e-9)
    assert toy.truth.labels[0] == "t000" and toy.truth.labels[3] == "t000.0" and toy.truth.labels[12] == "t000.0.0"
    assert toy.truth.labels[-1] == "f00059"


def test_non_exclusive_siblings_can_cofire():
    toy = toys.sparse_features(
        14, 8, 20_000, mean_active=10, hierarchy_roots=2, hierarchy_branching=3, mutually_exclusive=False, seed=0
    )
    active = _active(toy).toarray() > 0
    assert active[:, toy.truth.parents == 0].sum(axis=1).max() >= 2


def test_orthogonal_geometry():
    small = toys.sparse_features(12, 16, 10, geometry="orthogonal", seed=0)
    np.testing.assert_allclose(small.truth.directions @ small.truth.directions.T, np.eye(12), atol=1e-5)
    over = toys.sparse_features(64, 16, 10, geometry="orthogonal", seed=0)
    rand = toys.sparse_features(64, 16, 10, seed=0)

    def frame_potential(d):
        g = d @ d.T
        return float((g**2).sum() - np.trace(g**2))

    # The tight-frame bound for 64 unit vectors in 16 dims is 64^2/16 - 64 = 192.
    assert frame_potential(over.truth.directions) < 192 * 1.01 < frame_potential(rand.truth.directions)


def test_same_seed_same_arrays_and_other_seed_differs():
    a = toys.sparse_features(32, 8, 500, mean_active=3, correlation_rank=2, hierarchy_roots=2, seed=9)
    b = toys.sparse_features(32, 8, 500, mean_active=3, correlation_rank=2, hierarchy_roots=2, seed=9)
    c = toys.sparse_features(32, 8, 500, mean_active=3, correlation_rank=2, hierarchy_roots=2, seed=10)
    np.testing.assert_array_equal(a.activations, b.activations)
    np.testing.assert_array_equal(a.truth.directions, b.truth.directions)
    assert (a.truth.codes != b.truth.codes).nnz == 0
    assert not np.array_equal(a.activations, c.activations)


def test_batches_stream_the_same_samples_and_beyond():
    toy = toys.sparse_features(32, 8, 5000, mean_active=3, seed=3)
    batches = list(toy.batches(999))
    assert [b.activations.shape[0] for b in batches] == [999] * 5 + [5]
    np.testing.assert_array_equal(np.concatenate([b.activations for b in batches]), toy.activations)
    assert (sp.vstack([b.codes for b in batches]) != toy.truth.codes).nnz == 0
    # Past the stored samples the stream is generated; a bigger toy stores the same samples.
    bigger = toys.sparse_features(32, 8, 12_000, mean_active=3, seed=3)
    streamed = list(toy.batches(1000, start=4500, n_samples=7000))
    np.testing.assert_array_equal(np.concatenate([b.activations for b in streamed]), bigger.activations[4500:11_500])
    assert streamed[0].start == 4500
    for b in streamed:
        np.testing.assert_allclose(b.activations, b.codes @ toy.truth.directions, atol=1e-5)


def test_synth16k_matches_the_published_average_l0():
    """SynthSAEBench-16k reports about 34 active features per sample."""
    toy = toys.preset("synth16k", seed=0, n_samples=4096)
    assert toy.truth.directions.shape == (16_384, 768)
    l0 = toy.truth.codes.getnnz(axis=1)
    assert 32 <= l0.mean() <= 37
    assert toy.truth.firing_probabilities.sum() == pytest.approx(l0.mean(), rel=0.05)
    assert (toy.truth.parents >= 0).sum() == 128 * (4 + 16 + 64)


def test_sharkey2022_preset():
    toy = toys.preset("sharkey2022", seed=0, n_samples=4000)
    assert toy.truth.directions.shape == (512, 256)
    p = toy.truth.firing_probabilities
    assert p.sum() == pytest.approx(5.0, rel=1e-4)
    np.testing.assert_allclose(p[1:] / p[:-1], 0.99, rtol=1e-5)
    assert toy.config.id == toys.preset_config("sharkey2022", seed=0, n_samples=4000).id


@given(gst.feature_toys())
def test_any_valid_config_gives_a_consistent_toy(toy):
    t = toy.truth
    assert toy.activations.shape == (toy.config.n_samples, toy.config.d_model)
    assert np.isfinite(toy.activations).all()
    assert t.codes.shape == (toy.config.n_samples, toy.config.n_features) and (t.codes.data >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(t.directions, axis=1), 1, atol=1e-4)
    assert ((t.firing_probabilities >= 0) & (t.firing_probabilities <= 1)).all()
    if t.parents is not None:
        active = t.codes.toarray() > 0
        kids = np.flatnonzero(t.parents >= 0)
        assert not np.any(active[:, kids] & ~active[:, t.parents[kids]])


INVALID = [
    (dict(noise_std=1e308), "noise_std must be in \\[0, 1000000.0\\], got 1e\\+308"),
    (dict(magnitude_mean=1e308), "magnitude_mean"),
    (dict(n_features=0), "n_features"),
    (dict(d_model=0), "d_model"),
    (dict(n_samples=0), "n_samples"),
    (dict(seed=-1), "seed"),
    (dict(firing="gauss"), "firing"),
    (dict(mean_active=0.0), "mean_active"),
    (dict(mean_active=100.0), "mean_active must be at most n_features"),
    (dict(mean_active=None), "mean_active is required"),
    (dict(decay=1.5), "decay"),
    (dict(firing="zipf", mean_active=None, p_min=0.5, p_max=0.1), "p_min must be at most p_max"),
    (dict(magnitude="huge"), "magnitude"),
    (dict(magnitude_mean=-1.0), "magnitude_mean"),
    (dict(correlation_rank=-1), "correlation_rank"),
    (dict(correlation_scale=2.0), "correlation_scale"),
    (dict(hierarchy_roots=5, hierarchy_branching=3), "hierarchy_roots x"),
    (dict(hierarchy_branching=0), "hierarchy_branching"),
    (dict(mutually_exclusive="yes"), "mutually_exclusive"),
    (dict(geometry="sphere"), "geometry"),
    (dict(noise_std=float("nan")), "noise_std"),
    (dict(n_features=2.5), "n_features must be an integer"),
]


@pytest.mark.parametrize("changes, match", INVALID)
def test_invalid_configs_name_the_parameter(changes, match):
    kwargs = dict(n_features=10, d_model=4, n_samples=10, seed=0)
    kwargs.update(changes)
    with pytest.raises(ValueError, match=match):
        toys.sparse_features(**kwargs)


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(ValueError, match="did you mean sharkey2022"):
        toys.preset("sharky2022")
    assert set(toys.presets()) >= {"sharkey2022", "synth16k"}


def test_batches_reject_bad_arguments():
    toy = toys.sparse_features(10, 4, 10, seed=0)
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, inf\), got 0"):
        next(toy.batches(0))
    with pytest.raises(ValueError, match=r"start must be in \[0, inf\), got -1"):
        next(toy.batches(4, start=-1))
