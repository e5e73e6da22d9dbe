"""Work cut into parts that run side by side on a thread pool, the BLAS on one thread in each.

NumPy releases the GIL in its products, sorts, selections and random draws, so the parts run on
all the cores. The BLAS runs on one thread while they do (``threadpoolctl``): the threads are
shared out once, not oversubscribed, and a product's bits, which move with the BLAS's thread
count, are the same whatever the machine. Where the BLAS is limited to one thread
(``OMP_NUM_THREADS=1``, ``threadpoolctl.threadpool_limits``), the parts run one after the other.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import threadpoolctl
from threadpoolctl import ThreadpoolController, threadpool_limits

T = TypeVar("T")
R = TypeVar("R")


class _State:
    """The pools, and the one limit on the BLAS that every caller shares (counted, so that
    overlapping callers in several threads restore the user's setting once, when the last leaves)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: dict[int, ThreadPoolExecutor] = {}
        self.blas: ThreadpoolController | None = None
        self.limit = None
        self.holders = 0


_STATE = _State()


def _after_fork_in_child() -> None:
    global _STATE
    _STATE = _State()  # a forked child has none of the parent's pool threads; its BLAS keeps the parent's setting


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def cpu_cores() -> int:
    """The cores this process may run on (its affinity where the system reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """The BLAS on one thread inside the block, for every thread of the process; safe to enter
    from several threads at once and from inside itself."""
    state = _STATE
    with state.lock:
        if state.holders == 0:
            state.limit = threadpool_limits(limits=1, user_api="blas")
        state.holders += 1
    try:
        yield
    finally:
        with state.lock:
            state.holders -= 1
            if state.holders == 0:
                _release_control()
                state.limit.restore_original_limits()
                state.limit = None


def _release_control() -> None:
    """threadpoolctl lets only the thread that last set OpenBLAS's threads set them again while
    it lives; the last holder of the limit may be another thread, so it takes over."""
    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def map_parts(fn: Callable[[T], R], parts: Iterable[T], *, workers: int | None = None) -> list[R]:
    """``[fn(p) for p in parts]`` with the BLAS on one thread, the parts on as many threads as
    there are cores (fewer where the BLAS is limited to fewer threads; at most ``workers``). One
    part, one thread, or a call from inside a part runs in the calling thread."""
    parts = list(parts)
    workers = min(_threads(), len(parts), len(parts) if workers is None else workers)
    with one_blas_thread():
        if workers <= 1:  # also inside a part, where the BLAS is on one thread
            return [fn(p) for p in parts]
        return list(_pool(workers).map(fn, parts))


def _pool(workers: int) -> ThreadPoolExecutor:
    state = _STATE
    with state.lock:
        if workers not in state.pools:
            state.pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="planted")
        return state.pools[workers]


def _threads() -> int:
    """The cores, or the threads the BLAS may use now if fewer."""
    state = _STATE
    with state.lock:
        if state.blas is None:
            state.blas = ThreadpoolController().select(user_api="blas")
        limits = [lib.num_threads for lib in state.blas.lib_controllers]
    return min([cpu_cores()] + [n for n in limits if isinstance(n, int) and n > 0])
