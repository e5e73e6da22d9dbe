"""This machine's own limits, measured in the same run as a benchmark."""

from __future__ import annotations

import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np


def device_line() -> str:
    """What a benchmark runs on: JAX's default device (its platform and kind, and how many), the
    host CPU and the cores this process may use, and the versions. On a GPU, the ``jax`` entry of
    ``matmul_peak`` is that device's rate for one 2048^3 float32 product at JAX's default precision
    there (TF32 on recent NVIDIA GPUs), not its rated float32 peak."""
    devices = jax.devices()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"device: {devices[0].platform} ({devices[0].device_kind}) x{len(devices)}; host: {model}, {cores} cores; "
            f"jax {jax.__version__}, numpy {np.__version__}")


def matmul_peak(n: int = 2048, repeats: int = 10) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n x n matmul in NumPy, JAX and PyTorch."""
    out = {}
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    flops = 2 * n**3

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return flops / min(times) / 1e9

    out["numpy"] = best(lambda: a @ b)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    mm = jax.jit(jnp.matmul)
    out["jax"] = best(lambda: mm(ja, jb).block_until_ready())
    try:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = best(lambda: ta @ tb)
    except ImportError:
        pass
    return out
