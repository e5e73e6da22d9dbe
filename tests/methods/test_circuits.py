"""Circuit methods on planted circuits: they find the plain circuit, each failure mode fools the
methods it documents and not the others, and no method can see the truth."""

import dataclasses

import numpy as np
import pytest

import planted.methods.circuits as mc
from planted import toys
from planted.evaluators.circuits import score_circuit, score_modules

SEEDS = (0, 1, 2)
_CACHE = {}


def _toy(seed, **modes):
    key = (seed, tuple(sorted(modes.items())))
    if key not in _CACHE:
        _CACHE[key] = toys.planted_mlp(seed=seed, width=48, **modes)
    return _CACHE[key]


def _node(method, toy, task=0, metric="node_auroc", **kwargs):
    return getattr(score_circuit(method(toy.artifact, task, **kwargs), toy, task, faithfulness=False), metric)


@pytest.mark.slow
def test_activation_patching_finds_the_plain_circuit():
    aurocs = [_node(mc.activation_patching, _toy(s), t) for s in SEEDS for t in (0, 1)]
    assert np.mean(aurocs) >= 0.95 and min(aurocs) >= 0.9, aurocs
    edges = [score_circuit(mc.edge_attribution_patching(_toy(s).artifact, 0), _toy(s), 0) for s in SEEDS]
    assert np.mean([e.edge_auroc for e in edges]) >= 0.9
    assert np.mean([e.cpr for e in edges]) >= 0.9 and np.mean([e.cmd for e in edges]) <= 0.1


def _mean(method, modes, metric="node_auroc", **kwargs):
    return float(np.mean([_node(method, _toy(s, **modes), 0, metric, **kwargs) for s in SEEDS]))


@pytest.mark.slow
def test_redundancy_hides_the_copies_from_single_interventions():
    assert _mean(mc.activation_patching, {"redundancy": True}) < _mean(mc.activation_patching, {}) - 0.05
    assert _mean(mc.ablation, {"redundancy": True}) < _mean(mc.ablation, {}) - 0.05
    assert _mean(mc.integrated_gradients, {"redundancy": True}) >= 0.99  # input attributions see through it


def test_cancellation_puts_inert_neurons_on_top():
    metric = "node_precision_at_k"
    assert _mean(mc.activation_patching, {}, metric) >= 0.95
    assert _mean(mc.activation_patching, {"cancellation": True}, metric) < 0.85
    assert _mean(mc.attribution_patching, {"cancellation": True}, metric) < 0.85
    assert _mean(mc.integrated_gradients, {"cancellation": True}) >= 0.99


def test_saturation_blinds_gradients_but_not_interventions():
    assert _mean(mc.attribution_patching, {}) >= 0.95
    assert _mean(mc.attribution_patching, {"saturation": True}) < 0.8
    assert _mean(mc.gradient_x_input, {"saturation": True}) < 0.8
    assert _mean(mc.activation_patching, {"saturation": True}) >= 0.99
    assert _mean(mc.integrated_gradients, {"saturation": True}) >= 0.99  # integrates through the ramp


def test_naturalise_hides_the_weights_zeros_from_binary_degree():
    for s in SEEDS:
        plain, natural = _toy(s), _toy(s, naturalise=True)
        assert _node(mc.weight_centrality, natural, kind="degree") < _node(mc.weight_centrality, plain, kind="degree")
        assert abs(_node(mc.weight_centrality, natural, kind="strength") - _node(mc.weight_centrality, plain, kind="strength")) < 0.02
        assert _node(mc.activation_patching, natural) >= 0.95


def test_shared_neurons_merge_functional_modules():
    """Measured over seeds 0-4 and Louvain seeds 0-3: functional-connectivity communities score NMI
    0.52 on the plain toys and 0.38 with a shared gate (networkx's Louvain gives the same within
    0.01 over seeds 0-7); the weight graph's communities and per-task patching are unaffected."""

    def nmi(toy):
        return np.mean([score_modules(mc.functional_communities(toy.artifact, seed=k), toy.truth.modules).nmi
                        for k in range(4)])

    plain = np.mean([nmi(_toy(s)) for s in range(5)])
    shared = np.mean([nmi(_toy(s, shared=True)) for s in range(5)])
    assert shared < plain - 0.05
    assert _mean(mc.activation_patching, {"shared": True}) >= 0.95


