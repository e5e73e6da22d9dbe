"""Graph methods on a weighted connectivity matrix: centralities, communities and the rich club.

Shared by the circuit toys (the weight graph of a network, or its functional connectivity) and
the connectome toys. A connectivity matrix is square, ``weights[i, j]`` the connection from node i
to node j, dense NumPy or SciPy sparse; signs are dropped (|w|) where a measure needs
non-negative weights. Built on python-igraph (betweenness and closeness: the same values as
networkx's; Louvain and Leiden: partitions of the same modularity; 18 to 66 times faster across runs, and
networkx is the cross-check in the tests), on SciPy
where a sparse sum, a Lanczos eigenvector or a sparse power iteration does the job (degree,
strength, eigenvector, PageRank: building an igraph graph from a matrix costs more than PageRank's
iterations), and on NumPy for the degree-preserving randomisation of the rich club, whose
vectorised rounds of edge swaps run 4 times faster than igraph's ``rewire`` at the same number of
swaps per edge (``benchmarks/graph_methods.py`` measures each against networkx and igraph).

References
----------
Rubinov & Sporns (2010), "Complex network measures of brain connectivity".
Blondel et al. (2008), "Fast unfolding of communities in large networks" (Louvain).
Traag, Waltman & van Eck (2019), "From Louvain to Leiden: guaranteeing well-connected
communities" (Leiden).
Colizza et al. (2006), "Detecting rich-club ordering in complex networks".
Maslov & Sneppen (2002), "Specificity and stability in topology of protein networks"
(degree-preserving edge swaps).
Csardi & Nepusz (2006), "The igraph software package for complex network research".
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random

import igraph as ig
import numpy as np
import scipy.sparse as sp

from planted.groundtruth import Problems

CENTRALITIES = ("degree", "strength", "betweenness", "closeness", "eigenvector", "pagerank")
COMMUNITY_METHODS = ("louvain", "leiden")
EXACT_BETWEENNESS = 1000  # above this many nodes, betweenness is estimated from this many sources


def _matrix(weights) -> sp.csr_matrix:
    m = sp.csr_matrix(weights, dtype=np.float64)
    if not m.has_canonical_format:  # duplicate entries add up (as toarray shows them), on a copy
        m = m.copy()
        m.sum_duplicates()
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"weights must be a square connectivity matrix, got shape {m.shape}")
    if not np.isfinite(m.data).all():
        raise ValueError("weights must be finite")
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keep = (m.indices != rows) & (m.data != 0)  # self-loops and explicit zeros go
    m = sp.csr_matrix((np.abs(m.data[keep]), m.indices[keep], np.concatenate([[0], np.cumsum(keep)])[m.indptr]),
                      shape=m.shape)
    return m


_EDGE_BLOCK = 1 << 16  # edges handed to igraph per block of Python integers
_GRAPHDB_NODES = 1 << 16  # igraph's GraphDB format counts nodes and edges in 16-bit words


def _igraph(m: sp.spmatrix, *, directed: bool) -> tuple[ig.Graph, np.ndarray]:
    """The igraph graph with an edge for every stored entry of ``m`` (non-negative, no duplicates,
    no self-loops; for an undirected graph, each node pair once) and its edge weights, in edge
    order: the entries' order in CSR, row by row.

    igraph reads an edge list as Python pairs whatever it is given (an (e, 2) array is read pair by
    pair, 3x slower than pairs of Python integers). Below 65,536 nodes the graph is read instead
    from the entries written in igraph's binary GraphDB format to an in-memory file (no Python
    object per edge: 13 ms against 27 ms for the 10,000-node benchmark's 194,000 edges; the same
    edges in the same order). From it on, or where the system has no in-memory files, the pairs come
    in blocks, so the graph of flywire_scale's 54.5 million synapses never holds them all as Python
    objects at once. Each node is one Python integer that all its edges share (indexing an object
    array copies references): 20% faster than ``tolist()``. The weights stay an array: igraph's
    measures read it directly."""
    m = sp.csr_matrix(m)
    n = m.shape[0]
    weights = m.data.astype(np.float64)
    counts = np.diff(m.indptr)
    if n < _GRAPHDB_NODES and counts.max(initial=0) < _GRAPHDB_NODES:
        graph = _read_graphdb(m, counts, directed=directed)
        if graph is not None:
            return graph, weights
    row = np.repeat(np.arange(n), counts)
    ids = np.arange(n).astype(object)
    pairs = itertools.chain.from_iterable(
        zip(ids[row[s:s + _EDGE_BLOCK]].tolist(), ids[m.indices[s:s + _EDGE_BLOCK]].tolist())
        for s in range(0, row.size, _EDGE_BLOCK))
    return ig.Graph(n=n, edges=pairs, directed=directed), weights


def _read_graphdb(m: sp.csr_matrix, counts: np.ndarray, *, directed: bool) -> ig.Graph | None:
    """igraph's graph read from ``m`` written in its binary GraphDB format to an in-memory file: the
    number of nodes, then for each node its number of edges and their targets, all little-endian
    16-bit words (fewer than 2^16 nodes and edges per node); None where the system has no
    in-memory files (not Linux, an old kernel, a sandbox)."""
    try:
        file = os.fdopen(os.memfd_create("planted-graph"), "w+b")
    except (AttributeError, OSError):
        return None
    n = m.shape[0]
    words = np.empty(1 + n + m.nnz, "<u2")
    words[0] = n
    at = np.arange(n) + m.indptr[:-1] + 1
    words[at] = counts
    targets = np.ones(words.size, bool)
    targets[0] = False
    targets[at] = False
    words[targets] = m.indices
    with file:
        file.write(memoryview(words).cast("B"))
        file.seek(0)
        return ig.Graph.Read_GraphDB(file, directed=directed)


def _undirected(m: sp.csr_matrix) -> sp.csr_matrix:
    """The upper triangle of |m| + |m|^T: each node pair once, its weights in both directions summed."""
    coo = m.tocoo(copy=False)
    low, high = np.minimum(coo.row, coo.col), np.maximum(coo.row, coo.col)
    pairs = sp.coo_matrix((coo.data, (low, high)), shape=m.shape).tocsr()  # duplicates summed
    pairs.sort_indices()
    return pairs


@contextlib.contextmanager
def _seeded(seed: int):
    """igraph's random numbers drawn from ``random.Random(seed)`` inside the block. igraph has one
    generator per process and no way to read it, so the block is not thread-safe, and after it
    igraph draws from Python's ``random`` module (its default) whatever it drew from before."""
    ig.set_random_number_generator(random.Random(int(seed)))
    try:
        yield
    finally:
        ig.set_random_number_generator(random)


