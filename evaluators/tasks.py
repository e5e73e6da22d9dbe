"""Tasks: what a method receives, what it must return, and how that is scored.

A task is the contract of a benchmark cell. Later families register more (circuit,
connectivity, modules, hubs) by adding a ``Task`` to ``TASKS``; the runner, the store and the
reports work on any task unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from evaluators.circuits import score_circuit, with_edges
from evaluators.features import score_features
from groundtruth import Dictionary, FeatureToy, Toy
from groundtruth._circuits import CircuitPrediction


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
}
