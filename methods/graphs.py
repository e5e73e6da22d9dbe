"""Graph methods on a weighted connectivity matrix: centralities, communities and the rich club.

Shared by the circuit toys (the weight graph of a network, or its functional connectivity) and
the connectome toys. A connectivity matrix is square, ``weights[i, j]`` the connection from node i
to node j, dense NumPy or SciPy sparse; signs are dropped (|w|) where a measure needs
non-negative weights. Built on networkx where it already does the job; the Leiden communities and
the degree-preserving randomisation of the rich club are written here in NumPy/SciPy, the first
because networkx has none without a GPU backend, the second because networkx's double-edge swap,
one swap at a time, needs minutes for each random graph once the graph has millions of edges.

References
----------
Rubinov & Sporns (2010), "Complex network measures of brain connectivity".
Blondel et al. (2008), "Fast unfolding of communities in large networks" (Louvain).
Traag, Waltman & van Eck (2019), "From Louvain to Leiden: guaranteeing well-connected
communities" (Leiden).
Colizza et al. (2006), "Detecting rich-club ordering in complex networks".
Maslov & Sneppen (2002), "Specificity and stability in topology of protein networks"
(degree-preserving edge swaps).
"""

from __future__ import annotations

from collections import deque

import networkx as nx
import numpy as np
import scipy.sparse as sp

from planted.groundtruth import Problems

CENTRALITIES = ("degree", "strength", "betweenness", "eigenvector", "pagerank")
COMMUNITY_METHODS = ("louvain", "leiden")


def _matrix(weights) -> sp.csr_matrix:
    m = sp.csr_matrix(weights, dtype=np.float64)
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"weights must be a square connectivity matrix, got shape {m.shape}")
    if not np.isfinite(m.data).all():
        raise ValueError("weights must be finite")
    m = abs(m)
    m.setdiag(0)
    m.eliminate_zeros()
    return m


def centrality(weights, kind: str = "strength", *, seed: int = 0) -> np.ndarray:
    """Node centrality (n,) of the graph with edge weights |weights|.

    degree: in- plus out-degree, counting nonzero connections (blind to their size); strength:
    summed |weight| in and out; betweenness: shortest paths with distance 1/|w| (networkx, exact
    up to 1000 nodes, sampled over 1000 sources above); eigenvector: of the symmetrised graph;
    pagerank: of the directed graph, edges pre -> post (networkx, damping 0.85), so it ranks by
    in-flow, each node passing its rank on in proportion to its out-weights.
    """
    if kind not in CENTRALITIES:
        raise ValueError(f"kind must be one of {CENTRALITIES}, got {kind!r}")
    m = _matrix(weights)
    n = m.shape[0]
    if kind == "degree":
        binary = (m != 0).astype(np.float64)
        return np.asarray(binary.sum(axis=0)).ravel() + np.asarray(binary.sum(axis=1)).ravel()
    if kind == "strength":
        return np.asarray(m.sum(axis=0)).ravel() + np.asarray(m.sum(axis=1)).ravel()
    if kind == "eigenvector":
        sym = (m + m.T).tocsr()
        if sym.nnz == 0:
            return np.zeros(n)
        # A fixed start (all ones: never orthogonal to the Perron vector of a non-negative graph)
        # keeps the result the same bit for bit from run to run; ARPACK's default start is random.
        _, vecs = (sp.linalg.eigsh(sym, k=1, which="LA", v0=np.ones(n)) if n > 2
                   else np.linalg.eigh(sym.toarray()))
        v = np.abs(np.asarray(vecs)[:, -1])
        return v / v.sum() if v.sum() > 0 else v
    graph = nx.from_scipy_sparse_array(m, create_using=nx.DiGraph)
    if kind == "pagerank":
        scores = nx.pagerank(graph, weight="weight")
    else:
        for _, _, data in graph.edges(data=True):
            data["distance"] = 1.0 / data["weight"]
        k = None if n <= 1000 else 1000
        scores = nx.betweenness_centrality(graph, k=k, weight="distance", seed=seed)
    return np.array([scores[i] for i in range(n)])


