"""The lesion census and Shapley contributions: deficits recomputed by plain runs of the model,
labels checked against the planted circuits and backups, Shapley values on games whose values
are known by hand, and the sampled estimate (MSA) against the exact one."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from planted import toys
from planted.groundtruth import LETHAL_DEFICIT, SILENT_DEFICIT, Patch
from planted.methods import circuits as mc


@functools.cache
def _toy(seed: int = 0, **modes):
    return toys.planted_mlp(seed=seed, **modes)


@functools.cache
def _census(seed: int = 0, **modes):
    return toys.lesion_census(_toy(seed, **modes))


def _accuracy(toy, task, patch):
    t = toy.artifact.tasks[task]
    out = toy.artifact.model.run(t.clean, patch)["outputs"][:, t.index]
    return ((out > 0.5) == t.labels.astype(bool)).mean()


def test_deficits_are_those_of_plain_runs():
    """Every fast kernel (single nodes, edges, pairs) against one ``run`` per lesion with a Patch."""
    toy, census = _toy(), _census()
    graph, rng = toy.truth.graph, np.random.default_rng(0)
    src, dst = graph.edges()
    for k, kind in enumerate(census.kinds):
        for task in range(toy.truth.n_tasks):
            values = toy.artifact.model.ablated(toy.artifact.tasks[task].clean, kind)
            base = _accuracy(toy, task, Patch())
            for i in rng.choice(census.nodes.size, 6, replace=False):
                mask = np.zeros(graph.n_nodes, np.float32)
                mask[census.nodes[i]] = 1
                assert census.deficits[k, i, task] == base - _accuracy(toy, task, Patch(node_mask=mask, node_values=values))
            for e in rng.choice(graph.n_edges, 4, replace=False):
                mask = np.zeros((graph.n_nodes, graph.n_nodes), np.float32)
                mask[src[e], dst[e]] = 1
                patched = _accuracy(toy, task, Patch(edge_mask=mask, edge_source=values))
                assert census.edge_deficits[k, e, task] == pytest.approx(base - patched, abs=1e-12)
    values = toy.artifact.model.ablated(toy.artifact.tasks[1].clean, census.label_kind)
    for i, j in [(0, 5), (20, 40), (3, 90)]:
        mask = np.zeros(graph.n_nodes, np.float32)
        mask[census.nodes[[i, j]]] = 1
        assert census.pair_deficits[i, j, 1] == census.pair_deficits[j, i, 1] == \
            _accuracy(toy, 1, Patch()) - _accuracy(toy, 1, Patch(node_mask=mask, node_values=values))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_only_planted_circuit_nodes_cost_anything(seed):
    """Every node whose lesion costs a task anything is a planted circuit node: distractors are
    silent under every ablation, and most circuit nodes are not."""
    toy, census = _toy(seed), _census(seed)
    circuit = toy.truth.nodes[:, census.nodes].any(axis=0)
    costly = (census.deficits >= SILENT_DEFICIT).any(axis=(0, 2))
    assert not (costly & ~circuit).any()
    assert costly[circuit].mean() >= 0.8
    labels = np.array(census.labels)
    assert (labels[~circuit] == "silent").all()
    assert census.counts()["task-specific"] + census.counts()["lethal"] >= 5


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_backups_are_labelled_redundant_by_the_pairs(seed):
    """The redundancy mode's three copies: each silent alone, and any two lesioned together lethal."""
    toy, census = _toy(seed, redundancy=True), _census(seed, redundancy=True)
    copies = np.flatnonzero(toy.truth.redundant[:, census.nodes].any(axis=0))
    assert copies.size == 3
    assert all(census.labels[i] == "redundant" for i in copies)
    assert (census.deficit("zero")[copies] < SILENT_DEFICIT).all()
    for i, j in itertools.combinations(copies, 2):
        assert census.pair_deficits[i, j].max() >= LETHAL_DEFICIT
        assert census.interactions()[i, j].max() >= LETHAL_DEFICIT
    assert census.counts()["redundant"] == 3


def test_shapley_values_of_games_known_by_hand():
    # The glove game: player 0 holds a left glove, players 1 and 2 a right one; a pair is worth 1.
    glove = np.array([0, 0, 0, 1, 0, 1, 0, 1], float)  # coalition bits: player i is bit i
    np.testing.assert_allclose(toys.shapley_from_table(glove), [2 / 3, 1 / 6, 1 / 6])
    # The weighted majority game [3; 2, 1, 1]: the same values.
    weights = np.array([2, 1, 1])
    majority = np.array([float(sum(weights[b] for b in range(3) if s >> b & 1) >= 3) for s in range(8)])
    np.testing.assert_allclose(toys.shapley_from_table(majority), [2 / 3, 1 / 6, 1 / 6])
    # An additive game: each player's Shapley value is its own worth.
    worth = np.array([0.5, -1.0, 2.0, 0.25])
    additive = np.array([sum(worth[b] for b in range(4) if s >> b & 1) for s in range(16)])
    np.testing.assert_allclose(toys.shapley_from_table(additive), worth)
    with pytest.raises(ValueError, match="2\\^k coalition values"):
        toys.shapley_from_table(np.zeros(6))


