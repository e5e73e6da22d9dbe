import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import planted.evaluators.features as ef
from planted import toys
from planted.evaluators import chance_mmcs, score_features
from planted.groundtruth import Dictionary, Encoder
from planted.toys import strategies as gst


@pytest.fixture(scope="module")
def toy():
    return toys.sparse_features(48, 16, 3000, mean_active=3, seed=0)


@pytest.fixture(scope="module")
def hier():
    return toys.sparse_features(
        40, 24, 6000, mean_active=6, hierarchy_roots=4, hierarchy_branching=3, hierarchy_depth=1, seed=1
    )


def _perfect(toy, **kw):
    t = toy.truth
    return Dictionary(directions=t.directions * t.norms[:, None], codes=t.codes, **kw)


def test_truth_scores_perfectly(toy):
    s = score_features(_perfect(toy), toy.truth, activations=toy.activations)
    for name in ("mmcs", "matched_cosine", "recovered", "code_correlation"):
        assert getattr(s, name) == pytest.approx(1.0, abs=1e-6), name
    assert s.spurious == 0 and s.dead == 0
    assert s.fvu == pytest.approx(0.0, abs=1e-8) and s.shrinkage == pytest.approx(0.0, abs=1e-6)
    assert s.l0 == pytest.approx(toy.truth.codes.nnz / 3000)


def test_encoder_codes_are_used_when_activations_are_given():
    # With orthonormal directions, projecting back onto them recovers the codes exactly.
    small = toys.sparse_features(8, 16, 500, mean_active=2, geometry="orthogonal", magnitude="constant", seed=0)
    enc = Encoder(
        weights=small.truth.directions.T, bias=np.zeros(8), pre_bias=np.zeros(16), activation="threshold",
        threshold=np.full(8, 1e-3),
    )
    d = Dictionary(directions=small.truth.directions, encoder=enc)
    s = score_features(d, small.truth, activations=small.activations)
    assert s.code_correlation == pytest.approx(1.0, abs=1e-5) and s.fvu == pytest.approx(0, abs=1e-8)
    assert s.l0 == pytest.approx(small.truth.codes.nnz / 500)


@given(st.data())
def test_invariant_to_permuting_and_sign_flipping_latents(data):
    toy = data.draw(gst.feature_toys(max_features=24, max_d_model=12, max_samples=200))
    t = toy.truth
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    base = rng.standard_normal((t.n_features + 3, t.d_model)).astype(np.float32)
    base[: t.n_features] += 3 * t.directions  # partially aligned dictionary
    codes = np.abs(rng.standard_normal((toy.config.n_samples, base.shape[0]))).astype(np.float32)
    perm = rng.permutation(base.shape[0])
    signs = rng.choice([-1.0, 1.0], size=base.shape[0]).astype(np.float32)
    a = score_features(Dictionary(directions=base, codes=codes), t, activations=toy.activations)
    b = score_features(
        Dictionary(directions=base[perm] * signs[perm, None], codes=codes[:, perm] * signs[perm]),
        t,
        activations=toy.activations,
    )
    for name in ("mmcs", "matched_cosine", "recovered", "spurious", "code_correlation", "fvu", "l0", "dead"):
        if getattr(a, name) is None or getattr(b, name) is None:  # undefined (fvu of activations that are all zero)
            assert getattr(a, name) is None and getattr(b, name) is None, name
            continue
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-5, abs=1e-5), name


@pytest.mark.parametrize("n_latents, d_model", [(64, 16), (512, 64), (1024, 256)])
def test_random_dictionaries_score_at_chance(n_latents, d_model):
    toy = toys.sparse_features(200, d_model, 10, seed=0)
    rng = np.random.default_rng(1)
    s = score_features(rng.standard_normal((n_latents, d_model)), toy.truth)
    chance = chance_mmcs(n_latents, d_model)
    # 200 features average out: the standard deviation of a max-cosine is ~0.03-0.05
    assert s.mmcs == pytest.approx(chance, abs=0.015)
    assert s.recovered == 0 and s.spurious == 1


def test_chance_level_limits():
    assert chance_mmcs(1, 2) == pytest.approx(2 / np.pi, abs=1e-4)  # E|cos| of a random 2-D angle
    assert chance_mmcs(10, 3) == pytest.approx(1 - 1 / 11, abs=1e-3)  # |cos| is uniform in 3-D
    with pytest.raises(ValueError, match="d_model"):
        chance_mmcs(5, 1)


def test_sparse_matching_equals_dense_matching(toy, monkeypatch):
    rng = np.random.default_rng(3)
    noisy = toy.truth.directions[rng.permutation(48)] + 0.4 * rng.standard_normal((48, 16))
    directions = np.concatenate([noisy, rng.standard_normal((100, 16))]).astype(np.float32)
    exact = score_features(directions, toy.truth)
    monkeypatch.setattr(ef, "EXACT_LIMIT", 10)
    chunked = score_features(directions, toy.truth, chunk_size=7, candidates=8)
    assert chunked.matched_cosine == pytest.approx(exact.matched_cosine, abs=1e-6)
    assert chunked.mmcs == pytest.approx(exact.mmcs, abs=1e-6)
    assert chunked.recovered == exact.recovered and chunked.spurious == exact.spurious


