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

import dataclasses
import hashlib
import json
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from planted import __version__, toys
from planted.evaluators import _exchange, _private
from planted.evaluators.features import chance_mmcs
from planted.evaluators.store import CellResult, Store, problem_id
from planted.evaluators.tasks import TASKS
from planted.groundtruth import (
    Dictionary,
    Encoder,
    read_json,
    read_npz,
    read_safetensors,
    read_torch_state_dict,
    regular_file,
)

ARTIFACT = "artifact.npz"
ARTIFACT_INFO = "artifact.json"
TRUTH = "truth.sealed"
SEALED_FOR = "sealed-for.json"
PROBLEM = "problem.json"  # in the truth folder of a problem of several toys


def exportable(toy=None) -> tuple[str, ...]:
    """The tasks that can be written to files (``Task.files`` and ``Task.read`` declared), or those
    of them that apply to ``toy`` (``Task.applies_to``: its truth type and family)."""
    return tuple(name for name, t in TASKS.items() if t.files is not None and t.read is not None
                 and (toy is None or t.applies_to(toy)))


def make(preset: str, out: str | Path, *, seed: int = 0, secret: str | bytes | Path | None = None,
         truth_out: str | Path | None = None, tasks: Sequence[str] | None = None, **overrides: Any) -> Path:
    """Write the artifact of ``toys.preset(preset, seed=seed, **overrides)`` to ``out``.

    Parameters
    ----------
    preset : str
        A preset (``planted presets``) or a family (``sparse_features``, ``superposition``,
        ``planted_mlp``, ``connectome``, ``rasp_transformer``: its defaults with ``overrides``): a features toy (its
        activations), a circuit toy (its model's parameters, component graph and task inputs) or
        a connectome (its recording). Or ``SUITE:TOY``, a problem of several toys of a suite
        (``comparison:ladder``, ``layers:compiled``, ``damage:noise``): the toys of that spec at
        ``seed``, their artifacts side by side as the task's format says, each toy's truth sealed
        in a folder of its own.
    out : path
        The folder handed to a method's author: ``artifact.npz`` holding only what a method may
        see, and ``artifact.json`` describing each task the artifact serves, its arrays and the
        predictions format (``Task.files``).
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
    tasks : sequence of str, optional
        Export only these tasks (each must serve the toy): a task whose artifact reveals another's
        truth (``Task.conflicts``, as dynamics reveals features) is otherwise left out.
    **overrides
        Config fields to change (``n_samples=2000``), checked by the config before anything is built
        (not for a suite's problem, whose configs are the suite's).

    Returns
    -------
    Path
        ``out``.
    """
    spec = _problem_spec(preset)
    if spec is not None and overrides:
        raise ValueError(f"{preset} is a suite's problem: its configs are the suite's, so it takes no overrides "
                         f"(got {sorted(overrides)})")
    # a bad name or override fails here, before anything is built
    configs = spec.configs(seed) if spec is not None else (_config(preset, seed, overrides),)
    folder = Path(out)
    private = secret is not None
    if private:
        key = _private.read_secret(secret) if isinstance(secret, Path) else _private.secret_bytes(secret)
        hidden = _private.private_seed(key, "make", preset, seed)
        configs = spec.configs(hidden) if spec is not None else (_config(preset, hidden, overrides),)
    truth_folder = Path(truth_out) if truth_out is not None else (
        folder.with_name(folder.name + ".truth") if private else folder / TRUTH)
    if private and truth_folder.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"truth_out {truth_folder} lies inside {folder}; with a secret the truth must not travel "
                         "with the artifact")
    built = tuple(toys.from_config(c) for c in configs)
    toy = built if spec is not None else built[0]
    served = exportable(toy)
    if tasks is not None:
        if isinstance(tasks, str):
            raise ValueError(f"tasks must be a list of task names, got the string {tasks!r}")
        tasks = tuple(tasks)
        unknown = [t for t in tasks if t not in served]
        if unknown or not tasks:
            raise ValueError(f"tasks {list(tasks)}: {preset} can be exported for {list(served)}")
        served = tasks
    # A task whose artifact reveals another's truth is left out of a folder serving that one.
    chosen = tuple(t for t in served if not set(TASKS[t].conflicts) & set(served))
    if not chosen:
        what = f"{len(built)} toys" if spec is not None else type(toy).__name__
        raise ValueError(f"preset {preset!r} makes {what}, which no exportable task serves"
                         + (f" apart from others: choose one of {list(served)}" if served else ""))
    arrays: dict[str, np.ndarray] = {}
    formats = {}
    for name in chosen:
        task_arrays, formats[name] = TASKS[name].files(toy)
        arrays.update(task_arrays)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / ARTIFACT, **arrays)
    manifest = _seal(built, truth_folder, several=spec is not None)
    artifact_sha = _file_sha256(folder / ARTIFACT)
    (truth_folder / SEALED_FOR).write_text(json.dumps({"artifact_sha256": artifact_sha}))
    info = {
        "tasks": list(chosen),
        "preset": preset,
        "split": "private" if private else "public",
        "artifact": {"file": ARTIFACT, "sha256": artifact_sha,
                     "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()}},
        "formats": formats,
        "predictions": "an .npz (numpy.savez, no object arrays) with the arrays a task's format names; "
                       "each task whose arrays it holds is scored",
    }
    if not private:
        ids = [t.id for t in built]
        info.update(seed=seed, toy_id=problem_id(ids), truth_manifest_sha256=_file_sha256(manifest))
        if spec is not None:
            info["toy_ids"] = ids
    (folder / ARTIFACT_INFO).write_text(json.dumps(info, indent=1, sort_keys=True))
    return folder


def _problem_spec(name: str):
    """The suite's ``ToySpec`` that ``SUITE:TOY`` names (None for a preset or family name); it
    must be a problem of several toys."""
    if ":" not in name:
        return None
    from planted.evaluators.suites import SUITES
    from planted.groundtruth import nearest

    suite, _, toy = name.partition(":")
    if suite not in SUITES:
        raise nearest(suite, sorted(SUITES), "suite")
    specs = {t.name: t for t in SUITES[suite].toys}
    if toy not in specs:
        raise nearest(toy, sorted(specs), f"toy of suite {suite}")
    if not specs[toy].members:
        raise ValueError(f"{name} is one toy, not a problem of several: make it by its family or preset "
                         f"({specs[toy].family})")
    return specs[toy]


def _seal(built: tuple, truth_folder: Path, *, several: bool) -> Path:
    """Save the truth: one toy in ``truth_folder``, or each toy of a problem in a numbered
    folder under it with ``problem.json`` listing them (and each one's manifest hash). Returns
    the file whose hash ``artifact.json`` records."""
    _clear_truth(truth_folder)
    if not several:
        toys.save(built[0], truth_folder)
        return truth_folder / "manifest.json"
    members = []
    for i, toy in enumerate(built):
        toys.save(toy, truth_folder / str(i))
        members.append({"folder": str(i), "toy_id": toy.id,
                        "manifest_sha256": _file_sha256(truth_folder / str(i) / "manifest.json")})
    truth_folder.mkdir(parents=True, exist_ok=True)
    (truth_folder / PROBLEM).write_text(json.dumps({"members": members}, indent=1))
    return truth_folder / PROBLEM


def _clear_truth(truth_folder: Path) -> None:
    """Remove a truth sealed earlier in ``truth_folder`` (either layout), so a folder made again
    holds only the new one: its manifest and arrays, its problem listing and numbered members."""
    import shutil

    if not truth_folder.is_dir():
        return
    for name in ("manifest.json", "arrays.npz", PROBLEM, SEALED_FOR):
        if (truth_folder / name).is_file():
            (truth_folder / name).unlink()
    for child in truth_folder.iterdir():
        if child.is_dir() and not child.is_symlink() and child.name.isascii() and child.name.isdigit() \
                and (child / "manifest.json").is_file():
            shutil.rmtree(child)


def _unseal(truth_folder: Path):
    """The toy, or the tuple of a problem's toys, sealed in ``truth_folder``."""
    problem = truth_folder / PROBLEM
    if not problem.exists():
        return toys.load(truth_folder)
    listing = read_json(problem, max_bytes=1 << 20)
    members = listing.get("members") if isinstance(listing, dict) else None
    if not isinstance(members, list) or len(members) < 2 or len(members) > 64 or not all(
            isinstance(m, dict) and m.get("folder") == str(i) for i, m in enumerate(members)):
        raise ValueError(f"{problem}: not a problem listing written by `planted make` (members: folders 0, 1, ...)")
    root = truth_folder.resolve()
    loaded = []
    for m in members:
        sub = truth_folder / m["folder"]
        if sub.is_symlink() or not sub.resolve().is_relative_to(root):
            raise ValueError(f"{sub}: a member of the truth must be a folder of {truth_folder} itself")
        if _file_sha256(sub / "manifest.json") != m.get("manifest_sha256"):
            raise ValueError(f"{sub}: its manifest does not match {problem}")
        toy = toys.load(sub)
        if toy.id != m.get("toy_id"):
            raise ValueError(f"{sub}: holds toy {toy.id[:12]}, {problem} names {str(m.get('toy_id'))[:12]}")
        loaded.append(toy)
    return tuple(loaded)


def _config(name: str, seed: int, overrides: dict[str, Any]):
    """The config of a preset, or of a family with its defaults, with ``overrides``."""
    if name in toys.FAMILY_KINDS and name not in toys.presets():
        config_type = toys.family(name).config
    elif name in toys.presets():
        config_type = type(toys.preset_config(name, seed=seed))
    else:
        raise _unknown(name)
    fields = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{name} has no field(s) {unknown}; its fields are {sorted(fields - {'seed'})}")
    if name in toys.presets():
        return toys.preset_config(name, seed=seed, **overrides)
    return config_type(**{**overrides, "seed": seed})


def _unknown(name: str) -> ValueError:
    from planted.groundtruth import nearest

    return nearest(name, sorted(toys.presets()) + list(toys.FAMILY_KINDS), "preset or family")


def _file_sha256(path: Path) -> str:
    """The sha256 of a file of any size, read in blocks."""
    h = hashlib.sha256()
    with open(regular_file(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_predictions(path: str | Path, *, n_samples: int, d_model: int) -> Dictionary:
    """A features prediction: an ``.npz`` (``directions``, optionally ``codes``,
    ``decoder_bias`` and an encoder: ``W_enc``, ``b_enc`` and ``threshold`` or ``k``) or a
    SAELens checkpoint folder (``load_saelens``), checked against activations (n_samples, d_model)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: predictions file not found")
    if path.is_dir() or path.suffix == ".pt":
        checkpoint = path.is_dir() and (path / SAELENS_CONFIG).exists()
        dictionary = load_saelens(path) if checkpoint else load_dictionary_learning(path)
        if dictionary.directions.shape[1] != d_model:
            raise ValueError(f"{path}: the SAE reads d_in={dictionary.directions.shape[1]}, the artifact has d_model={d_model}")
        return dictionary
    arrays = read_npz(path)
    unknown = sorted(set(arrays) - set(_exchange.FEATURE_ARRAYS))
    if unknown:
        raise ValueError(f"{path}: unexpected arrays {unknown}; allowed are {', '.join(_exchange.FEATURE_ARRAYS)}")
    try:
        dictionary = _exchange.dictionary_from_arrays(arrays, n_samples, d_model)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return dataclasses.replace(dictionary, method=path.stem)


DICTIONARY_LEARNING_WEIGHTS = "ae.pt"


def load_dictionary_learning(path: str | Path) -> Dictionary:
    """An SAE trained with dictionary_learning (Marks, Karvonen & Mueller): its ``ae.pt`` (a
    ``torch.save`` state dict; ``path`` is the file or its folder), read without torch and without
    running anything from the file (``groundtruth.read_torch_state_dict``).

    The architecture is read from the state dict's names: ``AutoEncoder`` (``bias``,
    ``encoder.*``, ``decoder.weight``: codes ``relu(W_enc (x - bias) + b_enc)``),
    ``AutoEncoderTopK`` (``b_dec``, ``k``: the k largest of those) and ``JumpReluAutoEncoder``
    (``W_enc``, ``b_enc``, ``W_dec``, ``b_dec``, ``threshold``; its codes are scaled by the decoder
    norms, so the directions are the unit decoder rows and the scale is folded into the encoder).
    Directions are the decoder's rows; ``decoder_bias`` the bias added back.
    """
    path = Path(path)
    file = path / DICTIONARY_LEARNING_WEIGHTS if path.is_dir() else path
    w = {k: np.asarray(v) for k, v in read_torch_state_dict(file).items()}
    where = f"{file}: dictionary_learning SAE"
    try:
        if {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"} <= set(w):
            norms = np.linalg.norm(w["W_dec"], axis=1)
            if (norms <= 0).any():
                raise ValueError("a decoder row is zero")
            encoder = Encoder(weights=w["W_enc"] * norms, bias=w["b_enc"] * norms, pre_bias=np.zeros(w["W_enc"].shape[0]),
                              activation="threshold", threshold=np.maximum(w["threshold"], 0) * norms)
            return Dictionary(directions=w["W_dec"] / norms[:, None], encoder=encoder, decoder_bias=w["b_dec"],
                              method="dictionary_learning-jumprelu")
        if {"encoder.weight", "encoder.bias", "decoder.weight"} <= set(w):
            bias = w.get("b_dec", w.get("bias"))
            if bias is None:
                raise ValueError("holds neither 'bias' nor 'b_dec'")
            if "k" in w:
                encoder = Encoder(weights=w["encoder.weight"].T, bias=w["encoder.bias"], pre_bias=bias, activation="topk",
                                  k=int(w["k"]))
                kind = "topk"
            else:
                encoder = Encoder(weights=w["encoder.weight"].T, bias=w["encoder.bias"], pre_bias=bias, activation="relu")
                kind = "relu"
            return Dictionary(directions=w["decoder.weight"].T, encoder=encoder, decoder_bias=bias,
                              method=f"dictionary_learning-{kind}")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    raise ValueError(f"{where}: tensors {sorted(w)} are not an AutoEncoder, AutoEncoderTopK or JumpReluAutoEncoder")


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


def score(folder: str | Path, predictions: str | Path, *, truth: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Score predictions against the truth of a folder written by ``make``: ``{task: metrics}``
    for every task of the folder whose prediction the file holds.

    ``predictions`` is an ``.npz`` in the formats ``artifact.json`` states (or, for features, a
    SAELens checkpoint folder). ``truth`` is the truth folder of a private split (``make``'s
    ``truth_out``); by default the folder's own ``truth.sealed``. The truth must be the one sealed
    for this very artifact.
    """
    return _scored(folder, predictions, truth)[0]


def score_report(folder: str | Path, predictions: str | Path, *, truth: str | Path | None = None) -> dict[str, Any]:
    """What ``planted score`` prints: the toy (preset, split, id on the public split), chance
    levels (for features: ``mmcs`` of random directions of as many latents) and ``{task: metrics}``."""
    metrics, toy, info, read = _scored(folder, predictions, truth)
    about = {"preset": info.get("preset"), "split": info.get("split", "public")}
    if about["split"] != "private":
        about["toy_id"] = _toy_id(toy)
        if isinstance(toy, tuple):
            about["toy_ids"] = [t.id for t in toy]
    chance = {}
    if "features" in read:
        n_latents, d = read["features"].directions.shape
        chance["features"] = {"mmcs": chance_mmcs(n_latents, d), "n_latents": n_latents, "d_model": d}
    for name in read:
        if name != "features" and any(m.endswith("auroc") for m in metrics[name]):
            chance[name] = {"auroc": 0.5}
    return {"toy": about, "chance": chance, "scores": metrics}


def score_to_store(folder: str | Path, predictions: str | Path, store: str | Path, *, method: str | None = None,
                   truth: str | Path | None = None) -> list[CellResult]:
    """Score predictions and add them to a results store, one row per task scored, so that
    ``planted report`` shows them on a leaderboard beside anything else scored on the same toy.

    A row's suite is ``make:<preset>``, its version the toy's id (12 digits; the private split's
    is ``private`` and 10 digits of a hash of the truth), its method ``method`` (default: the
    predictions file's name); scoring the same method again replaces its rows.
    """
    metrics, toy, info, _ = _scored(folder, predictions, truth)
    private = info.get("split") == "private"
    toy_id = _toy_id(toy)
    version = ("private-" + hashlib.sha256(toy_id.encode()).hexdigest()[:10]) if private else toy_id[:12]
    several = isinstance(toy, tuple)
    config = json.dumps([json.loads(t.config.to_json()) for t in toy]) if several else toy.config.to_json()
    fingerprint = _file_sha256_any(Path(predictions))[:16]
    rows = [CellResult(
        suite=f"make:{info.get('preset')}", suite_version=version, task=name, toy=str(info.get("preset")),
        toy_id=toy_id, axes={}, method=method or Path(predictions).name.removesuffix(".npz"), params="{}",
        seed=int(info.get("seed", 0)), status="ok", metrics=task_metrics, seconds=0.0, package_version=__version__,
        config=config, method_fingerprint=fingerprint, toy_ids=tuple(t.id for t in toy) if several else (),
    ) for name, task_metrics in metrics.items()]
    with Store(store) as db:
        for row in rows:
            db.write(row)
    return rows


def _file_sha256_any(path: Path) -> str:
    """The sha256 of a predictions file, or of every file of a checkpoint folder, in name order."""
    if not path.is_dir():
        return _file_sha256(path)
    h = hashlib.sha256()
    for child in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(child.name.encode() + _file_sha256(child).encode())
    return h.hexdigest()


def _scored(folder: str | Path, predictions: str | Path, truth: str | Path | None):
    """({task: metrics}, toy, artifact.json, {task: prediction}) of predictions on a made folder."""
    folder = Path(folder)
    info_path = folder / ARTIFACT_INFO
    if not info_path.exists():
        raise ValueError(f"{info_path}: missing; is {folder} a folder written by `planted make`?")
    info = read_json(info_path, max_bytes=1 << 20)
    if not isinstance(info, dict):
        raise ValueError(f"{info_path}: not a JSON object; is {folder} a folder written by `planted make`?")
    tasks = info.get("tasks", [info.get("task")])  # folders made before several tasks said "task"
    known = exportable()
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t in known for t in tasks):
        raise ValueError(f"{info_path}: 'tasks' is {tasks!r}; `planted make` writes tasks among {list(known)}")
    truth_folder = folder / TRUTH if truth is None else Path(truth)
    if truth is None:
        truth_manifest = truth_folder / (PROBLEM if (truth_folder / PROBLEM).exists() else "manifest.json")
        if not truth_manifest.is_file() or _file_sha256(truth_manifest) != info.get("truth_manifest_sha256"):
            raise ValueError(f"{truth_folder}: the sealed truth is missing or does not match artifact.json")
    sealed = read_json(truth_folder / SEALED_FOR, max_bytes=1 << 16) if (truth_folder / SEALED_FOR).exists() else None
    if sealed is not None or truth is not None:
        if not isinstance(sealed, dict) or sealed.get("artifact_sha256") != _file_sha256(folder / ARTIFACT):
            raise ValueError(f"{truth_folder}: this truth was not sealed for {folder / ARTIFACT}")
    toy = _unseal(truth_folder)
    if truth is None and _toy_id(toy) != info.get("toy_id"):
        raise ValueError(f"{truth_folder}: holds toy {_toy_id(toy)[:12]}, artifact.json names "
                         f"{str(info.get('toy_id'))[:12]}")
    read = _read_predictions(Path(predictions), tasks, toy)
    return {name: TASKS[name].score(prediction, toy) for name, prediction in read.items()}, toy, info, read


def _toy_id(toy) -> str:
    """A toy's id, or a problem's (``store.problem_id`` of its toys' ids)."""
    return problem_id([t.id for t in toy]) if isinstance(toy, tuple) else toy.id


def _read_predictions(path: Path, tasks: list[str], toy) -> dict[str, Any]:
    """{task: prediction} for every task whose prediction the file holds."""
    if not path.exists():
        raise ValueError(f"{path}: predictions file not found")
    if path.is_dir() or path.suffix == ".pt":
        if "features" not in tasks:
            raise ValueError(f"{path}: a checkpoint folder predicts features; this toy's tasks are {tasks}")
        return {"features": load_predictions(path, n_samples=toy.activations.shape[0], d_model=toy.activations.shape[1])}
    arrays = read_npz(path)
    read = {}
    for name in tasks:
        try:
            prediction = TASKS[name].read(arrays, toy)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc} (the {name} task)") from None
        if prediction is not None:
            read[name] = prediction
    if not read:
        raise ValueError(f"{path}: holds {sorted(arrays)}, no prediction for the tasks {tasks}; artifact.json's "
                         "'formats' name the arrays of each")
    if "features" in read:  # the features format names every array it allows
        unknown = sorted(set(arrays) - set(_exchange.FEATURE_ARRAYS))
        if unknown:
            raise ValueError(f"{path}: unexpected arrays {unknown}; allowed are {', '.join(_exchange.FEATURE_ARRAYS)}")
        read["features"] = dataclasses.replace(read["features"], method=path.stem)
    return read


__all__ = [
    "ARTIFACT",
    "ARTIFACT_INFO",
    "TRUTH",
    "exportable",
    "load_dictionary_learning",
    "load_predictions",
    "load_saelens",
    "make",
    "score",
    "score_report",
    "score_to_store",
]
