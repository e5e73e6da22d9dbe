"""A 32-instance sparsity sweep of toy models of superposition: planted (JAX) against PyTorch.

Both train n=20 features through m=5 dimensions, batch 1024, 2000 steps, Adam lr 1e-3, one
instance per sparsity (32 sparsities), in one run. The PyTorch reference is written the way the
public TMS notebook does it: an instance dimension on every tensor, an eager loop. Printed: both
times, their ratio, planted's compile time apart (a second, cached call is timed), and the FLOP/s
each reaches (five batch x n x m matmuls per instance-step, forward and backward) as a fraction of
this machine's float32 matmul peak measured in the same run. These matmuls are tiny (20 x 5), so
the loop is bound by memory traffic and per-op overhead, not by the peak.

    python benchmarks/tms_sweep.py [--steps 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import device_line, matmul_peak

from planted import toys

N, M, BATCH, INSTANCES = 20, 5, 1024, 32


def torch_sweep(sparsities: np.ndarray, steps: int, seed: int = 0) -> tuple[float, np.ndarray]:
    import torch

    torch.manual_seed(seed)
    n_inst = len(sparsities)
    feature_probability = torch.tensor(1 - sparsities, dtype=torch.float32)[:, None]
    importance = torch.ones(N)
    w = torch.nn.Parameter(torch.empty(n_inst, M, N))
    torch.nn.init.xavier_normal_(w)
    b = torch.nn.Parameter(torch.zeros(n_inst, N))
    opt = torch.optim.Adam([w, b], lr=1e-3)
    start = time.perf_counter()
    for _ in range(steps):
        feat = torch.rand(BATCH, n_inst, N)
        x = torch.where(torch.rand(BATCH, n_inst, N) <= feature_probability, feat, torch.zeros(()))
        h = torch.einsum("imn,bin->bim", w, x)
        out = torch.relu(torch.einsum("imn,bim->bin", w, h) + b)
        loss = (importance * (x - out) ** 2).sum(dim=-1).mean(dim=0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start, w.detach().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    print(device_line())
    sparsities = 1 - np.logspace(0, -2, INSTANCES)  # feature probability 1 .. 0.01
    sparsities = np.clip(sparsities, 0.0, 0.999).round(6)
    kwargs = dict(sparsities=list(sparsities), n_steps=args.steps, batch_size=BATCH, lr=1e-3, restarts=1, n_samples=1)

    t = time.perf_counter()
    toys.superposition_sweep(N, M, **kwargs)
    first = time.perf_counter() - t
    t = time.perf_counter()
    sweep = toys.superposition_sweep(N, M, **kwargs)
    jax_s = time.perf_counter() - t

    torch_s, _ = torch_sweep(sparsities, args.steps)
    samples = INSTANCES * BATCH * args.steps
    # Forward W x and W^T h, backward W dy and the two products for dW: 5 matmuls of batch x n x m.
    flops = 5 * 2 * BATCH * N * M * INSTANCES * args.steps
    peak = max(matmul_peak().values())
    print(f"TMS sweep: {INSTANCES} instances, n={N}, m={M}, batch {BATCH}, {args.steps} steps, Adam lr 1e-3")
    print(f"  planted (JAX, vmapped + scan): {jax_s:6.2f}s  ({samples / jax_s / 1e6:.1f} M samples/s, "
          f"{flops / jax_s / 1e9 / peak:.1%} of the {peak:.0f} GFLOP/s matmul peak; "
          f"first call with compile {first:.2f}s, compile ~{first - jax_s:.2f}s)")
    print(f"  PyTorch (instance dim, eager): {torch_s:6.2f}s  ({samples / torch_s / 1e6:.1f} M samples/s, "
          f"{flops / torch_s / 1e9 / peak:.1%} of peak)")
    print(f"  ratio: {torch_s / jax_s:.1f}x")
    d_star = [t.truth.dimensions_per_feature for t in sweep]
    print(f"  D* from densest to sparsest: {d_star[0]:.2f} ... {d_star[-1]:.2f}")


if __name__ == "__main__":
    main()