@pytest.mark.parametrize("chunk_size", [5, 37, 300])
def test_candidates_are_each_features_best_latents(monkeypatch, chunk_size):
    rng = np.random.default_rng(0)
    true = rng.standard_normal((40, 16)).astype(np.float32)
    latents = rng.standard_normal((300, 16)).astype(np.float32)
    full = np.abs(true @ latents.T)
    monkeypatch.setattr(ef, "EXACT_LIMIT", 10)
    feature_max, latent_max, dense, values, idx = ef._similarities(true, latents, chunk_size, 8)
    assert dense is None
    np.testing.assert_allclose(np.sort(values, axis=1), np.sort(full, axis=1)[:, -8:], rtol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), values, rtol=1e-6)
    np.testing.assert_allclose(feature_max, full.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(latent_max, full.max(axis=0), rtol=1e-6)


def test_fewer_latents_than_features_leave_features_unmatched(toy):
    s = score_features(toy.truth.directions[:12], toy.truth)
    assert s.mmcs < 1 and s.matched_cosine == pytest.approx(12 / 48)
    assert s.recovered == pytest.approx(12 / 48)
    assert s.spurious == 0
    assert s.mcc == pytest.approx(1.0, abs=1e-6)  # SAELens' convention: the 12 matched pairs


def _independent_mcc(true_dirs, latents):
    """Mean |cosine| over a Hungarian matching's pairs, the definition SAELens and SynthSAEBench use."""
    from scipy.optimize import linear_sum_assignment

    a = true_dirs / np.linalg.norm(true_dirs, axis=1, keepdims=True)
    b = latents / np.linalg.norm(latents, axis=1, keepdims=True)
    sims = np.abs(a.astype(np.float64) @ b.T.astype(np.float64))
    rows, cols = linear_sum_assignment(sims, maximize=True)
    return sims[rows, cols].mean(), sims[rows, cols].sum() / a.shape[0]


@pytest.mark.parametrize("n_latents", [30, 96, 150])
def test_mcc_and_matched_cosine_agree_with_an_independent_matching(n_latents):
    toy = toys.sparse_features(96, 64, 50, mean_active=4, seed=3)
    rng = np.random.default_rng(n_latents)
    noisy = toy.truth.directions[rng.permutation(96)[: min(n_latents, 96)]]
    latents = np.concatenate([noisy, rng.normal(size=(max(n_latents - 96, 0), 64))]) + 0.2 * rng.normal(
        size=(n_latents, 64)
    )
    s = score_features(latents, toy.truth)
    mcc, matched = _independent_mcc(toy.truth.directions, latents)
    assert s.mcc == pytest.approx(mcc, abs=1e-6)
    assert s.matched_cosine == pytest.approx(matched, abs=1e-6)
    assert (s.mcc == pytest.approx(s.matched_cosine, abs=1e-6)) == (n_latents >= 96)


def test_absorption_is_measured_on_hierarchies(hier):
    t = hier.truth
    perfect = score_features(_perfect(hier), t, activations=hier.activations)
    assert perfect.absorption == 0.0
    # Absorb: the parent's latent is silent whenever one of its children fires.
    codes = t.codes.toarray()
    kids_active = np.zeros_like(codes, dtype=bool)
    for p in range(4):
        kids_active[:, p] = codes[:, t.children(p)].sum(axis=1) > 0
    absorbed = np.where(kids_active, 0, codes)
    s = score_features(Dictionary(directions=t.directions, codes=absorbed), t, activations=hier.activations)
    assert s.absorption == 1.0
    flat = toys.sparse_features(40, 24, 100, mean_active=6, seed=1)
    assert score_features(_perfect(flat), flat.truth, activations=flat.activations).absorption is None


@pytest.mark.parametrize(
    "prediction, kwargs, match",
    [
        (np.ones((5, 7)), {}, "d_model 7 but the truth has 16"),
        ("directions", {}, "dictionary must be a groundtruth.Dictionary"),
        (np.ones((5, 16)), dict(threshold=0.0), "threshold"),
        (np.ones((5, 16)), dict(chunk_size=0), "chunk_size"),
        (np.ones((5, 16)), dict(activations=np.ones((10, 16))), "activations have 10 samples"),
        (np.ones((5, 16)), dict(activations=np.full((3000, 16), np.inf)), "activations contains"),
        (np.full((5, 16), np.nan), {}, "directions contains 80 NaN"),
        (np.zeros((0, 16)), {}, "directions must not be empty"),
    ],
)
def test_invalid_predictions_name_the_problem(toy, prediction, kwargs, match):
    with pytest.raises(ValueError, match=match):
        score_features(prediction, toy.truth, **kwargs)


def test_zero_directions_score_zero_not_nan(toy):
    s = score_features(np.zeros((10, 16)), toy.truth)
    assert s.mmcs == 0 and s.matched_cosine == 0 and s.spurious == 1


def test_large_dictionary_is_scored_in_chunks():
    """Memory stays bounded by chunking: 20k latents x 4k features would be 320 MB dense."""
    toy = toys.sparse_features(4096, 64, 10, seed=0)
    rng = np.random.default_rng(0)
    directions = np.concatenate([toy.truth.directions, rng.standard_normal((16_000, 64))]).astype(np.float32)
    s = score_features(directions, toy.truth, chunk_size=2048)
    assert s.mmcs == pytest.approx(1.0) and s.recovered == pytest.approx(1.0)
    assert s.spurious == pytest.approx(16_000 / 20_096, abs=1e-6)
