"""Wiring: the planted connections of a synthetic connectome.

A degree-corrected stochastic block model (Karrer & Newman 2011): neuron i in module m_i
connects to j with probability ``density * theta_i * theta_j * B[m_i, m_j] * f(d_ij)``, where
``B`` keeps a fraction ``mixing`` of the expected connections between modules, ``theta`` are
lognormal degree propensities (``degree_sigma``) raised by ``hub_boost`` for the planted hubs,
and ``f(d) = exp(-d / length_scale)`` ties wiring to distance when neurons have positions in
the unit square or cube (``dim`` 2 or 3, 1 mm a side). ``rich_club`` adds connections among
the hubs with that probability. A fraction ``exc_fraction`` of neurons is excitatory; every
outgoing weight of a neuron has its sign (Dale's law) and a lognormal magnitude (median
``weight``, log-sd ``weight_sigma``; inhibitory ones ``inhibition`` times stronger). Edges are
drawn per module pair as a Poisson number of endpoint pairs sampled by propensity (so 10^5
neurons and 5 x 10^7 synapses take seconds and are stored sparse); duplicates and self-loops
are dropped, and distance is applied by thinning. ``reciprocity`` and ``clustering`` (floors
for the fraction of connections reciprocated and the directed graph's average clustering
coefficient, ``wiring_statistics``; 0 keeps the wiring as drawn; clustering brings
reciprocity with it) are reached by swapping the targets of connections inside modules, which
keeps every neuron's in- and out-degree and the connections between modules (see
``_rewire``); closing triangles favours near neighbours, so with distance-dependent wiring
the connections also get shorter. ``inhibition=0`` blocks the inhibitory synapses (as
the ChaLearn simulations did): they are not in the wiring.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from planted.toys._connectome._config import _STREAM_WIRING, ConnectomeConfig


def _sorted_unique(codes: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy's hash-based unique is several times slower here)."""
    codes = np.sort(codes)
    return codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if codes.size else codes


def _distinct_pairs(rng, count: int, n: int, draw, keep=None) -> np.ndarray:
    """``count`` distinct (pre, post) pairs as int64 codes ``pre * n + post``: candidates from
    ``draw(m) -> (pre, post)``, self-pairs dropped, thinned by ``keep(pre, post) -> probability``,
    redrawn until enough distinct ones remain (a random subset of them when more do)."""
    codes = np.zeros(0, np.int64)
    rate = 1.0
    for _ in range(1000):
        need = count - codes.size
        if need <= 0:
            break
        m = int(need / rate * 1.1) + 16
        pre, post = draw(m)
        ok = pre != post
        if keep is not None:
            ok &= rng.random(m) < keep(pre, post)
        rate = max(ok.mean(), 1e-3)
        codes = _sorted_unique(np.concatenate([codes, pre[ok].astype(np.int64) * n + post[ok]]))
    if codes.size > count:
        codes = np.sort(rng.choice(codes, size=count, replace=False))
    return codes


