"""Planted circuits: compiled formulas are exact, the truth is verified by intervention, the
model's one intervention interface behaves, and configs are validated."""

import dataclasses
import inspect
import itertools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from planted import toys
from planted.toys import strategies as gst
from planted.groundtruth import Patch


def _evaluate_text(formula: str, x: np.ndarray) -> np.ndarray:
    """An evaluator independent of the generator's: the formula text run as Python."""
    env = {f"in{i:02d}": x[:, i].astype(int) for i in range(x.shape[1])}
    env.update(
        AND=lambda *a: np.all(a, axis=0).astype(int), OR=lambda *a: np.any(a, axis=0).astype(int),
        XOR=lambda a, b: a ^ b, NOT=lambda a: 1 - a, MAJ=lambda *a: (np.sum(a, axis=0) >= 2).astype(int),
        THR=lambda t, *a: (np.sum(a, axis=0) >= t).astype(int),
    )
    code = re.sub(r"\bthreshold(\d+)\(", r"THR(\1, ", formula)
    names = {"and": "AND", "or": "OR", "xor": "XOR", "not": "NOT", "majority": "MAJ"}
    code = re.sub(r"\b(and|or|xor|not|majority)\(", lambda m: names[m.group(1)] + "(", code)
    return eval(code, {"__builtins__": {}}, env)  # noqa: S307 - our own formula text, letters and digits only


def _all_inputs(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)), np.float32)


@pytest.mark.parametrize("kwargs", [
    {},
    {"depth": 3, "n_blocks": 3, "fan_in": 3, "n_tasks": 3, "width": 64},
    {"gates": ("threshold", "not", "and"), "fan_in": 3, "depth": 2},
    {"redundancy": True, "saturation": True},
    {"cancellation": True, "shared": True, "naturalise": True},
])
def test_compiled_circuits_equal_their_formulas_on_every_input(kwargs):
    toy = toys.planted_mlp(10, seed=3, **kwargs)
    x = _all_inputs(10)
    y = toy.model.run(x)["outputs"]
    tol = 0.05 if kwargs.get("naturalise") else 1e-5
    for t, formula in enumerate(toy.truth.formulas):
        expected = _evaluate_text(formula, x)
        np.testing.assert_allclose(y[:, t], expected, atol=tol, err_msg=formula)
        np.testing.assert_array_equal(toy.formula(t, x), expected)
        # The truth's relevant inputs are exactly those the formula reads and depends on.
        for i in range(10):
            flipped = x.copy()
            flipped[:, i] = 1 - flipped[:, i]
            assert toy.truth.relevant_inputs[t, i] == (not np.array_equal(_evaluate_text(formula, flipped), expected))


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gst.planted_mlp_configs())
def test_verify_passes_on_drawn_toys(config):
    toy = toys.from_config(config)
    check = toy.verify()
    assert check.ok, check.problems
    assert all(abs(1 - f) <= 0.05 for f in check.faithfulness.values())


def test_truth_of_the_plain_toy():
    toy = toys.planted_mlp(seed=1)
    truth, graph = toy.truth, toy.graph
    src, dst = graph.edges()
    for t in range(truth.n_tasks):
        e = truth.edges[t]
        assert truth.nodes[t, src[e]].all() and truth.nodes[t, dst[e]].all()  # edges join circuit nodes
        assert truth.nodes[t, graph.labels.index(f"out{t}")]
        # Outside the circuit nothing matters: exact zero effect when patched (orthonormal, no noise).
        assert np.abs(truth.node_effects[t, ~truth.nodes[t]]).max() < 1e-6
        # The circuit edges' weights are the compiled ones; every other edge into a circuit node is 0.
        w = toy.model.edge_weights()
        into = truth.nodes[t][dst] & ~truth.edge_mask(t)
        assert np.abs(w[src[into], dst[into]]).max() < 1e-6
        assert np.abs(w[src[e], dst[e]]).min() >= 0.5
    assert not truth.redundant.any() and truth.catalog == {}
    assert set(truth.modules[truth.nodes.any(axis=0) & (graph.layers > 0) & (graph.layers <= 3)]) <= {0, 1}


