"""Compiled RASP transformers: compile and verify time per program, forward throughput against the
machine's matmul peak (and the float64 NumPy forward), and patching every component batched
against one run per component.

    python benchmarks/rasp_transformers.py [--batch 8192]

Printed per standard program: compile time, the differential test on every input (or the stated
sample) with the internal checks, and the time to build its ``rasp_transformer`` toy (task,
circuit truth by intervention, verify). Then, for the largest compiled model (shuffle_dyck3) and
for induction, sequences per second of the jit-compiled, vmapped JAX forward, its FLOP/s as a
fraction of this machine's float32 matmul peak, and the NumPy float64 forward's rate. Then every
component of the IOI-like toy and of shuffle_dyck2 patched alone on 512 inputs: batched
(``TransformerModel.patch_nodes``, vmapped over chunks of one-hot masks) and one jit-compiled run
per component, compile time apart.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import device_line, matmul_peak

from planted import toys
from planted.groundtruth import Patch
from planted.toys import rasp


def _flops(compiled, batch: int) -> float:
    """Multiply-adds x 2 of one forward pass over ``batch`` sequences of the maximum length."""
    n_layers, n_heads, d, d_head = compiled.params["w_q"].shape
    d_mlp = compiled.params["w_in"].shape[2]
    n = compiled.max_seq_len + 1
    per_layer = n_heads * (3 * n * d * d_head + 2 * n * n * d_head + n * d_head * d) + 2 * n * d * d_mlp
    return 2.0 * batch * (n_layers * per_layer + n * d * compiled.params["unembed"].shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8192)
    args = parser.parse_args()
    print(device_line())
    peak = matmul_peak()
    print(f"float32 matmul peak: JAX {peak['jax']:.0f} GFLOP/s, NumPy {peak['numpy']:.0f} GFLOP/s")

    print("\nprogram            layers heads d_model d_mlp  compile   inputs  differential  toy build+verify")
    for spec in rasp.PROGRAMS:
        t = time.perf_counter()
        compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        result = rasp.differential(compiled, limit=spec.sample, backend="numpy")
        diff_s = time.perf_counter() - t
        assert result.ok, spec.name
        build = "-"
        if spec.task and spec.name != "shuffle_dyck3":
            t = time.perf_counter()
            toys.rasp_transformer(spec.name, 32, seed=0)
            build = f"{time.perf_counter() - t:6.2f} s"
        n_layers, n_heads, d, _ = compiled.params["w_q"].shape
        print(f"{spec.name:18s} {n_layers:6d} {n_heads:5d} {d:7d} {compiled.params['w_in'].shape[2]:5d} "
              f"{compile_s * 1e3:6.0f} ms {result.n_inputs:8d} {diff_s:10.2f} s  {build}")

    print(f"\nforward, {args.batch} sequences of the maximum length")
    for name in ("shuffle_dyck3", "induction"):
        spec = next(s for s in rasp.PROGRAMS if s.name == name)
        compiled = rasp.compile_program(spec.make(), spec.vocab, spec.max_seq_len, causal=spec.causal)
        rng = np.random.default_rng(0)
        ids = np.concatenate([np.zeros((args.batch, 1), np.int32),
                              rng.integers(1, len(spec.vocab) + 1, (args.batch, spec.max_seq_len)).astype(np.int32)], axis=1)
        rasp.apply(compiled.params, ids, causal=compiled.causal)  # compile
        times = []
        for _ in range(5):
            t = time.perf_counter()
            rasp.apply(compiled.params, ids, causal=compiled.causal)
            times.append(time.perf_counter() - t)
        jax_s = min(times)
        t = time.perf_counter()
        rasp.run(compiled, ids[:1024], backend="numpy")
        numpy_rate = 1024 / (time.perf_counter() - t)
        gflops = _flops(compiled, args.batch) / jax_s / 1e9
        print(f"  {name:14s} JAX {args.batch / jax_s:10.0f} seq/s, {gflops:6.1f} GFLOP/s = {gflops / peak['jax']:.0%} of the "
              f"peak; NumPy float64 {numpy_rate:8.0f} seq/s ({args.batch / jax_s / numpy_rate:.1f}x)")

    for name in ("ioi", "shuffle_dyck2"):
        toy = toys.rasp_transformer(name, 512, seed=0)
        model, task = toy.model, toy.tasks[0]
        corrupt = model.run(task.corrupted)["activations"]
        nodes = np.arange(toy.graph.n_nodes - 1)
        t = time.perf_counter()
        model.patch_nodes(task.clean, nodes[:8], corrupt)
        compile_batched = time.perf_counter() - t
        t = time.perf_counter()
        batched = model.patch_nodes(task.clean, nodes, corrupt)
        batched_s = time.perf_counter() - t
        eye = np.eye(toy.graph.n_nodes, dtype=np.float32)
        t = time.perf_counter()
        model.run(task.clean, Patch(node_mask=eye[0], node_values=corrupt))
        compile_single = time.perf_counter() - t
        t = time.perf_counter()
        single = np.stack([model.run(task.clean, Patch(node_mask=eye[i], node_values=corrupt))["outputs"] for i in nodes])
        single_s = time.perf_counter() - t
        np.testing.assert_allclose(batched, single, atol=1e-4)
        print(f"patching each of the {nodes.size} components of {name} alone, 512 inputs: batched {nodes.size / batched_s:.0f} "
              f"components/s vs one run each {nodes.size / single_s:.0f} ({single_s / batched_s:.1f}x); compile "
              f"{compile_batched:.1f} s and {compile_single:.1f} s apart")


if __name__ == "__main__":
    main()
