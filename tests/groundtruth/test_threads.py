import subprocess
import sys
import threading

from threadpoolctl import threadpool_limits

from planted.groundtruth._threads import _threads, map_parts


def test_parts_run_in_order_on_threads_with_the_blas_on_one_thread_each():
    seen = map_parts(lambda i: (i, threading.current_thread().name, _threads()), range(6), workers=2)
    assert [i for i, _, _ in seen] == list(range(6))
    assert all(name.startswith("planted") for _, name, _ in seen)
    assert {blas for _, _, blas in seen} == {1}


def test_one_thread_or_a_limited_blas_runs_in_the_calling_thread():
    here = threading.current_thread().name
    assert {name for name in map_parts(lambda i: threading.current_thread().name, range(4), workers=1)} == {here}
    with threadpool_limits(limits=1, user_api="blas"):
        assert {name for name in map_parts(lambda i: threading.current_thread().name, range(4))} == {here}


_NESTED = """
import threading
from planted.groundtruth._threads import map_parts

def outer(i):
    names = map_parts(lambda j: threading.current_thread().name, range(3), workers=2)
    assert len(set(names)) == 1, names
    return i * sum(map_parts(lambda j: j, range(3), workers=2))

print(map_parts(outer, range(5), workers=2))
"""


def test_a_call_from_inside_a_part_runs_in_that_part():
    """Parts that map parts of their own (more of them than threads) finish: the inner calls run
    in the calling part's thread instead of waiting for a thread of the same pool. In a process
    of its own, which a hang would keep from exiting."""
    done = subprocess.run([sys.executable, "-c", _NESTED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 3, 6, 9, 12]"
