import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planted import methods
from planted import toys
from planted.evaluators import score_features


@pytest.fixture(scope="module")
def toy():
    # Superposition ratio 2 (128 features in d=64), exponential firing with decay 0.99 and 4 active
    # on average: a scaled-down sharkey2022 that trains in seconds.
    return toys.sparse_features(
        128, 64, 10_000, firing="exponential", decay=0.99, mean_active=4, magnitude="uniform", magnitude_mean=0.5, seed=0
    )


@pytest.mark.parametrize(
    "kind, kwargs, min_mmcs",
    [("relu", {}, 0.95), ("topk", dict(k=4), 0.95), ("batchtopk", dict(k=4), 0.95), ("jumprelu", {}, 0.95)],
)
def test_every_kind_recovers_the_planted_features(toy, kind, kwargs, min_mmcs):
    d = methods.sae(toy.activations, 256, kind=kind, seed=0, n_steps=1500, batch_size=512, lr=3e-3, **kwargs)
    s = score_features(d, toy.truth, activations=toy.activations)
    assert s.mmcs >= min_mmcs
    assert s.recovered >= 0.9
    assert s.fvu < 0.2
    np.testing.assert_allclose(np.linalg.norm(d.directions, axis=1), 1, atol=1e-5)
    if kind == "topk":
        assert np.all((d.encode(toy.activations) > 0).sum(axis=1) <= 4)


def test_streamed_training_matches_in_quality(toy):
    """Training from toy.batches (a stream past the stored samples) works like training on an array."""
    stream = (b.activations for b in toy.batches(700, start=toy.n_samples, n_samples=1500 * 512))
    d = methods.sae(stream, 256, kind="relu", seed=0, n_steps=1500, batch_size=512, lr=3e-3)
    assert d.codes is None  # nothing to encode: the stream is gone
    s = score_features(d, toy.truth, activations=toy.activations)  # held-out samples
    assert s.mmcs >= 0.95


def test_stream_shorter_than_n_steps_ends_training():
    x = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    d = methods.sae(iter([x, x]), 16, seed=0, n_steps=1000, batch_size=50)
    assert d.directions.shape == (16, 8)
    with pytest.raises(ValueError, match="empty iterable"):
        methods.sae(iter([]), 16, seed=0)


def test_output_is_in_input_units(toy):
    """Scaling the input scales codes and biases, not directions."""
    d1 = methods.sae(toy.activations, 64, kind="topk", k=4, seed=0, n_steps=200, batch_size=256)
    d2 = methods.sae(10 * toy.activations, 64, kind="topk", k=4, seed=0, n_steps=200, batch_size=256)
    np.testing.assert_allclose(d1.directions, d2.directions, atol=2e-3)
    np.testing.assert_allclose(10 * d1.encode(toy.activations[:100]), d2.encode(10 * toy.activations[:100]), rtol=1e-2, atol=1e-3)


