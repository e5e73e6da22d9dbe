"""Scoring circuit methods against a lesion census: does a method's node ranking say what
lesioning each node costs, and does it find the backups that no single lesion reveals?

The truth is the census of the toy (``toys.lesion_census``: every input and neuron lesioned alone
to 0, and every pair together), measured by intervention, never planted by hand: a node that
costs nothing alone is silent even when it sits in a planted circuit, and a redundant copy is
found by its pairs. Scores rank nodes by |score| (as ``score_circuit`` does); a node a method
leaves unscored (NaN) ranks last. No score is ever NaN: what does not apply is None.

References
----------
Jonas & Kording (2017), "Could a neuroscientist understand a microprocessor?". Keinan et al.
(2004), "Fair attribution of functional contribution in artificial and biological networks".
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from planted.evaluators._memo import Memo
from planted.evaluators.circuits import auroc
from planted.groundtruth import SILENT_DEFICIT, CircuitPrediction, LesionCensus

_CENSUSES = Memo()


def census_of(toy) -> LesionCensus:
    """The zero-lesion census (single nodes and pairs, no edges) of a planted_mlp toy or a
    rasp_transformer, kept for the last few toys scored (every method of a cell is scored against
    the same census)."""
    from planted import toys

    return _CENSUSES.get(toy.id, lambda: toys.lesion_census(toy, kinds=("zero",), label_kind="zero", edges=False,
                                                            pairs=True))


def _importance(scores, n_nodes: int, nodes: np.ndarray) -> np.ndarray:
    if scores.nodes is None:
        return np.zeros(nodes.size)
    if scores.nodes.shape != (n_nodes,):
        raise ValueError(f"node scores must have {n_nodes} entries, got {scores.nodes.shape[0]}")
    values = np.abs(scores.nodes[nodes])
    return np.where(np.isnan(values), -1.0, values)  # unscored: below every scored node


def score_lesions(prediction: CircuitPrediction, census: LesionCensus, n_nodes: int) -> dict[str, float | None]:
    """Score a circuit method's node scores (one ``ComponentScores`` per task) against a census.

    Returns
    -------
    dict
        ``lesion_auroc``: mean over the tasks (with costly and silent nodes) of the AUROC of |score|
        at telling the nodes whose lesion alone costs the task at least ``SILENT_DEFICIT`` of its
        accuracy; ``lesion_spearman``: mean over the tasks of the Spearman correlation of |score|
        with the exact deficit (0 where the scores are constant); ``backup_auroc``: AUROC of each
        node's largest |score| over the tasks at telling the redundant nodes (silent alone,
        lethal in a pair) from the other silent ones (None when the census has none).
    """
    if not isinstance(prediction, CircuitPrediction):
        raise ValueError(f"prediction must be a CircuitPrediction, got {type(prediction).__name__}")
    deficits = census.deficit(census.label_kind)
    if len(prediction.scores) != deficits.shape[1]:
        raise ValueError(f"a lesion prediction needs one ComponentScores per task ({deficits.shape[1]}), "
                         f"got {len(prediction.scores)}")
    importance = np.stack([_importance(s, n_nodes, census.nodes) for s in prediction.scores], axis=1)
    aurocs, rhos = [], []
    for t in range(deficits.shape[1]):
        costly = deficits[:, t] >= SILENT_DEFICIT
        if costly.any() and (~costly).any():
            aurocs.append(auroc(importance[:, t], costly))
        if np.ptp(deficits[:, t]) > 0:
            rhos.append(float(spearmanr(importance[:, t], deficits[:, t]).statistic) if np.ptp(importance[:, t]) > 0
                        else 0.0)
    labels = np.asarray(census.labels)
    backup, silent = labels == "redundant", labels == "silent"
    out: dict[str, float | None] = {
        "lesion_auroc": float(np.mean(aurocs)) if aurocs else None,
        "lesion_spearman": float(np.mean(rhos)) if rhos else None,
        "backup_auroc": None,
    }
    if backup.any() and silent.any():
        keep = backup | silent
        out["backup_auroc"] = auroc(importance.max(axis=1)[keep], backup[keep])
    return out


__all__ = ["census_of", "score_lesions"]