def communities(weights, *, resolution: float = 1.0, seed: int = 0, method: str = "louvain") -> np.ndarray:
    """Communities of the symmetrised undirected graph |w| + |w|^T that maximise its modularity.

    Parameters
    ----------
    weights : (n, n) array or sparse matrix
        Connectivity, ``weights[i, j]`` from node i to node j; signs and the diagonal are dropped.
    resolution : float
        The modularity's resolution gamma (Reichardt & Bornholdt); above 1 favours more, smaller
        communities, below 1 fewer, larger ones.
    seed : int
        Seed of the node orders (and of Leiden's random merges): same seed, same labels.
    method : {"louvain", "leiden"}
        ``"louvain"`` (Blondel et al. 2008, networkx's implementation) or ``"leiden"`` (Traag,
        Waltman & van Eck 2019): fast local moving with a queue, then a refinement that splits
        each community into well-connected parts (random merges, randomness theta = 0.01) and
        aggregation of the refined partition, repeated until the partition no longer changes.
        Leiden's communities are connected; Louvain's may not be.

    Returns
    -------
    labels : (n,) int64
        Community of each node, numbered 0, 1, ... by first appearance.
    """
    if method not in COMMUNITY_METHODS:
        raise ValueError(f"method must be one of {COMMUNITY_METHODS}, got {method!r}")
    m = _matrix(weights)
    sym = (m + m.T).tocsr()
    if method == "leiden":
        return _first_appearance(_leiden(sym, resolution, np.random.default_rng(seed)))
    graph = nx.from_scipy_sparse_array(sym)
    found = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    labels = np.empty(m.shape[0], np.int64)
    for i, members in enumerate(sorted(found, key=min)):
        labels[list(members)] = i
    return labels


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel communities 0, 1, ... in the order their first node appears."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse.ravel()]


def _compact(labels: np.ndarray) -> np.ndarray:
    """Relabel communities 0 .. n_communities - 1 (in the order of the old labels)."""
    return np.unique(labels, return_inverse=True)[1].ravel().astype(np.int64)


def _leiden(sym: sp.csr_matrix, resolution: float, rng: np.random.Generator, theta: float = 0.01,
            max_passes: int = 50) -> np.ndarray:
    """Leiden communities (n,) of the symmetric non-negative graph ``sym`` without self-loops:
    Leiden passes, each starting from the partition the last one found, until one changes
    nothing (every change raises the modularity, so this ends)."""
    n = sym.shape[0]
    degree = np.asarray(sym.sum(axis=1)).ravel()
    two_m = float(degree.sum())
    if two_m <= 0:
        return np.arange(n, dtype=np.int64)
    labels = np.arange(n, dtype=np.int64)
    for _ in range(max_passes):
        found = _leiden_pass(sym, degree, labels, resolution / two_m, two_m, theta, rng)
        if np.array_equal(_first_appearance(found), _first_appearance(labels)):
            break
        labels = found
    return labels


def _leiden_pass(sym: sp.csr_matrix, degree: np.ndarray, start: np.ndarray, scale: float, two_m: float,
                 theta: float, rng: np.random.Generator) -> np.ndarray:
    """One Leiden pass (Traag et al. 2019, Algorithm A.2) from the partition ``start``: move nodes,
    refine, aggregate the refined partition with the moved one as its start, until every node of
    the aggregate graph is a community of its own. ``scale`` is resolution / 2m."""
    adj, strength = sym, degree
    node = np.arange(sym.shape[0])  # the aggregate node each original node is in
    comm = _compact(start)
    while True:
        comm = _compact(_move_nodes(adj, strength, comm, scale, rng))
        size = strength.size
        n_comm = int(comm.max()) + 1
        if n_comm == size:
            return comm[node]
        refined = _compact(_refine(adj, strength, comm, scale, two_m, theta, rng))
        if int(refined.max()) + 1 == size:  # nothing merged: aggregate the communities themselves
            refined = comm
        aggregate_comm = np.empty(int(refined.max()) + 1, np.int64)
        aggregate_comm[refined] = comm
        adj, strength = _aggregate(adj, strength, refined)
        node = refined[node]
        comm = aggregate_comm


def _move_nodes(adj: sp.csr_matrix, strength: np.ndarray, comm: np.ndarray, scale: float,
                rng: np.random.Generator) -> np.ndarray:
    """Fast local moving: visit nodes from a queue (all, in random order, at first), move each to
    the neighbouring or empty community of the largest modularity gain if that gain is positive,
    and queue the neighbours it left outside its new community."""
    n = strength.size
    indptr, indices, data = adj.indptr, adj.indices, adj.data
    comm = comm.copy()
    total = np.bincount(comm, weights=strength, minlength=n)
    members = np.bincount(comm, minlength=n)
    empty = np.flatnonzero(members == 0).tolist()
    queue = deque(rng.permutation(n).tolist())
    queued = np.ones(n, bool)
    while queue:
        v = queue.popleft()
        queued[v] = False
        lo, hi = indptr[v], indptr[v + 1]
        neighbours = indices[lo:hi]
        own, k = comm[v], strength[v]
        near, inverse = np.unique(comm[neighbours], return_inverse=True)
        to_near = np.bincount(inverse.ravel(), weights=data[lo:hi], minlength=near.size)
        is_own = near == own
        # gain of joining C, up to a term common to all C: k_(v,C) - gamma k_v K_C / 2m
        stay = to_near[is_own].sum() - scale * k * (total[own] - k)
        gains = to_near - scale * k * total[near]
        gains[is_own] = -np.inf
        best = int(np.argmax(gains)) if near.size else -1
        target, gain = (near[best], gains[best]) if best >= 0 else (-1, -np.inf)
        to_empty = gain < 0 and members[own] > 1 and bool(empty)
        if to_empty:  # an empty community gains 0
            target, gain = empty[-1], 0.0
        if target < 0 or gain - stay <= 1e-12 * k:
            continue
        if to_empty:
            empty.pop()
        total[own] -= k
        members[own] -= 1
        if members[own] == 0:
            empty.append(own)
        total[target] += k
        members[target] += 1
        comm[v] = target
        outside = neighbours[(comm[neighbours] != target) & ~queued[neighbours]]
        queued[outside] = True
        queue.extend(outside.tolist())
    return comm