def test_catalog_marks_what_it_plants():
    toy = toys.planted_mlp(seed=0, n_blocks=4, redundancy=True, cancellation=True, saturation=True, shared=True)
    truth = toy.truth
    copies = truth.catalog["redundancy"]
    assert copies.sum() >= 3 and truth.redundant[0, copies].all()
    assert np.abs(truth.node_effects[0, copies]).max() < 1e-6  # no single copy matters
    cancel = truth.catalog["cancellation"]
    assert cancel.sum() == 2 and not truth.nodes[:, cancel].any()  # jointly inert: outside the circuit
    both = np.flatnonzero(cancel)
    clean = toy.model.run(toy.tasks[0].clean)
    one = toy.model.patch_nodes(toy.tasks[0].clean, both[:1], np.zeros(toy.graph.n_nodes))[0]
    assert np.abs(one[:, 0] - clean["outputs"][:, 0]).max() > 1.0  # alone, each is large
    mask = np.zeros(toy.graph.n_nodes)
    mask[both] = 1
    out = toy.model.run(toy.tasks[0].clean, Patch(node_mask=mask, node_values=np.zeros(toy.graph.n_nodes)))["outputs"]
    np.testing.assert_allclose(out[:, 0], clean["outputs"][:, 0], atol=1e-5)  # together, nothing
    shared = truth.catalog["shared"]
    assert shared.any() and truth.nodes[0, shared].all() and truth.nodes[1, shared].all()
    assert (truth.modules[shared] == -1).all()
    assert truth.catalog["saturation"].sum() == 2


@pytest.mark.parametrize("kwargs", [{}, {"shared": True, "naturalise": True}])
def test_trained_circuits_fit_their_formulas_under_the_masks(kwargs):
    toy = toys.planted_mlp(10, seed=1, trained=True, **kwargs)
    assert toy.verify().ok
    x = _all_inputs(10)
    y = toy.model.run(x)["outputs"]
    for t, formula in enumerate(toy.truth.formulas):  # exact on the whole domain, not just the tasks' inputs
        np.testing.assert_allclose(y[:, t], _evaluate_text(formula, x), atol=0.05, err_msg=formula)
    truth, graph = toy.truth, toy.graph
    src, dst = graph.edges()
    w = toy.model.edge_weights()
    if not kwargs:
        # Learned, not compiled: circuit weights are not the compiled small integers.
        e = np.concatenate(truth.edges)
        circuit_weights = w[src[e], dst[e]]
        assert np.mean(np.abs(circuit_weights - np.round(circuit_weights)) < 1e-3) < 0.1
        # The structural masks hold: nothing outside a task's circuit feeds its circuit nodes.
        for t in range(truth.n_tasks):
            into = truth.nodes[t][dst] & ~truth.edge_mask(t)
            assert np.abs(w[src[into], dst[into]]).max() < 1e-6
    # Every circuit neuron is necessary and the circuit alone is faithful (verify), and an
    # intervention method recovers it.
    from planted.evaluators.circuits import score_circuit
    from planted.methods.circuits import activation_patching

    for t in range(truth.n_tasks):
        assert score_circuit(activation_patching(toy.artifact, t), toy, t, faithfulness=False).node_auroc >= 0.95


def test_intervention_interface():
    toy = toys.planted_mlp(seed=2, width=24)
    task = toy.tasks[0]
    model = toy.model
    clean = model.run(task.clean)
    n = toy.graph.n_nodes
    # Patching every node, edge or residual position to its own clean value changes nothing.
    same = model.run(task.clean, Patch(node_mask=np.ones(n), node_values=clean["activations"]))
    np.testing.assert_allclose(same["outputs"], clean["outputs"], atol=1e-5)
    layers = toy.graph.layers
    every_edge = (layers[:, None] < layers[None, :]).astype(np.float32)
    same = model.run(task.clean, Patch(edge_mask=every_edge, edge_source=clean["activations"]))
    np.testing.assert_allclose(same["outputs"], clean["outputs"], atol=1e-4)
    # Patching every edge to the corrupted run reproduces the corrupted run.
    corrupt = model.run(task.corrupted)
    moved = model.run(task.clean, Patch(edge_mask=every_edge, edge_source=corrupt["activations"]))
    np.testing.assert_allclose(moved["outputs"], corrupt["outputs"], atol=1e-4)
    # Patching the last residual position to the corrupted one does too.
    resid = np.zeros(toy.config.n_blocks + 1)
    resid[-1] = 1
    values = np.zeros((task.clean.shape[0], toy.config.n_blocks + 1, toy.model.params["embed"].shape[1]), np.float32)
    values[:, -1] = corrupt["activations"] @ np.concatenate(
        [model.params["embed"], model.params["w_out"].reshape(-1, values.shape[2]), np.zeros((toy.config.n_tasks, values.shape[2]))])
    moved = model.run(task.clean, Patch(resid_mask=resid, resid_values=values))
    np.testing.assert_allclose(moved["outputs"], corrupt["outputs"], atol=1e-4)
    # The batched helper equals one run per patch.
    nodes = np.array([0, 20, 40])
    batched = model.patch_nodes(task.clean, nodes, corrupt["activations"])
    for i, node in enumerate(nodes):
        one = model.run(task.clean, Patch(node_mask=np.eye(n)[node], node_values=corrupt["activations"]))
        np.testing.assert_allclose(batched[i], one["outputs"], atol=1e-5)
    exported = model.export()
    exported["w_in"][:] = 0
    assert np.abs(model.params["w_in"]).sum() > 0  # an export is a copy
    assert set(exported) == {"embed", "w_in", "b_in", "w_out", "readout", "readout_bias"}


