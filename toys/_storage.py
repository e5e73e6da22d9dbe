"""Save and load toys: a folder of ``manifest.json`` plus ``arrays.npz``, verified on load, no pickle.

The container is the same for every family; what goes in it is the family's storage halves
(``Family.to_arrays`` / ``Family.from_arrays``). Loading a toy imports only its own family.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from planted import __version__
from planted.groundtruth import SCHEMA_VERSION, Toy
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
        if not p.is_file():
            raise ValueError(f"{p}: file is missing; is {folder} a folder written by planted.toys.save?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest_path}: not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: not a planted toy manifest (format field is not {FORMAT!r})")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ValueError(f"{manifest_path}: manifest checksum mismatch; the manifest was edited or corrupted")
    version = manifest.get("schema_version")
    if version not in (1, STORAGE_VERSION):
        raise ValueError(
            f"{manifest_path}: schema version {version!r} is not supported "
            f"(this version of planted reads 1 and {STORAGE_VERSION})"
        )
    kind = _V1_FAMILIES.get(manifest.get("toy_kind")) if version == 1 else manifest.get("family")
    if kind not in FAMILY_MODULES:
        found = manifest.get("toy_kind" if version == 1 else "family")
        raise ValueError(f"{manifest_path}: unknown toy family {found!r}; known: {sorted(FAMILY_MODULES)}")
    arrays = _read_arrays(arrays_path, manifest_path, manifest.get("arrays"))
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
        return declared.from_arrays(config, arrays, extra)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{manifest_path}: the manifest does not describe a valid toy ({type(exc).__name__}: {exc})") from None


def _read_arrays(arrays_path: Path, manifest_path: Path, expected: Any) -> dict[str, np.ndarray]:
    """Every array the manifest lists, each checked against its shape, dtype and sha256."""
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
    return arrays


def _from_v1(arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A version-1 folder's arrays and extras in today's names (one failure mode was renamed)."""
    if "catalog" not in extra:
        return arrays, extra
    rename = {f"truth.catalog.{old}": f"truth.catalog.{new}" for old, new in _V1_CATALOG.items()}
    arrays = {rename.get(name, name): array for name, array in arrays.items()}
    extra = {**extra, "catalog": sorted(_V1_CATALOG.get(mode, mode) for mode in extra["catalog"])}
    return arrays, extra
