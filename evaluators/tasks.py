"""Tasks: what a method receives, what it must return, and how that is scored.

A task is the contract of a benchmark cell: features, circuits, and on synthetic connectomes
connectivity, modules and hubs. A family registers more by adding a ``Task`` to ``TASKS``; the
runner, the store and the reports work on any task unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from planted.evaluators.circuits import auroc, score_circuit, score_modules, with_edges
from planted.evaluators.connectome import hub_precision_at_k, score_connectivity
from planted.evaluators.features import score_features
from planted.groundtruth import Dictionary, FeatureToy, Toy
from planted.groundtruth._circuits import CircuitPrediction
from planted.groundtruth._connectome import ConnectomeTruth, Recording


@dataclasses.dataclass(frozen=True)
class Task:
    """A benchmark task.

    Attributes
    ----------
    name : str
    description : str
    toy_type : type
        The toys this task applies to.
    prediction_type : type
        What a method must return.
    artifact : callable(toy) -> object
        What a method receives (never the truth). The runner hands it a private copy.
    score : callable(prediction, toy) -> dict[str, float | None]
        The metrics of a prediction.
    headline : str
        The metric leaderboards sort by (higher is better).
    metrics : tuple[str, ...]
        The metrics tables show by default.
    keep : callable(prediction, toy) -> array or None
        The array of a prediction the store keeps for report figures (feature directions; a
        circuit method's edge scores on the first task, induced from node scores if need be).
    """

    name: str
    description: str
    toy_type: type
    prediction_type: type
    artifact: Callable[[Toy], Any]
    score: Callable[[Any, Toy], dict[str, Any]]
    headline: str
    metrics: tuple[str, ...]
    keep: Callable[[Any, Toy], Any] = lambda prediction, toy: getattr(prediction, "directions", None)

    def check_prediction(self, prediction: Any, method: str) -> None:
        if not isinstance(prediction, self.prediction_type):
            raise ValueError(
                f"method {method!r} returned {type(prediction).__name__}; the {self.name} task needs a "
                f"{self.prediction_type.__module__}.{self.prediction_type.__name__}"
            )


def _feature_metrics(prediction: Dictionary, toy: FeatureToy) -> dict[str, Any]:
    scores = score_features(prediction, toy.truth, activations=toy.activations).as_dict()
    scores.pop("threshold")
    return scores


def _circuit_metrics(prediction: CircuitPrediction, toy) -> dict[str, Any]:
    """Mean over the toy's tasks of ``score_circuit``; node-only methods are scored on edges too,
    each edge as important as its weaker end (min of the two |node scores|)."""
    if len(prediction.scores) != toy.truth.n_tasks:
        raise ValueError(f"the prediction has {len(prediction.scores)} ComponentScores; the toy has {toy.truth.n_tasks} tasks")
    rows = [score_circuit(with_edges(s, toy.graph), toy, t).to_dict() for t, s in enumerate(prediction.scores)]
    out = {}
    for name in rows[0]:
        values = [r[name] for r in rows if r[name] is not None]
        out[name] = float(np.mean(values)) if values else None
    return out


def _circuit_keep(prediction: CircuitPrediction, toy):
    first = with_edges(prediction.scores[0], toy.graph)
    return None if first.edges is None else first.edges.astype(np.float32)


def _recording(toy) -> Recording:
    """A private copy of a connectome toy's recording (never its truth)."""
    if not isinstance(toy.truth, ConnectomeTruth):
        raise ValueError(f"connectome tasks need a connectome toy, got a {type(toy).__name__}")
    r = toy.artifact
    return dataclasses.replace(r, traces=r.traces.copy(), positions=None if r.positions is None else r.positions.copy())


def _per_neuron(prediction: np.ndarray, toy, what: str) -> np.ndarray:
    m = toy.truth.observed.size
    prediction = np.asarray(prediction)
    if prediction.shape != (m,):
        raise ValueError(f"a {what} prediction must be one value per recorded neuron, shape ({m},), got {prediction.shape}")
    return prediction


def _connectivity_metrics(prediction: np.ndarray, toy) -> dict[str, Any]:
    scores = score_connectivity(prediction, toy.truth).to_dict()
    scores.pop("n_pairs")
    scores.pop("n_edges")
    return scores


def _module_metrics(prediction: np.ndarray, toy) -> dict[str, Any]:
    labels = _per_neuron(prediction, toy, "modules")
    scores = score_modules(labels, toy.truth.modules[toy.truth.observed])
    return {"nmi": scores.nmi, "ari": scores.ari, "n_modules": float(np.unique(labels).size)}


def _hub_metrics(prediction: np.ndarray, toy) -> dict[str, Any]:
    centrality = np.asarray(_per_neuron(prediction, toy, "hubs"), np.float64)
    hubs = toy.truth.hubs[toy.truth.observed]
    if not hubs.any() or hubs.all():
        raise ValueError("the hubs task needs a toy whose recorded neurons include hubs and non-hubs")
    return {"hub_precision": hub_precision_at_k(centrality, hubs), "hub_auroc": auroc(centrality, hubs)}


TASKS: dict[str, Task] = {
    "features": Task(
        name="features",
        description="recover planted feature directions from activations (n_samples, d_model)",
        toy_type=FeatureToy,
        prediction_type=Dictionary,
        artifact=lambda toy: np.array(toy.activations, copy=True),
        score=_feature_metrics,
        headline="mmcs",
        metrics=("mmcs", "matched_cosine", "recovered", "spurious", "code_correlation", "fvu", "l0"),
    ),
    "circuits": Task(
        name="circuits",
        description="find each task's planted circuit (nodes and edges) in a network, through its intervention interface",
        toy_type=Toy,
        prediction_type=CircuitPrediction,
        artifact=lambda toy: toy.artifact,
        score=_circuit_metrics,
        headline="edge_auroc",
        metrics=("edge_auroc", "edge_auprc", "node_auroc", "node_precision_at_k", "cpr", "cmd"),
        keep=_circuit_keep,
    ),
    "connectivity": Task(
        name="connectivity",
        description="infer the synapses among recorded neurons from their recording: a score per ordered pair "
        "(n_observed, n_observed), scored by AUROC over pairs with the diagonal masked (the ChaLearn metric)",
        toy_type=Toy,
        prediction_type=np.ndarray,
        artifact=_recording,
        score=_connectivity_metrics,
        headline="auroc",
        metrics=("auroc", "auprc", "sign_accuracy"),
        keep=lambda prediction, toy: np.asarray(prediction, np.float32),
    ),
    "modules": Task(
        name="modules",
        description="find the planted modules from a recording: a module label per recorded neuron (NMI, ARI)",
        toy_type=Toy,
        prediction_type=np.ndarray,
        artifact=_recording,
        score=_module_metrics,
        headline="nmi",
        metrics=("nmi", "ari", "n_modules"),
        keep=lambda prediction, toy: None,
    ),
    "hubs": Task(
        name="hubs",
        description="find the planted hubs from a recording: a centrality per recorded neuron (precision at the "
        "number of hubs, AUROC)",
        toy_type=Toy,
        prediction_type=np.ndarray,
        artifact=_recording,
        score=_hub_metrics,
        headline="hub_precision",
        metrics=("hub_precision", "hub_auroc"),
        keep=lambda prediction, toy: None,
    ),
}
