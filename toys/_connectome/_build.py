"""The toy: wire, simulate and record a synthetic connectome, one stage module after another."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from planted.groundtruth import Toy
from planted.groundtruth import ConnectomeTruth, Recording
from planted.toys._checks import require_memory
from planted.toys._connectome._config import _STREAM_TUNING, ConnectomeConfig
from planted.toys._connectome._dynamics import _features, _simulate, _tuning
from planted.toys._connectome._observation import _observe
from planted.toys._connectome._wiring import _wiring

@dataclasses.dataclass(frozen=True, eq=False)
class ConnectomeToy(Toy):
    """A synthetic connectome: ``artifact`` (the ``Recording``) for methods, ``truth``
    (``ConnectomeTruth``) for evaluators."""

    recording: Recording = dataclasses.field(default=None, repr=False)

    kind: ClassVar[str] = "connectome"

    @property
    def artifact(self) -> Recording:
        return self.recording


# Bytes a synapse costs while the wiring is drawn, rewired and stored (int64 pairs, weights,
# CSR), fitted to flywire_scale's measured peak (54.5 M synapses in 3.5 GB).
_BYTES_PER_SYNAPSE = 64


def _memory(config: ConnectomeConfig) -> tuple[float, str, str]:
    """An estimate of the bytes ``build`` holds at its peak, what makes them, and the parameters
    that set them: the wiring (``density`` of n^2 synapses), the spikes (at most ``rate_max``),
    the recording and its calcium model (float64 per frame and recorded neuron)."""
    n = config.n_neurons
    synapses = _BYTES_PER_SYNAPSE * min(config.density, 1.0) * n * n
    frames = config.duration * config.frame_rate
    recording = 8.0 * 3 * frames * n * config.observed_fraction
    spikes = 12.0 * n * config.duration * min(config.rate_max, 50.0)
    return (synapses + recording + spikes,
            f"wiring {synapses / 2**30:.1f} GiB, recording {recording / 2**30:.1f} GiB, spikes {spikes / 2**30:.1f} GiB",
            "n_neurons or density" if synapses >= recording + spikes else "duration, frame_rate or n_neurons")


def _stimulus(config: ConnectomeConfig):
    """The tuning matrix and the stimulus protocol ``features(times) -> (len(times), F)``: drawn
    once on a fine clock, then read at blocks and at frames (the same for every run of a config)."""
    tuning = _tuning(config)
    stimulus_rng = np.random.default_rng([config.seed, _STREAM_TUNING, 1])
    clock = 1e-3
    fine = _features(config, np.arange(int(math.ceil(config.duration / clock)) + 1) * clock, stimulus_rng)

    def features(times):
        return fine[np.minimum((np.asarray(times) / clock).astype(np.int64), fine.shape[0] - 1)]

    return tuning, features


def build(config: ConnectomeConfig) -> ConnectomeToy:
    """Wire, simulate and record the network a ``ConnectomeConfig`` describes."""
    if not isinstance(config, ConnectomeConfig):
        raise ValueError(f"config must be a ConnectomeConfig, got {type(config).__name__}")
    require_memory(config.kind, *_memory(config))
    weights, types, positions, modules, hubs = _wiring(config)
    tuning, features = _stimulus(config)
    times, neurons = _simulate(config, weights, tuning, features)
    observed, traces = _observe(config, times, neurons, positions)
    frames = np.arange(traces.shape[0]) / config.frame_rate
    truth = ConnectomeTruth(weights=weights, cell_types=types, positions=positions, modules=modules, hubs=hubs,
                            tuning=tuning, stimulus=features(frames), spike_times=times, spike_neurons=neurons,
                            observed=observed, duration=float(config.duration))
    recording = Recording(traces=traces, frame_rate=float(config.frame_rate), kind=config.observation,
                          positions=positions[observed] if config.dim > 0 else None)
    return ConnectomeToy(config=config, truth=truth, recording=recording)


def connectome(
    n_neurons: int = 1000,
    *,
    seed: int,
    n_modules: int = 4,
    density: float = 0.012,
    mixing: float = 0.2,
    degree_sigma: float = 0.0,
    hub_fraction: float = 0.0,
    hub_boost: float = 4.0,
    rich_club: float = 0.0,
    exc_fraction: float = 0.8,
    dim: int = 2,
    length_scale: float = 0.0,
    weight: float = 2.0,
    weight_sigma: float = 0.5,
    inhibition: float = 4.0,
    reciprocity: float = 0.0,
    clustering: float = 0.0,
    model: str = "lif",
    duration: float = 10.0,
    dt: float = 1e-4,
    delay: float = 2e-3,
    tau_m: float = 0.02,
    tau_syn: float = 0.005,
    synapse: str = "exponential",
    threshold: float = 20.0,
    reset: float = 10.0,
    refractory: float = 2e-3,
    rate_base: float = 1.0,
    rate_gain: float = 2.0,
    rate_max: float = 200.0,
    depression: bool = False,
    depression_u: float = 0.5,
    depression_tau: float = 0.8,
    background_rate: float = 1000.0,
    background_weight: float = 3.5,
    stimulus: str = "none",
    n_features: int = 0,
    tuning_density: float = 0.3,
    tuning_gain: float = 5.0,
    stimulus_period: float = 2.0,
    stimulus_on: float = 0.5,
    kernel: str = "auto",
    observation: str = "calcium",
    frame_rate: float = 50.0,
    observed_fraction: float = 1.0,
    calcium_jump: float = 50.0,
    calcium_tau: float = 1.0,
    calcium_base: float = 0.0,
    calcium_kd: float = 300.0,
    fluorescence_noise: float = 0.03,
    scatter: float = 0.15,
    scatter_length: float = 0.0316,
) -> ConnectomeToy:
    """A synthetic connectome: planted wiring, simulated spikes and a recording of them.

    The parameters are the fields of ``ConnectomeConfig``, with its defaults; the stage modules
    (``_wiring``, ``_dynamics``, ``_observation``) describe the models. Units: seconds, Hz, mV
    (relative to rest), mm, and micromolar for calcium.

    Parameters
    ----------
    n_neurons : int
        Neurons, 2 to 10^7.
    seed : int
        Root seed of the wiring, tuning, stimulus, dynamics and observation streams.
    n_modules : int
        Planted modules (blocks of the stochastic block model).
    density : float in (0, 1]
        Expected connection probability.
    mixing : float in [0, 1]
        Fraction of the expected connections that run between modules.
    degree_sigma : float in [0, 3]
        Log-sd of the lognormal degree propensities (degree heterogeneity).
    hub_fraction, hub_boost : float
        Fraction of neurons planted as hubs, and the factor that raises their propensity.
    rich_club : float in [0, 1]
        Extra connection probability among hubs (needs ``hub_fraction > 0``).
    exc_fraction : float in [0, 1]
        Fraction of excitatory neurons (Dale's law: every outgoing weight has the neuron's sign).
    dim : {0, 2, 3}
        Positions in the unit square or cube (0: none).
    length_scale : float
        Distance-dependent wiring ``exp(-d / length_scale)``; 0 turns it off (needs dim 2 or 3).
    weight, weight_sigma, inhibition : float
        Median and log-sd of the lognormal weights (mV); inhibitory weights are ``inhibition``
        times stronger (0 blocks inhibitory synapses).
    reciprocity, clustering : float in [0, 1)
        Floors for the reciprocated fraction and the directed average clustering
        (``wiring_statistics``), reached by degree- and module-preserving swaps; 0 keeps the draw.
    model : {"lif", "rate"}
        Leaky integrate-and-fire neurons, or a linear-nonlinear-Poisson rate network.
    duration, dt, delay : float
        Simulated seconds, the step and the synaptic delay (s).
    tau_m, tau_syn : float
        Membrane and synaptic time constants (s).
    synapse : {"exponential", "alpha"}
        Shape of the synaptic current.
    threshold, reset, refractory : float
        LIF threshold and reset (mV) and refractory period (s).
    rate_base, rate_gain, rate_max : float
        The rate model's law ``clip(rate_base + rate_gain v, 0, rate_max)`` (Hz).
    depression, depression_u, depression_tau : bool, float, float
        Tsodyks-Markram short-term depression: on/off, release fraction and recovery time (s).
    background_rate, background_weight : float
        Poisson background input per neuron (Hz) and its weight (mV).
    stimulus : {"none", "flashes", "gratings", "events"}
        Stimulus protocol (needs ``n_features >= 1`` unless "none").
    n_features, tuning_density, tuning_gain : int, float, float
        Stimulus features, the probability that a neuron is tuned to each (mixed selectivity)
        and the median tuning gain (mV).
    stimulus_period, stimulus_on : float
        Period of the protocol and how long each presentation lasts (s).
    kernel : {"auto", "scipy", "jax"}
        Simulation path (the same spikes either way).
    observation : {"calcium", "spikes"}
        Calcium fluorescence (ChaLearn model) or spike counts per frame.
    frame_rate : float
        Frames per second.
    observed_fraction : float in (0, 1]
        Fraction of neurons recorded (a random subset).
    calcium_jump, calcium_tau, calcium_base, calcium_kd : float
        Calcium added per spike (uM), its decay time (s), the baseline (uM) and the indicator's K_d (uM).
    fluorescence_noise : float
        White noise added to each fluorescence trace.
    scatter, scatter_length : float
        Amplitude and length (mm) of light scattered from nearby neurons.

    Returns
    -------
    ConnectomeToy
        ``artifact``: the ``Recording`` (traces, frame rate, positions of the recorded neurons);
        ``truth``: the ``ConnectomeTruth``.

    References
    ----------
    Karrer & Newman 2011, "Stochastic blockmodels and community structure in networks";
    Stetter et al. 2012, "Model-free reconstruction of excitatory neuronal connectivity from
    calcium imaging signals"; Orlandi et al. 2015, "First connectomics challenge: from imaging to
    connectivity".
    """
    return build(ConnectomeConfig(**locals()))  # the parameters, exactly the config's fields
