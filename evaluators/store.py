"""The results store: one SQLite file (WAL), one row per benchmark cell.

A row is written in a single transaction when its cell finishes, so killing a run at any moment
loses at most the cells in flight and never leaves a half-written row; SQLite's locking (with a
busy timeout) lets two runs write one store at once. Rows are keyed by what makes a cell the same
cell: suite, suite version, task, toy id, method, hyperparameters, the toy's seed and the method's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_STORE = Path("results") / "planted.sqlite"
FORMATS = ("text", "markdown", "csv", "latex", "json")  # of tables: leaderboards, catalogs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    task TEXT NOT NULL,
    toy TEXT NOT NULL,
    toy_id TEXT NOT NULL,
    axes TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    metrics TEXT NOT NULL,
    seconds REAL NOT NULL,
    finished_at REAL NOT NULL,
    package_version TEXT NOT NULL,
    error TEXT NOT NULL,
    config TEXT NOT NULL,
    method_fingerprint TEXT NOT NULL DEFAULT '',
    traceback TEXT NOT NULL DEFAULT '',
    method_seed INTEGER NOT NULL,
    toy_ids TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (suite, suite_version, task, toy_id, method, params, seed, method_seed)
);
CREATE TABLE IF NOT EXISTS predictions (
    suite TEXT NOT NULL,
    suite_version TEXT NOT NULL,
    task TEXT NOT NULL,
    toy_id TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    directions BLOB NOT NULL,
    method_seed INTEGER NOT NULL,
    PRIMARY KEY (suite, suite_version, task, toy_id, method, params, seed, method_seed)
);
CREATE TABLE IF NOT EXISTS toy_arrays (
    toy_id TEXT NOT NULL,
    task TEXT NOT NULL,
    name TEXT NOT NULL,
    array BLOB NOT NULL,
    PRIMARY KEY (toy_id, task, name)
);
"""

def _table_schema(table: str) -> str:
    """The CREATE statement of one table of ``_SCHEMA``."""
    for statement in _SCHEMA.split(";"):
        if f"CREATE TABLE IF NOT EXISTS {table} (" in statement:
            return statement.strip()
    raise KeyError(table)


# Predictions (and each figure array of a toy) up to this many entries are kept, for the report's figures.
KEEP_PREDICTION_LIMIT = 1 << 21


def problem_id(toy_ids: tuple[str, ...] | list[str]) -> str:
    """The id of a cell's problem: its toy's id, or for a problem of several toys the sha256 of
    their ids in order (``"+"``-joined), so a one-toy cell keeps the id it always had."""
    toy_ids = tuple(toy_ids)
    if not toy_ids:
        raise ValueError("a problem needs at least one toy")
    return toy_ids[0] if len(toy_ids) == 1 else hashlib.sha256("+".join(toy_ids).encode()).hexdigest()


def suite_key(suite: str, version: str, extra: str) -> str:
    """The ``toy_id`` under which ``Store.toy_arrays`` keeps a suite-level extra (a suite's
    ``figures`` entry, e.g. ``"phase_diagram"``) of one suite version."""
    return f"suite:{suite}:{version}:{extra}"


def _to_blob(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, array=np.asarray(array))
    return buf.getvalue()


def _from_blob(blob: bytes) -> np.ndarray:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return npz["array"]


def _toy_ids(text: str, toy_id: str) -> tuple[str, ...]:
    """A row's problem toys: () for a one-toy cell, else the ids it lists."""
    ids = tuple(json.loads(text)) if text else (toy_id,)
    return () if ids == (toy_id,) else ids


class TamperingDetected(RuntimeError):
    """Rows of the results store changed during a run, written by something other than its driver."""


@dataclasses.dataclass(frozen=True)
class CellKey:
    """What identifies a cell: the same key in a store means the cell has already run."""

    suite: str
    suite_version: str
    task: str
    toy_id: str
    method: str
    params: str  # canonical JSON of the method's hyperparameters
    seed: int  # the toy's
    method_seed: int  # the method's (equal to ``seed`` unless a run gives method seeds of their own)


@dataclasses.dataclass(frozen=True)
class CellResult:
    """One finished cell: a method run on a toy with a seed, and its scores.

    ``metrics`` maps each metric name to a float (or None where it does not apply); ``axes``
    holds the toy's difficulty coordinates (e.g. superposition ratio) for the report's plots.
    ``toy_id`` is the cell's problem (``problem_id``): the toy's id, or for a problem of several
    toys (a comparison, a damaged twin) the hash of ``toy_ids``, and ``config`` then holds a JSON
    list of their configs. ``toy_arrays`` carries, from the cell that computed them, the toy's figure arrays (its task's
    ``figure_data``) to the store; results read back from a store leave it None.
    """

    suite: str
    suite_version: str
    task: str
    toy: str
    toy_id: str
    axes: dict[str, float]
    method: str
    params: str
    seed: int
    status: str  # "ok" or "failed"
    metrics: dict[str, Any]
    seconds: float
    package_version: str = ""
    error: str = ""
    config: str = ""  # the toy's config as canonical JSON (rebuilds the toy for diagnostics)
    method_fingerprint: str = ""  # what computed it (``MethodSpec.fingerprint``); "" in stores before it
    traceback: str = ""  # a failed cell's full traceback (``error`` is its last line)
    method_seed: int | None = None  # the seed the method was called with; None: ``seed``
    toy_ids: tuple[str, ...] = ()  # the ids of a problem's toys, in order; () : the one toy ``toy_id``
    directions: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    toy_arrays: dict[str, np.ndarray] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def key(self) -> CellKey:
        return CellKey(self.suite, self.suite_version, self.task, self.toy_id, self.method, self.params, self.seed,
                       self.seed if self.method_seed is None else self.method_seed)

    @property
    def members(self) -> tuple[str, ...]:
        """The ids of the cell's toys: ``toy_ids``, or ``(toy_id,)`` for a one-toy cell."""
        return self.toy_ids or (self.toy_id,)


