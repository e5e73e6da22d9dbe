"""Scoring connectivity inference against a planted connectome, and hub detection against planted hubs.

``score_connectivity`` follows the ChaLearn connectomics challenge: every ordered pair of
recorded neurons ``(pre, post)`` with ``pre != post`` is a candidate, labelled an edge when the
planted weight is nonzero, and ranked by the method's score (higher = more likely a synapse);
the diagonal is masked. AUROC and AUPRC (average precision, no interpolation) handle ties
exactly and agree with scikit-learn's ``roc_auc_score`` and ``average_precision_score``. No
score is ever NaN: what does not apply is None, and a truth that makes a metric undefined is a
``ValueError``.

References
----------
Orlandi, Ray, Battaglia, Guyon et al. (2015), "First connectomics challenge: from imaging to
connectivity".
Sutera et al. (2014), "Simple connectome inference from partial correlation statistics in calcium
imaging".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.evaluators.circuits import auroc, average_precision, precision_at_k
from planted.groundtruth import as_matrix, as_vector
from planted.groundtruth import ConnectomeTruth, Problems


@dataclasses.dataclass(frozen=True)
class ConnectivityScores:
    """How well a connectivity score matrix recovers the planted synapses among recorded neurons.

    Attributes
    ----------
    auroc : float in [0, 1]
        Area under the ROC curve over ordered pairs (0.5 is chance).
    auprc : float in [0, 1]
        Average precision over ordered pairs (chance is the edge density ``n_edges / n_pairs``).
    sign_accuracy : float in [0, 1] | None
        Fraction of planted edges whose score has the sign of the planted weight (a score of 0
        counts as wrong); None when the scores are not signed (no positive or no negative
        off-diagonal score).
    n_pairs : int
        Ordered pairs scored, ``m (m - 1)`` for ``m`` recorded neurons.
    n_edges : int
        Planted edges among them.
    """

    auroc: float
    auprc: float
    sign_accuracy: float | None
    n_pairs: int
    n_edges: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _adjacency(truth_or_adjacency) -> np.ndarray:
    if isinstance(truth_or_adjacency, ConnectomeTruth):
        return truth_or_adjacency.adjacency()
    adjacency = as_matrix("adjacency", truth_or_adjacency, dtype=np.float64)
    if adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be square (m, m) weights [pre, post], got shape {adjacency.shape}")
    return adjacency


def _weighted_auroc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """AUROC with sample weights: the weighted share of (positive, negative) pairs ranked right,
    ties counting 1/2 (scikit-learn's ``roc_auc_score`` with ``sample_weight``)."""
    order = np.argsort(scores, kind="mergesort")
    s, y, w = scores[order], labels[order], weights[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(s)) + 1])
    pos = np.add.reduceat(np.where(y, w, 0.0), starts)
    neg = np.add.reduceat(np.where(y, 0.0, w), starts)
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def _weighted_average_precision(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Average precision with sample weights (scikit-learn's ``average_precision_score`` with
    ``sample_weight``): weighted precision at each distinct threshold times the recall step."""
    order = np.argsort(-scores, kind="mergesort")
    s, y, w = scores[order], labels[order], weights[order]
    last = np.concatenate([np.flatnonzero(np.diff(s)), [s.size - 1]])
    tp = np.cumsum(np.where(y, w, 0.0))[last]
    fp = np.cumsum(np.where(y, 0.0, w))[last]
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * tp / (tp + fp)))


def score_connectivity(
    scores, truth_or_adjacency, *, absolute: bool = False, weighted: bool = False
) -> ConnectivityScores:
    """Score a connectivity matrix against the planted synapses (the ChaLearn metric).

    Parameters
    ----------
    scores : (m, m) array
        ``scores[pre, post]`` from a connectivity method, higher = more likely a synapse; finite.
        A symmetric method's pair score counts for both directions, so it can at best find each
        edge together with its (usually absent) reverse.
    truth_or_adjacency : ConnectomeTruth or (m, m) array
        The truth (its ``adjacency()`` among the recorded neurons, in the recording's order) or
        dense planted weights ``[pre, post]``; nonzero = edge. The diagonal is ignored.
    absolute : bool, default False
        Rank pairs by ``|score|`` instead of ``score``, so a signed method's strongly negative
        scores count as found (inhibitory) synapses. The ChaLearn ranking is ``False``.
    weighted : bool, default False
        Weight each planted edge by its ``|weight|`` (normalised to mean 1; non-edges weigh 1) in
        AUROC and AUPRC, so missing a strong synapse costs more than missing a weak one.

    Returns
    -------
    ConnectivityScores
        ``sign_accuracy`` compares ``sign(scores)`` with the sign of each planted edge's weight
        and is None unless the off-diagonal scores take both signs.

    Raises
    ------
    ValueError
        Scores of the wrong shape or with NaN/inf; fewer than 2 neurons; a truth with no edge or
        with every pair an edge (AUROC and AUPRC are undefined).
    """
    adjacency = _adjacency(truth_or_adjacency)
    m = adjacency.shape[0]
    scores = as_matrix("scores", scores, dtype=np.float64)
    if scores.shape != (m, m):
        raise ValueError(f"scores must have shape ({m}, {m}) to match the truth's recorded neurons, got {scores.shape}")
    if m < 2:
        raise ValueError(f"connectivity needs at least 2 recorded neurons, got {m}")
    off = ~np.eye(m, dtype=bool)
    weights, values = adjacency[off], scores[off]
    labels = weights != 0
    n_pairs, n_edges = int(labels.size), int(labels.sum())
    if n_edges == 0 or n_edges == n_pairs:
        what = "no edge" if n_edges == 0 else "every pair as an edge"
        raise ValueError(
            f"the truth has {what} among the {m} recorded neurons ({n_edges} of {n_pairs} ordered pairs); "
            "AUROC and AUPRC need at least one edge and one non-edge"
        )
    ranked = np.abs(values) if absolute else values
    if weighted:
        magnitude = np.abs(weights[labels])
        sample = np.ones(n_pairs)
        sample[labels] = magnitude / magnitude.mean()
        roc, prc = _weighted_auroc(ranked, labels, sample), _weighted_average_precision(ranked, labels, sample)
    else:
        roc, prc = auroc(ranked, labels), average_precision(ranked, labels)
    sign = None
    if (values > 0).any() and (values < 0).any():
        sign = float(np.mean(np.sign(values[labels]) == np.sign(weights[labels])))
    return ConnectivityScores(auroc=roc, auprc=prc, sign_accuracy=sign, n_pairs=n_pairs, n_edges=n_edges)


def hub_precision_at_k(centrality, hubs, k: int | None = None) -> float:
    """Precision of the ``k`` most central neurons against the planted hubs.

    Parameters
    ----------
    centrality : (m,) array
        A node score, higher = more hub-like (e.g. ``methods.graphs.centrality`` of an inferred
        connectivity matrix); finite.
    hubs : (m,) bool array or ConnectomeTruth
        Planted hub labels; a truth gives ``truth.hubs[truth.observed]``, the recorded neurons'
        labels in the recording's order.
    k : int in [1, m], optional
        Defaults to the number of planted hubs. Ties at the boundary are broken at random, in
        expectation.

    Returns
    -------
    float in [0, 1]
    """
    if isinstance(hubs, ConnectomeTruth):
        hubs = hubs.hubs[hubs.observed]
    hubs = np.asarray(hubs)
    if hubs.ndim != 1 or hubs.dtype != bool:
        raise ValueError(f"hubs must be a 1-D bool array or a ConnectomeTruth, got {hubs.dtype} of shape {hubs.shape}")
    centrality = as_vector("centrality", centrality, length=hubs.size, dtype=np.float64)
    n_hubs = int(hubs.sum())
    if n_hubs == 0:
        raise ValueError(f"hubs has no planted hub among its {hubs.size} neurons; precision at k is undefined")
    k = n_hubs if k is None else k
    p = Problems()
    p.integer("k", k, low=1, high=hubs.size)
    p.raise_if_any("hub_precision_at_k")
    return precision_at_k(centrality, hubs, int(k))


# --- curves ---------------------------------------------------------------------------------------


def roc_curve(scores, truth_or_adjacency) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) over ordered pairs, diagonal masked, ties as one step."""
    adjacency = _adjacency(truth_or_adjacency)
    m = adjacency.shape[0]
    scores = as_matrix("scores", scores, rows=m, cols=m, dtype=np.float64)
    off = ~np.eye(m, dtype=bool)
    s, labels = scores[off], adjacency[off] != 0
    order = np.argsort(-s, kind="stable")
    s, labels = s[order], labels[order]
    last = np.concatenate([np.flatnonzero(np.diff(s) != 0), [s.size - 1]])
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    return np.concatenate([[0.0], fp / max(fp[-1], 1)]), np.concatenate([[0.0], tp / max(tp[-1], 1)])


# --- stimulus tuning ------------------------------------------------------------------------------


def tuning_truth(truth: ConnectomeTruth):
    """The planted stimulus tuning as a ``FeatureTruth`` over the recorded neurons, so that
    ``score_features`` scores a features method (SAE, PCA, NMF) run on the recording's frames.

    Feature k's direction is its tuning column over the recorded neurons (unit norm), its norm
    the column's norm, its codes the stimulus time course at each frame; features that drive no
    recorded neuron are not represented.
    """
    import scipy.sparse as sp

    from planted.groundtruth import FeatureTruth

    columns = truth.tuning[truth.observed].T  # (n_features, n_observed)
    if columns.shape[0] == 0:
        raise ValueError("the connectome planted no stimulus features (n_features=0): there is no tuning to score")
    norms = np.linalg.norm(columns, axis=1)
    represented = norms > 0
    directions = np.where(represented[:, None], columns / np.where(norms > 0, norms, 1.0)[:, None], 0.0)
    directions[~represented, 0] = 1.0  # a placeholder unit row for a feature nobody recorded feels
    codes = sp.csr_matrix(truth.stimulus.astype(np.float32))
    return FeatureTruth(directions=directions, norms=norms, represented=represented, codes=codes,
                        firing_probabilities=(truth.stimulus > 0).mean(axis=0),
                        labels=tuple(f"stimulus{k}" for k in range(columns.shape[0])))


def score_tuning(dictionary, truth: ConnectomeTruth, recording=None):
    """``score_features`` of a features method's ``Dictionary`` (directions over the recorded
    neurons) against the planted tuning (``tuning_truth``); with the recording, the code metrics
    too (the method's codes against the stimulus time courses)."""
    from planted.evaluators.features import score_features

    activations = None if recording is None else recording.traces
    return score_features(dictionary, tuning_truth(truth), activations=activations)

__all__ = [
    "ConnectivityScores",
    "hub_precision_at_k",
    "roc_curve",
    "score_connectivity",
    "score_tuning",
    "tuning_truth",
]
