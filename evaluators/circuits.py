"""Scoring circuit methods against planted circuits, and community detection against planted modules.

``score_circuit`` ranks components by |score| against a task's planted circuit: AUROC, AUPRC
(average precision) and precision at the true circuit size, for nodes and for edges, plus the
faithfulness curve of the top-scoring edges and its two areas, CPR and CMD (Mueller et al. 2025,
MIB). ``score_modules`` compares module labels with NMI and ARI. Ties are handled exactly
(average ranks; precision at k takes the expected share of a tie group at the boundary), and no
score is ever NaN: a quantity that does not apply is None.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from planted.groundtruth import ComponentScores, Patch, Problems

# Circuit sizes of the faithfulness curve, as fractions of all edges (MIB's grid).
EDGE_FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auroc needs positives and negatives, got {n_pos} and {n_neg}")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # Average ranks over ties (1-based).
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (AUPRC): sum over thresholds of precision x recall increment (no interpolation)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise ValueError("average_precision needs at least one positive")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    # One threshold per distinct score: the last index of each tie group.
    last = np.concatenate([np.flatnonzero(np.diff(s)), [s.size - 1]])
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def precision_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Expected precision of the k top-scoring items, with ties at the boundary broken at random."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, scores.size)
    threshold = np.sort(scores)[::-1][k - 1]
    above = scores > threshold
    tied = scores == threshold
    take = k - int(above.sum())
    hits = labels[above].sum() + take * labels[tied].mean()
    return float(hits / k)


@dataclasses.dataclass(frozen=True)
class CircuitScores:
    """How well a method's component scores recover one task's planted circuit.

    ``node_*`` over the nodes the method scored (not NaN), ``edge_*`` over the edges; None when the
    method gives no such scores or the candidates hold no positive or no negative. ``faithfulness``
    is the curve (one value per ``EDGE_FRACTIONS``) of the metric kept by the top-scoring edges
    alone, every other edge patched to its corrupted-run activation, as a fraction of the
    clean-corrupted gap; ``cpr`` its area and ``cmd`` the area between it and 1 (trapezoids over
    the edge fraction, so each lies in [0, 1] when the curve does; CPR higher is better, CMD lower).
    """

    node_auroc: float | None
    node_auprc: float | None
    node_precision_at_k: float | None
    edge_auroc: float | None
    edge_auprc: float | None
    edge_precision_at_k: float | None
    cpr: float | None
    cmd: float | None
    faithfulness: tuple[float, ...] | None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("faithfulness")
        return out


def _ranking(scores: np.ndarray | None, labels: np.ndarray):
    if scores is None:
        return None, None, None
    keep = ~np.isnan(scores)
    s, y = np.abs(scores[keep]), labels[keep]
    if y.all() or not y.any():
        return None, None, None
    return auroc(s, y), average_precision(s, y), precision_at_k(s, y, int(y.sum()))


def faithfulness_curve(edge_scores: np.ndarray, toy, task: int) -> np.ndarray:
    """The metric kept by the top-|score| edges alone at each ``EDGE_FRACTIONS`` size."""
    graph, model, data = toy.graph, toy.model, toy.tasks[task]
    src, dst = graph.edges()
    order = np.argsort(-np.abs(np.nan_to_num(edge_scores, nan=-np.inf)), kind="mergesort")
    clean = model.run(data.clean)
    corrupt = model.run(data.corrupted)
    m_clean, m_corrupt = float(data.metric(clean["outputs"])), float(data.metric(corrupt["outputs"]))
    curve = []
    for fraction in EDGE_FRACTIONS:
        keep = order[: max(1, math.ceil(fraction * graph.n_edges))]
        mask = np.ones((graph.n_nodes, graph.n_nodes), np.float32)
        mask[src[keep], dst[keep]] = 0.0
        out = model.run(data.clean, Patch(edge_mask=mask, edge_source=corrupt["activations"]))["outputs"]
        curve.append((float(data.metric(out)) - m_corrupt) / (m_clean - m_corrupt))
    return np.array(curve)


def with_edges(scores: ComponentScores, graph) -> ComponentScores:
    """``scores`` with edge scores induced from node scores when it has none: an edge is as
    important as its weaker end, min(|s_src|, |s_dst|) (NaN where an end is unscored); an edge
    into an output (which node methods do not score) takes its source's score."""
    if scores.edges is not None or scores.nodes is None:
        return scores
    nodes = np.abs(scores.nodes)
    src, dst = graph.edges()
    into_output = graph.layers[dst] == graph.layers.max()
    edges = np.where(into_output, nodes[src], np.fmin(nodes[src], nodes[dst]))
    edges = np.where(np.isnan(nodes[src]) | (np.isnan(nodes[dst]) & ~into_output), np.nan, edges)
    if np.isnan(edges).all():
        return scores
    return ComponentScores(nodes=scores.nodes, edges=edges)


