"""Graph methods: the centralities equal networkx's, Louvain and Leiden (igraph's) find planted
blocks with networkx's modularity or better, Leiden's communities are well connected, and the rich
club's degree-preserving randomisation keeps the degrees of a simple graph while rewiring it, so a
planted rich club stands out and a random graph's does not."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import normalized_mutual_info_score

from planted.methods.graphs import CENTRALITIES, _swap_edges, centrality, communities, rich_club


def _blocks(seed, n_blocks, size, p_in, p_out):
    """A symmetric binary stochastic block model and its planted blocks (n,)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(n_blocks), size)
    p = np.where(truth[:, None] == truth[None, :], p_in, p_out)
    upper = np.triu(rng.random(p.shape) < p, 1)
    return (upper | upper.T).astype(np.float64), truth


def _modularity(weights, labels):
    graph = nx.from_numpy_array(weights + weights.T)
    return nx.community.modularity(graph, [np.flatnonzero(labels == c) for c in range(labels.max() + 1)])


def _random_edges(rng, n, n_edges):
    """``n_edges`` distinct random edges (u < v) among n nodes: (n_edges, 2)."""
    pairs = rng.integers(0, n, (4 * n_edges, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    keys = np.unique(pairs.min(axis=1) * n + pairs.max(axis=1))
    keys = rng.choice(keys, n_edges, replace=False)
    return np.stack(np.divmod(keys, n), axis=1)


def _adjacency(edges, n):
    a = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (a + a.T).tocsr()


def test_leiden_recovers_planted_blocks():
    w, truth = _blocks(0, 4, 50, 0.3, 0.02)
    labels = communities(w, method="leiden", seed=0)
    assert labels.dtype == np.int64 and labels.shape == truth.shape
    assert normalized_mutual_info_score(truth, labels) > 0.95
    first = np.unique(labels, return_index=True)[1]
    assert (np.diff(first) > 0).all() and labels[0] == 0  # numbered by first appearance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leiden_communities_are_connected_and_as_good_as_louvain(seed):
    w, _ = _blocks(seed, 6, 40, 0.2, 0.06)
    labels = communities(w, method="leiden", seed=seed)
    for c in range(labels.max() + 1):
        inside = np.flatnonzero(labels == c)
        assert connected_components(sp.csr_matrix(w[np.ix_(inside, inside)]), directed=False)[0] == 1
    louvain = communities(w, seed=seed)
    assert _modularity(w, labels) >= _modularity(w, louvain) - 0.01


def test_leiden_is_deterministic_and_resolution_splits():
    w, _ = _blocks(3, 4, 50, 0.3, 0.05)
    np.testing.assert_array_equal(communities(w, method="leiden", seed=7), communities(w, method="leiden", seed=7))
    counts = [communities(w, method="leiden", resolution=r, seed=0).max() + 1 for r in (0.5, 1.0, 2.0, 4.0)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_leiden_on_disconnected_cliques_and_on_no_edges():
    clique = np.ones((6, 6)) - np.eye(6)
    two = sp.block_diag([clique, clique * 2.0]).toarray()
    np.testing.assert_array_equal(communities(two, method="leiden"), np.repeat([0, 1], 6))
    np.testing.assert_array_equal(communities(np.zeros((5, 5)), method="leiden"), np.arange(5))


def test_leiden_on_directed_weighted_sparse_input_matches_its_symmetrised_graph():
    w, truth = _blocks(4, 3, 30, 0.4, 0.03)
    rng = np.random.default_rng(0)
    directed = sp.csr_matrix(np.triu(w) * rng.uniform(0.5, 1.5, w.shape) * rng.choice([-1, 1], w.shape))
    labels = communities(directed, method="leiden", seed=1)
    assert normalized_mutual_info_score(truth, labels) > 0.95
    sym = abs(directed) + abs(directed).T
    np.testing.assert_array_equal(labels, communities(sym, method="leiden", seed=1))


def test_louvain_stays_the_default():
    w, _ = _blocks(5, 4, 30, 0.3, 0.05)
    np.testing.assert_array_equal(communities(w, seed=2), communities(w, seed=2, method="louvain"))


def test_bad_method_names_the_choices():
    with pytest.raises(ValueError, match=r"method must be one of \('louvain', 'leiden'\), got 'infomap'"):
        communities(np.eye(3), method="infomap")


def test_edge_swaps_keep_degrees_of_a_simple_graph_and_rewire_it():
    rng = np.random.default_rng(0)
    n = 300
    edges = _random_edges(rng, n, 1500)
    swapped = _swap_edges(edges, n, rng)
    assert swapped.shape == edges.shape and (swapped[:, 0] < swapped[:, 1]).all()  # no self-loops
    keys, original = swapped[:, 0] * n + swapped[:, 1], edges[:, 0] * n + edges[:, 1]
    assert np.unique(keys).size == keys.size  # no duplicate edges
    np.testing.assert_array_equal(np.bincount(swapped.ravel(), minlength=n), np.bincount(edges.ravel(), minlength=n))
    assert np.isin(original, keys).mean() < 0.2
    # a hub-heavy graph where many proposals hit existing edges keeps its degrees too
    star = np.array([[0, i] for i in range(1, 40)] + [[i, i + 1] for i in range(1, 39)])
    again = _swap_edges(star, 40, rng)
    np.testing.assert_array_equal(np.bincount(again.ravel(), minlength=40), np.bincount(star.ravel(), minlength=40))
    assert np.unique(again[:, 0] * 40 + again[:, 1]).size == len(star) and (again[:, 0] < again[:, 1]).all()


def test_rich_club_stands_out_where_planted():
    rng = np.random.default_rng(1)
    n = 400
    upper = np.triu(rng.random((n, n)) < 0.02, 1)
    upper[:20, :20] = np.triu(np.ones((20, 20), bool), 1)  # 20 hubs, all connected
    k, phi, normalised = rich_club(sp.csr_matrix(upper.astype(np.float64)), n_random=5, seed=0)
    degrees = (upper | upper.T).sum(axis=1)
    assert np.isfinite(normalised).all() and (phi >= 0).all() and (phi <= 1).all()
    assert normalised[k >= degrees[20:].max()].max() > 1.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rich_club_of_a_random_graph_is_about_one(seed):
    w, _ = _blocks(seed, 1, 300, 0.2, 0.2)
    k, phi, normalised = rich_club(w, n_random=5, seed=seed)
    degrees = w.sum(axis=1)
    enough = np.array([(degrees > level).sum() >= 10 for level in k])
    assert np.isfinite(normalised).all()
    assert 0.7 < normalised[enough].min() and normalised[enough].max() < 1.3
    # phi against networkx's unnormalised coefficient
    expected = nx.rich_club_coefficient(nx.from_numpy_array(w), normalized=False)
    np.testing.assert_allclose(phi, [expected.get(level, 0.0) for level in k])


def test_rich_club_is_deterministic_and_finite_on_small_graphs():
    w, _ = _blocks(0, 2, 30, 0.3, 0.05)
    first, second = rich_club(w, n_random=2, seed=4), rich_club(w, n_random=2, seed=4)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    complete = np.ones((6, 6)) - np.eye(6)  # no swap is possible
    for graph in (np.zeros((4, 4)), np.eye(3, k=1), complete, np.zeros((0, 0))):
        k, phi, normalised = rich_club(graph, n_random=2, seed=0)
        assert np.isfinite(phi).all() and np.isfinite(normalised).all() and k.shape == phi.shape == normalised.shape
    _, phi, normalised = rich_club(complete, n_random=2, seed=0)
    np.testing.assert_allclose(normalised, 1.0)


# --- centralities and communities on python-igraph, cross-checked with networkx --------------------


def _weighted(seed: int, n: int, density: float):
    """A directed graph with log-normal weights of random sign (|w| is what counts)."""
    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=density, random_state=seed, format="csr")
    m.setdiag(0)
    m.eliminate_zeros()
    m.data[:] = rng.lognormal(0, 0.5, m.nnz) * rng.choice([-1, 1], m.nnz)
    graph = nx.from_scipy_sparse_array(abs(m), create_using=nx.DiGraph)
    for _, _, d in graph.edges(data=True):
        d["distance"] = 1.0 / d["weight"]
    return m, graph


def _vector(scores, n):
    return np.array([scores[i] for i in range(n)])


@pytest.mark.parametrize("seed, n, density", [(0, 60, 0.06), (1, 300, 0.02), (2, 200, 0.006)])
def test_centralities_equal_networkx(seed, n, density):  # the last: many strongly connected components
    m, graph = _weighted(seed, n, density)
    np.testing.assert_allclose(centrality(m, "betweenness"),
                               _vector(nx.betweenness_centrality(graph, weight="distance"), n), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(centrality(m, "closeness"),
                               _vector(nx.closeness_centrality(graph, distance="distance"), n), rtol=1e-9, atol=1e-15)
    pagerank = _vector(nx.pagerank(graph, weight="weight", tol=1e-12), n)
    np.testing.assert_allclose(centrality(m, "pagerank"), pagerank, atol=1e-9)
    # the eigenvector of the symmetrised graph, both directions summed (connected by a weak ring:
    # networkx refuses a disconnected graph, whose leading eigenvector is not unique)
    ring = sp.csr_matrix((np.full(n, 0.01), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))
    connected = abs(m) + ring
    sym = connected + connected.T
    eigen = np.abs(_vector(nx.eigenvector_centrality_numpy(nx.from_scipy_sparse_array(sym), weight="weight"), n))
    np.testing.assert_allclose(centrality(connected, "eigenvector"), eigen / eigen.sum(), atol=1e-9)
    degree = _vector(dict(graph.degree()), n)
    np.testing.assert_array_equal(centrality(m, "degree"), degree)


def test_betweenness_above_the_exact_size_is_a_seeded_estimate(monkeypatch):
    from scipy.stats import spearmanr

    from planted.methods import graphs

    m, graph = _weighted(2, 400, 0.02)
    exact = centrality(m, "betweenness")
    monkeypatch.setattr(graphs, "EXACT_BETWEENNESS", 200)
    estimate = centrality(m, "betweenness", seed=0)
    np.testing.assert_array_equal(estimate, centrality(m, "betweenness", seed=0))
    assert not np.array_equal(estimate, centrality(m, "betweenness", seed=1))
    assert spearmanr(estimate, exact).statistic > 0.9
    assert abs(estimate.sum() / exact.sum() - 1) < 0.1  # scaled by n / k: unbiased in total


@pytest.mark.parametrize("method", ["louvain", "leiden"])
def test_communities_match_networkx_louvain_in_modularity_and_recover_the_blocks(method):
    w, truth = _blocks(5, 5, 60, 0.25, 0.02)
    labels = communities(w, method=method, seed=0)
    reference = nx.community.louvain_communities(nx.from_numpy_array(w + w.T), weight="weight", seed=0)
    nx_labels = np.empty(truth.size, np.int64)
    for i, members in enumerate(reference):
        nx_labels[list(members)] = i
    assert _modularity(w, labels) >= _modularity(w, nx_labels) - 1e-9
    assert normalized_mutual_info_score(truth, labels) > 0.99
    np.testing.assert_array_equal(labels, communities(w, method=method, seed=0))  # the seed fixes them


def test_communities_name_a_bad_resolution():
    with pytest.raises(ValueError, match=r"communities: resolution must be in \(0, inf\), got 0"):
        communities(np.ones((3, 3)), resolution=0)


def test_duplicate_entries_add_up_and_the_input_is_left_as_it_was():
    """A sparse matrix may hold one entry twice (as scipy allows): its weight is their sum, as
    ``toarray`` shows, explicit zeros and the diagonal drop out, and the caller's matrix is untouched."""
    rng = np.random.default_rng(5)
    n, entries = 40, 300
    rows, cols = rng.integers(0, n, entries), rng.integers(0, n, entries)
    values = rng.normal(size=entries)
    values[:20] = 0.0
    rows[20:40], cols[20:40] = rows[40:60], cols[40:60]  # duplicates, some cancelling
    values[20:30] = -values[40:50]
    order = np.argsort(rows, kind="stable")
    raw = sp.csr_matrix((values[order], cols[order], np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])),
                        shape=(n, n))  # from its raw arrays: the duplicates stay
    assert not raw.has_canonical_format
    kept = (raw.data.copy(), raw.indices.copy(), raw.indptr.copy())
    dense = raw.toarray()
    for kind in CENTRALITIES:
        np.testing.assert_allclose(centrality(raw, kind), centrality(dense, kind), atol=1e-12, err_msg=kind)
    for method in ("louvain", "leiden"):
        np.testing.assert_array_equal(communities(raw, method=method), communities(dense, method=method))
    for before, after in zip(kept, (raw.data, raw.indices, raw.indptr)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.skipif(not hasattr(__import__("os"), "memfd_create"), reason="no in-memory files on this system")
@pytest.mark.parametrize("directed", [True, False])
def test_the_graph_read_in_binary_is_the_graph_built_from_pairs(monkeypatch, directed):
    """Below 65,536 nodes igraph reads the graph from its binary GraphDB format, above it from
    Python pairs: the same edges in the same order (that of the weights), on nodes with no edges,
    a node with many, one node, no node and a graph with no edge."""
    import igraph as ig

    from planted.methods import graphs

    rng = np.random.default_rng(3)
    dense = (rng.random((300, 300)) < 0.05) * rng.random((300, 300))
    dense[:, 7] = 1.0  # a node every other points to
    dense[11] = 0.0  # a node with no edges out
    read, nodes = [], graphs._GRAPHDB_NODES
    with monkeypatch.context() as patch:
        original = ig.Graph.Read_GraphDB
        patch.setattr(ig.Graph, "Read_GraphDB", staticmethod(lambda *a, **k: (read.append(1), original(*a, **k))[1]))
        for weights in (dense, np.zeros((4, 4)), np.zeros((1, 1)), np.zeros((0, 0))):
            m = graphs._matrix(weights)
            m = m if directed else graphs._undirected(m)
            read.clear()
            binary, _ = graphs._igraph(m, directed=directed)
            assert read == [1]
            patch.setattr(graphs, "_GRAPHDB_NODES", 0)
            pairs, _ = graphs._igraph(m, directed=directed)
            patch.setattr(graphs, "_GRAPHDB_NODES", nodes)
            assert read == [1]
            coo = m.tocoo()
            assert binary.get_edgelist() == pairs.get_edgelist() == list(zip(coo.row.tolist(), coo.col.tolist()))
            assert binary.vcount() == pairs.vcount() == m.shape[0] and binary.is_directed() == pairs.is_directed() == directed
