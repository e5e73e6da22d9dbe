"""Benchmarking methods written in any framework: export a toy's artifact, score a predictions file.

``make(preset, out)`` writes ``artifact.npz`` (what a method may see, nothing else),
``artifact.json`` (what to predict and in which format) and ``truth.sealed/`` (the toy saved with
``planted.toys.save``, its hash recorded in ``artifact.json``). ``score(folder, predictions)``
checks a predictions ``.npz`` against the promised format and scores it against the sealed truth.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from planted import toys
from planted.evaluators.tasks import TASKS
from planted.groundtruth import Dictionary, FeatureToy, read_json, read_npz, regular_file

ARTIFACT = "artifact.npz"
ARTIFACT_INFO = "artifact.json"
TRUTH = "truth.sealed"
EXPORTABLE_TASKS = ("features",)


def _sha256(path: Path, limit: int = 16 << 20) -> str:
    """The sha256 of a small file (a manifest), read at most ``limit`` bytes."""
    with open(regular_file(path), "rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"{path}: larger than {limit} bytes; not a file planted wrote")
    return hashlib.sha256(raw).hexdigest()


def make(preset: str, out: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """Write the artifact of ``toys.preset(preset, seed=seed, **overrides)`` to ``out``.

    The folder gets ``artifact.npz`` holding only ``activations`` (n_samples, d_model) float32,
    ``artifact.json`` describing the task and the predictions format, and ``truth.sealed/``.
    """
    toy = toys.preset(preset, seed=seed, **overrides)
    if not isinstance(toy, FeatureToy):
        raise ValueError(f"preset {preset!r} is not a features toy; only the features task can be exported so far")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / ARTIFACT, activations=toy.activations)
    toys.save(toy, folder / TRUTH)
    n, d = toy.activations.shape
    info = {
        "task": "features",
        "preset": preset,
        "seed": seed,
        "toy_id": toy.id,
        "artifact": {"file": ARTIFACT, "arrays": {"activations": {"shape": [n, d], "dtype": "float32"}}},
        "predictions": {
            "format": "npz (numpy.savez), no object arrays",
            "arrays": {
                "directions": f"required: float array (n_latents, {d}), one learned direction per row",
                "codes": f"optional: float array ({n}, n_latents), the codes of artifact activations",
                "decoder_bias": f"optional: float array ({d},), added to codes @ directions",
            },
        },
        "truth_manifest_sha256": _sha256(folder / TRUTH / "manifest.json"),
    }
    (folder / ARTIFACT_INFO).write_text(json.dumps(info, indent=1, sort_keys=True))
    return folder


def load_predictions(path: str | Path, *, n_samples: int, d_model: int) -> Dictionary:
    """Read a predictions ``.npz`` and check every array's shape and dtype against the format."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: predictions file not found")
    arrays = read_npz(path)
    if "directions" not in arrays:
        raise ValueError(
            f"{path}: no array 'directions'; expected a float array (n_latents, {d_model}); found {sorted(arrays)}"
        )
    unknown = sorted(set(arrays) - {"directions", "codes", "decoder_bias"})
    if unknown:
        raise ValueError(f"{path}: unexpected arrays {unknown}; allowed are directions, codes, decoder_bias")
    directions = arrays["directions"]
    if directions.ndim != 2 or directions.shape[1] != d_model or not np.issubdtype(directions.dtype, np.floating):
        raise ValueError(
            f"{path}: 'directions' must be a float array (n_latents, {d_model}), got {directions.dtype} {directions.shape}"
        )
    k = directions.shape[0]
    codes = arrays.get("codes")
    if codes is not None and (codes.shape != (n_samples, k) or not np.issubdtype(codes.dtype, np.floating)):
        raise ValueError(f"{path}: 'codes' must be a float array ({n_samples}, {k}), got {codes.dtype} {codes.shape}")
    bias = arrays.get("decoder_bias")
    if bias is not None and (bias.shape != (d_model,) or not np.issubdtype(bias.dtype, np.floating)):
        raise ValueError(f"{path}: 'decoder_bias' must be a float array ({d_model},), got {bias.dtype} {bias.shape}")
    try:
        return Dictionary(directions=directions, codes=codes, decoder_bias=bias, method=path.stem)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def score(folder: str | Path, predictions: str | Path) -> dict[str, Any]:
    """Score a predictions file against the sealed truth of a folder written by ``make``."""
    folder = Path(folder)
    info_path = folder / ARTIFACT_INFO
    if not info_path.exists():
        raise ValueError(f"{info_path}: missing; is {folder} a folder written by `planted make`?")
    info = read_json(info_path, max_bytes=1 << 20)
    if not isinstance(info, dict):
        raise ValueError(f"{info_path}: not a JSON object; is {folder} a folder written by `planted make`?")
    task = info.get("task")
    if task not in EXPORTABLE_TASKS:
        raise ValueError(f"{info_path}: 'task' is {task!r}; `planted make` writes the tasks {list(EXPORTABLE_TASKS)}")
    truth_manifest = folder / TRUTH / "manifest.json"
    if not truth_manifest.is_file() or _sha256(truth_manifest) != info.get("truth_manifest_sha256"):
        raise ValueError(f"{folder / TRUTH}: the sealed truth is missing or does not match artifact.json")
    toy = toys.load(folder / TRUTH)
    if toy.id != info.get("toy_id"):
        raise ValueError(f"{folder / TRUTH}: holds toy {toy.id[:12]}, artifact.json names {str(info.get('toy_id'))[:12]}")
    n, d = toy.activations.shape
    dictionary = load_predictions(predictions, n_samples=n, d_model=d)
    return TASKS[task].score(dictionary, toy)

__all__ = [
    "ARTIFACT",
    "ARTIFACT_INFO",
    "TRUTH",
    "load_predictions",
    "make",
    "score",
]
