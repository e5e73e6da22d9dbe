"""Running a method where it reaches nothing but its artifact.

A user's method runs in a process of its own, spawned fresh (so it holds no toy, no truth and no
store in memory) and kept for that method's cells of one run. It receives the artifact only. In
that process an audit hook (PEP 578) refuses to open a database, to touch the results store or the
secret of a private split, and to start or signal processes; the process exits when the process
that started it dies. The prediction comes back as plain arrays and JSON, rebuilt from an
allowlist of record types, never unpickled: a method cannot run code in the process that holds
the truth.

The hook raises the bar for a method written in Python; it is not a sandbox against native code.
The runner therefore also checks, after the run, that every row it returns is the row it wrote or
read, and reports rows other processes wrote meanwhile (``runner.run``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import multiprocessing
import os
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np
import scipy.sparse as sp

_ARRAY_KINDS = "biufcUS"  # numeric, bool and string arrays cross; object arrays never do
_BLOCKED_PROCESS_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
})
_PATH_EVENTS = {
    "open": (0,), "os.remove": (0,), "os.rename": (0, 1), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.link": (0, 1), "os.symlink": (0, 1), "os.rmdir": (0,), "os.mkdir": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (0, 1), "shutil.move": (0, 1), "os.listdir": (0,),
    "os.scandir": (0,),
}


# --- parent watch -------------------------------------------------------------------------------


def watch_parent(parent_pid: int, interval: float = 0.25) -> None:
    """Exit this process as soon as ``parent_pid`` is no longer its parent (the parent died)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(interval)

    threading.Thread(target=watch, name="planted-parent-watch", daemon=True).start()


# --- the audit hook -----------------------------------------------------------------------------


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + os.sep) or path.startswith(root + "-") for root in roots)


def _other_process(path: str, own: str) -> bool:
    """Whether ``path`` lies in another process's /proc folder (its command line, environment,
    memory and open files)."""
    if not path.startswith("/proc/"):
        return False
    head = path[len("/proc/"):].split(os.sep, 1)[0]
    return head.isdigit() and head != own


def guard(paths: Iterable[str]) -> None:
    """Install the hook that keeps a method away from ``paths``, databases, other processes and
    their /proc folders (where a driver's command line and environment could name the store or
    hold a secret)."""
    roots = tuple(sorted({os.path.realpath(p) for p in paths}))
    own = str(os.getpid())

    def hook(event: str, args: tuple) -> None:
        if event == "sqlite3.connect":
            raise PermissionError("a benchmarked method may not open a database")
        if event in _BLOCKED_PROCESS_EVENTS:
            raise PermissionError(f"a benchmarked method may not start or signal processes ({event})")
        positions = _PATH_EVENTS.get(event)
        if positions is None:
            return
        for i in positions:
            if i >= len(args) or isinstance(args[i], int) or args[i] is None:
                continue
            try:
                path = os.path.realpath(os.fsdecode(args[i]))
            except (TypeError, ValueError):
                continue
            if _inside(path, roots) or _other_process(path, own):
                raise PermissionError(f"a benchmarked method may not access {path}")

    sys.addaudithook(hook)


