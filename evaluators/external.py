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

from planted import __version__, toys
from planted.evaluators import _private
from planted.evaluators.features import chance_mmcs
from planted.evaluators.store import CellResult, Store
from planted.evaluators.tasks import TASKS
from planted.groundtruth import Dictionary, Encoder, FeatureToy, read_json, read_npz, read_safetensors, regular_file

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
                "W_enc": f"optional: float array ({d}, n_latents), an encoder: codes = act((x - decoder_bias) @ W_enc + b_enc)",
                "b_enc": "optional: float array (n_latents,), the encoder's bias (default 0)",
                "threshold": "optional: float array (n_latents,), JumpReLU thresholds (act keeps pre > threshold)",
                "k": "optional: integer scalar, TopK (act keeps the k largest positive pre-activations; default: ReLU)",
            },
            "or": "a SAELens checkpoint folder (cfg.json + sae_weights.safetensors, as SAE.save_model writes it)",
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


_PREDICTION_ARRAYS = ("directions", "codes", "decoder_bias", "W_enc", "b_enc", "threshold", "k")


def load_predictions(path: str | Path, *, n_samples: int, d_model: int) -> Dictionary:
    """Read predictions and check every array against the format ``artifact.json`` states.

    ``path`` is an ``.npz`` (``directions``, optionally ``codes``, ``decoder_bias`` and an
    encoder: ``W_enc``, ``b_enc`` and ``threshold`` or ``k``) or a SAELens checkpoint folder
    (``load_saelens``).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: predictions file not found")
    if path.is_dir():
        dictionary = load_saelens(path)
        if dictionary.directions.shape[1] != d_model:
            raise ValueError(f"{path}: the SAE reads d_in={dictionary.directions.shape[1]}, the artifact has d_model={d_model}")
        return dictionary
    arrays = read_npz(path)
    if "directions" not in arrays:
        raise ValueError(
            f"{path}: no array 'directions'; expected a float array (n_latents, {d_model}); found {sorted(arrays)}"
        )
    unknown = sorted(set(arrays) - set(_PREDICTION_ARRAYS))
    if unknown:
        raise ValueError(f"{path}: unexpected arrays {unknown}; allowed are {', '.join(_PREDICTION_ARRAYS)}")
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
        encoder = _encoder(arrays, k, d_model, bias)
        return Dictionary(directions=directions, codes=codes, decoder_bias=bias, encoder=encoder, method=path.stem)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _encoder(arrays: dict[str, np.ndarray], k: int, d_model: int, pre_bias) -> Encoder | None:
    """The encoder of a predictions file, or None when it has no ``W_enc``."""
    if "W_enc" not in arrays:
        stray = sorted({"b_enc", "threshold", "k"} & set(arrays))
        if stray:
            raise ValueError(f"{stray} given without 'W_enc' ({d_model}, {k})")
        return None
    w = arrays["W_enc"]
    if w.shape != (d_model, k) or not np.issubdtype(w.dtype, np.floating):
        raise ValueError(f"'W_enc' must be a float array ({d_model}, {k}), got {w.dtype} {w.shape}")
    if "threshold" in arrays and "k" in arrays:
        raise ValueError("give 'threshold' (JumpReLU) or 'k' (TopK), not both")
    b = arrays.get("b_enc", np.zeros(k, np.float32))
    pre = np.zeros(d_model, np.float32) if pre_bias is None else pre_bias
    if "k" in arrays:
        top = arrays["k"]
        if top.shape != () or top.dtype.kind not in "iu":
            raise ValueError(f"'k' must be an integer scalar, got {top.dtype} {top.shape}")
        return Encoder(weights=w, bias=b, pre_bias=pre, activation="topk", k=int(top))
    if "threshold" in arrays:
        return Encoder(weights=w, bias=b, pre_bias=pre, activation="threshold", threshold=arrays["threshold"])
    return Encoder(weights=w, bias=b, pre_bias=pre, activation="relu")


SAELENS_CONFIG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"


def load_saelens(folder: str | Path) -> Dictionary:
    """A SAELens SAE as written by ``SAE.save_model``: ``cfg.json`` and ``sae_weights.safetensors``.

    The decoder rows ``W_dec`` (d_sae, d_in) are the directions, ``b_dec`` the decoder bias, and
    the encoder is SAELens' own: ``act((x - b_dec) @ W_enc + b_enc)`` (``b_dec`` subtracted only
    with ``apply_b_dec_to_input``), with ``act`` ReLU for the "standard" architecture, JumpReLU
    (``relu(pre) * (pre > threshold)``) for "jumprelu" and TopK for "topk" (``k`` in the config;
    also the older ``activation_fn_str: "topk"`` with ``activation_fn_kwargs.k``). Read without
    torch or pickle. Architectures with other encoders (gated, transcoders) and activation
    normalisation other than "none" are refused with a ValueError saying why.

    References
    ----------
    Bloom, Tigges, Duong & Chanin (2024), "SAELens".
    """
    folder = Path(folder)
    cfg = read_json(folder / SAELENS_CONFIG, max_bytes=1 << 20)
    if not isinstance(cfg, dict):
        raise ValueError(f"{folder / SAELENS_CONFIG}: not a JSON object")
    weights, _ = read_safetensors(folder / SAELENS_WEIGHTS)
    where = f"{folder}: SAELens SAE"
    arch = cfg.get("architecture", "standard")
    activation = str(cfg.get("activation_fn_str") or cfg.get("activation_fn") or "relu")
    if arch not in ("standard", "jumprelu", "topk"):
        raise ValueError(f"{where}: architecture {arch!r} is not read (standard, jumprelu and topk are)")
    for name, allowed in (("normalize_activations", "none"), ("reshape_activations", "none")):
        if cfg.get(name, allowed) not in (allowed, None):
            raise ValueError(f"{where}: {name} is {cfg[name]!r}; fold the scaling into the weights first "
                             "(SAE.fold_activation_norm_scaling_factor) or score activations scaled the same way")
    d_in, d_sae = cfg.get("d_in"), cfg.get("d_sae")
    if type(d_in) is not int or type(d_sae) is not int:
        raise ValueError(f"{where}: cfg.json needs integer d_in and d_sae, got {d_in!r} and {d_sae!r}")
    needed = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    if arch == "jumprelu":
        needed["threshold"] = (d_sae,)
    problems = [f"{name} missing" if name not in weights else f"{name} has shape {list(weights[name].shape)}, "
                f"expected {list(shape)}" for name, shape in needed.items()
                if name not in weights or weights[name].shape != shape]
    if problems:
        raise ValueError(f"{where}: {'; '.join(problems)}")
    w = {name: np.asarray(weights[name], np.float32) for name in needed}
    pre = w["b_dec"] if cfg.get("apply_b_dec_to_input", True) else np.zeros(d_in, np.float32)
    try:
        if arch == "jumprelu":
            encoder = Encoder(weights=w["W_enc"], bias=w["b_enc"], pre_bias=pre, activation="threshold",
                              threshold=np.maximum(w["threshold"], 0))  # relu(pre) * (pre > t) == pre * (pre > max(t, 0))
        elif arch == "topk" or activation == "topk":
            k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
            encoder = Encoder(weights=w["W_enc"], bias=w["b_enc"], pre_bias=pre, activation="topk", k=k)
        elif activation == "relu":
            encoder = Encoder(weights=w["W_enc"], bias=w["b_enc"], pre_bias=pre, activation="relu")
        else:
            raise ValueError(f"activation {activation!r} is not read (relu and topk are)")
        return Dictionary(directions=w["W_dec"], encoder=encoder, decoder_bias=w["b_dec"], method=f"saelens-{arch}")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def score(folder: str | Path, predictions: str | Path, *, truth: str | Path | None = None) -> dict[str, Any]:
    """Score predictions against the truth of a folder written by ``make``; returns the metrics.

    ``predictions`` is an ``.npz`` or a SAELens checkpoint folder (``load_predictions``).
    ``truth`` is the truth folder of a private split (``make``'s ``truth_out``); by default the
    folder's own ``truth.sealed``. The truth must be the one sealed for this very artifact.
    """
    return _scored(folder, predictions, truth)[0]


def score_report(folder: str | Path, predictions: str | Path, *, truth: str | Path | None = None) -> dict[str, Any]:
    """What ``planted score`` prints: the toy (preset, split, id on the public split), the chance
    level of the prediction's size (``chance_mmcs``: random directions of as many latents) and the
    metrics."""
    metrics, toy, info, dictionary = _scored(folder, predictions, truth)
    n_latents, d = dictionary.directions.shape
    about = {"preset": info.get("preset"), "split": info.get("split", "public"), "n_latents": n_latents, "d_model": d}
    if about["split"] != "private":
        about["toy_id"] = toy.id
    return {"toy": about, "chance": {"mmcs": chance_mmcs(n_latents, d)}, "scores": metrics}


def score_to_store(folder: str | Path, predictions: str | Path, store: str | Path, *, method: str | None = None,
                   truth: str | Path | None = None) -> CellResult:
    """Score predictions and add them to a results store, so that ``planted report`` shows them
    on a leaderboard beside anything else scored on the same made toy.

    The row's suite is ``make:<preset>``, its version the toy's id (12 digits; the private split's
    is ``private`` and 10 digits of a hash of the truth), its method ``method`` (default: the
    predictions file's name); scoring the same method again replaces its row.
    """
    metrics, toy, info, dictionary = _scored(folder, predictions, truth)
    private = info.get("split") == "private"
    version = ("private-" + hashlib.sha256(toy.id.encode()).hexdigest()[:10]) if private else toy.id[:12]
    result = CellResult(
        suite=f"make:{info.get('preset')}", suite_version=version, task=str(info.get("task")), toy=str(info.get("preset")),
        toy_id=toy.id, axes={}, method=method or Path(predictions).name.removesuffix(".npz"), params="{}",
        seed=int(info.get("seed", 0)), status="ok", metrics=metrics, seconds=0.0, package_version=__version__,
        config=toy.config.to_json(), method_fingerprint=_file_sha256_any(Path(predictions))[:16],
    )
    with Store(store) as db:
        db.write(result)
    return result


def _file_sha256_any(path: Path) -> str:
    """The sha256 of a predictions file, or of every file of a checkpoint folder, in name order."""
    if not path.is_dir():
        return _file_sha256(path)
    h = hashlib.sha256()
    for child in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(child.name.encode() + _file_sha256(child).encode())
    return h.hexdigest()


def _scored(folder: str | Path, predictions: str | Path, truth: str | Path | None):
    """(metrics, toy, artifact.json, dictionary) of predictions on a made folder."""
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
    return TASKS[task].score(dictionary, toy), toy, info, dictionary


__all__ = [
    "ARTIFACT",
    "ARTIFACT_INFO",
    "TRUTH",
    "load_predictions",
    "load_saelens",
    "make",
    "score",
    "score_report",
    "score_to_store",
]
