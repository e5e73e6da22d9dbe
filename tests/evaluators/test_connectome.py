"""Connectivity and hub scoring: the ChaLearn metric over ordered pairs, equal to scikit-learn's,
never NaN, and loud about truths it cannot score."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score, roc_auc_score

from planted import evaluators
from planted.evaluators.connectome import (
    ConnectivityScores,
    hub_precision_at_k,
    score_connectivity,
)
from planted.groundtruth import ConnectomeTruth


def _adjacency(rng, m=30, density=0.1, inhibitory=0.2):
    w = np.where(rng.random((m, m)) < density, rng.lognormal(0.0, 0.5, (m, m)), 0.0)
    w[rng.random(m) < inhibitory] *= -1
    np.fill_diagonal(w, 0.0)
    return w


def _truth(rng, n=20, observed=None):
    w = _adjacency(rng, n)
    observed = np.arange(n) if observed is None else observed
    return ConnectomeTruth(
        weights=sp.csr_matrix(w),
        cell_types=np.where((w < 0).any(axis=1), -1, 1),
        positions=rng.random((n, 2)),
        modules=np.arange(n) % 2,
        hubs=np.arange(n) < 3,
        tuning=np.zeros((n, 0)),
        stimulus=np.zeros((5, 0)),
        spike_times=np.zeros(0),
        spike_neurons=np.zeros(0, np.int32),
        observed=observed,
        duration=1.0,
    )


def test_exports():
    assert evaluators.score_connectivity is score_connectivity
    assert evaluators.ConnectivityScores is ConnectivityScores
    assert evaluators.hub_precision_at_k is hub_precision_at_k


def test_a_perfect_score_matrix_scores_one():
    w = _adjacency(np.random.default_rng(0))
    found = score_connectivity(np.abs(w), w)
    assert found.auroc == 1.0 and found.auprc == 1.0 and found.sign_accuracy is None
    assert found.n_pairs == 30 * 29 and found.n_edges == int((w != 0).sum())
    signed = score_connectivity(w, w, absolute=True)
    assert signed.auroc == 1.0 and signed.auprc == 1.0 and signed.sign_accuracy == 1.0
    assert score_connectivity(w, w).auroc < 1.0  # inhibitory synapses rank last unless absolute
    assert score_connectivity(-np.abs(w), w).auroc == 0.0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("absolute", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_agrees_with_scikit_learn(seed, absolute, weighted):
    rng = np.random.default_rng(seed)
    w = _adjacency(rng, m=25, density=0.05 + 0.1 * seed)
    scores = np.round(rng.normal(size=w.shape) + (w != 0), 1)  # ties, both signs
    result = score_connectivity(scores, w, absolute=absolute, weighted=weighted)
    off = ~np.eye(25, dtype=bool)
    labels, ranked = w[off] != 0, scores[off]
    ranked = np.abs(ranked) if absolute else ranked
    sample = None
    if weighted:
        sample = np.where(labels, np.abs(w[off]) / np.abs(w[off][labels]).mean(), 1.0)
    assert result.auroc == pytest.approx(roc_auc_score(labels, ranked, sample_weight=sample), abs=1e-9)
    assert result.auprc == pytest.approx(average_precision_score(labels, ranked, sample_weight=sample), abs=1e-9)
    expected = np.mean(np.sign(scores[off][labels]) == np.sign(w[off][labels]))
    assert result.sign_accuracy == pytest.approx(expected, abs=1e-12)


def test_weighting_favours_finding_strong_synapses():
    w = np.zeros((4, 4))
    w[0, 1], w[2, 3] = 5.0, 0.1
    scores = np.zeros((4, 4))
    scores[0, 1] = 1.0  # only the strong synapse is found
    assert score_connectivity(scores, w, weighted=True).auroc > score_connectivity(scores, w).auroc


def test_the_diagonal_is_masked():
    rng = np.random.default_rng(1)
    w = _adjacency(rng)
    scores = rng.normal(size=w.shape)
    with_diagonal_edges = w + np.eye(30)
    loud_diagonal = scores + 1e6 * np.eye(30)
    assert score_connectivity(loud_diagonal, with_diagonal_edges) == score_connectivity(scores, w)


def test_a_truth_scores_its_recorded_neurons_in_recording_order():
    rng = np.random.default_rng(2)
    observed = rng.permutation(20)[:14]
    truth = _truth(rng, observed=observed)
    adjacency = truth.weights.toarray()[np.ix_(observed, observed)]
    scores = rng.normal(size=(14, 14)) + (adjacency != 0)
    assert score_connectivity(scores, truth) == score_connectivity(scores, adjacency)
    assert score_connectivity(np.abs(adjacency), truth).auroc == 1.0


def test_symmetric_scores_count_for_both_directions():
    w = np.zeros((3, 3))
    w[0, 1] = 1.0
    symmetric = np.zeros((3, 3))
    symmetric[0, 1] = symmetric[1, 0] = 1.0
    result = score_connectivity(symmetric, w)
    assert result.auroc == pytest.approx(1 - 0.5 * 1 / 5)  # the reverse pair ties above 4 non-edges
    assert result.auprc == 0.5


def test_sign_accuracy():
    w = np.array([[0, 1, -1], [0, 0, 2], [0, 0, 0]], float)
    scores = np.array([[0, 0.5, 0.3], [-0.1, 0, 0], [0, 0, 0]])
    assert score_connectivity(scores, w).sign_accuracy == pytest.approx(1 / 3)  # a 0 score counts wrong
    assert score_connectivity(np.abs(scores), w).sign_accuracy is None  # one-signed scores


def test_to_dict():
    w = _adjacency(np.random.default_rng(3))
    d = score_connectivity(w, w).to_dict()
    assert set(d) == {"auroc", "auprc", "sign_accuracy", "n_pairs", "n_edges"}


def test_no_nan_ever_leaves_the_evaluator():
    rng = np.random.default_rng(4)
    w = _adjacency(rng)
    for scores in (np.zeros((30, 30)), np.full((30, 30), 7.0), np.ones((30, 30)) - np.eye(30)):
        for absolute in (False, True):
            for weighted in (False, True):
                result = score_connectivity(scores, w, absolute=absolute, weighted=weighted)
                assert result.auroc == 0.5 and np.isfinite(result.auprc), result


INVALID = [
    (np.zeros((3, 3)), np.zeros((3, 3)), "no edge"),
    (np.zeros((3, 3)), np.ones((3, 3)), "every pair"),
    (np.full((3, 3), np.nan), np.eye(3, k=1), "scores contains 9 NaN"),
    (np.where(np.eye(3, dtype=bool), np.inf, 0.0), np.eye(3, k=1), "inf"),
    (np.zeros((3, 4)), np.eye(3, k=1), r"scores must have shape \(3, 3\)"),
    (np.zeros((1, 1)), np.zeros((1, 1)), "at least 2"),
    (np.zeros((3, 3)), np.zeros((3, 4)), "adjacency must be square"),
    (np.zeros((3, 3)), sp.eye(3, k=1), "dense"),
]


@pytest.mark.parametrize("scores, truth, match", INVALID, ids=[m for _, _, m in INVALID])
def test_invalid_inputs_say_what_is_wrong(scores, truth, match):
    with pytest.raises(ValueError, match=match):
        score_connectivity(scores, truth)


def test_hub_precision_at_k():
    hubs = np.array([True, True, False, False, False])
    assert hub_precision_at_k([5.0, 4.0, 3.0, 2.0, 1.0], hubs) == 1.0
    assert hub_precision_at_k([5.0, 1.0, 3.0, 2.0, 1.0], hubs) == 0.5
    assert hub_precision_at_k([5.0, 1.0, 3.0, 2.0, 1.0], hubs, k=1) == 1.0
    assert hub_precision_at_k([1.0, 1.0, 1.0, 1.0, 1.0], hubs) == pytest.approx(0.4)  # ties: expected share
    truth = _truth(np.random.default_rng(5), observed=np.array([4, 0, 1, 9, 2]))
    assert hub_precision_at_k([0.0, 3.0, 2.0, 0.0, 1.0], truth) == 1.0  # neurons 0, 1, 2 are the hubs


@pytest.mark.parametrize(
    "centrality, hubs, k, match",
    [
        ([1.0, 2.0], np.array([False, False]), None, "no planted hub"),
        ([1.0, 2.0], np.array([True, False]), 3, r"k must be in \[1, 2\], got 3"),
        ([1.0, 2.0], np.array([True, False]), 0, r"k must be in \[1, 2\], got 0"),
        ([1.0, 2.0], np.array([True, False]), True, "k must be an integer, got True"),
        ([1.0, 2.0, 3.0], np.array([True, False]), None, "centrality must have length 2"),
        ([1.0, np.nan], np.array([True, False]), None, "NaN"),
        ([1.0, 2.0], np.array([1, 0]), None, "bool"),
    ],
)
def test_hub_precision_rejects_bad_input(centrality, hubs, k, match):
    with pytest.raises(ValueError, match=match):
        hub_precision_at_k(centrality, hubs, k)