def _sampler(rng, members: np.ndarray, weights: np.ndarray):
    """Draw ``m`` members with probability proportional to ``weights``: the member whose interval of
    the cumulative weights holds a uniform draw."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    locate = _locator(cdf)
    return lambda m: members[np.minimum(locate(rng.random(m)), members.size - 1)]


def _locator(cdf: np.ndarray):
    """``u -> np.searchsorted(cdf, u, side="right")`` for uniforms u in [0, 1), the same indices
    found through a guide table (Chen & Asau 1974): 2^b equal buckets of [0, 1), each knowing the
    first index its lower edge maps to, then a step forward per cumulative value passed inside the
    bucket (a fraction of one on average with 4 buckets per value). Binary searches over a large
    ``cdf`` cost a cache miss per level; flywire_scale draws 120 million members."""
    buckets = 1 << max(4, int(np.ceil(np.log2(4 * cdf.size))))  # a power of two: u * buckets is exact
    guide = np.searchsorted(cdf, np.arange(buckets) / buckets, side="right")
    padded = np.append(cdf, np.inf)

    def locate(u: np.ndarray) -> np.ndarray:
        index = guide[(u * buckets).astype(np.int64)]
        moving = np.flatnonzero(padded[index] <= u)
        while moving.size:
            index[moving] += 1
            moving = moving[padded[index[moving]] <= u[moving]]
        return index

    return locate


def _wiring(cfg: ConnectomeConfig):
    """Weights (CSR, [pre, post]), cell types, positions, modules, hubs."""
    rng = np.random.default_rng([cfg.seed, _STREAM_WIRING])
    n, k = cfg.n_neurons, cfg.n_modules
    modules = rng.permutation(np.arange(n) % k)
    positions = rng.random((n, cfg.dim))
    theta = np.exp(cfg.degree_sigma * rng.normal(size=n)) if cfg.degree_sigma > 0 else np.ones(n)
    n_hubs = int(round(cfg.hub_fraction * n))
    hubs = np.zeros(n, bool)
    hubs[rng.choice(n, size=n_hubs, replace=False)] = True
    theta[hubs] *= cfg.hub_boost
    distance = None
    if cfg.length_scale > 0:
        def distance(pre, post):
            return np.exp(-np.linalg.norm(positions[pre] - positions[post], axis=1) / cfg.length_scale)
    # Expected edges, split between module pairs: (1 - mixing) within modules, mixing across,
    # each part in proportion to the modules' total propensities.
    total = cfg.density * n * (n - 1)
    strength = np.bincount(modules, weights=theta, minlength=k)
    within = strength**2 / (strength**2).sum()
    across = np.outer(strength, strength)
    np.fill_diagonal(across, 0)
    across = across / across.sum() if k > 1 else across
    mixing = cfg.mixing if k > 1 else 0.0
    expected = total * ((1 - mixing) * np.diag(within) + mixing * across)
    samplers = [_sampler(rng, np.flatnonzero(modules == a), theta[modules == a]) for a in range(k)]
    parts = []
    for a in range(k):
        for b in range(k):
            if expected[a, b] <= 0:
                continue
            count = int(rng.poisson(expected[a, b]))
            parts.append(_distinct_pairs(rng, count, n, lambda m, a=a, b=b: (samplers[a](m), samplers[b](m)), distance))
    if cfg.rich_club > 0 and n_hubs > 1:
        hub_index = np.flatnonzero(hubs)
        count = int(rng.binomial(n_hubs * (n_hubs - 1), cfg.rich_club))
        draw = _sampler(rng, hub_index, np.ones(n_hubs))
        parts.append(_distinct_pairs(rng, count, n, lambda m: (draw(m), draw(m))))
    codes = _sorted_unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    if cfg.reciprocity > 0 or cfg.clustering > 0:
        codes = _rewire(rng, codes, n, modules, cfg.reciprocity, cfg.clustering, distance)
    pre, post = np.divmod(codes, n)
    types = np.where(rng.random(n) < cfg.exc_fraction, 1, -1).astype(np.int8)
    magnitude = cfg.weight * np.exp(cfg.weight_sigma * rng.normal(size=codes.size))
    values = np.where(types[pre] > 0, magnitude, -cfg.inhibition * magnitude).astype(np.float32)
    weights = sp.csr_matrix((values, (pre, post)), shape=(n, n))
    weights.eliminate_zeros()  # inhibition=0: inhibitory synapses blocked
    weights.sort_indices()
    return weights, types, positions, modules, hubs


def _member(codes: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query code is in the sorted array ``codes``."""
    if not codes.size:
        return np.zeros(queries.shape, bool)
    return codes[np.minimum(np.searchsorted(codes, queries), codes.size - 1)] == queries


def _neighbour(m: sp.csr_matrix, nodes: np.ndarray, rng) -> np.ndarray:
    """A uniformly random column of each node's row of ``m``; -1 for a node of -1 or an empty row."""
    ok = nodes >= 0
    x = np.where(ok, nodes, 0)
    start, count = m.indptr[x], np.diff(m.indptr)[x]
    ok &= count > 0
    pick = start + np.minimum((rng.random(x.size) * count).astype(np.int64), np.maximum(count - 1, 0))
    return np.where(ok, m.indices[np.minimum(pick, max(m.indices.size - 1, 0))], -1) if m.indices.size else np.full(x.size, -1)