def score_circuit(scores: ComponentScores, toy, task: int, *, faithfulness: bool = True) -> CircuitScores:
    """Score ``scores`` against ``toy``'s planted circuit of ``task``.

    Parameters
    ----------
    scores : ComponentScores
        A method's output on ``toy.artifact`` for this task.
    toy : PlantedCircuitToy
        Its truth gives the circuit; its model runs the faithfulness curve.
    task : int
    faithfulness : bool
        Compute the faithfulness curve, CPR and CMD (needs edge scores that reach the circuit's
        edges; one run per circuit size).
    """
    if not isinstance(scores, ComponentScores):
        raise ValueError(f"scores must be a groundtruth ComponentScores, got {type(scores).__name__}")
    truth = toy.truth
    p = Problems()
    p.integer("task", task, low=0, high=truth.n_tasks - 1)
    p.raise_if_any("score_circuit")
    if scores.nodes is not None and scores.nodes.shape != (truth.graph.n_nodes,):
        raise ValueError(f"node scores must have {truth.graph.n_nodes} entries, got {scores.nodes.shape[0]}")
    if scores.edges is not None and scores.edges.shape != (truth.graph.n_edges,):
        raise ValueError(f"edge scores must have {truth.graph.n_edges} entries, got {scores.edges.shape[0]}")
    node = _ranking(scores.nodes, truth.nodes[task])
    edge = _ranking(scores.edges, truth.edge_mask(task))
    curve = cpr = cmd = None
    if faithfulness and edge[0] is not None:
        values = faithfulness_curve(scores.edges, toy, task)
        x = np.asarray(EDGE_FRACTIONS)
        width = x[-1] - x[0]
        cpr = float(np.trapezoid(values, x) / width)
        cmd = float(np.trapezoid(np.abs(1 - values), x) / width)
        curve = tuple(float(v) for v in values)
    return CircuitScores(node[0], node[1], node[2], edge[0], edge[1], edge[2], cpr, cmd, curve)


@dataclasses.dataclass(frozen=True)
class ModuleScores:
    """Agreement of predicted module labels with the planted ones: NMI (arithmetic normalisation, as
    scikit-learn's default) and adjusted Rand index, over the nodes with a planted module."""

    nmi: float
    ari: float
    n_nodes: int


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    return table


def normalized_mutual_info(a, b) -> float:
    table = _contingency(np.asarray(a), np.asarray(b))
    n = table.sum()
    pa, pb = table.sum(axis=1) / n, table.sum(axis=0) / n
    p = table / n
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 and hb == 0:
        return 1.0
    denom = (ha + hb) / 2
    return float(max(mi, 0.0) / denom) if denom > 0 else 0.0


def adjusted_rand_index(a, b) -> float:
    table = _contingency(np.asarray(a), np.asarray(b))
    n = table.sum()

    def pairs(v):
        return (v * (v - 1) / 2).sum()

    index = pairs(table)
    sum_a, sum_b = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = sum_a * sum_b / (n * (n - 1) / 2) if n > 1 else 0.0
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def score_modules(labels, modules) -> ModuleScores:
    """Score predicted module ``labels`` (n_nodes,) against planted ``modules`` (n_nodes,, -1 = none).

    Only nodes with a planted module (>= 0) count; the predicted label values are arbitrary.
    """
    labels = np.asarray(labels)
    modules = np.asarray(modules)
    if labels.shape != modules.shape:
        raise ValueError(f"labels must have shape {modules.shape} (one per node), got {labels.shape}")
    keep = modules >= 0
    if keep.sum() < 2:
        raise ValueError("score_modules needs at least two nodes with a planted module")
    return ModuleScores(nmi=normalized_mutual_info(modules[keep], labels[keep]),
                        ari=adjusted_rand_index(modules[keep], labels[keep]), n_nodes=int(keep.sum()))

__all__ = [
    "CircuitScores",
    "EDGE_FRACTIONS",
    "ModuleScores",
    "adjusted_rand_index",
    "auroc",
    "average_precision",
    "faithfulness_curve",
    "normalized_mutual_info",
    "precision_at_k",
    "score_circuit",
    "score_modules",
    "with_edges",
]
