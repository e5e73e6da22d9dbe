"""Save and load toys: a folder of ``manifest.json`` plus ``arrays.npz``, verified on load, no pickle.

The container is the same for every family; what goes in it is the family's storage halves
(``Family.to_arrays`` / ``Family.from_arrays``). Loading a toy imports only its own family.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from planted import __version__
from planted.groundtruth import SCHEMA_VERSION, Toy, read_json, read_npz, regular_file
from planted.toys._family import FAMILY_MODULES, family

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
FORMAT = "planted-toy"
STORAGE_VERSION = 2
# Version 1 named families by their toy class ("features", "circuits") and spelled one failure
# mode "naturalisation"; the reader below translates those folders.
_V1_FAMILIES = {"features": "sparse_features", "superposition": "superposition", "circuits": "planted_mlp",
                "connectome": "connectome"}
_V1_CATALOG = {"naturalisation": "naturalise"}
# What reading an archive may allocate: its own size times _INFLATION, and at least _MIN_BUDGET
# (``save`` writes uncompressed archives, so a toy's arrays take its file's size; a recompressed
# archive of float data rarely shrinks 10-fold). A decompression bomb is refused from its headers.
_INFLATION = 64
_MIN_BUDGET = 64 << 20


def _digest(array: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}|{array.shape}|".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def csr(arrays: dict[str, np.ndarray], name: str, shape) -> sp.csr_matrix:
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


def save(toy: Toy, path: str | os.PathLike) -> Path:
    """Write ``toy`` to the folder ``path`` (created; existing files in it are replaced).

    The folder holds ``manifest.json`` (format, storage version, package version, the family, the
    config, the sha256 of every array and of the manifest itself) and ``arrays.npz``. Each file is
    written under a temporary name and renamed, so neither is ever half-written; a crash between
    the two renames leaves a pair that ``load`` rejects. The checksums catch corruption and edits
    made without recomputing them; they are not a signature against a deliberate forger.
    """
    config = getattr(toy, "config", None)
    kind = getattr(config, "kind", None)
    declared = family(kind) if isinstance(toy, Toy) and kind in FAMILY_MODULES else None
    if declared is None or not isinstance(toy, declared.toy):
        raise ValueError(f"toy must be a toy of one of the families {sorted(FAMILY_MODULES)}, got {type(toy).__name__}")
    arrays, extra = declared.to_arrays(toy)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "schema_version": STORAGE_VERSION,
        "package_version": __version__,
        "family": kind,
        "toy_id": toy.id,
        "config": json.loads(config.to_json()),
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
    manifest is not valid JSON or was edited, the storage version is unknown, the npz is truncated
    or corrupt, an array is missing, extra, of the wrong shape or dtype, or its bytes do not match
    the recorded sha256, or the sparse codes are not a well-formed CSR matrix. Arrays are read
    with ``allow_pickle=False``: loading never runs code. Folders of storage version 1 load too.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    arrays_path = folder / ARRAYS
    for p in (manifest_path, arrays_path):
        if not os.path.lexists(p):
            raise ValueError(f"{p}: file is missing; is {folder} a folder written by planted.toys.save?")
        regular_file(p, folder)
    try:
        manifest = read_json(manifest_path, folder=folder)
    except ValueError as exc:
        raise ValueError(f"{exc}; the manifest is corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: not a planted toy manifest (format field is not {FORMAT!r})")
    try:
        digest = _manifest_digest(manifest)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{manifest_path}: the manifest cannot be hashed ({type(exc).__name__}); the file is corrupt") from None
    if manifest.get("manifest_sha256") != digest:
        raise ValueError(f"{manifest_path}: manifest checksum mismatch; the manifest was edited or corrupted")
    version = manifest.get("schema_version")
    if version not in (1, STORAGE_VERSION):
        raise ValueError(
            f"{manifest_path}: schema version {version!r} is not supported "
            f"(this version of planted reads 1 and {STORAGE_VERSION})"
        )
    found = manifest.get("toy_kind" if version == 1 else "family")
    kind = (_V1_FAMILIES.get(found) if version == 1 else found) if isinstance(found, str) else None
    if kind not in FAMILY_MODULES:
        raise ValueError(f"{manifest_path}: unknown toy family {found!r}; known: {sorted(FAMILY_MODULES)}")
    arrays = _read_arrays(arrays_path, manifest_path, manifest.get("arrays"), folder)
    try:
        declared = family(kind)
        payload = manifest["config"]
        if not isinstance(payload, dict) or payload.get("kind") != kind or payload.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"the config is not a {kind!r} config of schema {SCHEMA_VERSION}")
        config = declared.config.from_dict(payload.get("fields"))
        if config.id != manifest.get("toy_id"):
            raise ValueError("config does not hash to the recorded toy id")
        extra = manifest["extra"]
        if version == 1:
            arrays, extra = _from_v1(arrays, extra)
        if not isinstance(extra, dict):
            raise ValueError("'extra' is not an object")
        toy = declared.from_arrays(config, arrays, extra)
        problems = _round_trip(declared, toy, arrays, extra) + declared.check(toy)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError, ZeroDivisionError,
            RecursionError, MemoryError) as exc:
        # A record's own checks (shapes, index ranges, CSR structure) raise ValueError; the rest
        # are faults of arrays re-hashed to pass the checksums, caught here so that no half-built
        # toy escapes and the message still names the file.
        raise ValueError(f"{manifest_path}: the manifest and arrays do not describe a valid toy "
                         f"({type(exc).__name__}: {str(exc)[:300]})") from None
    if problems:
        raise ValueError(f"{folder}: the arrays do not describe a toy of its config "
                         f"({len(problems)} problem(s): {'; '.join(problems[:3])})")
    return toy


def _round_trip(declared, toy: Toy, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> list[str]:
    """Problems of a loaded toy that writing it again reveals: an array its records coerced
    (another dtype or shape, a value changed), a non-finite float, an extra it does not keep."""
    again, again_extra = declared.to_arrays(toy)
    problems = []
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            problems.append(f"array {name!r} holds NaN or infinite values")
        other = again.get(name)
        if other is None:
            problems.append(f"array {name!r} is not part of the toy")
        elif other.dtype != array.dtype or other.shape != array.shape or not np.array_equal(other, array):
            problems.append(f"array {name!r} ({array.dtype} {list(array.shape)}) is not what the toy holds "
                            f"({other.dtype} {list(other.shape)})")
    problems += [f"array {name!r} is missing" for name in sorted(set(again) - set(arrays))]
    for key, value in extra.items():
        if key not in again_extra or json.dumps(again_extra[key], sort_keys=True) != json.dumps(value, sort_keys=True):
            problems.append(f"extra {key!r} is not what the toy holds")
    return problems


def _read_arrays(arrays_path: Path, manifest_path: Path, expected: Any, folder: Path) -> dict[str, np.ndarray]:
    """Every array the manifest lists, each checked against its shape and dtype before it is read
    (so a member cannot inflate past what the manifest declares), then against its sha256."""
    if not isinstance(expected, dict) or not all(
        isinstance(v, dict) and {"sha256", "shape", "dtype"} <= set(v)
        and isinstance(v["shape"], list) and all(type(s) is int and s >= 0 for s in v["shape"])
        and isinstance(v["dtype"], str) and isinstance(v["sha256"], str)
        for v in expected.values()
    ):
        raise ValueError(f"{manifest_path}: the 'arrays' entry is malformed")
    shapes = {name: (tuple(v["shape"]), v["dtype"]) for name, v in expected.items()}
    budget = max(_MIN_BUDGET, _INFLATION * os.path.getsize(arrays_path))
    try:
        arrays = read_npz(arrays_path, expected=shapes, folder=folder, max_bytes=budget)
    except ValueError as exc:
        raise ValueError(f"{exc}; the file is corrupt, truncated or not the one the manifest describes") from None
    for name, spec in expected.items():
        if _digest(arrays[name]) != spec["sha256"]:
            raise ValueError(f"{arrays_path}: array {name!r} does not match its sha256; the file was altered")
    return arrays


def _from_v1(arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A version-1 folder's arrays and extras in today's names (one failure mode was renamed)."""
    if "catalog" not in extra:
        return arrays, extra
    rename = {f"truth.catalog.{old}": f"truth.catalog.{new}" for old, new in _V1_CATALOG.items()}
    arrays = {rename.get(name, name): array for name, array in arrays.items()}
    extra = {**extra, "catalog": sorted(_V1_CATALOG.get(mode, mode) for mode in extra["catalog"])}
    return arrays, extra