def wiring_statistics(weights: sp.spmatrix) -> tuple[float, float]:
    """``(reciprocity, clustering)`` of a directed wiring: the fraction of connections whose
    reverse is also a connection, and the average clustering coefficient of the directed graph
    (Fagiolo 2007, as ``networkx.average_clustering`` of a ``DiGraph``): for each neuron, the
    directed triangles through it over the number its in-, out- and reciprocated degrees allow,
    averaged over all neurons (0 for those with fewer than two)."""
    coo = sp.coo_matrix(weights)
    n = coo.shape[0]
    keep = (coo.data != 0) & (coo.row != coo.col)
    codes = _sorted_unique(coo.row[keep].astype(np.int64) * n + coo.col[keep])
    return _statistics(codes, n)[:2]


def _statistics(codes: np.ndarray, n: int):
    """Reciprocity, directed average clustering, ``S = A + A^T`` (CSR with sorted indices: 2 where
    a pair is connected both ways) and each neuron's number of possible directed triangles."""
    pre, post = np.divmod(codes, n)
    both = _member(codes, post * n + pre)
    reciprocity = float(both.mean()) if codes.size else 0.0
    s = sp.csr_matrix((np.ones(2 * codes.size), (np.concatenate([pre, post]), np.concatenate([post, pre]))), shape=(n, n))
    s.sum_duplicates()
    total = np.bincount(pre, minlength=n) + np.bincount(post, minlength=n)
    possible = (total * (total - 1) - 2 * np.bincount(pre[both], minlength=n)).astype(np.float64)
    triangles = np.asarray((s @ s).multiply(s).sum(axis=1)).ravel() / 2  # (S^3)_ii / 2
    local = np.divide(triangles, possible, out=np.zeros(n), where=possible > 0)
    return reciprocity, float(local.mean()), s, possible


def _first(keys: np.ndarray) -> np.ndarray:
    """Whether each key is the first of its value."""
    out = np.zeros(keys.size, bool)
    out[np.unique(keys, return_index=True)[1]] = True
    return out


