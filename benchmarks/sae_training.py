"""SAE training: planted's JAX loop against a plain PyTorch loop, and against the machine.

Both train the same SAE (d_model -> n_latents, unit-norm decoder rows, Adam) on the same streamed
batches of a sparse-feature toy, in one run: ReLU with an L1 penalty (``--kind relu``) or TopK
(``--kind topk --k 32``). The PyTorch loop is the dense one a user would write (for TopK: scatter
the top k into a dense code matrix and decode with a matmul); planted's TopK touches only the k
active latents after the encoder's product. The two are timed in ``--repeats`` interleaved rounds
(planted, then PyTorch); planted's time includes its per-call setup (parameters, the returned
dictionary), PyTorch's does not. Printed: the median samples/s of each with its range, the ratio, and the
achieved FLOP/s as a fraction of this machine's float32 matmul peak, measured in the same run before
and after the rounds. Compile time is reported apart: the warm-up run compiles, the timed runs (of
another length) compile nothing, which the benchmark checks.

Model FLOPs per step: 10 * batch * d_model * n_latents (encoder and decoder forward, and the three
backward matmuls: codes' gradient, decoder and encoder weight gradients), the dense count, which
for TopK is the work the dense loop does.

    python benchmarks/sae_training.py [--d-model 256 --n-latents 1024 --batch 1024 --steps 200 --repeats 3]
    python benchmarks/sae_training.py --kind topk --k 32 --n-latents 4096
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--steps", type=int, default=200, help="steps of each timed run")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, each timing planted and then PyTorch")
    parser.add_argument("--kind", choices=["relu", "topk"], default="relu")
    parser.add_argument("--k", type=int, default=32, help="active latents per sample for --kind topk")
    args = parser.parse_args()
    if args.steps < 32:
        parser.error("--steps must be 32 or more: the timed runs then reuse the warm-up's compiled block of 32 steps")
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
    print("float32 matmul peak (2048^3): " + ", ".join(f"{n} {v:.1f} GFLOP/s" for n, v in peaks.items()))

    # JAX: compile on a warm-up run (same shapes and hyperparameters; the number of steps is traced,
    # so the timed runs, of another length, compile nothing, which is checked).
    from planted.methods._sae import _step

    t = time.perf_counter()
    methods.sae(list(warm), k, **kind, seed=0, n_steps=32, batch_size=b, aux_coefficient=0.0, progress=False)
    compile_and_warm = time.perf_counter() - t
    compiled = _step._train_block._cache_size()
    torch_sae(warm, k, 1.0, 1e-3, torch_k)

    jax_rates, torch_rates = [], []
    for _ in range(args.repeats):  # interleaved, so that both see the same state of the machine
        t = time.perf_counter()
        methods.sae(list(timed), k, **kind, seed=0, n_steps=steps, batch_size=b, aux_coefficient=0.0, progress=False)
        jax_rates.append(steps * b / (time.perf_counter() - t))
        torch_rates.append(steps * b / torch_sae(timed, k, 1.0, 1e-3, torch_k)[0])
    assert _step._train_block._cache_size() == compiled, "a timed run compiled again"
    peak = max(max(peaks.values()), *matmul_peak().values())  # the best of the readings before and after

    flops_per_sample = 10 * d * k
    what = f"TopK k={args.k}" if args.kind == "topk" else "ReLU-L1"
    print(f"{what} SAE d={d} latents={k} batch={b} steps={steps}, {args.repeats} interleaved rounds "
          f"(dense model FLOPs {flops_per_sample * b * steps / 1e9:.1f} G a run); peak {peak:.1f} GFLOP/s, "
          "the best reading before and after")
    for name, rates, extra in (("planted (JAX)", jax_rates, f"   (compile+warm-up {compile_and_warm:.1f}s apart; "
                                                              "the timed runs compiled nothing)"),
                               ("PyTorch eager", torch_rates, "")):
        mid = statistics.median(rates)
        print(f"  {name}:  {mid:10.0f} samples/s median ({min(rates):.0f}-{max(rates):.0f})  "
              f"{flops_per_sample * mid / 1e9:6.1f} GFLOP/s  {flops_per_sample * mid / 1e9 / peak:5.1%} of peak "
              f"(best round {flops_per_sample * max(rates) / 1e9 / peak:.1%}){extra}")
    ratios = [a / c for a, c in zip(jax_rates, torch_rates)]
    print(f"  ratio planted / PyTorch: {statistics.median(ratios):.2f}x median, "
          f"{min(ratios):.2f}-{max(ratios):.2f}x over the rounds")


if __name__ == "__main__":
    main()
