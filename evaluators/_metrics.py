"""What every metric a task reports means: its direction, a sentence a reader of a paper can
follow, and its chance level where one is defined. Reports take their glossaries and chance
columns from here; a test checks that every metric of every task has an entry."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """A metric: ``higher`` is better when True (False: lower is better; None: neither, a size);
    ``meaning`` in one sentence; ``chance(cells)`` the value a method without information would
    get on those cells (one toy and method), or None where none is defined."""

    name: str
    higher: bool | None
    meaning: str
    chance: Callable[[Sequence[Any]], float | None] | None = None

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.higher]


def _constant(value: float) -> Callable[[Sequence[Any]], float]:
    def chance(cells: Sequence[Any]) -> float:
        return value

    return chance


def _chance_mmcs(cells: Sequence[Any]) -> float | None:
    """MMCS of random directions of the cells' dictionary size in their toy's dimension."""
    from planted.evaluators.features import chance_mmcs

    sizes = [c.metrics.get("n_latents") for c in cells if c.status == "ok" and c.metrics.get("n_latents")]
    d = _d_model(cells)
    if not sizes or d is None:
        return None
    return chance_mmcs(int(round(float(np.mean(sizes)))), d)


def _d_model(cells: Sequence[Any]) -> int | None:
    for c in cells:
        try:
            fields = json.loads(c.config)["fields"]
        except (ValueError, KeyError, TypeError):
            continue
        d = fields.get("d_model", fields.get("n_hidden"))
        if isinstance(d, int):
            return d
    return None


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    # features
    MetricInfo("mmcs", True, "mean over represented true features of the best |cosine| any latent reaches "
               "(mean max cosine similarity; Sharkey et al. 2022)", _chance_mmcs),
    MetricInfo("matched_cosine", True, "one-to-one (Hungarian) matching of latents to true features, |cosine| averaged "
               "over the true features, an unmatched feature counting 0"),
    MetricInfo("mcc", True, "the same matching averaged over its min(features, latents) pairs, as SAELens' "
               "mean_correlation_coefficient and SynthSAEBench report it"),
    MetricInfo("recovered", True, "fraction of represented true features matched by a latent at |cosine| >= 0.9"),
    MetricInfo("spurious", False, "fraction of latents that match no true feature at |cosine| >= 0.9"),
    MetricInfo("code_correlation", True, "correlation of each matched latent's codes with its feature's true codes, "
               "averaged over matched pairs"),
    MetricInfo("fvu", False, "fraction of variance unexplained by the reconstruction from the codes"),
    MetricInfo("l0", None, "mean number of active latents per sample"),
    # circuits
    MetricInfo("edge_auroc", True, "area under the ROC curve of the edge scores, the planted circuit's edges "
               "as positives", _constant(0.5)),
    MetricInfo("edge_auprc", True, "area under the precision-recall curve of the edge scores (chance: the fraction "
               "of edges in the circuit)"),
    MetricInfo("node_auroc", True, "area under the ROC curve of the node scores, the circuit's nodes as positives",
               _constant(0.5)),
    MetricInfo("node_precision_at_k", True, "precision of the k top-scored nodes, k the circuit's size"),
    MetricInfo("cpr", True, "circuit performance ratio: the area under the faithfulness curve, the share of the "
               "clean-corrupted metric gap that the top-scored edges keep alone (the rest patched), over edge fractions"),
    MetricInfo("cmd", False, "circuit-model distance: the area between that faithfulness curve and 1 (0: faithful "
               "at every size)"),
    # connectomes
    MetricInfo("auroc", True, "area under the ROC curve of the pair scores against the planted synapses, "
               "diagonal masked (the ChaLearn connectomics challenge metric)", _constant(0.5)),
    MetricInfo("auprc", True, "area under the precision-recall curve of the pair scores (chance: the wiring's "
               "density)"),
    MetricInfo("sign_accuracy", True, "fraction of planted synapses whose score has the sign of their weight "
               "(excitatory or inhibitory); only for signed scores", _constant(0.5)),
    MetricInfo("nmi", True, "normalised mutual information of the predicted partition with the planted modules",
               _constant(0.0)),
    MetricInfo("ari", True, "adjusted Rand index of the predicted partition with the planted modules",
               _constant(0.0)),
    MetricInfo("n_modules", None, "number of modules predicted"),
    # comparison
    MetricInfo("rank_correlation", True, "Spearman correlation, over a problem's pairs of representations, of the "
               "measure's similarity with the fraction of planted features the pair shares", _constant(0.0)),
    MetricInfo("within_auprc", True, "average precision of the similarity at telling identical pairs (the same "
               "features in other frames) from pairs that share fewer (ReSi's within- vs across-group AUPRC)"),
    MetricInfo("violation_rate", False, "fraction of (identical pair, other pair) couples the similarity orders "
               "wrongly, a tie counting half: 1 - AUROC (ReSi's violations)", _constant(0.5)),
    MetricInfo("inverted", False, "1 when some identical pair scores below a pair sharing at most half of its "
               "features (the ordering inverts, as CKA's does under superposition), else 0"),
    MetricInfo("sensitivity", True, "Spearman correlation, over the pairs, of the dissimilarity with the exact "
               "functional difference (mean |R^2 difference| of linear probes of every planted feature; Ding et al. "
               "2021)", _constant(0.0)),
    MetricInfo("specificity", True, "area under the ROC curve of the similarity at telling pairs that do the same "
               "(a change of frame: functional difference below 0.01) from those that do not (Ding et al. 2021)",
               _constant(0.5)),
    # layer matching
    MetricInfo("layer_accuracy", True, "fraction of the layers of either twin whose most similar layer of the other is "
               "its counterpart, a tie of k layers counting 1/k (Kornblith et al. 2019's test)"),
    MetricInfo("layer_auroc", True, "area under the ROC curve of the similarities of the cross pairs of layers, the "
               "counterparts as positives", _constant(0.5)),
    # dynamics
    MetricInfo("event_f1", True, "harmonic mean of the event precision and recall"),
    MetricInfo("event_precision", True, "fraction of the predicted events (change points, or the distinct dates) "
               "within a window of a true formation step"),
    MetricInfo("event_recall", True, "fraction of the distinct true formation steps within a window of a predicted "
               "event"),
    MetricInfo("lead_time", None, "mean, over the true formation events a predicted event falls near, of log10(1 + "
               "true step) - log10(1 + the nearest predicted step within the window) (positive: just ahead of the "
               "formation)"),
    MetricInfo("log_step_error", False, "mean over the features formed in truth of |log10(1 + predicted step) - "
               "log10(1 + true step)| (a predicted never counted at twice the last step)"),
    MetricInfo("order_tau", True, "Kendall tau of the predicted and true formation steps of the features both date",
               _constant(0.0)),
    MetricInfo("formed_accuracy", True, "fraction of features on which the method says rightly whether it formed"),
    # lesions
    MetricInfo("lesion_auroc", True, "mean over the tasks of the area under the ROC curve of |score| over the inputs "
               "and neurons, those whose lesion alone (set to 0) costs the task at least 1% of its accuracy as "
               "positives", _constant(0.5)),
    MetricInfo("lesion_spearman", True, "mean over the tasks of the Spearman correlation of |score| with the exact "
               "accuracy drop of each node's lesion", _constant(0.0)),
    MetricInfo("backup_auroc", True, "area under the ROC curve of each node's largest |score| at telling the backups "
               "(silent alone, lethal together with another silent node) from the other silent nodes",
               _constant(0.5)),
    # damage
    MetricInfo("damage_auroc", True, "area under the ROC curve of the damage scores over the blocks' neurons, the "
               "damaged ones as positives", _constant(0.5)),
    MetricInfo("damage_auprc", True, "average precision of the damage scores over the blocks' neurons (chance: the "
               "damaged fraction)"),
    MetricInfo("damage_precision", True, "precision of as many top-scored neurons as were damaged"),
    MetricInfo("deficit_spearman", True, "Spearman correlation over the tasks of the predicted accuracy drops with "
               "the measured ones", _constant(0.0)),
    MetricInfo("deficit_error", False, "mean absolute error of the predicted accuracy drops"),
    MetricInfo("hub_precision", True, "precision of the top-scored neurons, as many as there are planted hubs"),
    MetricInfo("hub_auroc", True, "area under the ROC curve of the centralities, the planted hubs as positives",
               _constant(0.5)),
)}


def metric_info(name: str) -> MetricInfo:
    """The entry of ``name`` (a neutral one for a metric a user's task added)."""
    return METRICS.get(name) or MetricInfo(name, None, "a metric of a registered task")


__all__ = ["METRICS", "MetricInfo", "metric_info"]