def test_same_seed_same_toy_and_storage(tmp_path):
    a = toys.planted_mlp(seed=4, naturalise=True, redundancy=True)
    b = toys.planted_mlp(seed=4, naturalise=True, redundancy=True)
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    np.testing.assert_array_equal(a.tasks[0].corrupted, b.tasks[0].corrupted)
    assert a.truth.formulas == b.truth.formulas and a.id == b.id
    assert toys.planted_mlp(seed=5).truth.formulas != a.truth.formulas
    toys.save(a, tmp_path / "c")
    loaded = toys.load(tmp_path / "c")
    assert loaded.truth.formulas == a.truth.formulas
    for t in range(a.truth.n_tasks):
        np.testing.assert_array_equal(loaded.truth.edges[t], a.truth.edges[t])
        np.testing.assert_array_equal(loaded.truth.nodes[t], a.truth.nodes[t])
    np.testing.assert_array_equal(loaded.truth.catalog["redundancy"], a.truth.catalog["redundancy"])
    x = _all_inputs(12)[::7]
    np.testing.assert_array_equal(loaded.model.run(x)["outputs"], a.model.run(x)["outputs"])
    np.testing.assert_array_equal(loaded.formula(0, x), a.formula(0, x))
    assert loaded.verify().ok


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 4, "n_blocks": 3}, "depth must be in \\[1, 3\\], got 4"),
        ({"fan_in": 1}, "fan_in"),
        ({"gates": ("nand",)}, "gates"),
        ({"gates": ("not",)}, "only 'not'"),
        ({"cancellation": True, "depth": 3, "n_blocks": 3}, "cancellation needs a block after"),
        ({"shared": True, "n_tasks": 1}, "shared needs two tasks"),
        ({"superposition": 0.5}, "superposition"),
        ({"distractor_fraction": 1.5}, "distractor_fraction"),
        ({"width": 1}, "width=1 cannot hold"),
        ({"redundancy": True, "gates": ("or", "xor")}, "redundancy copies a one-neuron gate"),
        ({"trained": True, "saturation": True}, "trained cannot be combined with saturation"),
        ({"trained": True, "superposition": 2.0}, "trained needs superposition=1.0"),
        # Checked before any conversion: the message names the parameter and the value given.
        ({"superposition": True}, "superposition must be a finite number, got True"),
        ({"gates": 5}, "gates must be a non-empty tuple .* got 5"),
        ({"noise": "x"}, "noise must be a finite number, got 'x'"),
        ({"noise": 1e308}, "noise must be in \\[0, 0.1\\], got 1e\\+308"),
        ({"distractor_fraction": None}, "distractor_fraction must be a finite number, got None"),
    ],
)
def test_invalid_configs_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toys.planted_mlp(seed=0, **kwargs)


def test_the_catalog_names_every_toggle_in_order():
    """The catalog is the one list of failure modes: the config's toggles and the generator's
    keywords (written out, so both stay explicit) are its names in its order, and a toy's truth
    catalog has one entry per mode switched on."""
    fields = [f.name for f in dataclasses.fields(toys.PlantedMLPConfig)]
    assert tuple(fields[fields.index("distractor_fraction") + 1 : fields.index("noise")]) == toys.FAILURE_MODES
    params = list(inspect.signature(toys.planted_mlp).parameters)
    assert tuple(params[params.index("distractor_fraction") + 1 : params.index("noise")]) == toys.FAILURE_MODES
    assert all(getattr(toys.PlantedMLPConfig(), mode) is False for mode in toys.FAILURE_MODES)
    assert set(toys.planted_mlp(seed=0, naturalise=True).truth.catalog) == {"naturalise"}


