"""Head-level circuit methods on compiled transformers, with the behaviour each is known for:
activation patching finds the induction circuit, attribution patching is fooled by saturated
attention, path patching of every edge and ACDC recover compiled circuits exactly, and the
attention-pattern heuristics rank the previous-token and induction heads first."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from planted import toys
from planted.evaluators import score_circuit
from planted.evaluators.circuits import with_edges
from planted.methods import transformers


@functools.cache
def toy(name: str):
    return toys.rasp_transformer(name, 32, seed=0)


def _score(scores, name):
    return score_circuit(with_edges(scores, toy(name).graph), toy(name), 0)


def test_activation_patching_finds_the_induction_circuit():
    scores = _score(transformers.activation_patching(toy("induction").artifact, 0), "induction")
    assert scores.node_auroc == 1.0 and scores.node_precision_at_k == 1.0


@pytest.mark.parametrize("name", ["induction", "ioi"])
def test_attribution_patching_is_fooled_by_saturated_attention(name):
    """Compiled attention is saturated (logit gaps of 50 and more), so the gradient through a head's
    pattern is ~0 and the linear estimate misses heads whose effect goes through where they
    attend; patching each edge sees them."""
    artifact = toy(name).artifact
    linear = _score(transformers.edge_attribution_patching(artifact, 0), name)
    exact = _score(transformers.edge_activation_patching(artifact, 0), name)
    assert exact.edge_auroc == 1.0
    assert linear.edge_auroc <= 0.75
    node_linear = _score(transformers.attribution_patching(artifact, 0), name)
    node_exact = _score(transformers.activation_patching(artifact, 0), name)
    assert node_linear.node_auroc < node_exact.node_auroc == 1.0


@pytest.mark.parametrize("name", ["reverse", "frac_prevs"])
def test_acdc_recovers_the_compiled_circuits_of_the_acdc_papers_tracr_tasks(name):
    """ACDC's tracr table reports edge AUROC 1.000 for reverse and frac_prevs; here the truth comes
    from the compiler. With patching, ACDC finds it exactly; zero ablation also removes the BOS and
    constant directions the embedding writes, so it keeps edges no answer needs."""
    artifact = toy(name).artifact
    patched = _score(transformers.acdc(artifact, 0), name)
    zero = _score(transformers.acdc(artifact, 0, source="zero"), name)
    assert patched.edge_auroc == 1.0 and patched.faithfulness[-1] == pytest.approx(1.0, abs=1e-4)
    assert 0.9 <= zero.edge_auroc < 1.0


def test_eap_ig_recovers_what_plain_eap_misses_on_induction():
    artifact = toy("induction").artifact
    assert _score(transformers.eap_ig(artifact, 0, steps=5), "induction").edge_auroc == 1.0
    assert _score(transformers.edge_attribution_patching(artifact, 0), "induction").edge_auroc < 1.0


def test_attention_heuristics_rank_the_previous_token_and_induction_heads_first():
    t = toy("induction")
    labels = t.graph.labels
    previous = transformers.attention_heuristic(t.artifact, 0, kind="previous_token").nodes
    prefix = transformers.attention_heuristic(t.artifact, 0, kind="prefix_matching").nodes
    heads = [i for i, label in enumerate(labels) if label.startswith("a")]
    assert labels[heads[int(np.nanargmax(previous[heads]))]] == "a0.h0" and previous[labels.index("a0.h0")] > 0.99
    assert labels[heads[int(np.nanargmax(prefix[heads]))]] == "a1.h0" and prefix[labels.index("a1.h0")] > 0.99
    assert np.isnan(previous[[i for i in range(len(labels)) if i not in heads]]).all()


def test_the_copying_score_tells_a_copying_head_from_a_successor_head():
    """reverse's head writes the token it attends to; the successor head writes the next one (a
    cyclic shift of the tokens: eigenvalues on the unit circle summing to about zero)."""
    reverse, successor, frac = toy("reverse"), toy("successor"), toy("frac_prevs")
    copying = transformers.attention_heuristic(reverse.artifact, 0, kind="copying").nodes
    head = reverse.graph.labels.index("a2.h0")
    assert copying[head] == pytest.approx(1.0) and reverse.truth.nodes[0, head]
    others = [i for i, label in enumerate(reverse.graph.labels) if label.startswith("a") and i != head]
    assert np.abs(copying[others]).max() < 1e-9  # their values read no token
    shift = transformers.attention_heuristic(successor.artifact, 0, kind="copying").nodes
    assert abs(shift[successor.graph.labels.index("a0.h0")]) < 0.25
    assert (successor.model.output_tokens[:-1] >= 1).all() and (frac.model.output_tokens == -1).all()
    assert np.nanmax(np.abs(transformers.attention_heuristic(frac.artifact, 0, kind="copying").nodes)) == 0.0


@pytest.mark.parametrize("method", ["activation_patching", "ablation", "attribution_patching", "edge_attribution_patching",
                                    "eap_ig", "edge_activation_patching", "acdc", "attention_heuristic"])
def test_every_method_scores_every_component_it_claims_and_refuses_bad_input(method):
    fn = getattr(transformers, method)
    artifact = toy("successor").artifact
    scores = fn(artifact, 0)
    graph = artifact.graph
    if scores.edges is not None:
        assert scores.edges.shape == (graph.n_edges,) and np.isfinite(scores.edges).all()
    if scores.nodes is not None:
        assert scores.nodes.shape == (graph.n_nodes,) and np.isnan(scores.nodes[-1])
    with pytest.raises(ValueError, match="task"):
        fn(artifact, 3)
    mlp = toys.planted_mlp(8, 1, seed=0, depth=2, n_blocks=3, width=32, n_samples=16).artifact
    with pytest.raises(ValueError, match="transformer circuit artifact"):
        fn(mlp, 0)


def test_bad_options_are_refused_naming_the_parameter():
    artifact = toy("successor").artifact
    for call, word in [(lambda: transformers.ablation(artifact, 0, kind="half"), "kind"),
                       (lambda: transformers.acdc(artifact, 0, source="noise"), "source"),
                       (lambda: transformers.acdc(artifact, 0, threshold=1.5), "threshold"),
                       (lambda: transformers.eap_ig(artifact, 0, steps=0), "steps"),
                       (lambda: transformers.attention_heuristic(artifact, 0, kind="duplicate_token"), "kind"),
                       (lambda: transformers.activation_patching(artifact, 0, aggregate="max"), "aggregate")]:
        with pytest.raises(ValueError, match=word):
            call()
