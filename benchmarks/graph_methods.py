"""Graph methods against networkx (the tool a user would otherwise pick), interleaved in one run.

A directed stochastic block model: 10,000 nodes in 20 blocks, about 20 edges per node (80% within
a block), log-normal weights. Each row runs planted (python-igraph underneath) and networkx on the
same graph, alternating, ``--repeats`` times (both from the same SciPy matrix: building networkx's
graph counts in its time, as building igraph's counts in planted's, except for the slow
betweenness and closeness); it prints the best and median seconds of each, the
ratio of the best times, and the check that both computed the same thing (modularity and NMI
against the planted blocks for communities, the largest difference and the rank correlation for
centralities). Betweenness uses 1,000 sampled sources in both (planted's default above 1,000
nodes; exact betweenness on 10,000 nodes takes networkx minutes), closeness runs on a 2,000-node
graph. PageRank (a sparse power iteration) is also timed against igraph's from the same matrix.
Louvain is also timed against igraph's clustering alone on a graph built beforehand (the
part of planted's time that is igraph's own work). The rich club's degree-preserving randomisation (10 accepted swaps per edge) is timed against
igraph's ``rewire`` (10 trials per edge) and networkx's ``double_edge_swap`` (10 swaps per edge, on
20,000 edges).

    python benchmarks/graph_methods.py [--nodes 10000 --repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import igraph as ig
import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.stats import spearmanr
from sklearn.metrics import normalized_mutual_info_score

from planted.methods import graphs
from _machine import device_line


def sbm(n: int, seed: int = 0, blocks: int = 20, degree: float = 20.0, within: float = 0.8):
    """A directed weighted SBM (n, n) csr and its blocks (n,)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(blocks), -(-n // blocks))[:n]
    e_in, e_out = int(n * degree * within), int(n * degree * (1 - within))
    pre = rng.integers(0, n, e_in)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(blocks))
    sizes = np.bincount(labels, minlength=blocks)
    post = order[starts[labels[pre]] + (rng.random(e_in) * sizes[labels[pre]]).astype(np.int64)]
    pre = np.concatenate([pre, rng.integers(0, n, e_out)])
    post = np.concatenate([post, rng.integers(0, n, e_out)])
    keep = pre != post
    m = sp.csr_matrix((rng.lognormal(0, 0.5, keep.sum()), (pre[keep], post[keep])), shape=(n, n))
    m.sum_duplicates()
    return m, labels


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def compare(name: str, ours, theirs, check, repeats: int) -> None:
    """Run ``ours`` and ``theirs`` alternately; print times, their ratio and ``check(a, b)``."""
    a_times, b_times, a, b = [], [], None, None
    for _ in range(repeats):
        t, a = _timed(ours)
        a_times.append(t)
        t, b = _timed(theirs)
        b_times.append(t)
    ratio = min(b_times) / min(a_times)
    print(f"{name:<34} planted {min(a_times):8.3f} s (median {statistics.median(a_times):.3f})   "
          f"reference {min(b_times):8.3f} s (median {statistics.median(b_times):.3f})   {ratio:7.1f}x   {check(a, b)}")


def _nx_labels(found, n: int) -> np.ndarray:
    labels = np.empty(n, np.int64)
    for i, members in enumerate(found):
        labels[list(members)] = i
    return labels


