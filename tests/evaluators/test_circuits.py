"""Circuit and module scores: agreement with scikit-learn, exact ties, and the faithfulness curve."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from planted import toys
from planted.evaluators.circuits import (
    EDGE_FRACTIONS,
    adjusted_rand_index,
    auroc,
    average_precision,
    normalized_mutual_info,
    precision_at_k,
    score_circuit,
    score_modules,
)
from planted.groundtruth import ComponentScores

scores_and_labels = st.integers(4, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 5), min_size=n, max_size=n),  # few distinct values: many ties
    st.lists(st.booleans(), min_size=n, max_size=n),
)).filter(lambda p: 0 < sum(p[1]) < len(p[1]))


@settings(max_examples=60, deadline=None)
@given(scores_and_labels)
def test_auroc_and_average_precision_agree_with_scikit_learn(pair):
    scores, labels = np.array(pair[0], float), np.array(pair[1])
    assert auroc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-9)
    assert average_precision(scores, labels) == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 50).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 4), min_size=n, max_size=n),
                                                      st.lists(st.integers(0, 4), min_size=n, max_size=n))))
def test_nmi_and_ari_agree_with_scikit_learn(pair):
    a, b = np.array(pair[0]), np.array(pair[1])
    assert normalized_mutual_info(a, b) == pytest.approx(skm.normalized_mutual_info_score(a, b), abs=1e-9)
    assert adjusted_rand_index(a, b) == pytest.approx(skm.adjusted_rand_score(a, b), abs=1e-9)


def test_precision_at_k_shares_a_tie_at_the_boundary():
    assert precision_at_k(np.array([3, 2, 2, 1.0]), np.array([1, 1, 0, 0], bool), 2) == pytest.approx(0.75)
    assert precision_at_k(np.array([3, 2, 1, 0.0]), np.array([1, 1, 0, 0], bool), 2) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(np.zeros(3), np.ones(3, bool), 0)


@pytest.fixture(scope="module")
def toy():
    return toys.planted_mlp(seed=0, width=24)


def test_the_truth_itself_scores_perfectly_and_noise_at_chance(toy):
    truth = toy.truth
    perfect = ComponentScores(nodes=truth.nodes[0].astype(float), edges=truth.edge_mask(0).astype(float))
    s = score_circuit(perfect, toy, 0)
    assert s.node_auroc == s.node_auprc == s.node_precision_at_k == 1.0
    assert s.edge_auroc == s.edge_auprc == s.edge_precision_at_k == 1.0
    assert len(s.faithfulness) == len(EDGE_FRACTIONS) and s.faithfulness[-1] == pytest.approx(1.0, abs=1e-5)
    # Once the circuit's edges are all kept, the circuit alone is the model.
    k = np.searchsorted(np.ceil(np.asarray(EDGE_FRACTIONS) * truth.graph.n_edges), len(truth.edges[0]))
    np.testing.assert_allclose(s.faithfulness[k:], 1.0, atol=1e-4)
    assert 0 <= s.cmd < 0.05 and s.cpr > 0.95
    rng = np.random.default_rng(0)
    noise = score_circuit(ComponentScores(nodes=rng.random(truth.graph.n_nodes), edges=rng.random(truth.graph.n_edges)), toy, 0)
    assert 0.3 < noise.node_auroc < 0.7 and 0.3 < noise.edge_auroc < 0.7
    assert noise.cpr < s.cpr


def test_unscored_components_are_skipped_and_no_score_is_nan(toy):
    nodes = np.full(toy.graph.n_nodes, np.nan)
    nodes[:12] = toy.truth.relevant_inputs[0]  # an input attribution: inputs only
    s = score_circuit(ComponentScores(nodes=nodes), toy, 0)
    assert s.node_auroc == 1.0 and s.edge_auroc is None and s.cpr is None
    assert all(v is None or np.isfinite(v) for v in s.to_dict().values())
    with pytest.raises(ValueError, match="all NaN"):
        ComponentScores(nodes=np.full(5, np.nan))
    with pytest.raises(ValueError, match="node scores must have"):
        score_circuit(ComponentScores(nodes=np.ones(3)), toy, 0)
    with pytest.raises(ValueError, match=r"score_circuit: task must be in \[0, \d+\], got 7"):
        score_circuit(ComponentScores(nodes=nodes), toy, 7)


def test_score_modules_counts_only_planted_modules():
    modules = np.array([-1, 0, 0, 1, 1, -1])
    assert score_modules(np.array([5, 2, 2, 7, 7, 2]), modules).ari == 1.0
    assert score_modules(np.array([0, 1, 2, 3, 4, 5]), modules).ari < 0.5
    with pytest.raises(ValueError, match="one per node"):
        score_modules(np.zeros(3), modules)
