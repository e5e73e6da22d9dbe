"""Work cut into parts that run side by side on a thread pool, one per thread the BLAS may use.

NumPy releases the GIL in its products, sorts, selections and random draws, so the parts run on
all the cores. The BLAS runs on one thread per part while they do (``threadpoolctl``): the
threads are shared out once, not oversubscribed. Where the BLAS is limited (``OMP_NUM_THREADS=1``,
``threadpoolctl.threadpool_limits``), so are the parts. A part's result does not depend on how
many threads there are.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import ThreadpoolController, threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()
_WORKER = threading.local()
_BLAS: list[ThreadpoolController] = []


def cpu_cores() -> int:
    """The cores this process may run on (its affinity where the system reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_parts(fn: Callable[[T], R], parts: Iterable[T], *, workers: int | None = None) -> list[R]:
    """``[fn(p) for p in parts]``, the parts on up to ``workers`` threads (default: the cores, or
    fewer where the BLAS is limited to fewer threads), the BLAS on one thread each. One part, one
    thread, or a call from inside a part runs in the calling thread, the BLAS as it is."""
    parts = list(parts)
    workers = min(_threads() if workers is None else workers, len(parts))
    if workers <= 1 or getattr(_WORKER, "inside", False):
        return [fn(p) for p in parts]
    with threadpool_limits(limits=1, user_api="blas"):
        return list(_pool(workers).map(fn, parts))


def _pool(workers: int) -> ThreadPoolExecutor:
    with _LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="planted", initializer=_mark_worker)
        return _POOLS[workers]


def _mark_worker() -> None:
    _WORKER.inside = True


def _threads() -> int:
    """The cores, or the threads the BLAS may use now if fewer."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController().select(user_api="blas"))
    limits = [lib.num_threads for lib in _BLAS[0].lib_controllers]
    return min([cpu_cores()] + limits)