@pytest.mark.parametrize("seed", [24, 3])
def test_an_oracle_of_single_edge_effects_scores_every_trained_truth_perfectly(seed):
    """Trained circuits list only edges that carry an effect. The oracle scores every structural
    edge by its mean-ablation effect alone, computed here with the JAX model in float32 (not the
    float64 evaluation the truth is built with): its edge AUROC is 1 on every task, and every truth
    edge moves the output by at least the tolerance. (``planted_mlp(12, 2, seed=24, trained=True)``
    used to list ``in06 -> b2.n014``, weight -1.6e-8, effect 0.)"""
    from planted.evaluators.circuits import score_circuit
    from planted.groundtruth import ComponentScores
    from planted.toys._planted_mlp._truth import TOLERANCE

    toy = toys.planted_mlp(12, 2, seed=seed, trained=True)
    src, dst = toy.graph.edges()
    labels = toy.graph.labels
    for t, task in enumerate(toy.tasks):
        clean = toy.model.run(task.clean)
        out = toy.model.patch_edges(task.clean, src, dst, clean["activations"].mean(axis=0), chunk=512)
        effect = np.abs(out[:, :, t] - clean["outputs"][None, :, t]).max(axis=1)
        assert score_circuit(ComponentScores(edges=effect), toy, t, faithfulness=False).edge_auroc == 1.0
        assert effect[toy.truth.edges[t]].min() >= TOLERANCE - 1e-4
        named = {f"{labels[s]} -> {labels[d]}" for s, d in zip(src[toy.truth.edges[t]], dst[toy.truth.edges[t]])}
        assert seed != 24 or "in06 -> b2.n014" not in named


_TRUTH_DIGEST = """
import hashlib, numpy as np
from planted import toys
for kw in (dict(seed=24), dict(seed=5, naturalise=True), dict(seed=24, trained=True)):
    arrays = toys.family("planted_mlp").to_arrays(toys.planted_mlp(12, 2, **kw))[0]
    h = hashlib.sha256()
    for name in sorted(n for n in arrays if n.startswith("truth.")):
        h.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
    print(h.hexdigest())
"""

ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
              "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.slow
def test_the_truth_is_the_same_bit_for_bit_on_one_thread_and_on_many():
    """Compiled, naturalised and trained circuits: the truth's arrays (nodes, edges, effects) built
    with XLA and the BLAS on one thread equal those built with the default threads, bit for bit."""
    import os
    import subprocess
    import sys

    default = {k: v for k, v in os.environ.items() if k not in ONE_THREAD}
    runs = [subprocess.run([sys.executable, "-c", _TRUTH_DIGEST], env=env, capture_output=True, text=True, check=True).stdout
            for env in (default, {**default, **ONE_THREAD})]
    assert len(runs[0].split()) == 3 and runs[0] == runs[1]


def test_verify_refuses_a_truth_that_lists_a_dead_edge():
    """The check that keeps dead edges out, shown to fail: the trained toy's truth with the
    allowed-but-dead connection ``in06 -> b2.n014`` put back is not verified."""
    toy = toys.planted_mlp(12, 2, seed=24, trained=True)
    labels = list(toy.graph.labels)
    dead = int(toy.graph.edge_index(np.array([labels.index("in06")]), np.array([labels.index("b2.n014")]))[0])
    t = next(t for t in range(toy.truth.n_tasks) if toy.truth.nodes[t, labels.index("b2.n014")])
    assert dead not in toy.truth.edges[t]
    edges = list(toy.truth.edges)
    effects = list(toy.truth.edge_effects)
    order = np.argsort(np.append(edges[t], dead))
    edges[t] = np.append(edges[t], dead)[order]
    effects[t] = np.append(effects[t], 0.0)[order]
    forged = dataclasses.replace(toy, truth=dataclasses.replace(toy.truth, edges=tuple(edges), edge_effects=tuple(effects)))
    check = forged.verify()
    assert not check.ok
    assert any("circuit edge in06 -> b2.n014 is not necessary" in p for p in check.problems), check.problems
