"""The ChaLearn connectomics challenge setting (``chalearn2014``) and its published ordering.

Simulates the preset (optionally shorter than its hour), records calcium fluorescence and
scores the connectivity methods with the challenge's metric (AUROC over ordered pairs, diagonal
masked), then the filtered methods on the spike counts per frame (the best a recording could
give). Published on the challenge networks (Orlandi et al. 2015; Sutera et al. 2014, Table 1):
correlation on raw fluorescence about 0.66-0.70, correlation on filtered signals higher, and
partial correlation on filtered signals about 0.92-0.94. Printed: simulation time, firing and
burst statistics, and each method's AUROC / AUPRC, also on the spike counts and on the traces
filtered without the activity weighting.

    python benchmarks/chalearn_reproduction.py [--duration 3600] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from planted import toys
from planted.evaluators.connectome import score_connectivity
from planted.groundtruth import Recording
from planted.methods import connectivity as mc
from planted.toys._connectome._observation import _counts
from _machine import device_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(device_line())
    start = time.perf_counter()
    toy = toys.preset("chalearn2014", seed=args.seed, duration=args.duration)
    built = time.perf_counter() - start
    truth, recording = toy.truth, toy.artifact
    bursts, in_bursts = toys.network_bursts(truth)  # more than half the neurons active in a 50 ms bin
    coo = truth.weights.tocoo()
    within = (truth.modules[coo.row] == truth.modules[coo.col]).mean()
    reciprocity, clustering = toys.wiring_statistics(truth.weights)
    print(f"chalearn2014, {args.duration:.0f} s, seed {args.seed}: built in {built:.1f} s; {truth.weights.nnz} synapses "
          f"({truth.weights.nnz / (1000 * 999):.4f} density, {within:.0%} inside modules, reciprocity {reciprocity:.2f}, "
          f"directed clustering {clustering:.3f}); "
          f"mean rate {truth.rates().mean():.2f} Hz; "
          f"{bursts:.3f} network bursts/s holding {in_bursts:.0%} of spikes")
    methods = {
        "correlation, raw": lambda r: mc.correlation(r, preprocess="raw"),
        "correlation, filtered": lambda r: mc.correlation(r, preprocess="filtered"),
        "partial correlation, filtered": lambda r: mc.partial_correlation(r, preprocess="filtered"),
        "lagged correlation, filtered": lambda r: mc.lagged_correlation(r),
        "granger, filtered": lambda r: mc.granger(r),
    }
    # The same methods on the spikes themselves, counted per frame: what the recording could give
    # at best, with the calcium, noise and light scattering taken away.
    counts = _counts(toy.config, truth.spike_times, truth.spike_neurons, truth.observed)
    spikes = Recording(traces=counts, frame_rate=recording.frame_rate, kind="spikes")
    print(f"{'method':32s} {'AUROC':>7s} {'AUPRC':>7s} {'time':>7s}")
    for name, method in methods.items():
        t = time.perf_counter()
        scores = score_connectivity(method(recording), truth)
        print(f"{name:32s} {scores.auroc:7.3f} {scores.auprc:7.3f} {time.perf_counter() - t:6.1f}s")
    for name in ("correlation, filtered", "partial correlation, filtered"):
        scores = score_connectivity(methods[name](spikes), truth)
        print(f"{name + ' (spikes)':32s} {scores.auroc:7.3f} {scores.auprc:7.3f}")
    # The filter without its last step, the activity weighting (which lowers every pair's
    # zero-lag correlation): low-pass, difference and threshold only.
    events = Recording(traces=mc.preprocess(recording.traces, "calcium", weighting=False),
                       frame_rate=recording.frame_rate, kind="calcium")
    for name, method in (("correlation", mc.correlation), ("partial correlation", mc.partial_correlation)):
        scores = score_connectivity(method(events, preprocess="raw"), truth)
        print(f"{name + ', filtered, unweighted':32s} {scores.auroc:7.3f} {scores.auprc:7.3f}")


if __name__ == "__main__":
    main()