@functools.cache
def _kth():
    import jax

    from planted.methods._sae import _sparse

    return jax.jit(_sparse._row_kth_keys)  # k traced: one compilation per shape


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_per_row_bisection_finds_the_kth_largest_exactly(data):
    """The dense kinds' AuxK chooses, per row, the entries at or above the k-th largest: exact for
    negative values, ties, infinities and rows with fewer than k finite entries."""
    import jax.numpy as jnp

    rows, width = 5, 24
    pool = data.draw(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
    values = data.draw(st.lists(st.sampled_from(pool + [-np.inf, np.inf]), min_size=rows * width, max_size=rows * width))
    x = np.asarray(values, np.float32).reshape(rows, width) + np.float32(0.0)  # -0.0 becomes 0.0
    k = data.draw(st.integers(1, width))
    keys, kth = _kth()(jnp.asarray(x), jnp.int32(k))
    want = np.sort(x, axis=1)[:, ::-1][:, k - 1]
    np.testing.assert_array_equal(np.asarray(keys >= kth[:, None]), x >= want[:, None])


@functools.cache
def _top_k(k):
    import jax

    from planted.methods._sae import _sparse

    return jax.jit(lambda s: _sparse._top_k_indices(s, k))


_NEGATIVE_NAN = np.array([0xFFC00000], np.uint32).view(np.float32)[0]


@pytest.mark.parametrize("n, k", [(64, 4), (250, 3), (300, 32), (1000, 7)])  # whole and padded blocks
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_the_blocked_top_k_returns_lax_top_k_indices(n, k, data):
    """TopK's latents are chosen from the k blocks with the largest maxima: the same indices, in
    the same order, as one jax.lax.top_k over the row, for ties, -0.0 against 0.0, infinities and
    NaNs of either sign (TopK's total order)."""
    import jax
    import jax.numpy as jnp

    rows = 6
    specials = np.asarray([0.0, -0.0, np.inf, -np.inf, np.nan, _NEGATIVE_NAN], np.float32)
    drawn = data.draw(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=6))
    pool = np.concatenate([np.asarray(drawn, np.float32), specials])
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    fill = data.draw(st.sampled_from(["distinct", "pool", "one value"]))
    if fill == "pool":  # nothing but ties
        x = rng.choice(pool, (rows, n))
    else:  # distinct values, or one value (a NaN, an infinity...) almost everywhere; a few entries from the pool
        x = rng.standard_normal((rows, n)).astype(np.float32) if fill == "distinct" else np.full((rows, n), rng.choice(pool))
        at = rng.random((rows, n)) < data.draw(st.sampled_from([0.0, 0.01, 0.2]))
        x[at] = rng.choice(pool, int(at.sum()))
    x = jnp.asarray(x)
    np.testing.assert_array_equal(np.asarray(_top_k(k)(x)), np.asarray(jax.lax.top_k(x, k)[1]))


@pytest.mark.parametrize("n, k", [(250, 3), (1000, 7)])  # padded blocks
def test_the_blocked_top_k_never_picks_its_padding(n, k):
    """Rows of one value, the lowest of TopK's order (a NaN with every bit set) among them: the
    padding sorts below every float and after every index, so it is never picked."""
    import jax
    import jax.numpy as jnp

    lowest = np.array([0xFFFFFFFF], np.uint32).view(np.float32)[0]
    x = np.asarray([[v] * n for v in (lowest, _NEGATIVE_NAN, -np.inf, -0.0, 1.0)], np.float32)
    x[2:, 5] = lowest  # and one entry of the lowest value in the other rows
    x = jnp.asarray(x)
    np.testing.assert_array_equal(np.asarray(_top_k(k)(x)), np.asarray(jax.lax.top_k(x, k)[1]))


