import atexit
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
