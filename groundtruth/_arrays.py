"""Boundary checks for arrays handed to records, methods and evaluators."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def as_matrix(
    name: str,
    value,
    *,
    rows: int | None = None,
    cols: int | None = None,
    dtype=np.float32,
    allow_empty: bool = False,
) -> np.ndarray:
    """``value`` as a finite 2-D array of ``dtype``, or a ``ValueError`` that names ``name``."""
    if sp.issparse(value):
        raise ValueError(f"{name} must be a dense array, got a scipy.sparse matrix; pass .toarray()")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a 2-D numeric array, got {type(value).__name__}: {exc}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if not allow_empty and array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {array.shape}")
    if cols is not None and array.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns, got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=dtype)
    check_finite(name, array)
    return array


def as_vector(name: str, value, *, length: int | None = None, dtype=np.float32) -> np.ndarray:
    """``value`` as a finite 1-D array of ``dtype``, or a ``ValueError`` that names ``name``."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=dtype)
    check_finite(name, array)
    return array


def frozen(array) -> np.ndarray:
    """A read-only copy: a record's array cannot change after it was checked."""
    array = np.array(array)
    array.flags.writeable = False
    return array


def check_finite(name: str, array: np.ndarray) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            n_nan = int(np.isnan(array).sum())
            n_inf = int(bad.sum()) - n_nan
            where = np.argwhere(bad)[0].tolist()
            raise ValueError(
                f"{name} contains {n_nan} NaN and {n_inf} inf values (first at index {where}); "
                "every entry must be finite"
            )


def as_csr(name: str, value, *, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    """``value`` as a float32 CSR matrix with finite entries."""
    if not sp.issparse(value):
        value = as_matrix(name, value, allow_empty=True)
    matrix = sp.csr_matrix(value, dtype=np.float32)
    if shape is not None and matrix.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {matrix.shape}")
    check_finite(name, matrix.data)
    return matrix
