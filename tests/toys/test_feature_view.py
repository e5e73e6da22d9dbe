"""Feature views: the truth recomputed independently from the codes, the shared stream, the
frames, and the config's checks."""

from __future__ import annotations

import numpy as np
import pytest

from planted import toys
from planted.groundtruth import correspondence, shared_fraction


def _signal(toy):
    return np.asarray(toy.truth.codes @ (toy.truth.norms[:, None] * toy.truth.directions))


@pytest.mark.parametrize("frame, d", [("orthonormal", 40), ("axis", 40), ("random", 10)])
def test_activations_are_the_codes_through_the_planted_directions(frame, d):
    toy = toys.feature_view(60, 30, d, offset=10, n_samples=500, seed=2, view=1, frame=frame, rescale=0.3)
    np.testing.assert_allclose(toy.activations, _signal(toy), atol=1e-5)
    if frame == "orthonormal":
        raw = toys.feature_view(60, 30, d, offset=10, n_samples=50, seed=2, view=1, frame=frame).truth.directions
        np.testing.assert_allclose(raw @ raw.T, np.eye(30), atol=1e-5)
    if frame == "axis":
        raw = toys.feature_view(60, 30, d, offset=10, n_samples=50, seed=2, view=1, frame=frame).truth.directions
        assert set(np.unique(raw)) <= {0.0, 1.0} and (raw.sum(1) == 1).all() and (raw.sum(0) <= 1).all()
    assert toy.truth.labels == tuple(f"f{i}" for i in range(10, 40))


def test_views_of_one_seed_share_the_samples_of_the_features_they_share():
    a = toys.feature_view(100, 40, 40, offset=0, n_samples=800, seed=5, view=0)
    b = toys.feature_view(100, 40, 20, offset=25, n_samples=800, seed=5, view=3, frame="random")
    match = correspondence(a.truth.labels, b.truth.labels)
    assert match.sum() == 15 and shared_fraction(a.truth.labels, b.truth.labels) == pytest.approx(15 / 40)
    i, j = np.nonzero(match)
    np.testing.assert_array_equal(a.truth.codes[:, i].toarray(), b.truth.codes[:, j].toarray())
    assert not np.array_equal(a.truth.codes[:, :15].toarray(), a.truth.codes[:, 15:30].toarray())
    other_seed = toys.feature_view(100, 40, 40, n_samples=800, seed=6)
    assert not np.array_equal(a.truth.codes.toarray(), other_seed.truth.codes.toarray())


def test_the_stream_fires_as_configured():
    toy = toys.feature_view(200, 200, 50, n_samples=20_000, seed=0, mean_active=8.0, frame="random",
                            magnitude="constant")
    active = np.asarray((toy.truth.codes != 0).sum(axis=1)).ravel()
    assert active.mean() == pytest.approx(8.0, rel=0.03)
    assert np.allclose(toy.truth.firing_probabilities, 8.0 / 200)
    assert set(np.unique(toy.truth.codes.data)) == {1.0}


def test_deleted_principal_components_leave_the_truth_exact():
    toy = toys.feature_view(50, 20, 20, n_samples=1000, seed=1, deleted_pcs=3)
    x = toy.activations - toy.activations.mean(0)
    s = _signal(toy)
    np.testing.assert_allclose(x, s - s.mean(0), atol=1e-5)
    assert np.linalg.matrix_rank(x, tol=1e-3) == 17
    assert (toy.truth.norms < 1).any() and (toy.truth.norms > 0).all()


def test_noise_is_the_only_difference_a_noise_std_makes():
    clean = toys.feature_view(30, 10, 10, n_samples=2000, seed=3)
    noisy = toys.feature_view(30, 10, 10, n_samples=2000, seed=3, noise_std=0.1)
    assert np.std(noisy.activations - clean.activations) == pytest.approx(0.1, rel=0.05)
    np.testing.assert_array_equal(noisy.truth.directions, clean.truth.directions)


@pytest.mark.parametrize("fields, match", [
    (dict(n_pool=10, n_features=11, d_model=20), "n_features must be in \\[1, 10\\], got 11"),
    (dict(n_pool=10, n_features=5, d_model=20, offset=6), "offset must be in \\[0, 5\\], got 6"),
    (dict(n_pool=10, n_features=8, d_model=4), "frame 'orthonormal' needs n_features \\(8\\) <= d_model \\(4\\)"),
    (dict(n_pool=10, n_features=8, d_model=8, frame="spiral"), "frame must be one of"),
    (dict(n_pool=10, n_features=8, d_model=8, deleted_pcs=8), "deleted_pcs must be in \\[0, 7\\], got 8"),
])
def test_bad_configs_name_the_parameter(fields, match):
    with pytest.raises(ValueError, match=match):
        toys.FeatureViewConfig(**fields)
