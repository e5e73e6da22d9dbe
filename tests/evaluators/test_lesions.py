"""The lesions tasks: circuit methods' node scores against the exact lesion census (of planted
circuits and of compiled transformers), its oracles, the backups only a pair reveals, and pruning
with its random-ticket control."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from planted import toys
from planted.evaluators import SUITES, Store, run
from planted.evaluators._figures import lesions_figures
from planted.evaluators.lesions import census_of, score_lesions
from planted.evaluators.tasks import TASKS
from planted.groundtruth import CircuitPrediction, ComponentScores
from planted.methods import circuits, transformers


@functools.cache
def _toy(redundancy: bool = True, seed: int = 0):
    return toys.planted_mlp(12, 2, seed=seed, depth=2, n_blocks=3, width=48, redundancy=redundancy)


def _prediction(toy, per_node: np.ndarray) -> CircuitPrediction:
    """Node scores (n_lesioned, n_tasks) on the census's nodes as a circuit prediction."""
    census = census_of(toy)
    scores = []
    for t in range(per_node.shape[1]):
        nodes = np.full(toy.graph.n_nodes, np.nan)
        nodes[census.nodes] = per_node[:, t]
        scores.append(ComponentScores(nodes=nodes))
    return CircuitPrediction(tuple(scores))


def _backup_oracle(census) -> np.ndarray:
    """Each node's worst deficit in a pair with another node that is silent alone."""
    pairs = census.pair_deficits.max(axis=2)
    silent = np.asarray(census.labels) == "silent"
    np.fill_diagonal(pairs, 0.0)
    return pairs[:, silent | (np.asarray(census.labels) == "redundant")].max(axis=1)


@functools.cache
def _transformer(program: str = "ioi", seed: int = 0):
    return toys.rasp_transformer(program, 32, seed=seed, backup=True)


@pytest.mark.parametrize("which", ["planted_mlp", "rasp_transformer"])
def test_the_census_oracle_scores_perfectly_and_its_negation_worst(which):
    toy = _toy() if which == "planted_mlp" else _transformer()
    census = census_of(toy)
    deficits = census.deficit("zero")
    assert census.counts()["redundant"] >= 2  # the toy has backups to find
    best = score_lesions(_prediction(toy, deficits), census, toy.graph.n_nodes)
    assert best["lesion_auroc"] == 1.0 and best["lesion_spearman"] == pytest.approx(1.0)
    worst = score_lesions(_prediction(toy, -deficits - 1.0), census, toy.graph.n_nodes)
    # |score| ranks, so negation alone changes nothing; the reversed order is the worst one
    reversed_order = score_lesions(_prediction(toy, 1.0 / (1.0 + deficits)), census, toy.graph.n_nodes)
    assert worst["lesion_auroc"] == 1.0 and reversed_order["lesion_auroc"] == 0.0
    backups = _backup_oracle(census)
    found = score_lesions(_prediction(toy, np.stack([backups] * deficits.shape[1], axis=1)), census, toy.graph.n_nodes)
    assert found["backup_auroc"] == 1.0


@pytest.mark.parametrize("which", ["planted_mlp", "rasp_transformer"])
def test_the_census_agrees_with_a_plain_run_per_lesion(which):
    toy = _toy() if which == "planted_mlp" else _transformer()
    census = census_of(toy)
    model, tasks = toy.artifact.model, toy.artifact.tasks
    from planted.groundtruth import Patch

    zeros = np.zeros((toy.graph.n_nodes,) if which == "planted_mlp" else (1, 1, 1, 1), np.float32)
    for i in np.random.default_rng(0).choice(census.nodes.size, 6, replace=False):
        node = census.nodes[i]
        mask = np.zeros(toy.graph.n_nodes, np.float32)
        mask[node] = 1.0
        for t, task in enumerate(tasks):
            out = model.run(task.clean, Patch(node_mask=mask, node_values=zeros))["outputs"]
            intact = task.accuracy(model.run(task.clean)["outputs"])
            assert census.deficit("zero")[i, t] == pytest.approx(intact - task.accuracy(out))


