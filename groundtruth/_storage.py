"""Save and load toys: a folder of ``manifest.json`` plus ``arrays.npz``, verified on load, no pickle."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from planted.groundtruth._config import SCHEMA_VERSION, config_from_json
from planted.groundtruth._records import (
    FeatureToy,
    FeatureTruth,
    SuperpositionToy,
    Toy,
    TrainingDynamics,
)

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
FORMAT = "planted-toy"


def _package_version() -> str:
    try:
        return metadata.version("planted")
    except metadata.PackageNotFoundError:
        return "unknown"


def _digest(array: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}|{array.shape}|".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _feature_arrays(toy: FeatureToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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


_DYNAMICS_ARRAYS = ("steps", "weights", "biases")


def _csr(arrays: dict[str, np.ndarray], name: str, shape) -> sp.csr_matrix:
    """The CSR matrix stored as ``name.data``, ``name.indices``, ``name.indptr``, checked first."""
    shape = tuple(int(v) for v in shape)
    data, indices, indptr = arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]
    if (
        len(shape) != 2
        or indptr.shape != (shape[0] + 1,)
        or indptr[0] != 0
        or indptr[-1] != data.size
        or indices.size != data.size
        or (np.diff(indptr) < 0).any()
        or (indices.size and (indices.min() < 0 or indices.max() >= shape[1]))
    ):
        raise ValueError(f"{name} is not a valid CSR matrix of shape {shape}")
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def _feature_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> FeatureToy:
    codes = _csr(arrays, "truth.codes", extra["codes_shape"])
    truth = FeatureTruth(
        directions=arrays["truth.directions"],
        norms=arrays["truth.norms"],
        represented=arrays["truth.represented"],
        codes=codes,
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


_MODEL_ARRAYS = ("weights", "bias", "output_weights", "restart_losses")


def _superposition_arrays(toy: SuperpositionToy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, extra = _feature_arrays(toy)
    arrays.update({f"model.{name}": getattr(toy, name) for name in _MODEL_ARRAYS})
    extra["loss"] = toy.loss
    return arrays, extra


def _superposition_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> SuperpositionToy:
    base = _feature_toy(config, arrays, extra)
    return SuperpositionToy(
        config=config, truth=base.truth, activations=base.activations, chunk_size=base.chunk_size,
        loss=float(extra["loss"]), **{name: arrays[f"model.{name}"] for name in _MODEL_ARRAYS},
    )


def _circuit_arrays(toy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    truth = toy.truth
    arrays = {f"model.{k}": v for k, v in toy.model.params.items()}
    for task in toy.tasks:
        arrays.update({f"task{task.index}.clean": task.clean, f"task{task.index}.corrupted": task.corrupted,
                       f"task{task.index}.labels": task.labels})
    arrays.update({
        "truth.layers": truth.graph.layers, "truth.nodes": truth.nodes, "truth.redundant": truth.redundant,
        "truth.node_effects": truth.node_effects, "truth.relevant_inputs": truth.relevant_inputs,
        "truth.modules": truth.modules,
    })
    for t in range(truth.n_tasks):
        arrays[f"truth.edges.{t}"] = truth.edges[t]
        arrays[f"truth.edge_effects.{t}"] = truth.edge_effects[t]
    arrays.update({f"truth.catalog.{mode}": mask for mode, mask in truth.catalog.items()})
    extra = {"labels": list(truth.graph.labels), "task_names": list(truth.task_names), "formulas": list(truth.formulas),
             "catalog": sorted(truth.catalog)}
    return arrays, extra


def _circuit_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]):
    import importlib

    from planted.groundtruth._circuits import CircuitTruth, ComponentGraph

    pm = importlib.import_module("planted.toys.planted_mlp")  # the model's run function lives with the generator

    graph = ComponentGraph(labels=tuple(extra["labels"]), layers=arrays["truth.layers"])
    n_tasks = len(extra["task_names"])
    truth = CircuitTruth(
        graph=graph, task_names=tuple(extra["task_names"]), formulas=tuple(extra["formulas"]),
        nodes=arrays["truth.nodes"], edges=tuple(arrays[f"truth.edges.{t}"] for t in range(n_tasks)),
        node_effects=arrays["truth.node_effects"],
        edge_effects=tuple(arrays[f"truth.edge_effects.{t}"] for t in range(n_tasks)),
        relevant_inputs=arrays["truth.relevant_inputs"], redundant=arrays["truth.redundant"],
        catalog={mode: arrays[f"truth.catalog.{mode}"] for mode in extra["catalog"]}, modules=arrays["truth.modules"],
    )
    model = pm.CircuitModel(params={k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}, graph=graph)
    tasks = tuple(
        pm.CircuitTask(name=extra["task_names"][t], index=t, clean=arrays[f"task{t}.clean"],
                       corrupted=arrays[f"task{t}.corrupted"], labels=arrays[f"task{t}.labels"])
        for t in range(n_tasks)
    )
    roots = tuple(pm.parse_formula(f) for f in extra["formulas"])
    return pm.PlantedCircuitToy(config=config, truth=truth, model=model, tasks=tasks, roots=roots)


_CONNECTOME_ARRAYS = ("cell_types", "positions", "modules", "hubs", "tuning", "stimulus", "spike_times",
                      "spike_neurons", "observed")


def _connectome_arrays(toy) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    truth, recording = toy.truth, toy.artifact
    w = truth.weights
    arrays = {"truth.weights.data": w.data, "truth.weights.indices": w.indices, "truth.weights.indptr": w.indptr,
              "recording.traces": recording.traces}
    arrays.update({f"truth.{name}": getattr(truth, name) for name in _CONNECTOME_ARRAYS})
    if recording.positions is not None:
        arrays["recording.positions"] = recording.positions
    extra = {"n_neurons": truth.n_neurons, "duration": truth.duration, "frame_rate": recording.frame_rate,
             "recording_kind": recording.kind}
    return arrays, extra


def _connectome_toy(config, arrays: dict[str, np.ndarray], extra: dict[str, Any]):
    import importlib

    from planted.groundtruth._connectome import ConnectomeTruth, Recording

    n = int(extra["n_neurons"])
    truth = ConnectomeTruth(weights=_csr(arrays, "truth.weights", (n, n)), duration=float(extra["duration"]),
                            **{name: arrays[f"truth.{name}"] for name in _CONNECTOME_ARRAYS})
    recording = Recording(traces=arrays["recording.traces"], frame_rate=float(extra["frame_rate"]),
                          kind=extra["recording_kind"], positions=arrays.get("recording.positions"))
    return importlib.import_module("planted.toys.connectome").ConnectomeToy(config=config, truth=truth, recording=recording)


_FAMILIES = {
    FeatureToy.kind: (FeatureToy, _feature_arrays, _feature_toy),
    SuperpositionToy.kind: (SuperpositionToy, _superposition_arrays, _superposition_toy),
    "circuits": (Toy, _circuit_arrays, _circuit_toy),
    "connectome": (Toy, _connectome_arrays, _connectome_toy),
}


def save(toy: Toy, path: str | os.PathLike) -> Path:
    """Write ``toy`` to the folder ``path`` (created; existing files in it are replaced).

    The folder holds ``manifest.json`` (format, schema version, package version, the config, the
    sha256 of every array and of the manifest itself) and ``arrays.npz``. Each file is written
    under a temporary name and renamed, so neither is ever half-written; a crash between the two
    renames leaves a pair that ``load`` rejects. The checksums catch corruption and edits made
    without recomputing them; they are not a signature against a deliberate forger.
    """
    family = _FAMILIES.get(getattr(toy, "kind", None))
    if family is None or not isinstance(toy, family[0]):
        raise ValueError(f"toy must be one of {sorted(_FAMILIES)} toys, got {type(toy).__name__}")
    arrays, extra = family[1](toy)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "package_version": _package_version(),
        "toy_kind": toy.kind,
        "toy_id": toy.id,
        "config": json.loads(toy.config.to_json()),
        "extra": extra,
        "arrays": {
            name: {"sha256": _digest(a), "shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()
        },
    }
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    tmp_arrays = folder / (ARRAYS + ".tmp")
    with open(tmp_arrays, "wb") as fh:
        np.savez(fh, **arrays)
    tmp_manifest = folder / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp_arrays, folder / ARRAYS)
    os.replace(tmp_manifest, folder / MANIFEST)
    return folder


def load(path: str | os.PathLike) -> Toy:
    """Read a toy written by ``save``, verifying everything before anything is returned.

    Raises ``ValueError`` naming the file and the fault when the folder is missing a file, the
    manifest is not valid JSON or was edited, the schema version is unknown, the npz is truncated
    or corrupt, an array is missing, extra, of the wrong shape or dtype, or its bytes do not match
    the recorded sha256, or the sparse codes are not a well-formed CSR matrix. Arrays are read
    with ``allow_pickle=False``: loading never runs code.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    arrays_path = folder / ARRAYS
    for p in (manifest_path, arrays_path):
        if not p.is_file():
            raise ValueError(f"{p}: file is missing; is {folder} a folder written by groundtruth.save?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest_path}: not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: not a planted toy manifest (format field is not {FORMAT!r})")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ValueError(f"{manifest_path}: manifest checksum mismatch; the manifest was edited or corrupted")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{manifest_path}: schema version {manifest.get('schema_version')!r} is not supported "
            f"(this version of planted reads {SCHEMA_VERSION})"
        )
    family = _FAMILIES.get(manifest.get("toy_kind"))
    if family is None:
        raise ValueError(f"{manifest_path}: unknown toy kind {manifest.get('toy_kind')!r}; known: {sorted(_FAMILIES)}")
    expected = manifest.get("arrays")
    if not isinstance(expected, dict) or not all(
        isinstance(v, dict) and {"sha256", "shape", "dtype"} <= set(v) for v in expected.values()
    ):
        raise ValueError(f"{manifest_path}: the 'arrays' entry is malformed")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = sorted(set(expected) - names)
            extra = sorted(names - set(expected))
            if missing or extra:
                raise ValueError(f"{arrays_path}: arrays missing {missing} and unexpected {extra}")
            for name, spec in expected.items():
                array = npz[name]
                if list(array.shape) != spec["shape"] or array.dtype.str != spec["dtype"]:
                    raise ValueError(
                        f"{arrays_path}: array {name!r} has shape {list(array.shape)} dtype {array.dtype.str}, "
                        f"manifest says shape {spec['shape']} dtype {spec['dtype']}"
                    )
                if _digest(array) != spec["sha256"]:
                    raise ValueError(f"{arrays_path}: array {name!r} does not match its sha256; the file was altered")
                arrays[name] = array
    except ValueError as exc:
        if str(exc).startswith(str(arrays_path)):
            raise
        raise ValueError(f"{arrays_path}: cannot be read ({exc}); the file is corrupt or truncated") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{arrays_path}: cannot be read ({type(exc).__name__}: {exc}); the file is corrupt or truncated") from None
    try:
        config = config_from_json(manifest["config"])
        if config.id != manifest.get("toy_id"):
            raise ValueError("config does not hash to the recorded toy id")
        return family[2](config, arrays, manifest["extra"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{manifest_path}: the manifest does not describe a valid toy ({type(exc).__name__}: {exc})") from None
