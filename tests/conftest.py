import atexit
import collections
import importlib.util
import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _share_compilations() -> None:
    """One JAX compilation cache for the whole session: the test processes, and the command-line
    runs, workers and isolated methods they start (which inherit the environment), compile each
    program once instead of once per process. Results do not change: a cached executable is the
    one the same program compiles to. The folder is the session's own and goes with it."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:  # a worker of this session, or the user's own cache
        return
    folder = tempfile.mkdtemp(prefix="planted-tests-jax-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if importlib.util.find_spec("filelock"):  # a size limit makes JAX lock the folder: no entry is read half-written
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(1 << 32))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


_share_compilations()


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config):
    """With test processes side by side (``-n``), each gets its share of the cores for the BLAS and
    OpenMP, which would otherwise start a thread per core in every process; with one core each,
    XLA's matrix products run on one thread too (``--xla_cpu_multi_thread_eigen=false``; XLA is
    otherwise left at its defaults). On 2 cores, two test processes measured 8% faster in all this
    way. The settings reach the test processes and the commands they start through the
    environment; a variable the user set is left as it is. The tests that compare one thread with
    many set both themselves."""
    workers = getattr(config.option, "numprocesses", None)
    if hasattr(config, "workerinput") or not isinstance(workers, int):
        return
    workers = min(workers, getattr(config.option, "maxprocesses", None) or workers)
    if workers < 2:
        return
    # Counted here rather than with groundtruth's helper: importing planted would load NumPy's BLAS before
    # its thread count is set.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // workers)
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")


def pytest_collection_modifyitems(config, items):
    """Files with more tests marked slow run first (then as collected). Test processes take whole
    files in this order (``--no-loadscope-reorder``; xdist's own order, by number of tests, put
    the README's one test of 90 s last, running alone while the other process idled)."""
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])
