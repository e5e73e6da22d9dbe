"""The storage halves of the feature families (sparse features, and the toy models of superposition,
whose toys are feature toys with a trained model)."""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import FeatureToy, FeatureTruth, SuperpositionToy, TrainingDynamics
from planted.toys._storage import csr

_DYNAMICS_ARRAYS = ("steps", "weights", "biases")
_MODEL_ARRAYS = ("weights", "bias", "output_weights", "restart_losses")


def feature_arrays(toy: FeatureToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    truth = toy.truth
    codes = truth.codes
    arrays = {
        "activations": toy.activations,
        "truth.directions": truth.directions,
        "truth.norms": truth.norms,
        "truth.represented": truth.represented,
        "truth.firing_probabilities": truth.firing_probabilities,
        "truth.codes.data": codes.data.astype(np.float32),
        "truth.codes.indices": codes.indices.astype(np.int64),
        "truth.codes.indptr": codes.indptr.astype(np.int64),
    }
    if truth.parents is not None:
        arrays["truth.parents"] = truth.parents
    if truth.dimensionality is not None:
        arrays["truth.dimensionality"] = truth.dimensionality
    if truth.dynamics is not None:
        arrays.update({f"truth.dynamics.{name}": getattr(truth.dynamics, name) for name in _DYNAMICS_ARRAYS})
    extra = {
        "labels": list(truth.labels),
        "codes_shape": list(codes.shape),
        "chunk_size": toy.chunk_size,
        "dimensions_per_feature": truth.dimensions_per_feature,
    }
    return arrays, extra


def feature_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> FeatureToy:
    truth = FeatureTruth(
        directions=arrays["truth.directions"],
        norms=arrays["truth.norms"],
        represented=arrays["truth.represented"],
        codes=csr(arrays, "truth.codes", extra["codes_shape"]),
        firing_probabilities=arrays["truth.firing_probabilities"],
        labels=tuple(extra["labels"]),
        parents=arrays.get("truth.parents"),
        dimensionality=arrays.get("truth.dimensionality"),
        dimensions_per_feature=extra.get("dimensions_per_feature"),
        dynamics=(
            TrainingDynamics(**{name: arrays[f"truth.dynamics.{name}"] for name in _DYNAMICS_ARRAYS})
            if "truth.dynamics.steps" in arrays
            else None
        ),
    )
    return FeatureToy(config=config, truth=truth, activations=arrays["activations"], chunk_size=extra["chunk_size"])


def superposition_arrays(toy: SuperpositionToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, extra = feature_arrays(toy)
    arrays.update({f"model.{name}": getattr(toy, name) for name in _MODEL_ARRAYS})
    extra["loss"] = toy.loss
    return arrays, extra


def superposition_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> SuperpositionToy:
    base = feature_toy(config, arrays, extra)
    return SuperpositionToy(
        config=config, truth=base.truth, activations=base.activations, chunk_size=base.chunk_size,
        loss=float(extra["loss"]), **{name: arrays[f"model.{name}"] for name in _MODEL_ARRAYS},
    )
