"""Generation speed of the synth16k preset (16,384 features, d=768) against SAELens's SynthSAEBench
generator on the same settings, interleaved in one run, in samples/s (activations and codes).

Printed beside the rates: the same run's limits of the machine for the work the generator cannot
avoid: writing the activations (memory bandwidth) and the copula's low-rank product for the features
without a parent (float32 matmul peak).

    python benchmarks/synth16k_generation.py [--samples 40960] [--repeats 3] [--no-saelens]

SAELens needs ``pip install sae-lens`` (with ``torch==2.13.0`` pinned on a CPU-only machine).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from planted import toys
from planted.toys._sparse_features import CHUNK_SIZE

from _machine import device_line, matmul_peak


def planted_rate(toy, samples: int, start: int) -> tuple[float, float]:
    t = time.perf_counter()
    nnz = 0
    for batch in toy.batches(4096, n_samples=samples, start=start):
        nnz += batch.codes.nnz
    return samples / (time.perf_counter() - t), nnz / samples


def saelens_model(config):
    import torch
    from sae_lens.synthetic import (
        HierarchyConfig,
        LowRankCorrelationConfig,
        SyntheticModel,
        SyntheticModelConfig,
        ZipfianFiringProbabilityConfig,
    )

    torch.set_grad_enabled(False)
    cfg = SyntheticModelConfig(
        num_features=config.n_features,
        hidden_dim=config.d_model,
        firing_probability=ZipfianFiringProbabilityConfig(exponent=config.zipf_exponent, max_prob=config.p_max,
                                                          min_prob=config.p_min),
        hierarchy=HierarchyConfig(total_root_nodes=config.hierarchy_roots, branching_factor=config.hierarchy_branching,
                                  max_depth=config.hierarchy_depth, mutually_exclusive_portion=1.0,
                                  compensate_probabilities=True),
        correlation=LowRankCorrelationConfig(rank=config.correlation_rank, correlation_scale=config.correlation_scale,
                                             seed=0),
        mean_firing_magnitudes=config.magnitude_mean,
        std_firing_magnitudes=config.magnitude_std,
        bias=False,
        seed=0,
    )
    return SyntheticModel(cfg)


def saelens_rate(model, samples: int, batch: int = 4096) -> tuple[float, float]:
    t = time.perf_counter()
    nnz = 0
    for _ in range(samples // batch):
        _, features = model.sample_with_features(batch)
        nnz += int((features != 0).sum())
    done = (samples // batch) * batch
    return done / (time.perf_counter() - t), nnz / done


def copy_bandwidth(d: int) -> float:
    a = np.empty((CHUNK_SIZE, d), np.float32)
    b = a.copy()
    t = time.perf_counter()
    for _ in range(20):
        np.copyto(b, a)
    return 20 * a.nbytes * 2 / (time.perf_counter() - t) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10 * CHUNK_SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-saelens", action="store_true")
    args = parser.parse_args()
    print(device_line())

    t = time.perf_counter()
    toy = toys.preset("synth16k", seed=0, n_samples=1)
    setup = time.perf_counter() - t
    config = toy.config
    model = None
    if not args.no_saelens:
        try:
            t = time.perf_counter()
            model = saelens_model(config)
            print(f"SAELens SyntheticModel built in {time.perf_counter() - t:.1f}s")
        except ImportError:
            print("SAELens is not installed (pip install sae-lens); its column is left out")
    planted_rates, saelens_rates = [], []
    for repeat in range(args.repeats):
        rate, l0 = planted_rate(toy, args.samples, start=CHUNK_SIZE * (1 + repeat * (args.samples // CHUNK_SIZE + 1)))
        planted_rates.append(rate)
        if model is not None:
            rate_s, l0_s = saelens_rate(model, min(args.samples, 4 * 4096))
            saelens_rates.append(rate_s)

    n, d = config.n_features, config.d_model
    n_top = n - config.hierarchy_nodes + config.hierarchy_roots
    peak = max(matmul_peak().values())
    bandwidth = copy_bandwidth(d)
    best = max(planted_rates)
    print(f"synth16k: {n} features ({n_top} without a parent), d={d}, rank {config.correlation_rank}; setup {setup:.1f}s")
    print(f"  planted:  {statistics.median(planted_rates):9.0f} samples/s median of {args.repeats} "
          f"({min(planted_rates):.0f}-{max(planted_rates):.0f}), average L0 {l0:.1f}")
    if saelens_rates:
        print(f"  SAELens:  {statistics.median(saelens_rates):9.0f} samples/s median of {args.repeats} "
              f"({min(saelens_rates):.0f}-{max(saelens_rates):.0f}), average L0 {l0_s:.1f}")
        print(f"  planted / SAELens: {statistics.median(planted_rates) / statistics.median(saelens_rates):.1f}x "
              f"(per repeat: {', '.join(f'{a / b:.1f}' for a, b in zip(planted_rates, saelens_rates))})")
    writes = bandwidth * 1e9 / (d * 4)
    product = peak * 1e9 / (2 * n_top * config.correlation_rank)
    print(f"  limits: writing the activations at {bandwidth:.1f} GB/s allows {writes:,.0f} samples/s (planted at "
          f"{best / writes:.1%}); the low-rank product at {peak:.0f} GFLOP/s allows {product:,.0f} samples/s "
          f"(planted at {best / product:.1%})")


if __name__ == "__main__":
    main()
