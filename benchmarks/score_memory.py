"""Time and memory of score_features on a large dictionary against SAELens's MCC, interleaved.

16,384 features against 32,768 latents (d = 768) by default: half the features recovered with
noise, the rest of the latents random. Each side runs in a fresh process (so its peak resident
memory is its own), alternating, ``--repeats`` times:

- planted: ``evaluators.score_features`` (chunks of latents, exact assignment up to 2^27 pairs,
  above that a matching on each feature's best candidates);
- SAELens: ``sae_lens.synthetic.mean_correlation_coefficient`` (a dense cosine matrix and SciPy's
  ``linear_sum_assignment``), the same quantity as planted's ``mcc``.

Printed: the median seconds and the peak memory each adds to its inputs, the ratios, the two MCCs
(equal when both found an optimal matching), and the similarity pass of score_features (cosines,
maxima, candidates) against this machine's float32 matmul peak measured in the same run.

    python benchmarks/score_memory.py [--latents 32768 --features 16384 --d-model 768 --repeats 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _inputs(n: int, k: int, d: int):
    from planted.groundtruth import FeatureTruth

    rng = np.random.default_rng(0)
    true = rng.standard_normal((n, d)).astype(np.float32)
    true /= np.linalg.norm(true, axis=1, keepdims=True)
    truth = FeatureTruth(directions=true, norms=np.ones(n), represented=np.ones(n, bool),
                         codes=sp.csr_matrix((1, n), dtype=np.float32), firing_probabilities=np.full(n, 0.01),
                         labels=tuple(f"f{i}" for i in range(n)))
    latents = rng.standard_normal((k, d)).astype(np.float32)
    half = min(n, k) // 2
    latents[:half] = true[:half] + 0.25 * rng.standard_normal((half, d)).astype(np.float32) / np.sqrt(d)
    latents = latents[rng.permutation(k)]
    latents /= np.linalg.norm(latents, axis=1, keepdims=True)
    return truth, latents


def child(side: str, n: int, k: int, d: int) -> dict:
    truth, latents = _inputs(n, k, d)
    before = _peak_rss_gib()
    if side == "planted":
        from planted.evaluators import score_features

        t = time.perf_counter()
        s = score_features(latents, truth)
        elapsed = time.perf_counter() - t
        mcc = s.mcc
    elif side == "similarity":
        from planted.evaluators.features import _similarities

        t = time.perf_counter()
        _similarities(truth.directions, latents, chunk_size=4096, candidates=32)
        elapsed = time.perf_counter() - t
        mcc = float("nan")
    else:
        import torch
        from sae_lens.synthetic import mean_correlation_coefficient

        torch.set_grad_enabled(False)
        a, b = torch.from_numpy(truth.directions), torch.from_numpy(latents)
        t = time.perf_counter()
        mcc = mean_correlation_coefficient(a, b)
        elapsed = time.perf_counter() - t
    return dict(side=side, seconds=elapsed, added_gib=_peak_rss_gib() - before, mcc=mcc)


def _run_child(side: str, args) -> dict | None:
    out = subprocess.run([sys.executable, __file__, "--child", side, "--features", str(args.features),
                          "--latents", str(args.latents), "--d-model", str(args.d_model)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["(no output)"]
        print(f"  {side} failed: {tail[0]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latents", type=int, default=32_768)
    parser.add_argument("--features", type=int, default=16_384)
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-saelens", action="store_true")
    parser.add_argument("--child", choices=["planted", "saelens", "similarity"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    n, k, d = args.features, args.latents, args.d_model
    if args.child:
        print(json.dumps(child(args.child, n, k, d)))
        return
    from _machine import device_line, matmul_peak  # jax stays out of the measured children

    print(device_line())

    sides = ["planted", "similarity"] + ([] if args.no_saelens else ["saelens"])
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    for _ in range(args.repeats):
        for side in sides:
            result = _run_child(side, args)
            if result is not None:
                runs[side].append(result)

    peak = matmul_peak()["numpy"]
    floor = 2 * n * k * d / (peak * 1e9)
    print(f"score {k:,} latents against {n:,} features, d={d}; median of {args.repeats} fresh processes each")
    for side, label in (("planted", "planted score_features"), ("saelens", "SAELens MCC")):
        if runs.get(side):
            secs = [r["seconds"] for r in runs[side]]
            mem = max(r["added_gib"] for r in runs[side])
            print(f"  {label:<24} {statistics.median(secs):7.1f} s ({min(secs):.1f}-{max(secs):.1f})   "
                  f"peak memory added {mem:5.2f} GiB   mcc {runs[side][0]['mcc']:.6f}")
    if runs.get("planted") and runs.get("saelens"):
        p, s = runs["planted"], runs["saelens"]
        speed = statistics.median(r["seconds"] for r in s) / statistics.median(r["seconds"] for r in p)
        memory = max(r["added_gib"] for r in s) / max(max(r["added_gib"] for r in p), 1e-9)
        print(f"  planted is {speed:.1f}x faster with {memory:.1f}x less memory; "
              f"|mcc difference| {abs(p[0]['mcc'] - s[0]['mcc']):.2e}")
    if runs.get("similarity"):
        sim = statistics.median(r["seconds"] for r in runs["similarity"])
        print(f"  similarity pass (cosines, maxima, candidates): {sim:.2f} s; the cosine matmul alone at this "
              f"machine's {peak:.0f} GFLOP/s takes {floor:.2f} s: {floor / sim:.0%} of the matmul peak")


if __name__ == "__main__":
    main()
