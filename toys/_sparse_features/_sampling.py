"""Drawing samples from a plan: chunks of ``CHUNK_SIZE`` in fixed parts on a thread pool; the
features that fire (``_fire``), then their magnitudes and the activations."""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
from scipy.special import log_ndtr, ndtr

from planted.groundtruth._threads import map_parts
from planted.toys._sparse_features._config import _STREAM_SAMPLES, CHUNK_SIZE, SparseFeaturesConfig
from planted.toys._sparse_features._plan import _Plan


def _sample_chunk(plan: _Plan, chunk: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Samples ``chunk * CHUNK_SIZE ...`` of the stream: (activations, codes).

    The chunk is cut into ``_PARTS`` fixed parts, part ``j`` drawn from the stream
    ``[seed, 202, chunk, j + 1]``; the parts run side by side on the cores (``map_parts``: NumPy
    releases the GIL while it draws; one after the other where the BLAS is limited to one
    thread), the BLAS on one thread, and the result does not depend on how many threads there are.
    """
    parts = map_parts(functools.partial(_sample_part, plan, chunk), range(_PARTS))
    codes = sp.vstack([p[0] for p in parts], format="csr")
    acts = np.concatenate([p[1] for p in parts])
    return acts, codes


_PARTS = 4


def _sample_part(plan: _Plan, chunk: int, part: int) -> tuple[sp.csr_matrix, np.ndarray]:
    config = plan.config
    rng = np.random.default_rng([config.seed, _STREAM_SAMPLES, chunk, part + 1])
    n, f = CHUNK_SIZE // _PARTS, config.n_features
    key = np.sort(np.concatenate([rows * f + feats for rows, feats in _fire(plan, rng, n)]))
    rows, feats = key // f, key % f
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    values = _magnitudes(config, rng, feats.size)
    codes = sp.csr_matrix((values, feats.astype(np.int32), indptr), shape=(n, f))
    acts = np.asarray(codes @ plan.decoder, dtype=np.float32)
    if config.noise_std > 0:
        acts += config.noise_std * rng.standard_normal(acts.shape, dtype=np.float32)
    return codes, acts


def _fire(plan: _Plan, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Which features fire on ``n`` samples: (rows, features) int64 arrays per level, each pair once.

    Work is proportional to the features that fire (plus the copula's low-rank product): the top
    features are drawn as a whole, then each level's children only under the parents that fired.
    Given the copula's factor ``u``, features fire independently with probability ``Phi(c)``.
    """
    u = None
    if plan.loadings is not None:
        u = rng.standard_normal((n, plan.loadings.shape[1]), dtype=np.float32)
        rows, feats = _fire_top_copula(plan, rng, u)
    else:
        rows, feats = _fire_top_independent(plan, rng, n)
    key = np.sort(rows * plan.config.n_features + feats)
    key = key[np.concatenate([key[:1] == key[:1], key[1:] != key[:-1]])]  # a feature hit twice fires once
    rows, feats = key // plan.config.n_features, key % plan.config.n_features
    out = [(rows, feats)]
    parent_first = 0
    for first, n_parents, b in plan.levels:
        fired = (feats >= parent_first) & (feats < parent_first + n_parents)
        rows, parent = rows[fired], feats[fired] - parent_first
        children = first + parent[:, None] * b + np.arange(b)  # (fired parents, b)
        if u is not None:
            c = plan.offsets[children] - np.einsum("ir,ijr->ij", u[rows], plan.loadings[children])
            p = ndtr(c.astype(np.float64))
        else:
            p = plan.base_probabilities[children]
        fire = rng.random(children.shape) < p
        if plan.config.mutually_exclusive and b > 1:
            # Where two or more siblings fire, keep one of them uniformly.
            clash = np.nonzero(fire.sum(axis=1) >= 2)[0]
            if clash.size:
                scores = np.where(fire[clash], rng.random((clash.size, b)), -1.0)
                fire[clash] = np.arange(b) == scores.argmax(axis=1)[:, None]
        i, j = np.nonzero(fire)
        rows, feats = rows[i], children[i, j]
        out.append((rows, feats))
        parent_first = first
    return out


def _fire_top_independent(plan: _Plan, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent firing of the top features as a Poisson process over their stacked rates.

    Feature ``i`` owns an interval of length ``-log(1 - p_i)`` on a line of total length
    ``L``; each sample draws ``Poisson(L)`` uniform points on it and feature ``i`` fires when at least
    one lands in its interval, which happens with probability ``1 - exp(-rate) = p_i``,
    independently across features. The intervals are a little longer than the rates, so that
    rounding never shortens one, and a point is kept with probability ``rate / interval``. The cost
    is the number of points, about the number that fire.
    """
    rows = [np.repeat(np.arange(n), plan.always.size)]
    feats = [np.tile(plan.always, n)]
    if plan.rated.size:
        total = plan.cumulative_rates[-1]
        counts = rng.poisson(total, n)
        points = rng.random(int(counts.sum())) * total
        at = np.minimum(np.searchsorted(plan.cumulative_rates, points, side="right"), plan.rated.size - 1)
        interval = plan.cumulative_rates[at] - np.where(at > 0, plan.cumulative_rates[at - 1], 0.0)
        keep = rng.random(at.size) * interval < plan.rates[at]
        rows.append(np.repeat(np.arange(n, dtype=np.int64), counts)[keep])
        feats.append(plan.rated[at[keep]])
    return np.concatenate(rows), np.concatenate(feats)


_BLOCK = 16  # features per block of the copula's thinned Poisson draws
_EXACT_ABOVE = 8.0 * _BLOCK  # a block whose bound sums above this is drawn feature by feature instead
_SLAB = 1 << 22  # samples x top features held at once
def _fire_top_copula(plan: _Plan, rng: np.random.Generator, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top features under the copula, given the factor ``u``: fire with probability ``Phi(c)``.

    Thinned Poisson processes. ``g(c) = -log(1 - Phi(c))`` is bounded by ``g_hat``, the exponential of
    its tangent in log space, which is linear in ``u`` and so one matrix product for all features.
    Each sample draws ``Poisson(sum of g_hat)`` points, spread over blocks of ``_BLOCK`` features by
    their sums; a point picks a feature of its block in proportion to ``g_hat`` and is kept with
    probability ``g(c) / g_hat``. A feature fires when a kept point lands on it: probability
    ``1 - exp(-g(c)) = Phi(c)``, independently. The work per feature is the product and one
    exponential; the draws are about as many as the features that fire. A block whose bound is
    large is drawn with one Bernoulli draw per feature instead.
    """
    top = plan.top
    n, f = u.shape[0], top.size
    n_blocks = -(-f // _BLOCK)
    slab = max(1, _SLAB // (n_blocks * _BLOCK))
    rows, feats = [], []
    for start in range(0, n, slab):
        us = u[start : start + slab]
        m = us.shape[0]
        rate = np.empty((m, n_blocks * _BLOCK), np.float32)
        rate[:, f:] = 0.0
        np.matmul(np.concatenate([us, np.ones((m, 1), np.float32)], axis=1), plan.bound_loadings, out=rate[:, :f])
        with np.errstate(over="ignore"):
            np.exp(rate[:, :f], out=rate[:, :f])
        rate = rate.reshape(m, n_blocks, _BLOCK)
        totals = (rate.reshape(-1, _BLOCK) @ np.ones(_BLOCK, np.float32)).reshape(m, n_blocks)  # a BLAS sum
        exact = ~(totals <= _EXACT_ABOVE)
        totals = totals.astype(np.float64)
        totals[exact] = 0.0
        # One Poisson count per sample, its points spread over the sample's blocks by their totals.
        # Each total is raised past the float32 sum's rounding and the float64 running sum's, so a
        # block's interval on the line always covers its exact sum; the excess is thinned below.
        totals += (totals * 4e-6 + 8 * np.finfo(np.float64).eps * totals.sum()) * (totals > 0)
        cumulative = np.cumsum(totals.ravel())
        row_end = cumulative[n_blocks - 1 :: n_blocks]
        row_start = np.concatenate([[0.0], row_end[:-1]])
        counts = rng.poisson(row_end - row_start)
        r = np.repeat(np.arange(m), counts)
        position = row_start[r] + rng.random(r.size) * (row_end - row_start)[r]
        position = np.minimum(position, np.nextafter(row_end, -np.inf)[r])  # never past the row
        at = np.searchsorted(cumulative, position, side="right")
        interval = cumulative[at] - np.where(at > 0, cumulative[at - 1], 0.0)
        blk = at - r * n_blocks
        cumulative = np.cumsum(rate[r, blk], axis=1, dtype=np.float64)
        target = rng.random(r.size) * cumulative[:, -1]
        j = np.minimum((cumulative <= target[:, None]).sum(axis=1), _BLOCK - 1)
        points = np.arange(r.size)
        bound = cumulative[points, j] - np.where(j > 0, cumulative[points, j - 1], 0.0)
        feat = top[blk * _BLOCK + j]
        c = plan.offsets[feat] - np.einsum("ir,ir->i", us[r], plan.loadings[feat])
        # kept at rate interval * (sum / interval) * (g_hat / sum) * (g / g_hat) = g
        keep = rng.random(r.size) * bound * interval < -log_ndtr(-c.astype(np.float64)) * cumulative[:, -1]
        rows.append(r[keep] + start)
        feats.append(feat[keep])
        r, blk = np.nonzero(exact)
        if r.size:
            cols = blk[:, None] * _BLOCK + np.arange(_BLOCK)
            valid = cols < f
            cols = top[np.minimum(cols, f - 1)]
            c = plan.offsets[cols] - np.einsum("ir,ijr->ij", us[r], plan.loadings[cols])
            i, j = np.nonzero((rng.random(cols.shape) < ndtr(c.astype(np.float64))) & valid)
            rows.append(r[i] + start)
            feats.append(cols[i, j])
    return np.concatenate(rows).astype(np.int64), np.concatenate(feats).astype(np.int64)


def _magnitudes(config: SparseFeaturesConfig, rng: np.random.Generator, size: int) -> np.ndarray:
    mean = config.magnitude_mean
    if config.magnitude == "constant":
        return np.full(size, mean, dtype=np.float32)
    if config.magnitude == "uniform":
        return (2 * mean * rng.random(size, dtype=np.float32)).astype(np.float32)
    if config.magnitude == "exponential":
        return rng.exponential(mean, size).astype(np.float32)
    return np.abs(rng.normal(mean, config.magnitude_std, size)).astype(np.float32)