def _rewire(rng, codes: np.ndarray, n: int, modules: np.ndarray, reciprocity: float, clustering: float,
            distance=None, tol: float = 0.005, patience: int = 50) -> np.ndarray:
    """Raise the wiring's reciprocity and directed clustering (``wiring_statistics``) to their
    targets by swaps inside modules, which keep every neuron's in- and out-degree and leave the
    connections between modules as drawn: connections a->b and x->d, all four neurons in one
    module, become a->d and x->b.

    Each round proposes 16 swaps per neuron whose new connection a->d closes a wedge (d a
    neighbour of a neighbour of a, either direction) or reciprocates (d->a exists), the two kinds
    in proportion to how far each statistic is below its target. A swap's effect is predicted on
    the round's graph: reciprocated connections made minus broken, and directed triangles to
    first order, ``(S^2)_ad + (S^2)_xb - (S^2)_ab - (S^2)_xd`` with ``S = A + A^T`` (each worth
    the mean rise of clustering a triangle gives its neurons). It keeps the swaps whose predicted
    changes, weighted by how far each statistic is below its target, sum to a gain (a descent on
    the squared shortfalls), and with distance-dependent wiring only with the Metropolis
    probability of the distance factors ``f(a,d) f(x,b) / (f(a,b) f(x,d))``. It applies the kept
    swaps that remove and add distinct connections, in random order, until their predicted
    changes cover both shortfalls. Stops when both statistics are within ``tol`` of their targets
    or above; raises ValueError when ``patience`` rounds close less than a tenth of the gap.

    The targets are floors: a statistic the other one carries past its target stays there.
    Raising the directed clustering raises reciprocity too, since a reciprocated connection
    closes twice the triangles: on the ChaLearn wiring, clustering 0.222 comes with reciprocity
    0.35, and reciprocated pairs share twice the neighbours of the others, as in the organizers'
    networks (0.34)."""
    e = codes.size
    gaps: list[float] = []
    while True:
        r, c, s, possible = _statistics(codes, n)
        # A directed triangle more through a neuron raises its clustering by 1 / possible.
        per_triangle = 3 * np.divide(1.0, possible, out=np.zeros(n), where=possible > 0).mean() / n
        short_r, short_c = reciprocity - r, clustering - c
        if short_r <= tol and short_c <= tol:
            return codes
        gaps.append(max(short_r, 0.0) + max(short_c, 0.0))
        if len(gaps) > patience and gaps[-patience - 1] - gaps[-1] < 0.1 * gaps[-1] or e < 2:
            wanted = [f"{name}={target}" for name, target, short in (("reciprocity", reciprocity, short_r),
                                                                     ("clustering", clustering, short_c)) if short > tol]
            raise ValueError(f"{' and '.join(wanted)} not reachable for this wiring: swaps that keep the degrees and "
                             f"modules reached reciprocity {r:.3f} and clustering {c:.3f}; lower the target or "
                             "raise density or (1 - mixing)")
        pre, post = np.divmod(codes, n)
        incoming = sp.csr_matrix((np.ones(e, np.float32), (post, pre)), shape=(n, n))  # row d: who connects to d
        inside = np.flatnonzero(modules[pre] == modules[post])
        pick = inside[rng.integers(0, inside.size, 16 * n)] if inside.size else np.zeros(0, np.int64)
        m = pick.size
        a, b = pre[pick], post[pick]
        closing = rng.random(m) < max(short_c, 0.0) / gaps[-1]
        d = np.where(closing, _neighbour(s, _neighbour(s, a, rng), rng), _neighbour(incoming, a, rng))
        x = _neighbour(incoming, d, rng)
        ok = (d >= 0) & (x >= 0) & (a != d) & (x != b) & (b != d) & (x != a)
        ok &= (modules[np.maximum(d, 0)] == modules[a]) & (modules[np.maximum(x, 0)] == modules[a])
        ok &= ~_member(codes, a * n + d) & ~_member(codes, x * n + b)
        if distance is not None:
            d0 = np.maximum(d, 0)
            ok &= rng.random(m) * distance(a, b) * distance(x, d0) < distance(a, d0) * distance(x, b)
        a, b, x, d = a[ok], b[ok], x[ok], d[ok]
        s_codes = np.repeat(np.arange(n, dtype=np.int64) * n, np.diff(s.indptr)) + s.indices

        def paths(u, v):
            """(S^2)_uv: the two-step paths between u and v, counted both ways."""
            offsets, count = _row_entries(s, u)
            q = np.repeat(v * n, count) + s.indices[offsets]
            at = np.minimum(np.searchsorted(s_codes, q), max(s_codes.size - 1, 0))
            back = np.where(s_codes[at] == q, s.data[at], 0.0)
            return np.bincount(np.repeat(np.arange(u.size), count), weights=back * s.data[offsets], minlength=u.size)

        def has(u, v):
            return _member(codes, u * n + v)

        change_r = 2 * (has(d, a).astype(np.int64) + has(b, x) - has(b, a) - has(d, x)) / e
        change_c = (paths(a, d) + paths(x, b) - paths(a, b) - paths(x, d)) * per_triangle
        order = rng.permutation(np.flatnonzero(max(short_r, 0.0) * change_r + max(short_c, 0.0) * change_c > 0))
        a, b, x, d, change_r, change_c = (v[order] for v in (a, b, x, d, change_r, change_c))
        apart = _first(np.concatenate([a * n + b, x * n + d]))
        apart = apart[: a.size] & apart[a.size :]
        added = _first(np.concatenate([a * n + d, x * n + b]))
        apart &= added[: a.size] & added[a.size :]
        a, b, x, d, change_r, change_c = (v[apart] for v in (a, b, x, d, change_r, change_c))
        enough = (np.cumsum(change_r) >= short_r) & (np.cumsum(change_c) >= short_c)
        count = int(np.argmax(enough)) + 1 if enough.any() else a.size
        a, b, x, d = a[:count], b[:count], x[:count], d[:count]
        removed = np.sort(np.concatenate([a * n + b, x * n + d]))
        codes = np.sort(np.concatenate([codes[~_member(removed, codes)], a * n + d, x * n + b]))


def _row_entries(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``m.indices`` / ``m.data`` of every entry of the given rows, row after row,
    and each row's number of entries."""
    starts, lengths = m.indptr[rows], np.diff(m.indptr)[rows]
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum()), lengths
