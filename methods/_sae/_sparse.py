"""TopK's sparse step: the top-k choice, and decoding and gradients that touch only the chosen
latents, one latent slot at a time; the dense kinds' decoder product and AuxK's exact per-row
bisection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


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
