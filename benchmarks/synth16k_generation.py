"""Generation speed of the synth16k preset (16,384 features, d=768), streamed in samples/s.

Printed beside the rate: the same run's cost of the unavoidable pieces, so the figure can be read
against the machine: drawing one float32 normal per feature per sample (the Gaussian copula's
latent, which dominates) and writing the activations (memory bandwidth).

    python benchmarks/synth16k_generation.py [--samples 40960]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from planted import toys
from planted.toys._sparse_features import CHUNK_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10 * CHUNK_SIZE)
    args = parser.parse_args()

    t = time.perf_counter()
    toy = toys.preset("synth16k", seed=0, n_samples=1)
    setup = time.perf_counter() - t
    n_features, d = toy.truth.directions.shape

    t = time.perf_counter()
    nnz = 0
    for batch in toy.batches(4096, n_samples=args.samples, start=CHUNK_SIZE):
        nnz += batch.codes.nnz
    elapsed = time.perf_counter() - t
    rate = args.samples / elapsed

    # The floor: one float32 normal per feature per sample, drawn on every core as the generator does.
    rngs = [np.random.default_rng([0, i]) for i in range(4)]
    part = CHUNK_SIZE // 4
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        t = time.perf_counter()
        for _ in range(3):
            list(pool.map(lambda r: r.standard_normal((part, n_features), dtype=np.float32), rngs))
        normals = 3 * CHUNK_SIZE / (time.perf_counter() - t)

    a = np.empty((CHUNK_SIZE, d), np.float32)
    t = time.perf_counter()
    for _ in range(20):
        b = a.copy()
    copy_gbs = 20 * a.nbytes * 2 / (time.perf_counter() - t) / 1e9
    del b

    out_gbs = rate * d * 4 / 1e9
    print(f"synth16k: {n_features} features, d={d}, average L0 {nnz / args.samples:.1f}; setup {setup:.1f}s")
    print(f"  generation:           {rate:10.0f} samples/s ({args.samples} samples in {elapsed:.1f}s)")
    print(f"  one normal / feature: {normals:10.0f} samples/s (float32 normals alone, all cores: the copula's floor)")
    print(f"  activations written:  {out_gbs:.3f} GB/s against a measured copy bandwidth of {copy_gbs:.1f} GB/s")
    print(f"  generation / copula floor: {rate / normals:.2f}")


if __name__ == "__main__":
    main()