@pytest.mark.parametrize("kind, dead_fraction", [("topk", 0.4), ("relu", 0.4), ("relu", 0.05)])
def test_the_sparse_step_has_the_gradients_of_the_dense_loss(kind, dead_fraction):
    """TopK trains from its k active latents (their pre-activations, a decoder of k rows) and the
    AuxK loss from the dead latents it picks (for ReLU, also when fewer are dead than it picks);
    both give the gradients of the dense formulation, codes scattered into a (batch, n_latents)
    matrix and decoded by a matmul."""
    import jax
    import jax.numpy as jnp

    from planted.methods._sae import _step

    rng = np.random.default_rng(0)
    b, d, n, k, k_aux = 32, 16, 64, 4, 8
    params = {"W_enc": rng.standard_normal((d, n)), "b_enc": 0.1 * rng.standard_normal(n),
              "W_dec": rng.standard_normal((n, d)), "b_dec": 0.1 * rng.standard_normal(d)}
    params = {name: jnp.asarray(v, jnp.float32) for name, v in params.items()}
    x = jnp.asarray(rng.standard_normal((b, d)), jnp.float32)
    dead = jnp.asarray(rng.random(n) < dead_fraction)
    assert (int(dead.sum()) < k_aux) == (dead_fraction < 0.1)
    hp = _step._Hyper(kind=kind, n_latents=n, k=k, l1_coefficient=0.5, sparsity_coefficient=1.0, bandwidth=0.05,
                     aux_coefficient=1 / 32, k_aux=k_aux, dead_after=10, batch_size=b, lr=1e-3)
    rows = jnp.arange(b)[:, None]

    def dense(p):
        pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
        if kind == "topk":
            values, idx = jax.lax.top_k(pre, k)
            codes = jnp.zeros_like(pre).at[rows, idx].set(jax.nn.relu(values))
            penalty = 0.0
        else:
            codes = jax.nn.relu(pre)
            penalty = hp.l1_coefficient * jnp.sum(codes, axis=1).mean()
        err = x - (codes @ p["W_dec"] + p["b_dec"])
        pre_aux = (x - jax.lax.stop_gradient(p["b_dec"])) @ p["W_enc"] + p["b_enc"]
        values, idx = jax.lax.top_k(jnp.where(dead[None, :], pre_aux, -jnp.inf), k_aux)
        aux_codes = jnp.where(dead[None, :], jnp.zeros_like(pre).at[rows, idx].set(jax.nn.relu(values)), 0.0)
        aux_err = jax.lax.stop_gradient(err) - aux_codes @ p["W_dec"]
        return jnp.sum(err**2, axis=1).mean() + penalty + hp.aux_coefficient * jnp.sum(aux_err**2, axis=1).mean()

    want = jax.jit(jax.grad(dense))(params)
    loss = jax.jit(lambda p: _step._loss(p, x, dead, 0, hp)[0])  # compiled, as training runs it
    got = jax.jit(jax.grad(loss))(params)
    assert float(jax.jit(dense)(params)) == pytest.approx(float(loss(params)), rel=1e-5)
    for name in params:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=2e-4, atol=2e-5, err_msg=name)


def test_runs_of_any_length_share_one_compilation_and_a_padded_block_changes_nothing():
    """The number of steps and the schedule are traced: runs of 40, 70 and 45 steps (a short last
    block each) compile the training loop at most once, and runs of 5 and 7 steps (padded to 8)
    at most once more; a last block padded to the full length trains exactly as the same steps
    unpadded. (``_cache_size`` is the jitted function's count of compiled programs.)"""
    import jax
    import jax.numpy as jnp

    from planted.methods._sae import _step

    x = np.random.default_rng(0).standard_normal((600, 12)).astype(np.float32)

    def compilations(*lengths):
        before = _step._train_block._cache_size()
        for n_steps in lengths:
            methods.sae(x, 24, kind="relu", seed=n_steps, n_steps=n_steps, batch_size=20, progress=False)
        return _step._train_block._cache_size() - before

    assert compilations(40) <= 1 and compilations(70, 45) == 0
    assert compilations(5) <= 1 and compilations(7) == 0

    hp = _step._Hyper(kind="relu", n_latents=24, k=0, l1_coefficient=2.0, sparsity_coefficient=1.0, bandwidth=0.05,
                     aux_coefficient=1 / 32, k_aux=6, dead_after=3, batch_size=20, lr=3e-3)
    schedule = jax.tree.map(jnp.int32, _step._Schedule.of(9))
    w = x[:24] / np.linalg.norm(x[:24], axis=1, keepdims=True)
    params = {"W_enc": jnp.asarray(w.T), "b_enc": jnp.zeros(24), "W_dec": jnp.asarray(w), "b_dec": jnp.zeros(12)}
    state = (params, _step._optimizer(hp, schedule).init(params), jnp.zeros(24, jnp.int32), jnp.zeros((), jnp.int32))
    xs = x[:180].reshape(9, 20, 12)
    padded = np.concatenate([xs, np.full((23, 20, 12), np.nan, np.float32)])  # never read
    plain, plain_mse = _step._train_block(state, jnp.asarray(xs), jnp.int32(9), schedule, hp)
    got, got_mse = _step._train_block(state, jnp.asarray(padded), jnp.int32(9), schedule, hp)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(got)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(got_mse)[:9], np.asarray(plain_mse))
    assert int(got[3]) == 9 and not np.asarray(got_mse)[9:].any()