def _refine(adj: sp.csr_matrix, strength: np.ndarray, comm: np.ndarray, scale: float, two_m: float,
            theta: float, rng: np.random.Generator) -> np.ndarray:
    """Refinement (Traag et al. 2019, MergeNodesSubset): start from singletons; in random order,
    each well-connected node that is still a singleton joins a well-connected refined community
    of its own community, chosen with probability proportional to exp(gain / theta) among those
    with a positive modularity gain. Refined communities never cross ``comm``."""
    n = strength.size
    indptr, indices, data = adj.indptr, adj.indices, adj.data
    rows = np.repeat(np.arange(n), np.diff(indptr))
    inside = comm[rows] == comm[indices]
    # external[c]: weight from refined community c to the rest of its community S
    external = np.bincount(rows[inside], weights=data[inside], minlength=n)
    community_total = np.bincount(comm, weights=strength, minlength=n)
    well_connected = external >= scale * strength * (community_total[comm] - strength)
    refined = np.arange(n)
    total = strength.astype(np.float64)
    members = np.ones(n, np.int64)
    for v in rng.permutation(n):
        if not well_connected[v] or members[v] != 1:  # v is no longer a singleton once joined
            continue
        lo, hi = indptr[v], indptr[v + 1]
        same = inside[lo:hi]
        if not same.any():
            continue
        near, inverse = np.unique(refined[indices[lo:hi][same]], return_inverse=True)
        to_near = np.bincount(inverse.ravel(), weights=data[lo:hi][same], minlength=near.size)
        k, s_total = strength[v], community_total[comm[v]]
        gains = to_near - scale * k * total[near]
        ok = (gains > 0) & (external[near] >= scale * total[near] * (s_total - total[near]))
        if not ok.any():
            continue
        candidates, gains, to_near = near[ok], gains[ok] * (2.0 / two_m), to_near[ok]
        weight = np.cumsum(np.exp((gains - gains.max()) / theta))
        pick = min(int(np.searchsorted(weight, rng.random() * weight[-1], side="right")), weight.size - 1)
        target = candidates[pick]
        external[target] += external[v] - 2.0 * to_near[pick]
        total[target] += total[v]
        members[target] += 1
        members[v] = 0
        refined[v] = target
    return refined