def test_attribution_patching_is_exact_where_the_model_is_linear():
    toy = _toy(0)
    a = toy.artifact
    last = toy.graph.layers == toy.config.n_blocks  # the output is linear in the last block
    exact = mc.activation_patching(a, 0, aggregate="mean").nodes
    linear = mc.attribution_patching(a, 0, aggregate="mean").nodes
    np.testing.assert_allclose(linear[last], exact[last], atol=1e-5)
    # Edge attribution into the output equals patching that edge alone (also linear).
    eap = mc.edge_attribution_patching(a, 0).edges
    src, dst = toy.graph.edges()
    into = np.flatnonzero((dst == toy.graph.labels.index("out0")) & (np.abs(toy.model.edge_weights()[src, dst]) > 0))
    task = toy.tasks[0]
    clean = toy.model.run(task.clean)
    patched = toy.model.patch_edges(task.clean, src[into], dst[into], toy.model.run(task.corrupted)["activations"])
    effect = np.array([task.metric(p) for p in patched]) - task.metric(clean["outputs"])
    np.testing.assert_allclose(eap[into], effect, atol=1e-5)


def test_truth_never_reaches_a_method():
    toy = _toy(1)
    artifact = toy.artifact
    assert not hasattr(artifact, "truth") and "truth" not in vars(artifact)
    before = mc.activation_patching(artifact, 0).nodes
    blank = dataclasses.replace(toy.truth, nodes=np.zeros_like(toy.truth.nodes), node_effects=np.zeros_like(toy.truth.node_effects))
    object.__setattr__(toy, "truth", blank)
    try:
        np.testing.assert_array_equal(mc.activation_patching(toy.artifact, 0).nodes, before)
    finally:
        _CACHE.clear()


@pytest.mark.parametrize("call, match", [
    (lambda a: mc.activation_patching(a, 5), "task must be in \\[0, 1\\], got 5"),
    (lambda a: mc.activation_patching(a, 0, aggregate="max"), "aggregate must be one of"),
    (lambda a: mc.ablation(a, 0, kind="noise"), "kind must be one of"),
    (lambda a: mc.eap_ig(a, 0, steps=-1), r"eap_ig: steps must be in \[0, inf\), got -1"),
    (lambda a: mc.edge_attribution_patching(a, 0, ig_steps=1.5), "ig_steps must be an integer, got 1.5"),
    (lambda a: mc.integrated_gradients(a, 0, baseline="ones"), "baseline"),
    (lambda a: mc.weight_centrality(a, 0, kind="katz"), "kind must be one of"),
    (lambda a: mc.activation_patching(np.zeros(3), 0), "artifact must be a circuit artifact"),
])
def test_bad_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call(_toy(0).artifact)


def test_acdc_keeps_a_faithful_circuit():
    toy = _toy(0)
    scores = mc.acdc(toy.artifact, 0)
    s = score_circuit(scores, toy, 0)
    assert s.edge_auroc >= 0.9 and s.cpr >= 0.95
    kept = scores.edges >= 0.01
    assert 0 < kept.sum() <= 2 * len(toy.truth.edges[0])  # a small circuit, not the whole graph
    with pytest.raises(ValueError, match="threshold must be"):
        mc.acdc(toy.artifact, 0, threshold=2.0)


def test_input_attributions_find_the_inputs_each_formula_depends_on():
    for method in (mc.gradient_x_input, mc.integrated_gradients, mc.layerwise_relevance):
        aurocs = [_node(method, _toy(s), t) for s in SEEDS for t in (0, 1)]
        assert min(aurocs) >= 0.99, (method.__name__, aurocs)
    scores = mc.layerwise_relevance(_toy(0).artifact, 0).nodes
    assert np.isnan(scores[12:]).all() and np.isfinite(scores[:12]).all()  # inputs only
    with pytest.raises(ValueError, match="epsilon"):
        mc.layerwise_relevance(_toy(0).artifact, 0, epsilon=0)