def centrality(weights, kind: str = "strength", *, seed: int = 0) -> np.ndarray:
    """Node centrality (n,) of the graph with edge weights |weights|.

    degree: in- plus out-degree, counting nonzero connections (blind to their size); strength:
    summed |weight| in and out; betweenness: the fraction of shortest paths through each node,
    distance 1/|w|, normalised by (n - 1)(n - 2) as networkx's (exact up to ``EXACT_BETWEENNESS``
    nodes; above, estimated from as many source nodes drawn with ``seed`` and scaled by n / k);
    closeness: (r - 1) / (sum of the distances 1/|w| from the r - 1 nodes that reach a node),
    times (r - 1) / (n - 1) (Wasserman & Faust's correction for unreachable nodes, networkx's
    default); eigenvector: of the symmetrised graph; pagerank: of the directed graph, edges pre ->
    post (damping 0.85, dangling nodes to every node), so it ranks by in-flow, each node passing
    its rank on in proportion to its out-weights.
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
    if kind == "pagerank":
        return _pagerank(m)
    graph, w = _igraph(m, directed=True)
    if n < 2 or not w.size:
        return np.zeros(n)
    if kind == "closeness":
        distance = 1.0 / w
        raw = np.nan_to_num(np.array(graph.closeness(mode="in", weights=distance, normalized=True)))
        return raw * _reached_by(graph, m) / (n - 1)
    if n <= 2:
        return np.zeros(n)
    distance = 1.0 / w
    if n <= EXACT_BETWEENNESS:
        return np.array(graph.betweenness(directed=True, weights=distance)) / ((n - 1) * (n - 2))
    sources = np.sort(np.random.default_rng(seed).choice(n, EXACT_BETWEENNESS, replace=False))
    counts = np.array(graph.betweenness(directed=True, weights=distance, sources=sources.tolist()))
    return counts * (n / EXACT_BETWEENNESS) / ((n - 1) * (n - 2))


def _reached_by(graph: ig.Graph, m: sp.csr_matrix) -> np.ndarray:
    """How many other nodes reach each node along directed edges: the sizes of the strongly
    connected components upstream of its own, summed on the graph of components (a few nodes for a
    connectome with one giant component, instead of one search of the whole graph per node)."""
    components = graph.connected_components(mode="strong")
    label = np.asarray(components.membership, np.int64)
    sizes = np.bincount(label).astype(np.float64)
    coo = m.tocoo()
    across = label[coo.row] != label[coo.col]
    k = sizes.size
    links = np.unique(label[coo.row[across]] * k + label[coo.col[across]])
    dag = ig.Graph(n=k, edges=np.stack(np.divmod(links, k), axis=1).tolist(), directed=True)
    upstream = np.array([sizes[dag.subcomponent(c, mode="in")].sum() for c in range(k)])
    return upstream[label] - 1


def _pagerank(m: sp.csr_matrix, damping: float = 0.85, tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """PageRank of the directed graph ``m`` (pre -> post, non-negative) by power iteration on the
    sparse transition matrix, a dangling node's rank spread over every node (networkx's and
    igraph's convention), until the L1 change is below ``tol``. Equal to igraph's PRPACK solution
    to 1e-15 and 2-4x faster than it from a SciPy matrix, whose conversion to an igraph graph
    alone costs more than the iterations (``benchmarks/graph_methods.py``)."""
    n = m.shape[0]
    if n == 0:
        return np.zeros(0)
    out = np.asarray(m.sum(axis=1)).ravel()
    dangling = out == 0
    forward = (sp.diags(np.where(dangling, 0.0, 1.0 / np.where(dangling, 1.0, out))) @ m).T.tocsr()
    rank = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = damping * (forward @ rank + rank[dangling].sum() / n) + (1.0 - damping) / n
        done = np.abs(new - rank).sum() < tol
        rank = new
        if done:
            break
    return rank / rank.sum()


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
        ``"louvain"`` (Blondel et al. 2008, igraph's multilevel) or ``"leiden"`` (Traag, Waltman
        & van Eck 2019, igraph's, on modularity, randomness 0.01, iterated until the partition no
        longer changes). Leiden's communities are connected; Louvain's may not be.

    Returns
    -------
    labels : (n,) int64
        Community of each node, numbered 0, 1, ... by first appearance.
    """
    if method not in COMMUNITY_METHODS:
        raise ValueError(f"method must be one of {COMMUNITY_METHODS}, got {method!r}")
    p = Problems()
    p.number("resolution", resolution, low=0, low_open=True)
    p.integer("seed", seed, low=0)
    p.raise_if_any("communities")
    m = _matrix(weights)
    if m.nnz == 0:
        return np.arange(m.shape[0], dtype=np.int64)
    graph, w = _igraph(_undirected(m), directed=False)
    with _seeded(seed):
        if method == "leiden":
            found = graph.community_leiden(objective_function="modularity", weights=w, resolution=resolution, beta=0.01,
                                           n_iterations=-1)
        else:
            found = graph.community_multilevel(weights=w, resolution=resolution)
    return _first_appearance(np.asarray(found.membership, np.int64))


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel communities 0, 1, ... in the order their first node appears."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse.ravel()]


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
