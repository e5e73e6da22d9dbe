"""This machine's own limits, measured in the same run as a benchmark."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np


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
