"""How the cost of planted's hot paths grows with size: three sizes or more each, and the exponent
of a power law fitted to the times (the slope of log seconds on log size).

- generation: seconds per sample of ``toys.sparse_features`` (d = 256, 20 active features on
  average) against ``n_features``, with a rank-25 copula and without one;
- scoring: ``evaluators.score_features`` of ``2 n`` latents against ``n`` features (d = 256);
- connectome: ``toys.connectome`` build and 1 s of activity against ``n_neurons``, at a fixed
  mean degree of 12;
- graph methods: Louvain, PageRank and betweenness (1,000 sampled sources) on the directed SBM of
  ``benchmarks/graph_methods.py`` (about 20 edges per node) against its number of nodes.

Each size is timed ``--repeats`` times and the best time is kept.

    python benchmarks/scaling.py [--repeats 2] [--only generation,scoring,connectome,graphs]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from planted import toys
from planted.evaluators import score_features
from planted.groundtruth import FeatureTruth
from planted.methods import graphs

from graph_methods import sbm
from _machine import device_line


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def exponent(sizes, seconds) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def report(name: str, unit: str, sizes, seconds, per: str = "s") -> None:
    cells = ", ".join(f"{s:,}: {t:.3g} {per}" for s, t in zip(sizes, seconds))
    print(f"  {name:<34} exponent {exponent(sizes, seconds):5.2f}   ({unit} -> {cells})")


def generation(repeats: int) -> None:
    sizes = [4096, 16384, 65536]
    samples = 4 * 4096
    for rank in (25, 0):
        per_sample = []
        for n in sizes:
            toy = toys.sparse_features(n, 256, 1, mean_active=20, correlation_rank=rank, seed=0)
            run = lambda: sum(b.codes.nnz for b in toy.batches(4096, n_samples=samples, start=4096))  # noqa: E731
            run()
            per_sample.append(best_time(run, repeats) / samples * 1e6)
        report(f"generation, copula rank {rank}", "n_features", sizes, per_sample, per="us/sample")


def _truth(n: int, d: int, rng) -> tuple[FeatureTruth, np.ndarray]:
    true = rng.standard_normal((n, d)).astype(np.float32)
    true /= np.linalg.norm(true, axis=1, keepdims=True)
    truth = FeatureTruth(directions=true, norms=np.ones(n), represented=np.ones(n, bool),
                         codes=sp.csr_matrix((1, n), dtype=np.float32), firing_probabilities=np.full(n, 0.01),
                         labels=tuple(f"f{i}" for i in range(n)))
    latents = rng.standard_normal((2 * n, d)).astype(np.float32)
    latents[: n // 2] = true[: n // 2] + 0.25 * rng.standard_normal((n // 2, d)).astype(np.float32) / np.sqrt(d)
    return truth, latents[rng.permutation(2 * n)]


def scoring(repeats: int) -> None:
    sizes = [2048, 4096, 8192]
    seconds = []
    for n in sizes:
        truth, latents = _truth(n, 256, np.random.default_rng(0))
        seconds.append(best_time(lambda: score_features(latents, truth), repeats))
    report("score_features, 2n latents", "n features", sizes, seconds)


def connectome(repeats: int) -> None:
    sizes = [500, 1000, 2000, 4000]
    seconds = [best_time(lambda: toys.connectome(n, density=12 / n, duration=1.0, seed=0), repeats) for n in sizes]
    report("connectome build + 1 s of activity", "n_neurons", sizes, seconds)


def graph_methods(repeats: int) -> None:
    sizes = [2500, 5000, 10000, 20000]
    matrices = [sbm(n)[0] for n in sizes]
    rows = {
        "Louvain": lambda m: graphs.communities(m, method="louvain", seed=0),
        "PageRank": lambda m: graphs.centrality(m, "pagerank"),
        "betweenness (1,000 sources)": lambda m: graphs.centrality(m, "betweenness", seed=0),
    }
    for name, fn in rows.items():
        seconds = [best_time(lambda: fn(m), repeats) for m in matrices]
        report(name, "nodes", sizes, seconds)


WORKLOADS = {"generation": generation, "scoring": scoring, "connectome": connectome, "graphs": graph_methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()
    print(device_line())
    chosen = args.only.split(",")
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        parser.error(f"--only: unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    print("cost growth (seconds ~ size^exponent):")
    for name in chosen:
        WORKLOADS[name](args.repeats)


if __name__ == "__main__":
    main()
