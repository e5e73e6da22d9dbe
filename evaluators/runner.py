"""Run a suite's cells, skipping those already in the results store.

In-process by default; ``workers=N`` runs cells in N local processes (spawned, so JAX starts
clean in each; they exit when the driver dies). Either way the driver alone writes the store, one
row per finished cell, so a run killed at any moment resumes where it stopped and loses at most
the cells in flight. A user's method runs in a process of its own that receives only the artifact
(``evaluators._isolation``); after the run the driver checks that the rows it returns are the rows
it wrote or read. With a ``secret``, toy seeds come from it (the private split, ``_private``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

from planted import __version__, toys
from planted.evaluators._methods import METHODS, MethodSpec
from planted.groundtruth import Progress
from planted.evaluators import _figures, _isolation, _private
from planted.evaluators.store import DEFAULT_STORE, CellKey, CellResult, Store, TamperingDetected, problem_id, suite_key
from planted.evaluators.suites import SUITES, Suite
from planted.evaluators.tasks import TASKS, Task
from planted.groundtruth import Config, Problems, nearest

BACKENDS = ("local", "ray")


log = logging.getLogger("planted")


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; the message says how many cells were saved and how to resume."""


_STOP = [False]  # a plain flag: a signal handler may set it at any bytecode, even inside a clear


def _request_stop() -> None:
    """Ask the run in progress to stop after the cell it is on. A signal handler calls this before it
    raises KeyboardInterrupt: where the exception lands in code that swallows it (a garbage-collector
    callback, a ``__del__``), the run still stops at the next cell instead of running to the end."""
    _STOP[0] = True


