import subprocess
import sys
import threading

import pytest
import threadpoolctl
from threadpoolctl import threadpool_info, threadpool_limits

from planted.groundtruth._threads import _threads, cpu_cores, map_parts, one_blas_thread


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.mark.skipif(cpu_cores() < 2, reason="needs two cores")
def test_parts_run_in_order_on_threads_with_the_blas_on_one_thread_each():
    together = threading.Barrier(2)

    def part(i):
        if i < 2:
            together.wait(timeout=10)  # the first two parts run at the same time, or this fails
        return i, threading.current_thread().name, _threads()

    with threadpool_limits(limits=2, user_api="blas"):
        seen = map_parts(part, range(6))
        assert _blas_threads() == {2}  # the user's setting, restored
    assert [i for i, _, _ in seen] == list(range(6))
    assert {name for _, name, _ in seen[:2]} == {"planted_0", "planted_1"}
    assert {blas for _, _, blas in seen} == {1}


def test_one_thread_or_a_limited_blas_runs_in_the_calling_thread_with_the_blas_on_one_thread():
    here = threading.current_thread().name
    with threadpool_limits(limits=2, user_api="blas"):
        seen = map_parts(lambda i: (threading.current_thread().name, _threads()), range(4), workers=1)
        assert set(seen) == {(here, 1)}
        assert _blas_threads() == {2}
    with threadpool_limits(limits=1, user_api="blas"):
        assert {name for name in map_parts(lambda i: threading.current_thread().name, range(4))} == {here}


def test_overlapping_limits_from_several_threads_restore_the_users_setting():
    """Callers in several threads hold one counted limit: whatever order they leave in, the BLAS
    gets the user's setting back when the last one leaves, also when that is not the thread that
    set the limit."""
    entered = [threading.Event() for _ in range(2)]
    leave = [threading.Event() for _ in range(2)]
    left = threading.Event()

    def hold(j):
        with one_blas_thread():
            entered[j].set()
            leave[j].wait(10)
        if j == 0:
            left.set()
            leave[1].wait(10)  # alive until the other leaves

    users = threadpool_limits(limits=2, user_api="blas")
    try:
        threadpoolctl.OpenBLASController.clear_controlling_thread(force=True)  # any thread may set it now
        threads = [threading.Thread(target=hold, args=(j,)) for j in range(2)]
        threads[0].start()
        entered[0].wait(10)
        threads[1].start()
        entered[1].wait(10)
        assert _blas_threads() == {1}
        leave[0].set()  # the first in, which set the limit, leaves first
        left.wait(10)
        assert _blas_threads() == {1}
        leave[1].set()
        threads[1].join(10)
        assert _blas_threads() == {2}
        threads[0].join(10)
    finally:
        users.restore_original_limits()


_NESTED = """
import os, threading
from threadpoolctl import threadpool_limits
from planted.groundtruth._threads import map_parts

def outer(i):
    names = map_parts(lambda j: threading.current_thread().name, range(3))
    assert len(set(names)) == 1, names
    return i * sum(map_parts(lambda j: j, range(3)))

with threadpool_limits(limits=2, user_api="blas"):
    print(map_parts(outer, range(5)))
    pid = os.fork()  # a forked child has none of the pool's threads: it starts its own
    if pid == 0:
        os._exit(0 if map_parts(outer, range(5)) == [0, 3, 6, 9, 12] else 1)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_call_from_inside_a_part_or_a_forked_child_finishes():
    """Parts that map parts of their own (more of them than threads) finish: the inner calls run
    in the calling part's thread instead of waiting for a thread of the same pool; and a child
    forked after the pool started runs its parts. In a process of its own, which a hang would
    keep from exiting."""
    done = subprocess.run([sys.executable, "-c", _NESTED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0,", "3,", "6,", "9,", "12]", "0"]