@pytest.mark.parametrize("program", ["induction", "ioi"])
def test_a_transformers_backup_head_is_redundant_and_shapley_sampling_finds_it(program):
    """The backup mode plants a copy of a head: each alone is silent (the other covers it), the two
    together lethal. The census labels the pair redundant from a plain double lesion, and an
    exact Shapley game over the components splits their contribution equally. (Not on reverse,
    whose copy is interchangeable only while the rest is intact: there the two heads' Shapley
    values differ in sign.)"""
    toy = _transformer(program)
    census = census_of(toy)
    labels = np.asarray(census.labels)
    pair = census.nodes[labels == "redundant"]
    assert pair.size == 2 and all(toy.graph.labels[n].startswith("a") for n in pair)  # two heads
    players = census.nodes[toy.graph.layers[census.nodes] > 0]  # every head and MLP
    exact = toys.exact_shapley(toy, 0, players)
    a, b = (np.flatnonzero(players == n)[0] for n in pair)
    assert exact[a] == pytest.approx(exact[b], abs=1e-12) and exact[a] > 0.01  # silent alone, yet it contributes
    sampled = transformers.msa(toy.artifact, 0, players=players, n_permutations=400, seed=0).nodes[players]
    np.testing.assert_allclose(sampled, exact, atol=0.06)
    shapley = np.full(toy.graph.n_nodes, np.nan)
    shapley[players] = exact
    scores = CircuitPrediction((ComponentScores(nodes=shapley),))
    assert score_lesions(scores, census, toy.graph.n_nodes)["backup_auroc"] == 1.0  # above every other silent node
    zero = CircuitPrediction((transformers.ablation(toy.artifact, 0, kind="zero"),))
    assert score_lesions(zero, census, toy.graph.n_nodes)["backup_auroc"] == 0.5  # silent alone: tied with the silent


def test_shapley_sampling_finds_the_backups_single_lesions_miss():
    toy = _toy()
    census = census_of(toy)
    artifact = TASKS["lesions"].artifact(toy)
    msa = CircuitPrediction(tuple(circuits.msa(artifact, t, n_permutations=32) for t in range(2)))
    zero = CircuitPrediction(tuple(circuits.ablation(artifact, t, kind="zero") for t in range(2)))
    by_msa = score_lesions(msa, census, toy.graph.n_nodes)
    by_zero = score_lesions(zero, census, toy.graph.n_nodes)
    assert by_msa["backup_auroc"] > 0.8 and by_zero["backup_auroc"] < 0.6
    assert by_zero["lesion_auroc"] > 0.99 and by_msa["lesion_auroc"] > 0.99


def test_a_toy_without_backups_has_no_backup_score():
    toy = _toy(redundancy=False)
    census = census_of(toy)
    assert census.counts()["redundant"] == 0
    scores = score_lesions(_prediction(toy, census.deficit("zero")), census, toy.graph.n_nodes)
    assert scores["backup_auroc"] is None


def test_pruning_beats_its_random_ticket_at_the_same_per_layer_densities():
    toy = _toy(redundancy=False)
    artifact = TASKS["lesions"].artifact(toy)
    layers = toy.graph.layers
    gaps = []
    for seed in range(3):
        for t in range(2):
            imp = circuits.magnitude_pruning(artifact, t, seed=seed).nodes
            ticket = circuits.magnitude_pruning(artifact, t, control="random", seed=seed).nodes
            for layer in range(layers.max()):  # the same number of nodes leave each layer each round
                at = layers == layer
                np.testing.assert_array_equal(np.sort(np.floor(imp[at])), np.sort(np.floor(ticket[at])))
            census = census_of(toy)
            a = score_lesions(CircuitPrediction((ComponentScores(nodes=imp),) * 2), census, toy.graph.n_nodes)
            b = score_lesions(CircuitPrediction((ComponentScores(nodes=ticket),) * 2), census, toy.graph.n_nodes)
            gaps.append(a["lesion_auroc"] - b["lesion_auroc"])
    assert np.mean(gaps) > 0.1


def test_pruning_names_its_bad_parameters():
    artifact = TASKS["lesions"].artifact(_toy(redundancy=False))
    for params, name in (({"fraction": 1.0}, "fraction"), ({"control": "lucky"}, "control"),
                         ({"steps": -1}, "steps"), ({"tolerance": 2.0}, "tolerance"),
                         ({"control": "random", "seed": -1}, "seed")):
        with pytest.raises(ValueError, match=name):
            circuits.magnitude_pruning(artifact, 0, **params)


def test_the_lesions_suite_draws_the_census_histogram(tmp_path):
    """The suite's plain and redundancy toys (the failure modes' censuses are the toys' tests)."""
    store = Store(tmp_path / "s.sqlite")
    suite = SUITES["lesions"]
    suite = dataclasses.replace(suite, toys=tuple(t for t in suite.toys if t.name in ("plain", "redundancy")))
    results = run(suite, methods=["lesion-zero-ablation", "lesion-msa"], seeds=[0], store=store, progress=False)
    assert {r.toy for r in results} == {"plain", "redundancy"}
    assert all(r.status == "ok" for r in results), [r.error for r in results if r.error]
    redundancy = [r for r in results if r.toy == "redundancy"]
    by = {r.method: r.metrics for r in redundancy}
    assert by["lesion-msa"]["backup_auroc"] > by["lesion-zero-ablation"]["backup_auroc"]
    written = lesions_figures([r for r in results if r.toy in ("plain", "redundancy")], store, tmp_path)
    png = sorted(p.name for p in written if p.suffix == ".png")
    assert png == ["lesions-lesions-plain.png", "lesions-lesions-redundancy.png"]
    assert all(p.stat().st_size > 5_000 for p in written if p.suffix == ".png")
