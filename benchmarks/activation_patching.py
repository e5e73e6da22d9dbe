"""Activation patching over every node of a planted-circuit toy: vmapped against one run per node.

The toy has 4 tasks, width 256 and 4 blocks (1,024 neurons plus inputs and outputs). Each node is
patched alone to its corrupted-run activation on the task's 256 clean inputs; printed: nodes
patched per second batched (``CircuitModel.patch_nodes``: the clean residual stream is computed
once, a patch adds (new - clean value) x the node's write vector after its layer, and only the
later blocks run again, vmapped over chunks of a layer's nodes) and one by one (a jit-compiled
full run per node, as a loop over nodes would do; and eagerly, op by op), the ratios, compile
time apart, and the
matmul FLOP/s each reaches as a fraction of this machine's float32 matmul peak.

    python benchmarks/activation_patching.py [--chunk 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import device_line, matmul_peak

from planted import toys
from planted.groundtruth import Patch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk", type=int, default=64)
    args = parser.parse_args()
    print(device_line())
    t = time.perf_counter()
    toy = toys.planted_mlp(16, 4, seed=0, width=256, n_blocks=4, depth=3)
    build = time.perf_counter() - t
    model, task = toy.model, toy.tasks[0]
    n = toy.graph.n_nodes
    nodes = np.arange(n)
    corrupt = model.run(task.corrupted)["activations"]

    model.patch_nodes(task.clean, nodes[: args.chunk], corrupt, chunk=args.chunk)  # compile
    t = time.perf_counter()
    batched = model.patch_nodes(task.clean, nodes, corrupt, chunk=args.chunk)
    batched_s = time.perf_counter() - t

    eye = np.eye(n, dtype=np.float32)
    model.run(task.clean, Patch(node_mask=eye[0], node_values=corrupt))  # compile
    t = time.perf_counter()
    single = np.stack([model.run(task.clean, Patch(node_mask=eye[i], node_values=corrupt))["outputs"] for i in nodes])
    single_s = time.perf_counter() - t
    np.testing.assert_allclose(batched, single, atol=1e-4)

    # One by one without compilation (each jax op dispatched eagerly), on the first 64 nodes.
    device_params = model.device_params
    t = time.perf_counter()
    for i in nodes[:64]:
        model.run_fn(device_params, task.clean, Patch(node_mask=eye[i], node_values=corrupt))["outputs"].block_until_ready()
    eager_rate = 64 / (time.perf_counter() - t)

    p = model.params
    d = p["embed"].shape[1]
    batch = task.clean.shape[0]
    n_blocks, width, k = p["w_in"].shape[0], p["w_in"].shape[1], p["readout"].shape[0]
    # Matmul FLOPs (2 per multiply-add): a block reads and writes the residual, the readout reads it.
    block, readout = 2 * 2 * batch * d * width, 2 * batch * d * k
    full_run = 2 * batch * d * p["embed"].shape[0] + n_blocks * block + readout
    layers = toy.graph.layers
    # Batched patching reruns only the blocks after the patched node's layer.
    done = sum((n_blocks - min(layer, n_blocks)) * block + readout for layer in layers if layer <= n_blocks)
    peak = max(matmul_peak().values())
    print(f"planted_mlp: 4 tasks, width 256, 4 blocks, d_model {d}; {n} nodes, {batch} inputs per patch (built in {build:.1f}s)")
    print(f"  batched (vmap, downstream blocks only): {n / batched_s:7.0f} nodes/s  ({batched_s:.2f}s; "
          f"{done / batched_s / 1e9 / peak:.1%} of the {peak:.0f} GFLOP/s matmul peak)")
    print(f"  one by one (jit, one full run each):    {n / single_s:7.0f} nodes/s  ({single_s:.2f}s; "
          f"{full_run * n / single_s / 1e9 / peak:.1%} of peak)")
    print(f"  one by one (eager, no jit):             {eager_rate:7.0f} nodes/s")
    print(f"  ratio: {single_s / batched_s:.1f}x against the compiled loop, {n / batched_s / eager_rate:.1f}x against the eager one")


if __name__ == "__main__":
    main()
