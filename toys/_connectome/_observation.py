"""Observation: what a synthetic connectome's recording holds.

Spike counts per frame, or calcium fluorescence as in the ChaLearn connectomics challenge
(Stetter et al. 2012; Orlandi et al. 2015, and the organizers' published scripts): every
spike adds ``calcium_jump`` (50 uM) to a calcium concentration that decays with
``calcium_tau`` (1 s); fluorescence ``F = Ca / (Ca + K_d)`` (K_d 300 uM) plus white noise
(0.03), then light scattered from every neuron j nearby, ``F_i += scatter * exp(-(d_ij /
scatter_length)^2) F_j`` (0.15 and 1/sqrt(1000) mm, so about one neighbour's worth on a 1 mm
square of 1,000 neurons); 50 frames/s; and a random subset of neurons recorded
(``observed_fraction``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from planted.groundtruth import ConnectomeTruth
from planted.toys._connectome._config import _STREAM_OBSERVE, ConnectomeConfig
from planted.toys._connectome._wiring import _sorted_unique


def network_bursts(truth: ConnectomeTruth, bin_width: float = 0.05) -> tuple[float, float]:
    """``(bursts per second, fraction of spikes in bursts)`` with the ChaLearn organizers'
    definition: a burst is a run of bins of ``bin_width`` seconds in which more than half the
    neurons fire."""
    return _bursts(truth.spike_times, truth.spike_neurons, truth.n_neurons, truth.duration, bin_width)


def _bursts(times: np.ndarray, neurons: np.ndarray, n: int, duration: float, bin_width: float = 0.05) -> tuple[float, float]:
    """``network_bursts`` of spikes given as times and neurons, among ``n`` neurons over ``duration`` s."""
    n_bins = max(1, int(duration / bin_width))
    bin_of = np.minimum((times / bin_width).astype(np.int64), n_bins - 1)
    active = np.bincount(_sorted_unique(bin_of * n + neurons) // n, minlength=n_bins)
    burst = np.concatenate([[False], active > n / 2])
    starts = np.flatnonzero(burst[1:] & ~burst[:-1]).size
    return starts / duration, float(burst[1:][bin_of].mean()) if bin_of.size else 0.0


def _counts(cfg: ConnectomeConfig, times: np.ndarray, neurons: np.ndarray, which: np.ndarray, decay: float = 0.0) -> np.ndarray:
    """(n_frames, len(which)) float32 spikes per frame of the neurons ``which``; with ``decay``
    (per second) each spike counts ``exp(-decay (frame end - spike time))``. A spike's time is the
    end of the step it fired in, so it belongs to the frame that holds that step (a spike at
    a frame's end is in that frame)."""
    n_frames = int(math.floor(cfg.duration * cfg.frame_rate + 1e-9))
    column = np.full(cfg.n_neurons, -1, np.int64)
    column[which] = np.arange(which.size)
    frame = np.floor((times - 0.5 * cfg.dt) * cfg.frame_rate).astype(np.int64)
    keep = (column[neurons] >= 0) & (frame < n_frames)
    flat = frame[keep] * which.size + column[neurons[keep]]
    weight = np.exp(-decay * ((frame[keep] + 1) / cfg.frame_rate - times[keep])) if decay else None
    return np.bincount(flat, weights=weight, minlength=n_frames * which.size).reshape(n_frames, which.size).astype(np.float32)


def calcium(counts: np.ndarray, cfg: ConnectomeConfig) -> np.ndarray:
    """Noiseless fluorescence (n_frames, m) from spike counts per frame (each spike weighted by
    its decay to the frame's end, as ``_counts(..., decay=1 / calcium_tau)`` gives), by the
    ChaLearn model: ``Ca_k = Ca_{k-1} exp(-1 / (frame_rate tau)) + jump * n_k`` above the baseline
    ``Ca_0``, and ``F = Ca / (Ca + K_d)``."""
    import scipy.signal

    decay = math.exp(-1.0 / (cfg.frame_rate * cfg.calcium_tau))
    ca = scipy.signal.lfilter([cfg.calcium_jump], [1.0, -decay], counts, axis=0) + cfg.calcium_base
    return (ca / (ca + cfg.calcium_kd)).astype(np.float32)


def _scatter_matrix(positions: np.ndarray, cfg: ConnectomeConfig) -> sp.csr_matrix:
    """(n, n) light scattering: ``scatter * exp(-(d_ij / scatter_length)^2)`` for j != i within
    three lengths (beyond, below 1.3e-4 of the amplitude)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(positions)
    d = tree.sparse_distance_matrix(tree, 3 * cfg.scatter_length, output_type="coo_matrix")
    keep = d.row != d.col
    values = cfg.scatter * np.exp(-((d.data[keep] / cfg.scatter_length) ** 2))
    return sp.csr_matrix((values, (d.row[keep], d.col[keep])), shape=(len(positions),) * 2)


def _observe(cfg: ConnectomeConfig, times, neurons, positions) -> tuple[np.ndarray, np.ndarray]:
    """The recorded neurons and their traces (n_frames, n_observed)."""
    rng = np.random.default_rng([cfg.seed, _STREAM_OBSERVE])
    n = cfg.n_neurons
    m = max(1, int(round(cfg.observed_fraction * n)))
    observed = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    if cfg.observation == "spikes":
        return observed, _counts(cfg, times, neurons, observed)
    # As the challenge: camera noise on each neuron's fluorescence, then light scattered from
    # every neuron nearby (recorded or not) onto the recorded ones.
    scatter = cfg.scatter > 0 and cfg.dim > 0
    sources = np.arange(n) if scatter else observed
    fluorescence = calcium(_counts(cfg, times, neurons, sources, decay=1.0 / cfg.calcium_tau), cfg)
    fluorescence += cfg.fluorescence_noise * rng.standard_normal(fluorescence.shape, dtype=np.float32)
    if not scatter:
        return observed, fluorescence
    traces = fluorescence[:, observed] + np.asarray((_scatter_matrix(positions, cfg)[observed] @ fluorescence.T).T)
    return observed, traces.astype(np.float32)
