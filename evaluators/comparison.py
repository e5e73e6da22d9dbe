"""Scores of comparisons across networks: a similarity measure against the planted shared features,
the layers it matches between layer twins, and a damage localisation against a damaged twin's truth.

A comparison problem is a tuple of representations of the same inputs whose planted features are
known (feature views of one code stream). Its truth is the fraction of features each pair shares
(``groundtruth.shared_fraction``, from the features' labels). A measure is scored by the order it
puts the pairs in, never by its scale: the rank correlation with the shared fraction, how well
it tells identical pairs (the same features in other frames) from the rest (ReSi's within-group vs
across-group AUPRC and violation rate, Klabunde et al. 2024), and whether it inverts: an identical
pair scoring below a pair that shares half of its features or less.

References
----------
Klabunde et al. (2024), "ReSi: a comprehensive benchmark for representational similarity
measures". Ding, Denain & Steinhardt (2021), "Grounding representation similarity with
statistical testing". Kornblith et al. (2019), "Similarity of neural network representations
revisited".
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from planted.evaluators._memo import Memo
from planted.evaluators.circuits import auroc, average_precision, precision_at_k
from planted.groundtruth import DamagePrediction, DamageTruth, FeatureToy, Similarities, damage_candidates, shared_fraction

INVERSION_SHARED = 0.5  # an identical pair below a pair sharing this fraction or less is an inversion
FUNCTIONAL_TOLERANCE = 0.01  # pairs whose decodability differs by less than this do the same (Ding's specificity)


def shared_fractions(problem: Sequence[FeatureToy]) -> np.ndarray:
    """(k, k) the planted fraction of features each pair of a problem's representations shares
    (1 on the diagonal), from the labels of the features each represents."""
    labels = [[label for label, kept in zip(t.truth.labels, t.truth.represented) if kept] for t in problem]
    k = len(labels)
    out = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = shared_fraction(labels[i], labels[j])
    return out


def decodability(problem: Sequence[FeatureToy]) -> tuple[np.ndarray, tuple[str, ...]]:
    """What each representation of a problem lets a linear probe read: (k, n_features) the R^2 of
    the least-squares fit (with an intercept, on the problem's samples) of each planted feature's
    code from each representation, over every feature any of them carries (their labels, the
    second value). A feature outside a view's window scores its chance fit (about d / n_samples);
    a view with top principal components deleted, or in superposition, reads less."""
    codes: dict[str, np.ndarray] = {}
    for t in problem:
        dense = None
        for f, label in enumerate(t.truth.labels):
            if t.truth.represented[f] and label not in codes:
                dense = t.truth.codes.tocsc() if dense is None else dense
                codes[label] = np.asarray(dense[:, f].toarray(), np.float64).ravel()
    labels = tuple(sorted(codes))
    c = np.stack([codes[label] for label in labels], axis=1)
    c -= c.mean(axis=0)
    total = np.maximum((c**2).sum(axis=0), 1e-300)
    out = np.zeros((len(problem), len(labels)))
    for v, t in enumerate(problem):
        x = np.asarray(t.artifact, np.float64)
        x = x - x.mean(axis=0)
        u, sv, _ = np.linalg.svd(x, full_matrices=False)
        # the rank of the float32 activations (matrix_rank's rule at float32 precision): a deleted
        # component leaves only rounding behind, which must not count as something to read
        u = u[:, sv > sv.max(initial=0.0) * max(x.shape) * np.finfo(np.float32).eps]
        out[v] = np.where((c**2).sum(axis=0) > 0, ((u.T @ c) ** 2).sum(axis=0) / total, 0.0)
    return out, labels


def functional_differences(problem: Sequence[FeatureToy]) -> np.ndarray:
    """(k, k) how differently each pair of a problem's representations serves a linear probe: the
    mean over the features of |R^2 difference| (``decodability``); 0 for the same features in
    another frame, and growing with the information a deletion of principal components (or
    superposition) loses (Ding et al. 2021's functional difference, measured exactly). Kept for
    the last few problems (every method of a cell is scored against the same one)."""
    def compute() -> np.ndarray:
        r2, _ = decodability(problem)
        return np.abs(r2[:, None, :] - r2[None, :, :]).mean(axis=2)

    return _FUNCTIONAL.get(tuple(t.id for t in problem), compute).copy()


_FUNCTIONAL = Memo()


@dataclasses.dataclass(frozen=True)
class ComparisonScores:
    """How well a similarity measure orders a problem's pairs by their planted shared fraction.

    Attributes
    ----------
    rank_correlation : float or None
        Spearman correlation, over the pairs, of the similarity with the shared fraction (None
        when every pair shares the same fraction).
    within_auprc : float or None
        Average precision of the similarity at telling identical pairs (shared fraction 1: the
        same features, in other frames) from the others (None without both kinds).
    violation_rate : float or None
        Fraction of (identical pair, other pair) couples the measure orders wrongly, a tie
        counting half: 1 - AUROC (ReSi's violations).
    inverted : float or None
        1.0 when some identical pair scores below some pair sharing at most half its features,
        else 0.0 (None without both kinds).
    n_pairs : int
    sensitivity : float or None
        Spearman correlation, over the pairs, of the dissimilarity (minus the similarity) with
        the functional difference (``functional_differences``): Ding et al. 2021's sensitivity,
        with the difference measured exactly (None without a functional difference given, or
        when the pairs' differences span no more than ``FUNCTIONAL_TOLERANCE``).
    specificity : float or None
        AUROC of the similarity at telling the pairs that do the same (functional difference
        below ``FUNCTIONAL_TOLERANCE``: a change of frame, Ding's seed-only changes) from those
        that do not (None without both kinds).
    """

    rank_correlation: float | None
    within_auprc: float | None
    violation_rate: float | None
    inverted: float | None
    n_pairs: int
    sensitivity: float | None = None
    specificity: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)


def score_similarities(prediction: Similarities, shared: np.ndarray,
                       functional: np.ndarray | None = None) -> ComparisonScores:
    """Score a ``Similarities`` against the planted shared fractions ``shared`` (k, k) and, when
    given, the functional differences ``functional`` (k, k)."""
    shared = np.asarray(shared, dtype=np.float64)
    k = shared.shape[0]
    if shared.shape != (k, k) or k < 2:
        raise ValueError(f"shared must be a square matrix of at least 2 representations, got shape {shared.shape}")
    if prediction.values.shape != (k, k):
        raise ValueError(f"the prediction compares {prediction.values.shape[0]} representations; the problem has {k}")
    i, j = np.triu_indices(k, 1)
    similarity, truth = prediction.symmetric[i, j], shared[i, j]
    rank = None
    if np.ptp(truth) > 0 and np.ptp(similarity) > 0:
        rank = float(spearmanr(similarity, truth).statistic)
    elif np.ptp(truth) > 0:
        rank = 0.0  # a measure that cannot tell any pair apart orders nothing
    within = np.isclose(truth, 1.0)
    auprc = violations = inverted = None
    if within.any() and (~within).any():
        auprc = float(average_precision(similarity, within))
        violations = float(1.0 - auroc(similarity, within))
    low = truth <= INVERSION_SHARED + 1e-9
    if within.any() and low.any():
        inverted = float(similarity[within].min() < similarity[low].max())
    sensitivity = specificity = None
    if functional is not None:
        functional = np.asarray(functional, dtype=np.float64)
        if functional.shape != (k, k):
            raise ValueError(f"functional must be ({k}, {k}) like shared, got shape {functional.shape}")
        difference = functional[i, j]
        if np.ptp(difference) > FUNCTIONAL_TOLERANCE:
            sensitivity = float(spearmanr(-similarity, difference).statistic) if np.ptp(similarity) > 0 else 0.0
        same = difference < FUNCTIONAL_TOLERANCE
        if same.any() and (~same).any():
            specificity = float(auroc(similarity, same))
    return ComparisonScores(rank, auprc, violations, inverted, int(i.size), sensitivity, specificity)


def check_twins(problem) -> tuple:
    """The (normal, damaged) toys of a damage problem, checked to be twins."""
    if len(problem) != 2:
        raise ValueError(f"a damage problem is a normal toy and its damaged copy, got {len(problem)} toys")
    normal, damaged = problem
    if getattr(damaged.truth, "base_id", None) != normal.id:
        raise ValueError("the second toy of a damage problem must be a damaged copy of the first "
                         "(its truth.base_id is the first toy's id)")
    return normal, damaged


def _localisation(scores: np.ndarray, damaged: np.ndarray) -> dict[str, float | None]:
    """AUROC, AUPRC and expected precision at the number damaged of ``scores`` at telling the
    ``damaged`` candidates (None when every candidate or none was damaged)."""
    out: dict[str, float | None] = {"damage_auroc": None, "damage_auprc": None, "damage_precision": None}
    if damaged.any() and (~damaged).any():
        out["damage_auroc"] = auroc(scores, damaged)
        out["damage_auprc"] = average_precision(scores, damaged)
        out["damage_precision"] = precision_at_k(scores, damaged, int(damaged.sum()))
    return out


def score_recorded_damage(prediction: DamagePrediction, truth: DamageTruth, observed: np.ndarray,
                          candidates: np.ndarray | None = None) -> dict[str, float | None]:
    """Score a ``DamagePrediction`` of a damaged connectome (one score per recorded neuron,
    ``observed`` their indices) against its truth: ``damage_auroc``, ``damage_auprc`` and
    ``damage_precision`` over the recorded neurons that could have been damaged (``candidates``,
    (n_neurons,) bool: the hubs of a hub damage, as ``toys._damaged.connectome_candidates`` says;
    default every neuron), so ranking the hubs first earns nothing on a hub damage. A damaged
    neuron nobody recorded cannot be found, and is not counted."""
    observed = np.asarray(observed, np.int64)
    if prediction.nodes.shape != observed.shape:
        raise ValueError(f"a connectome damage prediction needs one score per recorded neuron, {observed.shape}, got "
                         f"{prediction.nodes.shape}")
    keep = np.ones(observed.size, bool) if candidates is None else np.asarray(candidates, bool)[observed]
    return _localisation(prediction.nodes[keep], truth.damaged[observed][keep])


def score_damage(prediction: DamagePrediction, truth: DamageTruth, model) -> dict[str, float | None]:
    """Score a ``DamagePrediction`` against a damaged twin's truth, given the normal twin's
    ``model``: localisation over the nodes that could be damaged (``groundtruth.damage_candidates``:
    the blocks' neurons, a transformer's live heads and MLPs; ``damage_auroc``, ``damage_auprc``,
    ``damage_precision``: expected precision of as many top-scored nodes as were damaged, ties
    broken at random) and, when predicted, the deficits (``deficit_spearman``
    over the tasks, None when the true deficits are all equal; ``deficit_error``, the mean
    absolute error)."""
    graph = model.graph
    candidates = damage_candidates(model)
    if prediction.nodes.shape != (graph.n_nodes,):
        raise ValueError(f"a damage prediction needs one score per node, ({graph.n_nodes},), got {prediction.nodes.shape}")
    out = _localisation(prediction.nodes[candidates], truth.damaged[candidates])
    out["deficit_spearman"] = out["deficit_error"] = None
    if prediction.deficits is not None:
        if prediction.deficits.shape != truth.deficits.shape:
            raise ValueError(f"deficits must be one per task, {truth.deficits.shape}, got {prediction.deficits.shape}")
        out["deficit_error"] = float(np.abs(prediction.deficits - truth.deficits).mean())
        if np.ptp(truth.deficits) > 0:
            rho = spearmanr(prediction.deficits, truth.deficits).statistic if np.ptp(prediction.deficits) > 0 else 0.0
            out["deficit_spearman"] = float(rho)
    return out


def layer_twins(problem) -> tuple:
    """The two toys of a layer-matching problem, checked to compute the same formulas in the same
    number of blocks (so block h of one corresponds to block h of the other)."""
    if len(problem) != 2:
        raise ValueError(f"a layer-matching problem is two circuit toys, got {len(problem)} toys")
    a, b = problem
    if a.kind != b.kind or a.truth.formulas != b.truth.formulas or \
            a.truth.graph.layers.max() != b.truth.graph.layers.max():
        raise ValueError("the two toys of a layer-matching problem must compute the same formulas in as many blocks "
                         "(planted_mlp twins: one seed, other weights_seed; rasp_transformer twins: one program, "
                         "other frames)")
    return a, b


def layer_orders(problem) -> tuple[np.ndarray, np.ndarray]:
    """The order in which each twin's blocks are shown to a method: a permutation of each, drawn
    from the two toys' ids (so a method cannot match layers by position)."""
    a, b = layer_twins(problem)
    n = int(a.truth.graph.layers.max()) - 1
    rng = np.random.default_rng([int(hashlib.sha256((a.id + b.id).encode()).hexdigest()[:15], 16)])
    return rng.permutation(n), rng.permutation(n)


def layer_representations(problem) -> tuple[np.ndarray, ...]:
    """What a layer-matching method sees: the residual stream after each block (a transformer's:
    each sublayer, every position a row) of the first twin, in its shown order, then the
    second's, on every task's inputs of the first (float32 arrays (n_rows, d_model))."""
    a, b = layer_twins(problem)
    order_a, order_b = layer_orders(problem)
    x = np.concatenate([t.clean for t in a.tasks])
    ra, rb = a.model.residuals(x)[1:], b.model.residuals(x)[1:]
    return tuple(ra[order_a]) + tuple(rb[order_b])


def score_layer_matching(prediction: Similarities, problem) -> dict[str, float]:
    """Score similarities between the shown layers of two twins: ``layer_accuracy``, the fraction
    of layers (of either twin) whose most similar layer of the other twin is its counterpart (a
    tie of k layers, within 1e-9, counting 1/k), as Kornblith et al. (2019) test measures; ``layer_auroc``,
    counterparts against every other cross pair."""
    order_a, order_b = layer_orders(problem)
    n = order_a.size
    if prediction.values.shape != (2 * n, 2 * n):
        raise ValueError(f"the prediction compares {prediction.values.shape[0]} layers; the problem shows {2 * n}")
    cross = prediction.symmetric[:n, n:]
    correct = order_a[:, None] == order_b[None, :]
    credit = []
    for rows, truth in ((cross, correct), (cross.T, correct.T)):
        best = np.isclose(rows, rows.max(axis=1, keepdims=True), rtol=1e-8, atol=1e-9)  # rounding is a tie
        credit.extend((best & truth).sum(axis=1) / best.sum(axis=1))
    return {"layer_accuracy": float(np.mean(credit)), "layer_auroc": auroc(cross.ravel(), correct.ravel())}


__all__ = [
    "FUNCTIONAL_TOLERANCE",
    "INVERSION_SHARED",
    "ComparisonScores",
    "check_twins",
    "decodability",
    "functional_differences",
    "layer_orders",
    "layer_representations",
    "layer_twins",
    "score_damage",
    "score_recorded_damage",
    "score_layer_matching",
    "score_similarities",
    "shared_fractions",
]
