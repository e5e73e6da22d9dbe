"""The storage halves of the feature families (sparse features, and the toy models of superposition,
whose toys are feature toys with a trained model)."""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import FeatureToy, FeatureTruth, SuperpositionToy, TrainingDynamics
from planted.toys._checks import shape
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
        if truth.dynamics.losses is not None:
            arrays["truth.dynamics.losses"] = truth.dynamics.losses
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
            TrainingDynamics(**{name: arrays[f"truth.dynamics.{name}"] for name in _DYNAMICS_ARRAYS},
                             losses=arrays.get("truth.dynamics.losses"))
            if "truth.dynamics.steps" in arrays
            else None
        ),
    )
    return FeatureToy(config=config, truth=truth, activations=arrays["activations"], chunk_size=extra["chunk_size"])


def superposition_arrays(toy: SuperpositionToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, extra = feature_arrays(toy)
    arrays.update({f"model.{name}": getattr(toy, name) for name in _MODEL_ARRAYS})
    extra["loss"] = toy.loss
    extra["loss_stderr"] = toy.loss_stderr
    return arrays, extra


def superposition_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> SuperpositionToy:
    base = feature_toy(config, arrays, extra)
    return SuperpositionToy(
        config=config, truth=base.truth, activations=base.activations, chunk_size=base.chunk_size,
        loss=float(extra["loss"]), loss_stderr=None if extra.get("loss_stderr") is None else float(extra["loss_stderr"]),
        **{name: arrays[f"model.{name}"] for name in _MODEL_ARRAYS},
    )


def check_features(toy: FeatureToy) -> list[str]:
    """A loaded features toy's sizes against its config (``Family.check``)."""
    c, t, p = toy.config, toy.truth, []
    n, d = c.n_features, getattr(c, "d_model", None) or c.n_hidden
    shape(p, "activations", toy.activations, (c.n_samples, d))
    shape(p, "truth.directions", t.directions, (n, d))
    shape(p, "truth.codes", t.codes, (c.n_samples, n))
    if not (isinstance(toy.chunk_size, int) and toy.chunk_size >= 1):
        p.append(f"chunk_size must be a positive integer, got {toy.chunk_size!r}")
    return p


def check_superposition(toy: SuperpositionToy) -> list[str]:
    """A loaded toy model of superposition's sizes against its config (``Family.check``)."""
    c, p = toy.config, check_features(toy)
    m, n = c.n_hidden, c.n_features
    for name in ("weights", "output_weights"):
        shape(p, f"model.{name}", getattr(toy, name), (m, n))
    shape(p, "model.bias", toy.bias, (n,))
    shape(p, "model.restart_losses", toy.restart_losses, (c.restarts,))
    if c.tied and not p and not np.array_equal(toy.output_weights, toy.weights):
        p.append("model.output_weights must equal model.weights in a tied model")
    dynamics = toy.truth.dynamics
    if (dynamics is None) != (c.snapshot_every == 0):
        p.append(f"truth.dynamics must be present exactly when snapshot_every > 0 ({c.snapshot_every})")
    elif dynamics is not None:
        steps = np.arange(0, c.n_steps + 1, c.snapshot_every)
        steps = np.append(steps, c.n_steps) if c.n_steps % c.snapshot_every else steps
        if not np.array_equal(dynamics.steps, steps):
            p.append("truth.dynamics.steps are not the config's snapshot steps")
        shape(p, "truth.dynamics.weights", dynamics.weights, (steps.size, m, n))
    if not (np.isfinite(toy.loss) and toy.loss >= 0) or not (toy.loss_stderr is None or (np.isfinite(toy.loss_stderr) and toy.loss_stderr >= 0)):
        p.append(f"loss {toy.loss!r} and loss_stderr {toy.loss_stderr!r} must be finite and non-negative")
    return p
