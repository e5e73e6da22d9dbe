"""Benchmarking methods written in any framework: export a toy's artifact, score a predictions file.

``make(preset, out)`` writes ``artifact.npz`` (what a method may see, nothing else),
``artifact.json`` (what to predict and in which format) and ``truth.sealed/`` (the toy saved with
``planted.toys.save``, its hash recorded in ``artifact.json``). ``score(folder, predictions)``
checks a predictions ``.npz`` against the promised format and scores it against the sealed truth.

The private split of a leaderboard: ``make(..., secret=...)`` derives the toy's seed from a
maintainer's secret, records no seed, id or config in ``artifact.json`` and writes the truth to a
separate folder; the maintainer scores with ``score(folder, predictions, truth=that_folder)``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from planted import toys
from planted.evaluators import _private
from planted.evaluators.tasks import TASKS
from planted.groundtruth import Dictionary, FeatureToy, read_json, read_npz, regular_file

ARTIFACT = "artifact.npz"
ARTIFACT_INFO = "artifact.json"
TRUTH = "truth.sealed"
SEALED_FOR = "sealed-for.json"
EXPORTABLE_TASKS = ("features",)


def _sha256(path: Path, limit: int = 16 << 20) -> str:
    """The sha256 of a small file (a manifest), read at most ``limit`` bytes."""
    with open(regular_file(path), "rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"{path}: larger than {limit} bytes; not a file planted wrote")
    return hashlib.sha256(raw).hexdigest()


def make(preset: str, out: str | Path, *, seed: int = 0, secret: str | bytes | Path | None = None,
         truth_out: str | Path | None = None, **overrides: Any) -> Path:
    """Write the artifact of ``toys.preset(preset, seed=seed, **overrides)`` to ``out``.

    Parameters
    ----------
    preset : str
        A features preset (``planted presets``).
    out : path
        The folder handed to a method's author: ``artifact.npz`` holding only ``activations``
        (n_samples, d_model) float32, and ``artifact.json`` describing the task and the
        predictions format.
    seed : int
        The public seed (with a secret, the index of the private toy).
    secret : str, bytes or path, optional
        The private split (a leaderboard's hidden test set): the toy's seed is derived from this
        secret (at least 16 bytes; a ``pathlib.Path`` is a file holding it), and ``artifact.json``
        records neither the seed nor the toy's id or config, so the truth cannot be rebuilt from
        what is handed out.
    truth_out : path, optional
        Where the truth goes (``planted.toys.save``). Default: ``out/truth.sealed`` for the
        public split; with a secret, the folder ``<out>.truth`` beside ``out``, which is never
        handed out. Its ``sealed-for.json`` records the sha256 of the artifact it belongs to.

    Returns
    -------
    Path
        ``out``.
    """
    config = toys.preset_config(preset, seed=seed, **overrides)
    if not issubclass(toys.family(config.kind).toy, FeatureToy):
        raise ValueError(f"preset {preset!r} is not a features toy; only the features task can be exported so far")
    folder = Path(out)
    private = secret is not None
    if private:
        key = _private.read_secret(secret) if isinstance(secret, Path) else _private.secret_bytes(secret)
        config = toys.preset_config(preset, seed=_private.private_seed(key, "make", preset, seed), **overrides)
    truth_folder = Path(truth_out) if truth_out is not None else (
        folder.with_name(folder.name + ".truth") if private else folder / TRUTH)
    if private and truth_folder.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"truth_out {truth_folder} lies inside {folder}; with a secret the truth must not travel "
                         "with the artifact")
    toy = toys.from_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / ARTIFACT, activations=toy.activations)
    toys.save(toy, truth_folder)
    artifact_sha = _file_sha256(folder / ARTIFACT)
    (truth_folder / SEALED_FOR).write_text(json.dumps({"artifact_sha256": artifact_sha}))
    n, d = toy.activations.shape
    info = {
        "task": "features",
        "preset": preset,
        "split": "private" if private else "public",
        "artifact": {"file": ARTIFACT, "sha256": artifact_sha,
                     "arrays": {"activations": {"shape": [n, d], "dtype": "float32"}}},
        "predictions": {
            "format": "npz (numpy.savez), no object arrays",
            "arrays": {
                "directions": f"required: float array (n_latents, {d}), one learned direction per row",
                "codes": f"optional: float array ({n}, n_latents), the codes of artifact activations",
                "decoder_bias": f"optional: float array ({d},), added to codes @ directions",
            },
        },
    }
    if not private:
        info.update(seed=seed, toy_id=toy.id, truth_manifest_sha256=_sha256(truth_folder / "manifest.json"))
    (folder / ARTIFACT_INFO).write_text(json.dumps(info, indent=1, sort_keys=True))
    return folder


def _file_sha256(path: Path) -> str:
    """The sha256 of a file of any size, read in blocks."""
    h = hashlib.sha256()
    with open(regular_file(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def score(folder: str | Path, predictions: str | Path, *, truth: str | Path | None = None) -> dict[str, Any]:
    """Score a predictions file against the truth of a folder written by ``make``.

    ``truth`` is the truth folder of a private split (``make``'s ``truth_out``); by default the
    folder's own ``truth.sealed``. The truth must be the one sealed for this very artifact.
    """
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
    truth_folder = folder / TRUTH if truth is None else Path(truth)
    if truth is None:
        truth_manifest = truth_folder / "manifest.json"
        if not truth_manifest.is_file() or _sha256(truth_manifest) != info.get("truth_manifest_sha256"):
            raise ValueError(f"{truth_folder}: the sealed truth is missing or does not match artifact.json")
    sealed = read_json(truth_folder / SEALED_FOR, max_bytes=1 << 16) if (truth_folder / SEALED_FOR).exists() else None
    if sealed is not None or truth is not None:
        if not isinstance(sealed, dict) or sealed.get("artifact_sha256") != _file_sha256(folder / ARTIFACT):
            raise ValueError(f"{truth_folder}: this truth was not sealed for {folder / ARTIFACT}")
    toy = toys.load(truth_folder)
    if truth is None and toy.id != info.get("toy_id"):
        raise ValueError(f"{truth_folder}: holds toy {toy.id[:12]}, artifact.json names {str(info.get('toy_id'))[:12]}")
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