class Store:
    """A SQLite results store at ``path`` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=60000")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not a planted results store ({exc})") from None

    def _migrate(self) -> None:
        """Bring a store an earlier version wrote to this schema: the columns added since, and the
        method seed in the key of cells and predictions (the toy's seed, which earlier runs gave
        the method too), and the toys of each cell's problem (an earlier cell's one toy). One transaction: a second process waits, then finds it done."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            have = {row[1] for row in self._db.execute("PRAGMA table_info(cells)")}
            for column in ("method_fingerprint", "traceback"):
                if column not in have:
                    self._db.execute(f"ALTER TABLE cells ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
            if "toy_ids" not in have and have:
                # Every earlier cell held one toy: its problem is that toy (ids are hex digests).
                self._db.execute("ALTER TABLE cells ADD COLUMN toy_ids TEXT NOT NULL DEFAULT ''")
                self._db.execute("""UPDATE cells SET toy_ids = '["' || toy_id || '"]' WHERE toy_ids = ''""")
            for table in ("cells", "predictions"):
                columns = [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]
                if "method_seed" in columns:
                    continue
                self._db.execute(f"ALTER TABLE {table} RENAME TO {table}_before_method_seed")
                self._db.execute(_table_schema(table))
                names = ", ".join(columns)
                self._db.execute(f"INSERT INTO {table} ({names}, method_seed) SELECT {names}, seed "
                                 f"FROM {table}_before_method_seed")
                self._db.execute(f"DROP TABLE {table}_before_method_seed")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stored(self, keys: Iterable[CellKey]) -> dict[CellKey, tuple[str, str]]:
        """{key: (status, method_fingerprint)} of the ``keys`` the store holds a row of."""
        keys = set(keys)
        found: dict[CellKey, tuple[str, str]] = {}
        for suite, version in {(k.suite, k.suite_version) for k in keys}:
            rows = self._db.execute(
                "SELECT suite, suite_version, task, toy_id, method, params, seed, method_seed, status, method_fingerprint "
                "FROM cells WHERE suite = ? AND suite_version = ?",
                (suite, version),
            )
            for *fields, status, fingerprint in rows:
                key = CellKey(*fields)
                if key in keys:
                    found[key] = (status, fingerprint)
        return found

    def finished(self, keys: Iterable[CellKey], *, include_failed: bool = True,
                 fingerprints: dict[CellKey, str] | None = None) -> set[CellKey]:
        """The subset of ``keys`` already in the store (failed cells count unless excluded). With
        ``fingerprints``, a row counts only when it was computed by the method's current code
        (its ``method_fingerprint`` equals the one given for its key); other rows are stale."""
        return {key for key, (status, fingerprint) in self.stored(keys).items()
                if (include_failed or status == "ok") and (fingerprints is None or fingerprints.get(key) == fingerprint)}

    def write(self, result: CellResult) -> None:
        """Insert or replace one cell's row (with its prediction's directions and its toy's figure
        arrays, when small), atomically."""
        row = (
            result.suite, result.suite_version, result.task, result.toy, result.toy_id,
            json.dumps(result.axes, sort_keys=True), result.method, result.params, result.seed, result.status,
            json.dumps(result.metrics, sort_keys=True, allow_nan=False), result.seconds, time.time(),
            result.package_version, result.error, result.config, result.method_fingerprint, result.traceback,
            result.key.method_seed, json.dumps(list(result.members)),
        )
        key = tuple(dataclasses.astuple(result.key))
        blob = None
        if result.directions is not None and result.directions.size <= KEEP_PREDICTION_LIMIT:
            buf = io.BytesIO()
            np.savez_compressed(buf, directions=np.asarray(result.directions, np.float32))
            blob = buf.getvalue()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO cells (suite, suite_version, task, toy, toy_id, axes, method, params, seed, "
                "status, metrics, seconds, finished_at, package_version, error, config, method_fingerprint, traceback, "
                "method_seed, toy_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if blob is not None:
                self._db.execute("INSERT OR REPLACE INTO predictions (suite, suite_version, task, toy_id, method, params, "
                                 "seed, method_seed, directions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*key, blob))
            self._insert_arrays(result.toy_id, result.task, result.toy_arrays or {})
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _insert_arrays(self, toy_id: str, task: str, arrays: dict[str, np.ndarray]) -> None:
        for name, array in sorted(arrays.items()):
            array = np.asarray(array)
            if array.dtype.hasobject:
                raise ValueError(f"figure array {name!r} of toy {toy_id} has dtype object; store numbers, bools or "
                                 "strings (arrays are read back without pickle)")
            if array.size <= KEEP_PREDICTION_LIMIT:
                self._db.execute("INSERT OR REPLACE INTO toy_arrays VALUES (?, ?, ?, ?)",
                                 (toy_id, task, str(name), _to_blob(array)))

    def write_toy_arrays(self, toy_id: str, task: str, arrays: dict[str, np.ndarray]) -> None:
        """Keep ``arrays`` (name -> array; arrays over ``KEEP_PREDICTION_LIMIT`` entries are left
        out) for the figures of ``task`` on toy ``toy_id`` (or a ``suite_key``), atomically."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._insert_arrays(toy_id, task, arrays)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def has_toy_arrays(self, toy_id: str, *, task: str) -> bool:
        """Whether the store keeps any figure array of ``task`` for ``toy_id``."""
        row = self._db.execute("SELECT 1 FROM toy_arrays WHERE toy_id = ? AND task = ? LIMIT 1", (toy_id, task))
        return row.fetchone() is not None

    def toy_arrays(self, toy_id: str, *, task: str) -> dict[str, np.ndarray]:
        """The figure arrays kept for ``task`` on toy ``toy_id`` (or a ``suite_key``), by name; {}
        when none. Read without pickle."""
        rows = self._db.execute("SELECT name, array FROM toy_arrays WHERE toy_id = ? AND task = ? ORDER BY name",
                                (toy_id, task))
        return {name: _from_blob(blob) for name, blob in rows}

    def directions(self, key: CellKey) -> np.ndarray | None:
        """The stored prediction directions of a cell (None when not kept). Read without pickle."""
        row = self._db.execute(
            "SELECT directions FROM predictions WHERE suite = ? AND suite_version = ? AND task = ? AND toy_id = ? "
            "AND method = ? AND params = ? AND seed = ? AND method_seed = ?",
            dataclasses.astuple(key),
        ).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(row[0]), allow_pickle=False) as npz:
            return npz["directions"]

    def results(self, *, suite: str | None = None, suite_version: str | None = None) -> list[CellResult]:
        """Every stored cell, optionally of one suite (and version), in a stable order."""
        query = "SELECT suite, suite_version, task, toy, toy_id, axes, method, params, seed, status, metrics, " \
                "seconds, package_version, error, config, method_fingerprint, traceback, method_seed, toy_ids FROM cells"
        where, args = [], []
        if suite is not None:
            where.append("suite = ?")
            args.append(suite)
        if suite_version is not None:
            where.append("suite_version = ?")
            args.append(suite_version)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY suite, suite_version, task, toy, method, params, seed, method_seed"
        return list(self._rows(self._db.execute(query, args)))

    def to_pandas(self, *, suite: str | None = None, suite_version: str | None = None):
        """The stored cells as a ``pandas.DataFrame``, one row per cell: suite, suite_version,
        task, toy, toy_id, method, params, seed (the toy's), method_seed, status, seconds, package_version,
        method_fingerprint, error; then each difficulty axis as ``axis.<name>`` and each metric as
        a column of its own (NaN where a cell lacks it)."""
        try:
            import pandas as pd
        except ImportError:
            raise ValueError("Store.to_pandas needs pandas: pip install pandas") from None
        rows = []
        for r in self.results(suite=suite, suite_version=suite_version):
            row = {name: getattr(r, name) for name in ("suite", "suite_version", "task", "toy", "toy_id", "method",
                                                       "params", "seed", "status", "seconds", "package_version",
                                                       "method_fingerprint", "error")}
            row["method_seed"] = r.key.method_seed
            row.update({f"axis.{k}": v for k, v in sorted(r.axes.items())})
            row.update({k: (float("nan") if v is None else v) for k, v in sorted(r.metrics.items())})
            rows.append(row)
        return pd.DataFrame(rows)

    @staticmethod
    def _rows(cursor) -> Iterator[CellResult]:
        for (suite, version, task, toy, toy_id, axes, method, params, seed, status, metrics, seconds, pkg, error, config,
             fingerprint, trace, method_seed, toy_ids) in cursor:
            yield CellResult(
                suite=suite, suite_version=version, task=task, toy=toy, toy_id=toy_id, axes=json.loads(axes),
                method=method, params=params, seed=seed, status=status, metrics=json.loads(metrics),
                seconds=seconds, package_version=pkg, error=error, config=config, method_fingerprint=fingerprint,
                traceback=trace, method_seed=method_seed, toy_ids=_toy_ids(toy_ids, toy_id),
            )

__all__ = [
    "TamperingDetected",
    "CellKey",
    "CellResult",
    "DEFAULT_STORE",
    "FORMATS",
    "KEEP_PREDICTION_LIMIT",
    "Store",
    "problem_id",
    "suite_key",
]