# --- predictions on the wire --------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """``value`` (records, arrays, CSR matrices, tuples, dicts, scalars) as JSON plus raw buffers."""
    buffers: list[bytes] = []

    def enc(v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, np.integer)) and not isinstance(v, np.bool_):
            return {"int": str(int(v))}
        if isinstance(v, (float, np.floating)):
            return {"float": repr(float(v))}
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, np.ndarray):
            if v.dtype.kind not in _ARRAY_KINDS:
                raise ValueError(f"arrays of dtype {v.dtype} cannot be returned by a method")
            a = np.ascontiguousarray(v)
            buffers.append(a.tobytes())
            return {"array": len(buffers) - 1, "dtype": a.dtype.str, "shape": list(a.shape)}
        if sp.issparse(v):
            m = sp.csr_matrix(v)
            return {"csr": [enc(m.data), enc(m.indices), enc(m.indptr)], "shape": list(m.shape)}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            cls = type(v)
            return {"record": f"{cls.__module__}:{cls.__qualname__}",
                    "fields": {f.name: enc(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init}}
        if isinstance(v, (tuple, list)):
            return {"tuple" if isinstance(v, tuple) else "list": [enc(x) for x in v]}
        if isinstance(v, dict):
            return {"items": [[enc(k), enc(x)] for k, x in v.items()]}
        raise ValueError(f"a method returned a {type(v).__name__}, which cannot cross to the scoring process")

    head = json.dumps(enc(value)).encode()
    return struct.pack("<Q", len(head)) + head + b"".join(struct.pack("<Q", len(b)) + b for b in buffers)


def decode(data: bytes, allowed: dict[str, type]) -> Any:
    """The value ``encode`` wrote; records only of the ``allowed`` types ({"module:qualname": type})."""
    (n,) = struct.unpack_from("<Q", data, 0)
    tree = json.loads(data[8 : 8 + n])
    buffers, at = [], 8 + n
    while at < len(data):
        (size,) = struct.unpack_from("<Q", data, at)
        buffers.append(memoryview(data)[at + 8 : at + 8 + size])
        at += 8 + size

    def dec(v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        if "int" in v:
            return int(v["int"])
        if "float" in v:
            return float(v["float"])
        if "array" in v:
            dtype = np.dtype(v["dtype"])
            shape = tuple(int(s) for s in v["shape"])
            if dtype.kind not in _ARRAY_KINDS or dtype.hasobject:
                raise ValueError(f"a method returned an array of dtype {dtype}")
            raw = buffers[v["array"]]
            if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise ValueError("a method returned an array whose bytes do not match its shape")
            return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        if "csr" in v:
            data_, indices, indptr = (dec(x) for x in v["csr"])
            return sp.csr_matrix((data_, indices, indptr), shape=tuple(v["shape"]))
        if "record" in v:
            cls = allowed.get(v["record"])
            if cls is None:
                raise ValueError(f"a method returned a {v['record']}, which is not a prediction record")
            return cls(**{k: dec(x) for k, x in v["fields"].items()})
        if "tuple" in v:
            return tuple(dec(x) for x in v["tuple"])
        if "list" in v:
            return [dec(x) for x in v["list"]]
        if "items" in v:
            return {dec(k): dec(x) for k, x in v["items"]}
        raise ValueError("a method's reply is malformed")

    return dec(tree)


@functools.lru_cache(maxsize=None)
def allowed_records(*types: type) -> dict[str, type]:
    """The record types a prediction may be built of: every groundtruth record, and ``types`` with
    the dataclasses of their modules (for a task a user registered)."""
    import planted.groundtruth as gt

    found: dict[str, type] = {}
    modules = [gt] + [sys.modules[t.__module__] for t in types if t.__module__ in sys.modules]
    for module in modules:
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj):
                found[f"{obj.__module__}:{obj.__qualname__}"] = obj
    for t in types:
        found[f"{t.__module__}:{t.__qualname__}"] = t
    return found


# --- the method's process -----------------------------------------------------------------------


def sendable(function: Any) -> bool:
    """Whether a method can be imported by a fresh process (a reference, or a module-level function
    of an importable module)."""
    if isinstance(function, str):
        return True
    name = getattr(function, "__qualname__", "")
    module = getattr(function, "__module__", None)
    if not module or "<lambda>" in name or "<locals>" in name:
        return False
    if module == "__main__":
        # Defined in a notebook, an interactive session or the script being run: a new process
        # would import it by running the whole script again.
        return False
    if inspect.isfunction(function):  # travels as its reference: the name must lead back to it
        target = sys.modules.get(module)
        for part in name.split("."):
            target = getattr(target, part, None)
        return target is function
    return True  # a configured callable (``methods.sklearn_method``) travels as itself


def _serve(conn, parent_pid: int, function: Any, guarded: tuple[str, ...]) -> None:
    """The method's process: resolve the method, then answer (artifact, seed, params) requests."""
    watch_parent(parent_pid)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops the run, then this process
    from planted.evaluators._methods import resolve_function
    from planted.evaluators.tasks import private_copy

    guard(guarded)  # before the method's module is imported: its import-time code is guarded too
    try:
        fn = resolve_function(function)
    except Exception as exc:
        fn, failure = None, "".join(traceback.format_exception_only(type(exc), exc)).strip()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        artifact, seed, params = request
        try:
            if fn is None:
                raise RuntimeError(failure)
            reply = b"ok" + encode(fn(private_copy(artifact), seed=seed, **params))
        except BaseException as exc:  # noqa: BLE001 - every failure of the method is reported back
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            reply = b"er" + json.dumps({"error": error, "traceback": traceback.format_exc()}).encode()
        conn.send_bytes(reply)


class MethodFailed(Exception):
    """A method failed in its own process; the message is its exception, as that process wrote it,
    and ``traceback`` the full traceback."""

    def __init__(self, message: str, traceback: str = ""):
        super().__init__(message)
        self.traceback = traceback


@contextlib.contextmanager
def _main_script_unless_needed(function: Any):
    """A spawned process runs the script that started this one again, as ``__mp_main__``, so that
    functions defined in it can be found. When the method does not come from that script (a
    reference to a module, or an object whose pickle never names ``__main__``), the script is
    hidden from the new process for its start: a user's script that calls ``run`` is not re-run
    from the top for each isolated method."""
    main = sys.modules.get("__main__")
    hide = main is not None and getattr(main, "__file__", None) is not None and getattr(main, "__spec__", None) is None
    names = {"__main__", getattr(main, "__name__", "__main__")}  # a spawned worker's script is __mp_main__
    if hide and isinstance(function, str):
        hide = function.partition(":")[0] not in names
    elif hide:
        try:
            pickled = ForkingPickler.dumps(function)
            hide = not any(name.encode() in pickled for name in names)
        except Exception:  # noqa: BLE001 - whatever cannot be pickled fails at start as before
            hide = False
    if not hide:
        yield
        return
    path = main.__file__
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


class MethodProcess:
    """A fresh process running one method on the artifacts it is sent."""

    def __init__(self, function: Any, guarded: Iterable[str] = ()):
        # A module-level function travels as its reference, so that its module is imported in the
        # new process after the guard is in place (a pickled function is imported on arrival).
        qualname, module = getattr(function, "__qualname__", ""), getattr(function, "__module__", None)
        if inspect.isfunction(function) and module and module != "__main__" and "<" not in qualname:
            function = f"{module}:{qualname}"
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, os.getpid(), function, tuple(guarded)),
                                        daemon=True, name="planted-method")
        with _main_script_unless_needed(function):
            self._process.start()
        child.close()

    def call(self, artifact: Any, seed: int, params: dict[str, Any], allowed: dict[str, type]) -> Any:
        """The method's prediction on ``artifact``; ``MethodFailed`` with its error if it failed."""
        try:
            self._conn.send((artifact, seed, params))
            reply = self._conn.recv_bytes()
        except (EOFError, OSError, BrokenPipeError):
            self._process.join(timeout=5)
            raise MethodFailed(f"the method's process ended (exit code {self._process.exitcode})") from None
        if reply[:2] == b"er":
            try:
                failure = json.loads(reply[2:])
                raise MethodFailed(str(failure["error"]), str(failure["traceback"]))
            except (ValueError, KeyError, TypeError):
                raise MethodFailed(reply[2:].decode(errors="replace")[:2000]) from None
        return decode(reply[2:], allowed)

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


__all__ = ["MethodFailed", "MethodProcess", "allowed_records", "decode", "encode", "guard", "sendable", "watch_parent"]
