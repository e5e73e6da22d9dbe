"""Memory and time of score_features on a large dictionary: 65,536 latents vs 16,384 features, d=768.

A dense cosine matrix alone would be 4 GiB; scoring works in chunks of latents and matches on each
feature's best candidates. Printed: peak resident memory added by scoring, time, and the share
of the time spent in the cosine matmuls against this machine's matmul rate.

    python benchmarks/score_memory.py [--latents 65536 --features 16384 --d-model 768]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp

from planted.evaluators import score_features
from planted.groundtruth import FeatureTruth


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latents", type=int, default=65_536)
    parser.add_argument("--features", type=int, default=16_384)
    parser.add_argument("--d-model", type=int, default=768)
    args = parser.parse_args()
    n, k, d = args.features, args.latents, args.d_model
    rng = np.random.default_rng(0)
    true = rng.standard_normal((n, d)).astype(np.float32)
    true /= np.linalg.norm(true, axis=1, keepdims=True)
    truth = FeatureTruth(
        directions=true,
        norms=np.ones(n),
        represented=np.ones(n, bool),
        codes=sp.csr_matrix((1, n), dtype=np.float32),
        firing_probabilities=np.full(n, 0.01),
        labels=tuple(f"f{i}" for i in range(n)),
    )
    # Half the features (or of the latents, when fewer) recovered with noise, the rest random.
    latents = rng.standard_normal((k, d)).astype(np.float32)
    half = min(n, k) // 2
    latents[:half] = true[:half] + 0.25 * rng.standard_normal((half, d)).astype(np.float32) / np.sqrt(d)
    latents = latents[rng.permutation(k)]

    t = time.perf_counter()
    a = rng.standard_normal((2048, d)).astype(np.float32)
    b = rng.standard_normal((d, 4096)).astype(np.float32)
    a @ b
    t = time.perf_counter()
    for _ in range(5):
        a @ b
    gflops = 5 * 2 * 2048 * d * 4096 / (time.perf_counter() - t) / 1e9

    before = _peak_rss_gib()
    t = time.perf_counter()
    s = score_features(latents, truth)
    elapsed = time.perf_counter() - t
    after = _peak_rss_gib()
    matmul_s = 2 * n * k * d / (gflops * 1e9)
    print(f"score_features: {k} latents x {n} features, d={d}")
    print(f"  time {elapsed:.1f}s (cosine matmuls alone at the measured {gflops:.0f} GFLOP/s: {matmul_s:.1f}s)")
    print(f"  peak resident memory {after:.2f} GiB (inputs held before scoring: {before:.2f} GiB; "
          f"a dense cosine matrix would be {n * k * 4 / 2**30:.1f} GiB)")
    print(f"  mmcs {s.mmcs:.3f} matched {s.matched_cosine:.3f} recovered {s.recovered:.3f} spurious {s.spurious:.3f}")


if __name__ == "__main__":
    main()