def _aggregate(adj: sp.csr_matrix, strength: np.ndarray, labels: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The graph of the communities ``labels`` (0 .. c-1): summed weights between them, without
    self-loops; their strengths keep the weight inside each."""
    n, c = strength.size, int(labels.max()) + 1
    member = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, c))
    coarse = (member.T @ adj @ member).tocoo()
    off = coarse.row != coarse.col
    coarse = sp.csr_matrix((coarse.data[off], (coarse.row[off], coarse.col[off])), shape=(c, c))
    return coarse, np.bincount(labels, weights=strength, minlength=c)


def functional_connectivity(activity: np.ndarray) -> np.ndarray:
    """|Pearson correlation| between the columns (nodes) of ``activity`` (samples, nodes); constant
    nodes correlate 0 with everything."""
    a = np.asarray(activity, np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"activity must be (samples >= 2, nodes), got shape {a.shape}")
    a = a - a.mean(axis=0)
    norms = np.linalg.norm(a, axis=0)
    a = np.where(norms > 1e-12, a / np.where(norms > 1e-12, norms, 1), 0.0)
    corr = np.abs(a.T @ a)
    np.fill_diagonal(corr, 0.0)
    return corr


def rich_club(weights, *, n_random: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rich-club coefficient of the undirected binary graph of ``weights`` (an edge where
    either direction is nonzero), normalised against degree-preserving random graphs.

    Returns ``(k, phi, normalised)`` over degrees k = 0..max-1: ``phi(k)`` is the density of
    connections among the nodes of degree > k (Colizza et al. 2006); ``normalised`` divides it
    by its mean over ``n_random`` random graphs with the same degrees (Maslov & Sneppen 2002
    edge swaps, about 10 accepted per edge); a normalised value above 1 at high k is a rich
    club. Entries with fewer than two nodes of degree > k, or none connected in the random
    graphs, are NaN-free 0.
    """
    p = Problems()
    p.integer("n_random", n_random, low=1)
    p.raise_if_any("rich_club")
    m = _matrix(weights)
    n = m.shape[0]
    upper = sp.triu((m + m.T) != 0, k=1).tocoo()
    edges = np.stack([upper.row, upper.col], axis=1).astype(np.int64)
    degrees = np.bincount(edges.ravel(), minlength=n)
    k = np.arange(max(int(degrees.max()), 1)) if degrees.size else np.zeros(0, np.int64)
    n_rich = np.zeros(k.size)
    if k.size:
        at_least = np.cumsum(np.bincount(degrees, minlength=k.size + 1)[::-1])[::-1]  # nodes of degree >= d
        n_rich = at_least[1 : k.size + 1].astype(np.float64)
    pairs = n_rich * (n_rich - 1) / 2

    def coefficient(e: np.ndarray) -> np.ndarray:
        smaller = np.minimum(degrees[e[:, 0]], degrees[e[:, 1]])
        inside = np.cumsum(np.bincount(smaller, minlength=k.size + 1)[::-1])[::-1][1 : k.size + 1]
        return np.divide(inside, pairs, out=np.zeros(k.size), where=n_rich >= 2)

    phi = coefficient(edges)
    rng = np.random.default_rng(seed)
    random = np.zeros(k.size)
    for _ in range(n_random):
        random += coefficient(_swap_edges(edges, n, rng)) / n_random
    normalised = np.divide(phi, random, out=np.zeros_like(phi), where=random > 0)
    return k, phi, normalised


def _swap_edges(edges: np.ndarray, n: int, rng: np.random.Generator, *, per_edge: float = 10.0,
                max_rounds: int = 100) -> np.ndarray:
    """A random simple graph with the degrees of ``edges`` (e, 2), by Maslov-Sneppen swaps done in
    rounds: every round pairs up the edges at random, each pair (u, v), (x, y) proposes (u, y),
    (x, v) or (u, x), (v, y) with equal probability, and a proposal is dropped if it makes a
    self-loop, an edge already in the graph, or an edge another proposal of the round also makes.
    Stops after ``per_edge`` accepted swaps per edge or ``max_rounds`` rounds. Returns (e, 2)
    edges with u < v."""
    e = edges.shape[0]
    if e < 2:
        return edges.copy()
    keys = np.sort(edges.min(axis=1) * n + edges.max(axis=1))  # edge (u, v), u < v, is u * n + v
    half = e // 2
    accepted, target = 0, per_edge * e
    for _ in range(max_rounds):
        if accepted >= target:
            break
        shuffled = keys[rng.permutation(e)]  # pairs: edge i with edge half + i
        u, v = np.divmod(shuffled[: 2 * half], n)
        a, b = u[:half], v[:half]
        flip = rng.random(half) < 0.5
        c = np.where(flip, v[half:], u[half:])
        d = np.where(flip, u[half:], v[half:])
        # (a, b), (c, d) -> (a, d), (c, b)
        key1 = np.minimum(a, d) * n + np.maximum(a, d)
        key2 = np.minimum(c, b) * n + np.maximum(c, b)
        taken = _taken(keys, np.concatenate([key1, key2]), n * n)
        ok = (a != d) & (c != b) & ~taken[:half] & ~taken[half:]
        shuffled[:half][ok] = key1[ok]
        shuffled[half : 2 * half][ok] = key2[ok]
        keys = np.sort(shuffled)
        accepted += int(ok.sum())
    return np.stack(np.divmod(keys, n), axis=1)


def _taken(present: np.ndarray, proposed: np.ndarray, n_keys: int) -> np.ndarray:
    """Whether each of the ``proposed`` keys (< ``n_keys``) is in the sorted array ``present`` or
    proposed more than once. The proposals are sorted first (packed with their position into one
    int64 where that fits, much faster than an argsort) so the look-ups run in order."""
    m = proposed.size
    shift = max(int(m - 1).bit_length(), 1)
    if n_keys < 2 ** (63 - shift):
        packed = np.sort((proposed << shift) | np.arange(m))
        keys, order = packed >> shift, packed & ((1 << shift) - 1)
    else:
        order = np.argsort(proposed)
        keys = proposed[order]
    taken = np.zeros(m, bool)
    repeated = keys[1:] == keys[:-1]
    taken[1:] |= repeated
    taken[:-1] |= repeated
    taken |= present[np.minimum(np.searchsorted(present, keys), present.size - 1)] == keys
    out = np.empty(m, bool)
    out[order] = taken
    return out

__all__ = [
    "CENTRALITIES",
    "COMMUNITY_METHODS",
    "centrality",
    "communities",
    "functional_connectivity",
    "rich_club",
]
