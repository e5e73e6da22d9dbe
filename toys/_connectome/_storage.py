"""The storage halves of synthetic connectomes: a toy as named arrays and JSON extras, and back."""

from __future__ import annotations

from typing import Any

import numpy as np

from planted.groundtruth import ConnectomeTruth, Recording
from planted.toys._connectome._build import ConnectomeToy
from planted.toys._connectome._config import ConnectomeConfig
from planted.toys._checks import shape
from planted.toys._storage import csr

_TRUTH_ARRAYS = ("cell_types", "positions", "modules", "hubs", "tuning", "stimulus", "spike_times", "spike_neurons",
                 "observed")


def _to_arrays(toy: ConnectomeToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The wiring (CSR parts), the truth's other arrays and the recording; the sizes, duration,
    frame rate and recording kind as extras."""
    truth, recording = toy.truth, toy.artifact
    w = truth.weights
    arrays = {"truth.weights.data": w.data, "truth.weights.indices": w.indices, "truth.weights.indptr": w.indptr,
              "recording.traces": recording.traces}
    arrays.update({f"truth.{name}": getattr(truth, name) for name in _TRUTH_ARRAYS})
    if recording.positions is not None:
        arrays["recording.positions"] = recording.positions
    extra = {"n_neurons": truth.n_neurons, "duration": truth.duration, "frame_rate": recording.frame_rate,
             "recording_kind": recording.kind}
    return arrays, extra


def _from_arrays(config: ConnectomeConfig, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> ConnectomeToy:
    """The toy ``_to_arrays`` wrote (its arrays already verified)."""
    n = int(extra["n_neurons"])
    truth = ConnectomeTruth(weights=csr(arrays, "truth.weights", (n, n)), duration=float(extra["duration"]),
                            **{name: arrays[f"truth.{name}"] for name in _TRUTH_ARRAYS})
    recording = Recording(traces=arrays["recording.traces"], frame_rate=float(extra["frame_rate"]),
                          kind=extra["recording_kind"], positions=arrays.get("recording.positions"))
    return ConnectomeToy(config=config, truth=truth, recording=recording)


def _check(toy: ConnectomeToy) -> list[str]:
    """A loaded connectome against its config (``Family.check``): the number of neurons, the
    duration, the frame rate, the recording's kind and its neurons."""
    c, truth, recording, p = toy.config, toy.truth, toy.artifact, []
    if truth.n_neurons != c.n_neurons:
        p.append(f"the wiring has {truth.n_neurons} neurons, the config {c.n_neurons}")
    if truth.duration != c.duration or recording.frame_rate != c.frame_rate or recording.kind != c.observation:
        p.append("duration, frame rate or recording kind differ from the config's")
    shape(p, "recording.traces", recording.traces, (recording.traces.shape[0], truth.observed.size))
    if truth.stimulus.shape[0] not in (0, recording.traces.shape[0]):
        p.append(f"truth.stimulus has {truth.stimulus.shape[0]} frames, the recording {recording.traces.shape[0]}")
    if truth.spike_times.size and truth.spike_times[-1] > truth.duration:
        p.append("truth.spike_times run past the duration")
    return p
