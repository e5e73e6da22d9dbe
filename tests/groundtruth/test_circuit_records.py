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
