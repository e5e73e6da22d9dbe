"""SAE training: planted's JAX loop against a plain PyTorch loop, and against the machine.

Both train the same SAE (d_model -> n_latents, unit-norm decoder rows, Adam) on the same streamed
batches of a sparse-feature toy, in one run: ReLU with an L1 penalty (``--kind relu``) or TopK
(``--kind topk --k 32``). The PyTorch loop is the dense one a user would write (for TopK: scatter
the top k into a dense code matrix and decode with a matmul); planted's TopK touches only the k
active latents after the encoder's product. Printed: samples/s for each, their ratio, and the
achieved FLOP/s as a fraction of this machine's float32 matmul peak, measured here in the same run.
Compile time is reported apart and excluded from the JAX rate.

Model FLOPs per step: 10 * batch * d_model * n_latents (encoder and decoder forward, and the three
backward matmuls: codes' gradient, decoder and encoder weight gradients), the dense count, which
for TopK is the work the dense loop does.

    python benchmarks/sae_training.py [--d-model 256 --n-latents 1024 --batch 1024 --steps 300]
    python benchmarks/sae_training.py --kind topk --k 32 --n-latents 4096
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _machine import device_line, matmul_peak

from planted import methods
from planted import toys


def torch_sae(batches: np.ndarray, n_latents: int, l1: float, lr: float, k: int = 0) -> tuple[float, float]:
    """The loop a user would write in PyTorch; returns (seconds, final mse)."""
    import torch

    torch.manual_seed(0)
    d = batches.shape[2]
    w_dec = torch.randn(n_latents, d)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    params = {
        "W_enc": torch.nn.Parameter(w_dec.T.clone()),
        "b_enc": torch.nn.Parameter(torch.zeros(n_latents)),
        "W_dec": torch.nn.Parameter(w_dec.clone()),
        "b_dec": torch.nn.Parameter(torch.zeros(d)),
    }
    opt = torch.optim.Adam(params.values(), lr=lr)
    data = torch.from_numpy(batches)
    start = time.perf_counter()
    for x in data:
        pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
        if k:
            values, idx = pre.topk(k, dim=1)
            codes = torch.zeros_like(pre).scatter(1, idx, torch.relu(values))
        else:
            codes = torch.relu(pre)
        recon = codes @ params["W_dec"] + params["b_dec"]
        mse = ((recon - x) ** 2).sum(dim=1).mean()
        loss = mse + l1 * codes.sum(dim=1).mean() if not k else mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            w = params["W_dec"]
            w.grad -= (w.grad * w).sum(dim=1, keepdim=True) * w
        opt.step()
        with torch.no_grad():
            params["W_dec"] /= params["W_dec"].norm(dim=1, keepdim=True)
    return time.perf_counter() - start, float(mse.detach()) / d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-latents", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--kind", choices=["relu", "topk"], default="relu")
    parser.add_argument("--k", type=int, default=32, help="active latents per sample for --kind topk")
    args = parser.parse_args()
    print(device_line())
    d, k, b, steps = args.d_model, args.n_latents, args.batch, args.steps
    kind = dict(kind=args.kind, k=args.k if args.kind == "topk" else None)
    torch_k = args.k if args.kind == "topk" else 0

    toy = toys.sparse_features(2 * d, d, 1, mean_active=5, firing="exponential", decay=0.99, seed=0)
    t = time.perf_counter()
    stream = np.stack([x.activations for x in toy.batches(b, n_samples=b * (steps + 32))])
    gen = time.perf_counter() - t
    # Both loops see the same batches, scaled as methods.sae scales them (mean squared norm d).
    scale = np.sqrt(d / np.mean(np.sum(stream[:8].astype(np.float64) ** 2, axis=2)))
    stream = (stream * scale).astype(np.float32)
    warm, timed = stream[:32], stream[32:]
    print(f"data: {stream.shape[0]} batches of {b} x {d} generated in {gen:.1f}s; threads: {os.cpu_count()} cores")

    peaks = matmul_peak()
    peak = max(peaks.values())
    print("float32 matmul peak (2048^3): " + ", ".join(f"{n} {v:.1f} GFLOP/s" for n, v in peaks.items()))

    # JAX: compile on a warm-up run (same shapes), then time the full run.
    t = time.perf_counter()
    methods.sae(list(warm), k, **kind, seed=0, n_steps=32, batch_size=b, aux_coefficient=0.0, progress=False)
    compile_and_warm = time.perf_counter() - t
    t = time.perf_counter()
    methods.sae(list(timed), k, **kind, seed=0, n_steps=steps, batch_size=b, aux_coefficient=0.0, progress=False)
    jax_s = time.perf_counter() - t
    # The timed call compiles again (a new jit per call); subtract a measured compile-only call.
    t = time.perf_counter()
    methods.sae(list(warm[:1]), k, **kind, seed=0, n_steps=1, batch_size=b, aux_coefficient=0.0, progress=False)
    overhead = time.perf_counter() - t
    jax_train = max(jax_s - overhead, 1e-9)

    torch_sae(warm, k, 1.0, 1e-3, torch_k)
    torch_s, torch_mse = torch_sae(timed, k, 1.0, 1e-3, torch_k)

    flops = 10 * b * d * k * steps
    jax_rate, torch_rate = steps * b / jax_train, steps * b / torch_s
    what = f"TopK k={args.k}" if args.kind == "topk" else "ReLU-L1"
    print(f"{what} SAE d={d} latents={k} batch={b} steps={steps} (dense model FLOPs {flops / 1e9:.1f} G)")
    print(f"  planted (JAX):  {jax_rate:10.0f} samples/s  {flops / jax_train / 1e9:6.1f} GFLOP/s  "
          f"{flops / jax_train / 1e9 / peak:5.1%} of peak   (compile+warm-up {compile_and_warm:.1f}s, "
          f"per-call overhead {overhead:.1f}s excluded)")
    print(f"  PyTorch eager:  {torch_rate:10.0f} samples/s  {flops / torch_s / 1e9:6.1f} GFLOP/s  "
          f"{flops / torch_s / 1e9 / peak:5.1%} of peak")
    print(f"  ratio planted / PyTorch: {jax_rate / torch_rate:.2f}x")


if __name__ == "__main__":
    main()
