import numpy as np
import pytest

from planted.groundtruth import ComponentGraph, ComponentScores


def test_component_graph_numbers_every_cross_layer_edge():
    graph = ComponentGraph(labels=("a", "b", "c", "d", "e"), layers=np.array([0, 0, 1, 1, 2]))
    src, dst = graph.edges()
    expected = [(s, d) for d in range(5) for s in range(5) if graph.layers[s] < graph.layers[d]]
    assert list(zip(src.tolist(), dst.tolist())) == expected
    assert graph.n_edges == len(expected) == 2 + 2 + 4
    np.testing.assert_array_equal(graph.edge_index(src, dst), np.arange(graph.n_edges))
    with pytest.raises(ValueError, match="is not an edge"):
        graph.edge_index([2], [3])  # same layer
    dense = graph.dense(np.arange(graph.n_edges, dtype=float) + 1)
    assert dense[0, 2] == 1 and dense[3, 4] == 8 and dense[2, 3] == 0


def test_component_records_reject_bad_input():
    with pytest.raises(ValueError, match="distinct names"):
        ComponentGraph(labels=("a", "a"), layers=np.array([0, 1]))
    with pytest.raises(ValueError, match="never decrease"):
        ComponentGraph(labels=("a", "b"), layers=np.array([0, 1])[::-1])
    with pytest.raises(ValueError, match="needs node scores"):
        ComponentScores()
    with pytest.raises(ValueError, match="infinite"):
        ComponentScores(edges=np.array([1.0, np.inf]))


def test_a_component_graph_and_a_connectome_as_networkx_graphs():
    import networkx as nx

    from planted import toys

    toy = toys.planted_mlp(8, 2, seed=0, depth=2, n_blocks=3, width=16, n_samples=16)
    graph = toy.graph
    g = graph.to_networkx(circuit=toy.truth.edge_mask(0))
    assert g.number_of_nodes() == graph.n_nodes and g.number_of_edges() == graph.n_edges
    assert nx.is_directed_acyclic_graph(g)
    src, dst = graph.edges()
    circuit = [(int(s), int(d)) for s, d in zip(src[toy.truth.edges[0]], dst[toy.truth.edges[0]])]
    assert sorted((u, v) for u, v, c in g.edges(data="circuit") if c) == sorted(circuit)
    assert g.nodes[0]["label"] == "in00" and g.nodes[graph.n_nodes - 1]["layer"] == 4
    with pytest.raises(ValueError, match="edge values 'score' must have shape"):
        graph.to_networkx(score=np.zeros(3))
    connectome = toys.connectome(40, seed=0, duration=1.0, observed_fraction=0.5)
    truth = connectome.truth
    full = truth.to_networkx()
    assert full.number_of_nodes() == 40 and full.number_of_edges() == truth.weights.nnz
    w = truth.weights.tocoo()
    assert full[int(w.row[0])][int(w.col[0])]["weight"] == pytest.approx(float(w.data[0]))
    assert sum(d["hub"] for _, d in full.nodes(data=True)) == int(truth.hubs.sum())
    part = truth.to_networkx(observed=True)
    assert part.number_of_nodes() == truth.observed.size
    assert np.allclose(nx.to_numpy_array(part, nodelist=range(part.number_of_nodes())), truth.adjacency())
