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

from evaluators.features import score_features
from groundtruth import Dictionary, FeatureToy, Toy


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
    """

    name: str
    description: str
    toy_type: type
    prediction_type: type
    artifact: Callable[[Toy], Any]
    score: Callable[[Any, Toy], dict[str, Any]]
    headline: str
    metrics: tuple[str, ...]

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
}