@dataclasses.dataclass(frozen=True)
class _Cell:
    suite: str
    suite_version: str
    task: Task  # the task itself travels with the cell, so a user's registered task reaches workers
    toy: str
    configs: tuple[Config, ...]  # the problem's toys: one for most tasks, several for comparisons
    axes: dict[str, float]
    method: MethodSpec
    seed: int
    figure_data: bool = False  # also return the toy's figure arrays (the store lacks them)
    isolated: bool = False  # run the method in a process of its own that sees only the artifact
    guarded: tuple[str, ...] = ()  # paths that process may not touch (the store, a secret file)
    fingerprint: str = ""  # the method's code (``MethodSpec.fingerprint``): a row of other code is stale
    method_seed: int | None = None  # the seed the method gets; None: the toy's

    @property
    def call_seed(self) -> int:
        return self.seed if self.method_seed is None else self.method_seed

    @property
    def toy_id(self) -> str:
        return problem_id([c.id for c in self.configs])

    @property
    def config_json(self) -> str:
        """The toy's canonical config JSON; a JSON list of them for a problem of several toys."""
        if len(self.configs) == 1:
            return self.configs[0].to_json()
        return json.dumps([json.loads(c.to_json()) for c in self.configs], sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> CellKey:
        return CellKey(self.suite, self.suite_version, self.task.name, self.toy_id, self.method.name,
                       self.method.params_json, self.seed, self.call_seed)


@functools.lru_cache(maxsize=4)
def _problem(configs: tuple[Config, ...]):
    """A cell's toy (a tuple of toys for a problem of several), rebuilt from the configs; the few
    most recent are kept for the next methods."""
    built = tuple(toys.from_config(c) for c in configs)
    return built[0] if len(built) == 1 else built


# The processes of isolated methods in this process, one per (method, guarded paths), kept for
# the run and closed by ``_close_method_processes`` (a worker's die with it).
_METHOD_PROCESSES: dict[tuple, _isolation.MethodProcess] = {}


def _predict(cell: _Cell, artifact: Any) -> Any:
    """The method's prediction: in this process for a built-in, in its own process if isolated."""
    params = dict(cell.method.params)
    if not cell.isolated:
        return cell.method.resolve()(artifact, seed=cell.call_seed, **params)
    key = (cell.method.reference, cell.guarded)
    process = _METHOD_PROCESSES.get(key)
    if process is None or not process.alive:
        try:
            process = _METHOD_PROCESSES[key] = _isolation.MethodProcess(cell.method.function, cell.guarded)
        except Exception as exc:  # it could not be handed to a new process (an attribute that is a lambda ...)
            raise _isolation.MethodFailed(f"method {cell.method.name!r} cannot be sent to a process of its own "
                                          f"({type(exc).__name__}: {exc}); define it in a module, or pass isolate=False") from None
    return process.call(artifact, cell.call_seed, params, _isolation.allowed_records(cell.task.prediction_type))


def _close_method_processes() -> None:
    """End every method process this process started."""
    while _METHOD_PROCESSES:
        _METHOD_PROCESSES.popitem()[1].close()


def _execute(cell: _Cell) -> CellResult:
    """Run one cell: build the toy, hand the method a private, read-only copy of its artifact only,
    score the prediction; for a cell marked ``figure_data``, also the task's figure arrays of the toy."""
    task = cell.task
    start = time.perf_counter()
    arrays = None
    trace = ""
    try:
        toy = _problem(cell.configs)
        task.check_toy(toy)
        if cell.figure_data:
            arrays = dict(task.figure_data(toy))
        prediction = _predict(cell, task.artifact(toy))
        task.check_prediction(prediction, cell.method.name)
        metrics, status, error = task.score(prediction, toy), "ok", ""
        directions = task.keep(prediction, toy)
    except _isolation.MethodFailed as exc:  # the method's own error, as its process reported it
        metrics, status, directions, error, trace = {}, "failed", None, str(exc), exc.traceback
    except Exception as exc:  # a failing method is a result, not the end of the suite
        metrics, status, directions = {}, "failed", None
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        trace = traceback.format_exc()
    return CellResult(
        suite=cell.suite, suite_version=cell.suite_version, task=task.name, toy=cell.toy, toy_id=cell.toy_id,
        axes=dict(cell.axes), method=cell.method.name, params=cell.method.params_json, seed=cell.seed,
        method_seed=cell.call_seed,
        status=status, metrics=metrics, seconds=time.perf_counter() - start, package_version=__version__,
        error=error, config=cell.config_json, directions=directions, toy_arrays=arrays,
        method_fingerprint=cell.fingerprint, traceback=trace,
        toy_ids=tuple(c.id for c in cell.configs) if len(cell.configs) > 1 else (),
    )


def _phase_diagram_data() -> dict[str, Any]:
    """The n=2, m=1 phase diagram (Elhage et al. 2022): 12 x 12 grid, 5000 steps of 512 (about 10 s)."""
    return _figures.phase_diagram_data(toys.phase_diagram(n_steps=5000, batch_size=512))


# Suite-level figure data, by the name a suite lists in ``figures``: computed once per suite
# version when the suite runs into a store, kept under ``suite_key``, drawn by the task's figures.
_SUITE_FIGURE_DATA: dict[str, Callable[[], dict[str, Any]]] = {"phase_diagram": _phase_diagram_data}


def _execute_with_threads(cell: _Cell, threads: int) -> CellResult:
    with threadpool_limits(limits=threads):
        return _execute(cell)


def _isolate(spec: MethodSpec, isolate: bool | None) -> bool:
    """Whether ``spec`` runs in a process of its own under the ``isolate`` setting of ``run``."""
    if isolate is False or (isolate is None and spec.builtin):
        return False
    if _isolation.sendable(spec.function):
        return True
    if isolate:
        raise ValueError(
            f"method {spec.name!r} is a lambda, a local function or defined in a notebook or the script being "
            "run, which a separate process cannot import; define it in a module (or pass "
            "'package.module:function'), or pass isolate=False to run it beside the truth"
        )
    warnings.warn(
        f"method {spec.name!r} runs in the process that holds the truth (a lambda, a local function or one "
        "defined in a notebook or the script being run cannot be imported by a process of its own); define it "
        "in a module to isolate it",
        RuntimeWarning, stacklevel=4,
    )
    return False


def _fingerprint(result: CellResult) -> str:
    """What a row says (not how long it took): its digest, for spotting rows the driver did not write."""
    body = [result.task, result.toy, result.toy_id, sorted(result.axes.items()), result.params, result.status,
            sorted(result.metrics.items()), result.error, result.config, result.method_fingerprint]
    return hashlib.sha256(json.dumps(body, default=str).encode()).hexdigest()


def _check_rows(db: Store, suite: str, version: str, expected: dict[CellKey, str], known: set[CellKey]) -> None:
    """Raise if a row this run returns changed or vanished; warn about rows others added meanwhile
    (rows neither returned nor in ``known``, the rows there before the run)."""
    now = {r.key: _fingerprint(r) for r in db.results(suite=suite, suite_version=version)}
    changed = sorted(str(k) for k, digest in expected.items() if now.get(k) != digest)
    foreign = sorted(str(k) for k in set(now) - set(expected) - known)
    if foreign:
        warnings.warn(
            f"{db.path}: {len(foreign)} row(s) of suite {suite!r} v{version} were written by another process "
            f"during this run (another planted run, or a method reaching the store): {foreign[:3]}",
            RuntimeWarning, stacklevel=3,
        )
    if changed:
        raise TamperingDetected(
            f"{db.path}: {len(changed)} row(s) of suite {suite!r} v{version} changed or vanished during the run, "
            f"written by another process (a method reaching the store?): {changed[:3]}; the results this run "
            "returned are its own; delete those rows and rerun to store them again"
        )


def method_specs(names: Iterable[str | MethodSpec] | Mapping[str, Any] | None, suite: Suite) -> tuple[MethodSpec, ...]:
    """Turn method names, ``module:function`` references, specs or a {name: callable} mapping into specs."""
    if names is None:
        return suite.methods
    if isinstance(names, Mapping):
        return tuple(v if isinstance(v, MethodSpec) else MethodSpec(str(k), v) for k, v in names.items())
    suite_methods = {m.name: m for m in suite.methods}
    specs = []
    for item in names:
        if isinstance(item, MethodSpec):
            specs.append(item)
        elif item in suite_methods:
            specs.append(suite_methods[item])
        elif item in METHODS:
            if METHODS[item].task != suite.task:
                raise ValueError(f"method {item!r} serves the {METHODS[item].task} task; suite {suite.name!r} is a "
                                 f"{suite.task} suite")
            specs.append(METHODS[item])
        elif ":" in str(item):
            spec = MethodSpec(str(item), str(item))
            spec.resolve()  # fail now, with a clear message, not in every cell
            specs.append(spec)
        else:
            raise nearest(item, sorted(set(METHODS) | set(suite_methods)), "method")
    return tuple(specs)


def run(
    suite: str | Suite,
    *,
    methods: Iterable[str | MethodSpec] | Mapping[str, Callable[..., Any]] | None = None,
    seeds: Sequence[int] | None = None,
    store: str | Path | Store | None = DEFAULT_STORE,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    retry_failed: bool = False,
    progress: bool | None = None,
    isolate: bool | None = None,
    secret: str | bytes | os.PathLike | None = None,
    force: bool = False,
    method_seeds: Sequence[int] | None = None,
) -> list[CellResult]:
    """Run a suite and return the results of all its cells (those already stored included).

    Parameters
    ----------
    suite : str or Suite
        A name from ``SUITES`` or a ``Suite``.
    methods : names, ``"package.module:function"`` references, ``MethodSpec``s, or a mapping
        ``{name: fn}``, optional
        Replace the suite's methods. A function is called as ``fn(artifact, *, seed, **params)``
        and must return the task's prediction type; it never sees the truth.
    seeds : sequence of int, optional
        Replace the suite's seeds.
    store : path, Store or None
        The SQLite results store (default ``results/planted.sqlite``); None keeps results in
        memory only. Cells already in the store are skipped.
    workers : int
        Local processes running cells at once (1: in this process); with ``backend="ray"`` and no
        address, the CPUs of the local Ray instance.
    backend : {"local", "ray"}
        ``"ray"`` runs each cell as a Ray task (the ``ray`` extra); the driver alone writes the
        store, and the numbers are the same as in-process.
    address : str, optional
        A Ray cluster to join (``ray.init(address=...)``); default: start a local instance.
    retry_failed : bool
        Run again the cells stored as failed.
    progress : bool, optional
        Show a progress line (default: when stderr is a terminal).
    isolate : bool, optional
        Run methods in a process of their own that receives only the artifact, cannot open the
        store or start processes, and returns its prediction as data. Default (None): every method
        that is not planted's own and can be imported by a fresh process (a reference, or a
        function defined in a module); True: every method, refusing those it cannot import;
        False: none.
    secret : str, bytes or path, optional
        The private split: every toy's seed is derived from this secret (at least 16 bytes; a
        ``pathlib.Path`` is a file holding it, which isolated methods may not open), so the
        suite's public configs do not rebuild these toys; the suite version carries a tag of the
        secret. Methods are still called with the public seed.

    method_seeds : sequence of int, optional
        Seed the methods apart from the toys: every toy seed is run with each of these method
        seeds, so a report can tell the variance between toys (data) from the variance between
        runs of a method on one toy. Default: the suite's (none: a method gets its toy's seed).
    force : bool
        Run every cell again, whatever the store holds (a stored cell whose method's code changed
        is run again anyway: ``MethodSpec.fingerprint``).

    Raises
    ------
    TamperingDetected
        When, after the run, a row it returns was changed in the store by another process.
    """
    if isinstance(suite, str):
        if suite not in SUITES:
            raise nearest(suite, SUITES, "suite")
        suite = SUITES[suite]
    p = Problems()
    p.integer("workers", workers, low=1)
    p.raise_if_any("run")
    workers = int(workers)
    if backend not in BACKENDS:
        raise nearest(backend, BACKENDS, "backend")
    if address is not None and backend != "ray":
        raise ValueError(f"address is only used with backend='ray', got backend={backend!r}")
    # The version is the suite's own grid; choosing methods or seeds picks cells of that grid
    # (or adds cells beside it) without changing it, so partial runs and full runs share rows.
    version = suite.version
    guarded: tuple[str, ...] = ()
    if isinstance(secret, os.PathLike):  # a secret file: isolated methods may not open it
        guarded = (str(Path(secret).resolve()),)
        secret = _private.read_secret(secret)
    if secret is not None:
        secret = _private.secret_bytes(secret)
        version = f"{version}-private-{_private.tag(secret)}"
    suite = suite.with_methods(method_specs(methods, suite))
    if seeds is not None:
        suite = suite.with_seeds(seeds)
    if method_seeds is not None:
        suite = dataclasses.replace(suite, method_seeds=tuple(int(s) for s in method_seeds))
    if suite.task not in TASKS:
        raise nearest(suite.task, TASKS, "task")
    task = TASKS[suite.task]
    for extra in suite.figures:
        if extra not in _SUITE_FIGURE_DATA:
            raise nearest(extra, _SUITE_FIGURE_DATA, f"figure of suite {suite.name!r}")
    isolated = {m.name: _isolate(m, isolate) for m in suite.methods}
    fingerprints = {m.name: m.fingerprint for m in suite.methods}
    own_store = store is not None and not isinstance(store, Store)
    if store is not None:
        guarded += (str(Path(store.path if isinstance(store, Store) else store).resolve()),)

    def configs(t, seed: int) -> tuple[Config, ...]:
        return t.configs(seed if secret is None else _private.private_seed(secret, suite.name, t.name, seed))

    cells = [
        _Cell(suite.name, version, task, t.name, configs(t, seed), dict(t.axes), m, seed,
              isolated=isolated[m.name], guarded=guarded, fingerprint=fingerprints[m.name], method_seed=method_seed)
        for t in suite.toys
        for seed in suite.seeds
        for m in suite.methods
        for method_seed in (suite.method_seeds or (None,))
    ]
    db = Store(store) if own_store else store
    _STOP[0] = False
    try:
        done = set()
        if db is not None and not force:
            stored = db.stored(c.key for c in cells)
            current = {c.key for c in cells if c.key in stored and stored[c.key][1] == c.fingerprint}
            done = {k for k in current if stored[k][0] == "ok" or not retry_failed}
            stale = len(stored) - len(current)
            if stale:
                log.info("%d stored cells are rerun: their method's code changed since they were computed", stale)
            if done:
                log.info("%d of %d cells reused from %s", len(done), len(cells), db.path)
        todo = [c for c in cells if c.key not in done]
        if db is not None:  # the first cell to run on each toy also returns its figure arrays, when missing
            first = {}
            for c in todo:
                first.setdefault(c.toy_id, c.key)
            wanted = {k for toy_id, k in first.items() if not db.has_toy_arrays(toy_id, task=task.name)}
            todo = [dataclasses.replace(c, figure_data=True) if c.key in wanted else c for c in todo]
        before = {r.key: r for r in db.results(suite=suite.name, suite_version=version)} if db is not None else {}
        fresh: dict[CellKey, CellResult] = {}
        with Progress(len(todo), f"{suite.name} v{version}", enabled=progress if todo else False, unit="cells") as bar:
            if done:
                bar.note(f"{len(done)} reused")
            results = _ray_results(todo, workers, address, bar) if backend == "ray" else _results(todo, workers, bar)
            try:
                for result in results:
                    if db is not None:
                        db.write(result)
                    fresh[result.key] = result
                    bar.update()
                    if _STOP[0]:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                where = f" in {db.path}" if db is not None else " (no store: nothing was kept)"
                raise Interrupted(f"interrupted; {len(fresh)} cell(s) of this run saved{where}; "
                                  "run the same command again to resume") from None
        _close_method_processes()
        for extra in suite.figures if db is not None else ():
            key = suite_key(suite.name, version, extra)
            if not db.has_toy_arrays(key, task=task.name):
                db.write_toy_arrays(key, task.name, _SUITE_FIGURE_DATA[extra]())
        if db is not None:
            returned = {c.key: fresh.get(c.key) or before[c.key] for c in cells}
            _check_rows(db, suite.name, version, {k: _fingerprint(r) for k, r in returned.items()}, set(before))
        return [fresh.get(c.key) or before[c.key] for c in cells]
    finally:
        _close_method_processes()
        if own_store:
            db.close()


def _results(cells: list[_Cell], workers: int, bar: Progress) -> Iterable[CellResult]:
    if workers == 1 or len(cells) <= 1:
        for cell in cells:
            bar.note(f"{cell.toy} seed {cell.seed} {cell.method.name}")
            yield _execute(cell)
        return
    for cell in cells:
        if not isinstance(cell.method.function, str):
            name = getattr(cell.method.function, "__qualname__", "")
            if "<lambda>" in name or "<locals>" in name:
                raise ValueError(
                    f"method {cell.method.name!r} is a local function or lambda, which worker processes cannot "
                    "import; define it at module level, pass 'package.module:function', or use workers=1"
                )
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start,
                               initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_execute, cell): cell for cell in cells}
        for future in as_completed(futures):
            cell = futures[future]
            bar.note(f"{cell.toy} seed {cell.seed} {cell.method.name}")
            yield future.result()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or failed: cancel what has not started and do not wait for
        # the cells in flight; the workers exit when this process does.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _worker_start(driver: int) -> None:
    """A worker exits when the driver dies, and ends its method processes when it exits; Ctrl-C is
    the driver's to handle (it stops the run and says what was saved)."""
    import atexit
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _isolation.watch_parent(driver)
    atexit.register(_close_method_processes)


def _ray_results(cells: list[_Cell], workers: int, address: str | None, bar: Progress) -> Iterable[CellResult]:
    """Run cells as Ray tasks and yield their results as they finish."""
    if not cells:
        return
    try:
        import ray
    except ImportError:
        raise ValueError("backend='ray' needs Ray: pip install 'planted[ray]'") from None
    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        # BLAS results depend on the thread count; Ray workers start single-threaded, so each task
        # uses the driver's count, which keeps the numbers equal to an in-process run.
        threads = max((info.get("num_threads", 1) for info in threadpool_info()), default=1)
        remote = ray.remote(num_cpus=1)(_execute_with_threads)
        pending = {remote.remote(cell, threads): cell for cell in cells}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell = pending.pop(ref)
                bar.note(f"{cell.toy} seed {cell.seed} {cell.method.name}")
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()

__all__ = [
    "BACKENDS",
    "Interrupted",
    "method_specs",
    "run",
]
