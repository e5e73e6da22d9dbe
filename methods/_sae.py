"""Sparse autoencoders in JAX + optax: ReLU (L1), TopK, BatchTopK and JumpReLU.

One training loop serves every kind: batches are fed in blocks to a jit-compiled loop over steps
(the number of steps and the schedule traced, so runs of any length share the compiled loop); the
decoder's rows are kept at unit norm (the gradient's radial part is removed and rows are
renormalised after each step); latents that have not fired for ``dead_after`` steps are
revived by the auxiliary-k loss of Gao et al. (2024) for every kind. Inputs are scaled so their
mean squared norm is ``d_model`` and the returned dictionary is expressed back in input units.
TopK and its AuxK work from the chosen latents only: one dense product picks them and gives their
values; decoding and gradients touch only those columns and rows, one latent slot at a time (on a
CPU a loop of (batch, d) gathers and scatter-adds runs several times faster than one (batch, k, d)
gather). The dense kinds' AuxK picks its latents by an exact per-row bisection and
decodes densely, as their main loss does: a top-k and gathers cost more there than matmuls.

References
----------
Bricken et al. (2023), "Towards Monosemanticity" (ReLU SAE, L1, unit-norm decoder).
Gao et al. (2024), "Scaling and evaluating sparse autoencoders" (TopK, AuxK).
Bussmann, Leask & Nanda (2024), "BatchTopK Sparse Autoencoders".
Rajamanoharan et al. (2024), "Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU
Sparse Autoencoders".
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from planted.groundtruth import Dictionary, Encoder, Problems
from planted.groundtruth import as_matrix
from planted.groundtruth import Progress

KINDS = ("relu", "topk", "batchtopk", "jumprelu")
_BLOCK = 32  # steps per compiled call; shorter blocks are padded to this (or, for runs below it, a power of two)


@dataclasses.dataclass(frozen=True)
class _Hyper:
    kind: str
    n_latents: int
    k: int
    l1_coefficient: float
    sparsity_coefficient: float
    bandwidth: float
    aux_coefficient: float
    k_aux: int
    dead_after: int
    batch_size: int
    lr: float


class _Schedule(NamedTuple):
    """The step counts of a run, passed to the compiled loop as numbers rather than constants, so
    that runs of any length share one compilation (runs of 32 steps or more; shorter ones one per
    power of two)."""

    l1_warmup: int | jax.Array  # steps over which the L1 coefficient ramps up from zero
    decay_start: int | jax.Array  # the step from which the learning rate decays linearly...
    decay_steps: int | jax.Array  # ...to zero over this many steps

    @classmethod
    def of(cls, n_steps: int) -> _Schedule:
        decay_start = int(0.8 * n_steps)
        return cls(l1_warmup=max(1, n_steps // 20), decay_start=decay_start, decay_steps=max(n_steps - decay_start, 1))


def _jumprelu_fns():
    """JumpReLU and its step function with the straight-through pseudo-derivatives for theta."""

    def rect(u):
        return (jnp.abs(u) < 0.5).astype(u.dtype)

    @jax.custom_vjp
    def jumprelu(z, theta, eps):
        return z * (z > theta)

    def jumprelu_fwd(z, theta, eps):
        return jumprelu(z, theta, eps), (z, theta, eps)

    def jumprelu_bwd(res, g):
        z, theta, eps = res
        dz = g * (z > theta)
        dtheta = jnp.sum(g * (-theta / eps) * rect((z - theta) / eps), axis=0)
        return dz, dtheta, None

    jumprelu.defvjp(jumprelu_fwd, jumprelu_bwd)

    @jax.custom_vjp
    def step(z, theta, eps):
        return (z > theta).astype(z.dtype)

    def step_fwd(z, theta, eps):
        return step(z, theta, eps), (z, theta, eps)

    def step_bwd(res, g):
        z, theta, eps = res
        dtheta = jnp.sum(g * (-1.0 / eps) * rect((z - theta) / eps), axis=0)
        return jnp.zeros_like(z), dtheta, None

    step.defvjp(step_fwd, step_bwd)
    return jumprelu, step


_jumprelu, _step = _jumprelu_fns()


def _batch_threshold(pre: jax.Array, count: int) -> jax.Array:
    """The value above which ``count`` entries of ``pre`` lie, by bisection (no full sort)."""
    hi = jnp.max(pre)
    lo = jnp.zeros_like(hi)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        many = jnp.sum(pre > mid) > count
        return jnp.where(many, mid, lo), jnp.where(many, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 32, body, (lo, hi))
    return hi


def _encode(params, x, hp: _Hyper):
    """Pre-activations and codes for a batch; returns (pre, codes, auxiliary sparsity loss)."""
    pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    if hp.kind == "relu":
        codes = jax.nn.relu(pre)
        return pre, codes, jnp.sum(codes, axis=1).mean()
    if hp.kind == "batchtopk":
        relu = jax.nn.relu(pre)
        threshold = jax.lax.stop_gradient(_batch_threshold(relu, hp.k * pre.shape[0]))
        codes = jnp.where(relu > threshold, relu, 0.0)
        return pre, codes, jnp.zeros(())
    theta = jnp.exp(params["log_threshold"])
    codes = _jumprelu(pre, theta, hp.bandwidth)
    l0 = jnp.sum(_step(pre, theta, hp.bandwidth), axis=1).mean()
    return pre, codes, l0


def _rows_dot(w, idx, y):
    """``out[b, j] = y[b] . w[idx[b, j]]``, one gathered (batch, d) block per column ``j``: a loop
    of row gathers runs many times faster on a CPU than one (batch, k, d) gather and a batched dot."""
    _, out = jax.lax.scan(lambda carry, col: (carry, jnp.sum(y * w[col], axis=1)), None, idx.T)
    return out.T


def _rows_sum(w, v, idx):
    """``out[b] = sum_j v[b, j] w[idx[b, j]]``: rows of ``w`` weighted and summed, one column at a time."""
    def add(acc, col):
        vj, ij = col
        return acc + vj[:, None] * w[ij], None

    out, _ = jax.lax.scan(add, jnp.zeros((idx.shape[0], w.shape[1]), w.dtype), (v.T, idx.T))
    return out


def _rows_add(idx, v, y, n: int):
    """The (n, d) matrix whose row ``i`` sums ``v[b, j] y[b]`` over every ``(b, j)`` with
    ``idx[b, j] = i``: the transpose of the two above, a scatter-add of one (batch, d) block per column."""
    def add(acc, col):
        vj, ij = col
        return acc.at[ij].add(vj[:, None] * y), None

    out, _ = jax.lax.scan(add, jnp.zeros((n, y.shape[1]), y.dtype), (v.T, idx.T))
    return out


@jax.custom_vjp
def _decode(w_dec, values, idx):
    """``sum_j values[:, j] * w_dec[idx[:, j]]``: a decoder from the active latents only."""
    return _rows_sum(w_dec, values, idx)


def _decode_fwd(w_dec, values, idx):
    return _rows_sum(w_dec, values, idx), (w_dec, values, idx)


def _decode_bwd(res, g):
    w_dec, values, idx = res
    return _rows_add(idx, values, g, w_dec.shape[0]), _rows_dot(w_dec, idx, g), None


_decode.defvjp(_decode_fwd, _decode_bwd)


@jax.custom_vjp
def _decode_dense(codes, w_dec):
    """``codes @ w_dec``, whose gradient for ``w_dec`` is computed as ``(g.T @ codes).T`` with the
    transpose kept apart: XLA's CPU otherwise folds it into one product contracting both operands'
    first axes, which ran at 60% of the speed of the others (128 against 210 GFLOP/s for 1,024
    samples and latents, d = 256). The same products, the sums in another order; on an
    accelerator, the plain product."""
    return codes @ w_dec


def _decode_dense_fwd(codes, w_dec):
    return codes @ w_dec, (codes, w_dec)


def _decode_dense_bwd(res, g):
    codes, w_dec = res
    if jax.default_backend() != "cpu":
        return g @ w_dec.T, codes.T @ g
    return g @ w_dec.T, jax.lax.optimization_barrier(g.T @ codes).T


_decode_dense.defvjp(_decode_dense_fwd, _decode_dense_bwd)


@jax.custom_vjp
def _picked(pre, w_t, b, y, idx):
    """``pre[b, idx[b, j]]`` where ``pre = y @ w_t.T + b`` (computed without a gradient): the
    chosen pre-activations, whose gradients reach ``w_t``, ``b`` and ``y`` through the chosen
    entries only, never through the dense (batch, n_latents) product."""
    return jnp.take_along_axis(pre, idx, axis=1)


def _picked_fwd(pre, w_t, b, y, idx):
    return jnp.take_along_axis(pre, idx, axis=1), (w_t, y, idx)


def _picked_bwd(res, g):
    w_t, y, idx = res
    n = w_t.shape[0]
    db = jnp.zeros(n, g.dtype).at[idx.reshape(-1)].add(g.reshape(-1))
    return None, _rows_add(idx, g, y, n), db, _rows_sum(w_t, g, idx), None


_picked.defvjp(_picked_fwd, _picked_bwd)


def _gathered(params, centred, pre, k: int, allowed=None):
    """The top-``k`` latents of each sample, chosen on ``pre`` (``centred @ W_enc + b_enc``, no
    gradient): ``(values, idx)``, each (batch, k). Gradients reach only the chosen encoder columns
    and biases (a scatter), never the dense (batch, n_latents) matrix."""
    scores = pre if allowed is None else jnp.where(allowed[None, :], pre, -jnp.inf)
    idx = _top_k_indices(scores, k)
    return _picked(pre, params["W_enc"].T, params["b_enc"], centred, idx), idx


def _total_order(x):
    """The involution between float32 bits and int32 keys that XLA's TopK compares: keys order the
    floats as it does (``-0.0`` below ``0.0``, a NaN above ``inf`` or below ``-inf`` by its sign)."""
    return jnp.where(x < 0, x ^ jnp.int32(0x7FFFFFFF), x)


def _top_k_indices(scores, k: int):
    """``jax.lax.top_k(scores, k)[1]`` for float32 ``scores`` (rows, n), the same indices in the same
    order, from a top-k over far fewer entries. XLA's CPU TopK costs a few nanoseconds per entry and
    more per insertion, one row at a time; so each row is cut into blocks of ``width`` and only
    the ``k`` blocks with the largest maxima are searched (the top ``k`` entries lie in them).

    Exact, ties included: the blocks are chosen by TopK's own order (ties to the lower block) and
    searched in the order of their indices, so that a tie at the ``k``-th value falls to the lower
    index, as in one TopK over the row.
    """
    rows, n = scores.shape
    width = 1 << round(np.log2(np.sqrt(n / k))) if n >= 8 * k else 1
    if width < 4 or jax.default_backend() != "cpu":  # an accelerator's top-k has no such cost
        return jax.lax.top_k(scores, k)[1]
    n_blocks = -(-n // width)
    if n_blocks * width > n:  # padding at the lowest key (a NaN with every bit set ties it) and after every index: never chosen (n >= k)
        lowest = jax.lax.bitcast_convert_type(jnp.int32(-1), scores.dtype)
        scores = jnp.concatenate([scores, jnp.full((rows, n_blocks * width - n), lowest, scores.dtype)], axis=1)
    blocks = scores.reshape(rows, n_blocks, width)
    keys = _total_order(jax.lax.bitcast_convert_type(blocks, jnp.int32))
    maxima = jax.lax.bitcast_convert_type(_total_order(jnp.max(keys, axis=2)), scores.dtype)
    chosen = jnp.sort(jax.lax.top_k(maxima, k)[1], axis=1)
    candidates = jnp.take_along_axis(blocks, chosen[:, :, None], axis=1).reshape(rows, k * width)
    _, at = jax.lax.top_k(candidates, k)
    return jnp.take_along_axis(chosen, at // width, axis=1) * width + at % width


def _row_kth_keys(scores, k: int):
    """Order-preserving unsigned keys of ``scores`` and, per row, the key of its ``k``-th largest
    entry: exact, by a 32-step bisection over the keys (no sort, no top-k). ``keys >= kth`` then
    holds the top ``k`` of each row, and every entry tied with the ``k``-th."""
    keys = jax.lax.bitcast_convert_type(_total_order(jax.lax.bitcast_convert_type(scores, jnp.int32)), jnp.uint32)
    keys = keys ^ jnp.uint32(0x80000000)  # TopK's order, as unsigned integers
    lo = jnp.zeros(scores.shape[0], jnp.uint32)  # count(keys >= lo) >= k throughout
    hi = jnp.full(scores.shape[0], 0xFFFFFFFF, jnp.uint32)

    def body(_, bounds):
        lo, hi = bounds
        gap = hi - lo
        mid = lo + gap // 2 + (gap & 1)
        enough = jnp.sum(keys >= mid[:, None], axis=1) >= k
        return jnp.where(enough, mid, lo), jnp.where(enough, hi, mid - 1)

    lo, _ = jax.lax.fori_loop(0, 32, body, (lo, hi))
    return keys, lo


def _aux_loss(params, x, err, dead, pre, k_aux: int, sparse: bool):
    """AuxK (Gao et al. 2024): reconstruct the residual from the top-``k_aux`` dead latents.

    Only dead latents are trained by it: the decoder bias and the residual are held fixed. Both
    paths choose on ``pre`` (the main loss's pre-activations, without a gradient). TopK
    (``sparse``) works from the chosen latents only; the dense kinds decode a (batch, n_latents)
    matrix of the chosen codes, as their main loss does.
    """
    centred = x - jax.lax.stop_gradient(params["b_dec"])
    if sparse:
        values, idx = _gathered(params, centred, pre, k_aux, allowed=dead)
        values = jnp.where(dead[idx], jax.nn.relu(values), 0.0)
        recon = _decode(params["W_dec"], values, idx)
    else:
        pre_aux = centred @ params["W_enc"] + params["b_enc"]
        keys, kth = _row_kth_keys(jnp.where(dead[None, :], pre, -jnp.inf), k_aux)
        chosen = dead[None, :] & (keys >= kth[:, None])
        recon = _decode_dense(jnp.where(chosen, jax.nn.relu(pre_aux), 0.0), params["W_dec"])
    aux_err = jax.lax.stop_gradient(err) - recon
    return jnp.sum(aux_err**2, axis=1).mean()


def _loss(params, x, dead, step, hp: _Hyper, l1_warmup=1):
    if hp.kind == "topk":
        # Sparse all the way: one dense product chooses the latents, everything else touches k of them.
        centred = x - params["b_dec"]
        pre = jax.lax.stop_gradient(centred @ params["W_enc"] + params["b_enc"])
        values, idx = _gathered(params, centred, pre, hp.k)
        values = jax.nn.relu(values)
        recon = _decode(params["W_dec"], values, idx) + params["b_dec"]
        fired = jnp.zeros(hp.n_latents, jnp.int32).at[idx].max((values > 0).astype(jnp.int32)) > 0
        sparsity = jnp.zeros(())
    else:
        pre, codes, sparsity = _encode(params, x, hp)
        recon = _decode_dense(codes, params["W_dec"]) + params["b_dec"]
        fired = jnp.any(codes > 0, axis=0)
        pre = jax.lax.stop_gradient(pre)
    err = x - recon
    mse = jnp.sum(err**2, axis=1).mean()
    if hp.kind == "relu":
        warm = jnp.minimum(1.0, (step + 1) * (1 / l1_warmup))  # (step + 1) / l1_warmup, as XLA compiled it
        penalty = warm * hp.l1_coefficient * sparsity
    elif hp.kind == "jumprelu":
        penalty = hp.sparsity_coefficient * sparsity
    else:
        penalty = 0.0
    if hp.aux_coefficient > 0:
        aux_fn = functools.partial(_aux_loss, k_aux=hp.k_aux, sparse=hp.kind == "topk")
        aux = jax.lax.cond(jnp.any(dead), aux_fn, lambda *a: jnp.zeros(()), params, x, err, dead, pre)
        loss = mse + penalty + hp.aux_coefficient * aux
    else:
        loss = mse + penalty
    return loss, (mse, fired)


def _optimizer(hp: _Hyper, schedule: _Schedule) -> optax.GradientTransformation:
    """Adam at ``lr``, decayed linearly to zero over the last fifth of training (optax's joined
    constant and linear schedules, written out so that the step counts may be traced)."""
    def rate(step):  # the divisions are products with the reciprocal, as XLA compiles a division by a constant:
        # the same rates, bit for bit, as the schedule with the counts as constants
        count = jnp.clip(step - schedule.decay_start, 0, schedule.decay_steps)
        return jnp.where(step < schedule.decay_start, hp.lr, hp.lr * (1 - count * (1 / schedule.decay_steps)))

    return optax.adam(rate)


@functools.partial(jax.jit, static_argnames="hp")
def _train_block(state, xs, n, schedule: _Schedule, hp: _Hyper):
    """Run the first ``n`` steps of ``xs`` (steps, batch, d_model); returns the state and each
    step's mean squared error (the entries past ``n`` are zero). Compiled once per (hp, shapes):
    the number of steps and the schedule are traced, so a short last block and runs of another
    length reuse the compilation."""
    optimizer = _optimizer(hp, schedule)

    def one(i, carry):
        (params, opt_state, since_fired, step), mses = carry
        dead = since_fired >= hp.dead_after
        (_, (mse, fired)), grads = jax.value_and_grad(_loss, has_aux=True)(
            params, xs[i], dead, step, hp, schedule.l1_warmup)
        w = params["W_dec"]
        grads["W_dec"] = grads["W_dec"] - jnp.sum(grads["W_dec"] * w, axis=1, keepdims=True) * w
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params["W_dec"] = params["W_dec"] / jnp.linalg.norm(params["W_dec"], axis=1, keepdims=True)
        since_fired = jnp.where(fired, 0, since_fired + 1)
        return (params, opt_state, since_fired, step + 1), mses.at[i].set(mse)

    return jax.lax.fori_loop(0, n, one, (state, jnp.zeros(xs.shape[0], xs.dtype)))


def _check(seed, n_latents, kind, k, batch_size, n_steps, lr, l1_coefficient, sparsity_coefficient, d: int, **extra) -> None:
    p = Problems()
    p.integer("n_latents", n_latents, low=1, high=1 << 20)
    p.integer("seed", seed, low=0)
    p.choice("kind", kind, KINDS)
    if kind in ("topk", "batchtopk"):
        if k is None:
            p.add(f"k is required for kind={kind!r} (the number of active latents per sample)")
        else:
            p.integer("k", k, low=1, high=n_latents if isinstance(n_latents, int) else None)
    p.integer("batch_size", batch_size, low=1)
    p.integer("n_steps", n_steps, low=1)
    p.number("lr", lr, low=0, low_open=True)
    p.number("l1_coefficient", l1_coefficient, low=0)
    p.number("sparsity_coefficient", sparsity_coefficient, low=0)
    p.number("jumprelu_bandwidth", extra["jumprelu_bandwidth"], low=0, low_open=True)
    p.number("initial_threshold", extra["initial_threshold"], low=0, low_open=True)
    p.number("aux_coefficient", extra["aux_coefficient"], low=0)
    p.integer("dead_after", extra["dead_after"], low=1)
    p.raise_if_any("planted.methods.sae")


def sae(
    activations,
    n_latents: int,
    *,
    kind: str = "relu",
    seed: int,
    k: int | None = None,
    n_steps: int = 4000,
    batch_size: int = 1024,
    lr: float = 3e-3,
    l1_coefficient: float = 2.0,
    sparsity_coefficient: float = 1.0,
    jumprelu_bandwidth: float = 0.05,
    initial_threshold: float = 0.5,
    aux_coefficient: float = 1 / 32,
    dead_after: int = 500,
    progress: bool | None = None,
) -> Dictionary:
    """Train a sparse autoencoder and return its decoder as a dictionary.

    Parameters
    ----------
    activations : (n_samples, d_model) array, or an iterable of (batch, d_model) arrays
        An array is sampled in shuffled epochs; an iterable (e.g. a generator over
        ``toy.batches``) is streamed once and re-batched to ``batch_size``; training ends after
        ``n_steps`` or when the stream does.
    n_latents : int
        Dictionary size.
    kind : {"relu", "topk", "batchtopk", "jumprelu"}
        ReLU with an L1 penalty (``l1_coefficient``); TopK keeping ``k`` latents per sample;
        BatchTopK keeping ``k * batch`` latents per batch (a global threshold, the mean over the
        second half of training of the smallest kept activation, is used at inference); JumpReLU with learned thresholds
        and an L0 penalty (``sparsity_coefficient``) trained through straight-through
        pseudo-derivatives with a rectangle kernel of width ``jumprelu_bandwidth``.
    seed : int
    k : int, required for topk and batchtopk
    n_steps, batch_size, lr : training length, batch size, Adam learning rate (decayed linearly to
        zero over the last fifth of training)
    l1_coefficient : float
        ReLU: weight of the L1 penalty on codes (inputs are scaled to mean squared norm
        ``d_model``; the penalty is ramped up over the first 5% of steps).
    sparsity_coefficient, jumprelu_bandwidth, initial_threshold : float
        JumpReLU: weight of the L0 penalty, width of the pseudo-derivative's kernel, and the
        thresholds' starting value (in scaled units).
    aux_coefficient : weight of the AuxK loss on dead latents (dead after ``dead_after`` steps
        without firing)

    The defaults (4000 steps of 1024, lr 3e-3, L1 2.0) recover the ``sharkey2022`` preset with
    MMCS 0.997. The encoder starts as the decoder's transpose and the decoder bias as the mean
    input.
    progress : bool, optional
        Report progress (default: on; a bar with the time left on a terminal or in a notebook, a
        line every 30 s elsewhere once training has run that long); False is silent.

    Returns
    -------
    Dictionary
        ``directions`` (n_latents, d_model), unit rows (the decoder); ``encoder`` reproducing the
        trained encoder; ``decoder_bias``; ``codes`` of ``activations`` when it is an array (CSR).
    """
    is_array = isinstance(activations, np.ndarray) or hasattr(activations, "__array__")
    if is_array:
        x = as_matrix("activations", activations)
        d = x.shape[1]
    elif isinstance(activations, Iterable) and not isinstance(activations, (str, bytes, dict)):
        stream = _rebatch(activations, batch_size if isinstance(batch_size, int) and batch_size > 0 else 1)
        first = next(stream, None)
        if first is None:
            raise ValueError("activations is an empty iterable; it must yield (batch, d_model) arrays")
        d = first.shape[1]
        stream = itertools.chain([first], stream)
    else:
        raise ValueError(
            "activations must be a (n_samples, d_model) array or an iterable of (batch, d_model) arrays, "
            f"got {type(activations).__name__}"
        )
    _check(seed, n_latents, kind, k, batch_size, n_steps, lr, l1_coefficient, sparsity_coefficient, d,
           jumprelu_bandwidth=jumprelu_bandwidth, initial_threshold=initial_threshold,
           aux_coefficient=aux_coefficient, dead_after=dead_after)
    rng = np.random.default_rng([seed, 303])
    # Inputs are scaled so their mean squared norm is d_model (estimated on the first batch of a stream).
    mean_sq = float(np.mean(np.sum((x if is_array else first).astype(np.float64) ** 2, axis=1)))
    if mean_sq == 0:
        raise ValueError("activations are all zero; an SAE needs signal to fit")
    scale = float(np.sqrt(d / mean_sq))
    blocks = _array_blocks(x, batch_size, n_steps, rng) if is_array else _stream_blocks(stream, batch_size, n_steps)

    hp = _Hyper(
        kind=kind,
        n_latents=n_latents,
        k=k or 0,
        l1_coefficient=float(l1_coefficient),
        sparsity_coefficient=float(sparsity_coefficient),
        bandwidth=float(jumprelu_bandwidth),
        aux_coefficient=float(aux_coefficient),
        k_aux=max(1, min(n_latents, d // 2)),
        dead_after=int(dead_after),
        batch_size=batch_size,
        lr=float(lr),
    )
    schedule = jax.tree.map(jnp.int32, _Schedule.of(n_steps))
    w_dec = rng.standard_normal((n_latents, d)).astype(np.float32)
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    params = {
        "W_enc": jnp.asarray(w_dec.T.copy()),
        "b_enc": jnp.zeros(n_latents, jnp.float32),
        "W_dec": jnp.asarray(w_dec),
        "b_dec": jnp.asarray(scale * (x if is_array else first).mean(axis=0), jnp.float32),
    }
    if kind == "jumprelu":
        params["log_threshold"] = jnp.full(n_latents, np.log(initial_threshold), jnp.float32)
    state = (params, _optimizer(hp, schedule).init(params), jnp.zeros(n_latents, jnp.int32), jnp.zeros((), jnp.int32))
    threshold_sum, threshold_count = 0.0, 0
    steps_done = 0
    with Progress(n_steps, f"sae[{kind}]", enabled=progress) as bar:
        length = min(_BLOCK, 1 << (n_steps - 1).bit_length())  # 32, or a power of two for shorter runs
        last = None  # the block in flight: the next one is drawn and scaled while it trains (BatchTopK's
        # threshold, read in the second half of training, waits for each block instead)
        for block in blocks:
            block = block * np.float32(scale)
            steps = block.shape[0]
            padded = block if steps == length else np.concatenate([block, np.zeros((length - steps, *block.shape[1:]), block.dtype)])
            # device_put copies once; jnp.asarray took twice as long for a block of 32 MB
            state, mse = _train_block(state, jax.device_put(padded), jnp.int32(steps), schedule, hp)
            steps_done += steps
            if kind == "batchtopk" and steps_done > n_steps // 2:  # once the encoder has settled
                threshold_sum, threshold_count = _track_threshold(state[0], block, hp, threshold_sum, threshold_count)
            if last is not None:
                _report(bar, *last, d)
            last = (mse, steps)
        if last is not None:
            _report(bar, *last, d)
    params = jax.tree.map(np.asarray, state[0])
    return _to_dictionary(params, hp, scale, threshold_sum / max(threshold_count, 1), x if is_array else None)


def _report(bar: Progress, mse: jax.Array, steps: int, d: int) -> None:
    """Advance the progress bar by a finished block (this waits for it) and show its last error."""
    last = float(np.asarray(mse)[steps - 1])  # waits for this block only
    bar.update(steps)
    bar.note(f"mse {last / d:.4f}")


def _track_threshold(params, block: np.ndarray, hp: _Hyper, total: float, count: int) -> tuple[float, int]:
    """Running mean of the smallest activation BatchTopK keeps (its inference threshold)."""
    x = jnp.asarray(block[-1])
    pre = jax.nn.relu((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"])
    t = float(_batch_threshold(pre, hp.k * pre.shape[0]))
    return total + t, count + 1


def _to_dictionary(params, hp: _Hyper, scale: float, batch_threshold: float, x: np.ndarray | None) -> Dictionary:
    """Express the trained SAE in input units: codes and biases divide by ``scale``."""
    w_dec = params["W_dec"].astype(np.float32)
    pre_bias = params["b_dec"] / scale
    bias = params["b_enc"] / scale
    if hp.kind == "relu":
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="relu")
    elif hp.kind == "topk":
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="topk", k=hp.k)
    elif hp.kind == "batchtopk":
        threshold = np.full(hp.n_latents, max(batch_threshold, 0.0) / scale, np.float32)
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="threshold", threshold=threshold)
    else:
        threshold = np.exp(params["log_threshold"]) / scale
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="threshold", threshold=threshold)
    codes = encoder.sparse(x) if x is not None else None
    return Dictionary(directions=w_dec, codes=codes, encoder=encoder, decoder_bias=pre_bias, method=f"sae-{hp.kind}")


def _array_blocks(x: np.ndarray, batch_size: int, n_steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of (steps, batch, d) drawn from shuffled epochs over ``x``."""
    n = x.shape[0]
    batch = min(batch_size, n)
    order = rng.permutation(n)
    position = 0
    done = 0
    while done < n_steps:
        steps = min(_BLOCK, n_steps - done)
        idx = np.empty((steps, batch), dtype=np.int64)
        for s in range(steps):
            if position + batch > n:
                order = rng.permutation(n)
                position = 0
            idx[s] = order[position : position + batch]
            position += batch
        yield x[idx]
        done += steps


def _rebatch(stream: Iterable, batch_size: int) -> Iterator[np.ndarray]:
    """Re-cut an iterable of (m, d) arrays into (batch_size, d) float32 arrays (last one dropped if short)."""
    pending: list[np.ndarray] = []
    count = 0
    width = None
    for i, item in enumerate(stream):
        a = as_matrix(f"activations batch {i}", item, cols=width)
        width = a.shape[1]
        pending.append(a)
        count += a.shape[0]
        while count >= batch_size:
            allp = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield allp[:batch_size]
            pending, count = [allp[batch_size:]], count - batch_size


def _stream_blocks(stream: Iterator[np.ndarray], batch_size: int, n_steps: int) -> Iterator[np.ndarray]:
    done = 0
    while done < n_steps:
        steps = min(_BLOCK, n_steps - done)
        batches = list(itertools.islice(stream, steps))
        if not batches:
            return
        if batches[0].shape[0] != batch_size:
            return
        yield np.stack(batches)
        done += len(batches)