def test_exact_shapley_on_a_toy_is_efficient_and_symmetric_on_the_backups():
    toy = _toy(1, redundancy=True)
    census = _census(1, redundancy=True)
    copies = census.nodes[np.flatnonzero(toy.truth.redundant[:, census.nodes].any(axis=0))]
    others = np.flatnonzero(toy.truth.nodes[0][: toy.truth.graph.n_nodes - 2])
    players = np.concatenate([copies, [n for n in others if n not in copies][:5]])
    phi = toys.exact_shapley(toy, 0, players, kind="zero")
    mask = np.zeros(toy.truth.graph.n_nodes, np.float32)
    mask[players] = 1
    values = toy.artifact.model.ablated(toy.artifact.tasks[0].clean, "zero")
    assert phi.sum() == pytest.approx(_accuracy(toy, 0, Patch()) - _accuracy(toy, 0, Patch(node_mask=mask, node_values=values)))
    # the three copies are interchangeable players of the game: equal contributions, each > 0
    assert phi[0] == pytest.approx(phi[1]) == pytest.approx(phi[2]) and phi[0] > 0


def test_msa_samples_converge_to_the_exact_values():
    toy = _toy(1, redundancy=True)
    players = np.flatnonzero(toy.truth.nodes[0][: toy.truth.graph.n_nodes - 2])[:8]
    exact = toys.exact_shapley(toy, 0, players, kind="zero")
    small = toys.exact_shapley(toy, 0, players[:4], kind="zero")
    many_orders = mc.msa(toy.artifact, 0, players=players[:4], n_permutations=math.factorial(4) * 25, seed=0)
    np.testing.assert_allclose(many_orders.nodes[players[:4]], small, atol=0.03)
    sampled = mc.msa(toy.artifact, 0, players=players, n_permutations=2000, seed=0).nodes[players]
    assert np.abs(sampled - exact).max() < 0.02
    assert np.isnan(mc.msa(toy.artifact, 0, players=players, n_permutations=4).nodes[toy.truth.graph.n_nodes - 1])
    with pytest.raises(ValueError, match="players must be distinct nodes before the outputs"):
        mc.msa(toy.artifact, 0, players=[toy.truth.graph.n_nodes - 1])


def test_census_arguments_are_checked():
    with pytest.raises(ValueError, match="label_kind must be one of 'mean'"):
        toys.lesion_census(_toy(), kinds=("mean",), label_kind="zero")
    with pytest.raises(ValueError, match="needs a planted_mlp or rasp_transformer toy, got 'feature_view'"):
        toys.lesion_census(toys.feature_view(8, 4, 4, seed=0))
    with pytest.raises(ValueError, match="players must be 1 to 16 distinct nodes"):
        toys.exact_shapley(_toy(), 0, list(range(17)))
    outputs = np.flatnonzero(_toy().graph.layers == _toy().graph.layers.max())
    with pytest.raises(ValueError, match="players must be nodes before the outputs"):
        toys.exact_shapley(_toy(), 0, [0, int(outputs[0])])


# --- connectomes -----------------------------------------------------------------------------------


@functools.cache
def _connectome(seed: int = 0):
    return toys.connectome(300, seed=seed, duration=20.0, n_modules=3, hub_fraction=0.05, hub_boost=4.0,
                           exc_fraction=1.0, weight=24.0, depression=True, background_weight=2.8, density=0.05)


def test_lesioning_nothing_reproduces_the_recorded_network_spike_for_spike():
    toy = _connectome()
    none = toys.connectome_lesions(toy, {"none": []})
    np.testing.assert_array_equal(none.lesioned_rates[0], toy.truth.rates())
    assert none.lesioned_bursts[0] == none.bursts == toys.network_bursts(toy.truth)[0]
    assert none.rate_change()[0] == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_lesioning_the_planted_hubs_costs_more_than_as_many_other_neurons(seed):
    """Hubs drive the network: removing them lowers the spared neurons' rate far more than
    removing as many random non-hubs (seed 0: -43% against -4%; bursts 1.05/s to 0.55/s)."""
    lesions = toys.connectome_lesions(_connectome(seed))
    change = dict(zip(lesions.names, lesions.rate_change()))
    assert lesions.names[:2] == ("hubs", "non-hubs") and len(lesions.names) == 5
    assert lesions.members[0].size == lesions.members[1].size == int(_connectome(seed).truth.hubs.sum())
    assert change["hubs"] < 2 * change["non-hubs"] - 0.1
    assert (lesions.lesioned_rates[0, lesions.members[0]] == 0).all()
    assert lesions.lesioned_bursts[0] < lesions.bursts


def test_connectome_lesions_check_their_input():
    with pytest.raises(ValueError, match="group 'bad' names neurons outside \\[0, 300\\)"):
        toys.connectome_lesions(_connectome(), {"bad": [300]})
    with pytest.raises(ValueError, match="needs a connectome toy"):
        toys.connectome_lesions(_toy())
