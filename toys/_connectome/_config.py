"""The config of a synthetic connectome: ``ConnectomeConfig`` and its validation."""

from __future__ import annotations

import dataclasses

from planted.groundtruth import Config, Problems

STIMULI = ("none", "flashes", "gratings", "events")
OBSERVATIONS = ("calcium", "spikes")
KERNELS = ("auto", "scipy", "jax")
MODELS = ("lif", "rate")
SYNAPSES = ("exponential", "alpha")
_STREAM_WIRING, _STREAM_TUNING, _STREAM_DYNAMICS, _STREAM_OBSERVE = 401, 402, 403, 404


@dataclasses.dataclass(frozen=True)
class ConnectomeConfig(Config):
    """Config of ``toys.connectome``; see ``connectome`` for each field and the stage modules
    (``_wiring``, ``_dynamics``, ``_observation``) for the models.

    Units: seconds, Hz, mV (membrane potential relative to rest), mm, and the calcium model's
    micromolar.
    """

    kind = "connectome"

    # wiring
    n_neurons: int = 1000
    n_modules: int = 4
    density: float = 0.012
    mixing: float = 0.2
    degree_sigma: float = 0.0
    hub_fraction: float = 0.0
    hub_boost: float = 4.0
    rich_club: float = 0.0
    exc_fraction: float = 0.8
    dim: int = 2
    length_scale: float = 0.0
    weight: float = 2.0
    weight_sigma: float = 0.5
    inhibition: float = 4.0
    reciprocity: float = 0.0
    clustering: float = 0.0
    # dynamics
    model: str = "lif"
    duration: float = 10.0
    dt: float = 1e-4
    delay: float = 2e-3
    tau_m: float = 0.02
    tau_syn: float = 0.005
    synapse: str = "exponential"
    threshold: float = 20.0
    reset: float = 10.0
    refractory: float = 2e-3
    rate_base: float = 1.0
    rate_gain: float = 2.0
    rate_max: float = 200.0
    depression: bool = False
    depression_u: float = 0.5
    depression_tau: float = 0.8
    background_rate: float = 1000.0
    background_weight: float = 3.5
    stimulus: str = "none"
    n_features: int = 0
    tuning_density: float = 0.3
    tuning_gain: float = 5.0
    stimulus_period: float = 2.0
    stimulus_on: float = 0.5
    kernel: str = "auto"
    # observation
    observation: str = "calcium"
    frame_rate: float = 50.0
    observed_fraction: float = 1.0
    calcium_jump: float = 50.0
    calcium_tau: float = 1.0
    calcium_base: float = 0.0
    calcium_kd: float = 300.0
    fluorescence_noise: float = 0.03
    scatter: float = 0.15
    scatter_length: float = 0.0316
    seed: int = 0

    def _check(self, p: Problems) -> None:
        p.integer("n_neurons", self.n_neurons, low=2, high=10_000_000)
        p.integer("n_modules", self.n_modules, low=1, high=self.n_neurons if isinstance(self.n_neurons, int) else None)
        p.number("density", self.density, low=0, high=1, low_open=True)
        p.number("mixing", self.mixing, low=0, high=1)
        p.number("degree_sigma", self.degree_sigma, low=0, high=3)
        p.number("hub_fraction", self.hub_fraction, low=0, high=0.5)
        p.number("hub_boost", self.hub_boost, low=1, high=1000)
        p.number("rich_club", self.rich_club, low=0, high=1)
        if isinstance(self.rich_club, (int, float)) and self.rich_club > 0 and self.hub_fraction == 0:
            p.add(f"rich_club={self.rich_club} connects hubs: it needs hub_fraction > 0")
        p.number("exc_fraction", self.exc_fraction, low=0, high=1)
        p.number("reciprocity", self.reciprocity, low=0, high=1, high_open=True)
        p.number("clustering", self.clustering, low=0, high=1, high_open=True)
        p.integer("dim", self.dim, low=0, high=3)
        if self.dim == 1:
            p.add("dim must be 0 (no positions), 2 or 3, got 1")
        p.number("length_scale", self.length_scale, low=0, high=100)
        if isinstance(self.length_scale, (int, float)) and self.length_scale > 0 and self.dim == 0:
            p.add(f"length_scale={self.length_scale} makes wiring depend on distance: it needs dim 2 or 3")
        p.number("weight", self.weight, low=0, high=1000, low_open=True)
        p.number("weight_sigma", self.weight_sigma, low=0, high=3)
        p.number("inhibition", self.inhibition, low=0, high=100)
        p.choice("model", self.model, MODELS)
        p.choice("synapse", self.synapse, SYNAPSES)
        p.number("rate_base", self.rate_base, low=0, high=1000)
        p.number("rate_gain", self.rate_gain, low=0, high=1000)
        p.number("rate_max", self.rate_max, low=0, high=1.0 / self.dt if isinstance(self.dt, float) and self.dt > 0 else None,
                 low_open=True)
        p.number("duration", self.duration, low=0, high=1e6, low_open=True)
        p.number("dt", self.dt, low=1e-6, high=1e-2)
        p.number("delay", self.delay, low=self.dt if isinstance(self.dt, float) else 0, high=0.1)
        for name in ("tau_m", "tau_syn", "depression_tau", "calcium_tau"):
            p.number(name, getattr(self, name), low=1e-4, high=100)
        p.number("threshold", self.threshold, low=0, high=1000, low_open=True)
        p.number("reset", self.reset, low=-1000, high=self.threshold if isinstance(self.threshold, (int, float)) else None,
                 high_open=True)
        p.number("refractory", self.refractory, low=0, high=0.1)
        p.boolean("depression", self.depression)
        p.number("depression_u", self.depression_u, low=0, high=1, low_open=True)
        p.number("background_rate", self.background_rate, low=0, high=1e6)
        p.number("background_weight", self.background_weight, low=0, high=1000)
        p.choice("stimulus", self.stimulus, STIMULI)
        p.integer("n_features", self.n_features, low=0, high=1024)
        if self.stimulus != "none" and self.n_features == 0:
            p.add(f"stimulus={self.stimulus!r} needs n_features >= 1")
        p.number("tuning_density", self.tuning_density, low=0, high=1, low_open=True)
        p.number("tuning_gain", self.tuning_gain, low=0, high=1000)
        p.number("stimulus_period", self.stimulus_period, low=1e-3, high=1e4)
        p.number("stimulus_on", self.stimulus_on, low=0, high=self.stimulus_period if isinstance(self.stimulus_period, (int, float)) else None,
                 low_open=True)
        p.choice("kernel", self.kernel, KERNELS)
        p.choice("observation", self.observation, OBSERVATIONS)
        p.number("frame_rate", self.frame_rate, low=0.1, high=1.0 / self.dt if isinstance(self.dt, float) and self.dt > 0 else None)
        p.number("observed_fraction", self.observed_fraction, low=0, high=1, low_open=True)
        p.number("calcium_jump", self.calcium_jump, low=0, high=1e4)
        p.number("calcium_base", self.calcium_base, low=0, high=1e4)
        p.number("calcium_kd", self.calcium_kd, low=0, high=1e5, low_open=True)
        p.number("fluorescence_noise", self.fluorescence_noise, low=0, high=10)
        p.number("scatter", self.scatter, low=0, high=10)
        p.number("scatter_length", self.scatter_length, low=0, high=10, low_open=True)
        p.integer("seed", self.seed, low=0, high=2**31 - 1)

    @property
    def steps_per_block(self) -> int:
        """Steps per synaptic delay: the simulation's block."""
        return max(1, int(round(self.delay / self.dt)))
