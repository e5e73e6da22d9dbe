"""Graph methods on a weighted connectivity matrix: centralities, communities and the rich club.

Shared by the circuit toys (the weight graph of a network, or its functional connectivity) and
the connectome toys. A connectivity matrix is square, ``weights[i, j]`` the connection from node i
to node j, dense NumPy or SciPy sparse; signs are dropped (|w|) where a measure needs
non-negative weights. Built on networkx where it already does the job.

References
----------
Rubinov & Sporns (2010), "Complex network measures of brain connectivity".
Blondel et al. (2008), "Fast unfolding of communities in large networks" (Louvain).
Colizza et al. (2006), "Detecting rich-club ordering in complex networks".
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import scipy.sparse as sp

CENTRALITIES = ("degree", "strength", "betweenness", "eigenvector", "pagerank")


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
    pagerank: of the directed graph (networkx, damping 0.85).
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
        _, vecs = sp.linalg.eigsh(sym, k=1, which="LA") if n > 2 else np.linalg.eigh(sym.toarray())
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


def communities(weights, *, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Louvain communities (networkx) of the symmetrised graph |w| + |w|^T; labels (n,) int64,
    numbered by first appearance."""
    m = _matrix(weights)
    graph = nx.from_scipy_sparse_array((m + m.T).tocsr())
    found = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    labels = np.empty(m.shape[0], np.int64)
    for i, members in enumerate(sorted(found, key=min)):
        labels[list(members)] = i
    return labels


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
    by its mean over ``n_random`` random graphs with the same degrees (double-edge swaps, 10
    per edge); a normalised value above 1 at high k is a rich club. Entries with fewer than two
    nodes of degree > k, or none connected in the random graphs, are NaN-free 0.
    """
    if not isinstance(n_random, int) or n_random < 1:
        raise ValueError(f"n_random must be a positive int, got {n_random!r}")
    m = _matrix(weights)
    sym = ((m + m.T) != 0).astype(np.int8).tocsr()
    graph = nx.from_scipy_sparse_array(sym)
    graph.remove_edges_from(nx.selfloop_edges(graph))
    degrees = np.array([d for _, d in graph.degree()], np.int64)
    k = np.arange(max(int(degrees.max()), 1)) if degrees.size else np.zeros(0, np.int64)

    def coefficient(g) -> np.ndarray:
        deg = np.array([d for _, d in g.degree()], np.int64)
        edges = np.array(list(g.edges()), np.int64).reshape(-1, 2)
        out = np.zeros(k.size)
        for i, level in enumerate(k):
            rich = deg > level
            n_rich = int(rich.sum())
            if n_rich < 2:
                continue
            inside = int((rich[edges[:, 0]] & rich[edges[:, 1]]).sum())
            out[i] = 2.0 * inside / (n_rich * (n_rich - 1))
        return out

    phi = coefficient(graph)
    rng = np.random.default_rng(seed)
    random = np.zeros(k.size)
    for _ in range(n_random):
        g = graph.copy()
        if g.number_of_edges() > 1:
            swaps = 10 * g.number_of_edges()
            nx.double_edge_swap(g, nswap=swaps, max_tries=100 * swaps, seed=int(rng.integers(2**31)))
        random += coefficient(g) / n_random
    normalised = np.divide(phi, random, out=np.zeros_like(phi), where=random > 0)
    return k, phi, normalised