def _modularity(sym, labels) -> float:
    up = sp.triu(sym, 1).tocoo()
    g = ig.Graph(n=sym.shape[0], edges=np.column_stack([up.row, up.col]), directed=False)
    return g.modularity(labels.tolist(), weights=up.data.tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(device_line())
    n, r = args.nodes, args.repeats
    m, blocks = sbm(n)
    sym = (m + m.T).tocsr()
    print(f"directed SBM: {n} nodes, {m.nnz} edges ({m.nnz / n:.1f} out per node), 20 blocks; python-igraph "
          f"{ig.__version__}, networkx {nx.__version__}; best of {r}, interleaved")
    directed = nx.from_scipy_sparse_array(m, create_using=nx.DiGraph)

    def undirected():  # both sides start from the same matrix: networkx's graph is built in its time
        return nx.from_scipy_sparse_array(sym)

    def communities_check(a, b):
        qa, qb = _modularity(sym, a), _modularity(sym, b)
        return (f"modularity {qa:.4f} vs {qb:.4f}; NMI with the blocks {normalized_mutual_info_score(blocks, a):.4f} vs "
                f"{normalized_mutual_info_score(blocks, b):.4f}")

    compare("Louvain", lambda: graphs.communities(m, seed=0),
            lambda: _nx_labels(nx.community.louvain_communities(undirected(), weight="weight", seed=0), n),
            communities_check, r)
    up = sp.triu(sym, 1).tocoo()
    built = ig.Graph(n=n, edges=list(zip(up.row.tolist(), up.col.tolist())), directed=False)

    def multilevel_alone():  # igraph's own clustering on a graph built beforehand: the floor of any wrapper
        random.seed(0)
        return np.asarray(built.community_multilevel(weights=up.data).membership)

    compare("Louvain (vs igraph's clustering alone)", lambda: graphs.communities(m, seed=0), multilevel_alone,
            communities_check, r)
    compare("Leiden (vs networkx's Louvain)", lambda: graphs.communities(m, method="leiden", seed=0),
            lambda: _nx_labels(nx.community.louvain_communities(undirected(), weight="weight", seed=0), n),
            communities_check, r)

    def centrality_check(a, b):
        return f"largest difference {np.abs(a - b).max():.1e}, Spearman {spearmanr(a, b).statistic:.6f}"

    def nx_vector(scores):
        return np.array([scores[i] for i in range(n)])

    compare("PageRank", lambda: graphs.centrality(m, "pagerank"),
            lambda: nx_vector(nx.pagerank(nx.from_scipy_sparse_array(m, create_using=nx.DiGraph), weight="weight")),
            centrality_check, r)
    coo = abs(m).tocoo()

    def igraph_pagerank():  # the library route from the same matrix: build the graph, then PRPACK
        g = ig.Graph(n=n, directed=True)
        g.add_edges(zip(coo.row.tolist(), coo.col.tolist()))
        return np.array(g.pagerank(weights=coo.data.tolist(), damping=0.85))

    compare("PageRank (vs igraph)", lambda: graphs.centrality(m, "pagerank"), igraph_pagerank, centrality_check, r)
    compare("eigenvector (symmetrised)", lambda: graphs.centrality(m, "eigenvector"),
            lambda: np.abs(nx_vector(nx.eigenvector_centrality_numpy(undirected(), weight="weight"))),
            lambda a, b: centrality_check(a, b / b.sum()), r)
    for _, _, d in directed.edges(data=True):
        d["distance"] = 1.0 / d["weight"]
    sources = np.sort(np.random.default_rng(0).choice(n, graphs.EXACT_BETWEENNESS, replace=False))

    def nx_betweenness():
        # networkx's own sampler draws other sources; its subset betweenness takes the same ones
        counts = nx.betweenness_centrality_subset(directed, sources.tolist(), list(range(n)), normalized=False,
                                                  weight="distance")
        return nx_vector(counts) * (n / len(sources)) / ((n - 1) * (n - 2))

    compare(f"betweenness ({graphs.EXACT_BETWEENNESS} sources)", lambda: graphs.centrality(m, "betweenness", seed=0),
            nx_betweenness, centrality_check, 1)
    small, _ = sbm(2000, seed=1)
    g_small = nx.from_scipy_sparse_array(small, create_using=nx.DiGraph)
    for _, _, d in g_small.edges(data=True):
        d["distance"] = 1.0 / d["weight"]
    compare("closeness (2,000 nodes)", lambda: graphs.centrality(small, "closeness"),
            lambda: np.array([v for _, v in sorted(nx.closeness_centrality(g_small, distance="distance").items())]),
            centrality_check, 1)

    upper = sp.triu(sym != 0, k=1).tocoo()
    edges = np.stack([upper.row, upper.col], axis=1).astype(np.int64)

    def ours():
        return graphs._swap_edges(edges, n, np.random.default_rng(0))

    def igraph_rewire():
        g = ig.Graph(n=n, edges=edges, directed=False)
        ig.set_random_number_generator(random.Random(0))
        g.rewire(n=10 * len(edges))
        ig.set_random_number_generator(random)
        return np.array(g.get_edgelist())

    def same_degrees(a, b):
        d0 = np.bincount(edges.ravel(), minlength=n)
        return (f"degrees kept: {np.array_equal(np.bincount(a.ravel(), minlength=n), d0)} / "
                f"{np.array_equal(np.bincount(b.ravel(), minlength=n), d0)}")

    compare("degree-preserving swaps (igraph)", ours, igraph_rewire, same_degrees, r)
    few = edges[: min(len(edges), 20_000)]
    g_few = nx.Graph(few.tolist())

    def nx_swap():
        g = g_few.copy()
        nx.double_edge_swap(g, nswap=10 * len(few), max_tries=1000 * len(few), seed=0)
        return np.array(g.edges())

    compare(f"degree-preserving swaps (networkx, {len(few)} edges)",
            lambda: graphs._swap_edges(few, int(few.max()) + 1, np.random.default_rng(0)), nx_swap,
            lambda a, b: "", 1)


if __name__ == "__main__":
    main()
