"""Named configurations from papers, each a few lines on top of a general generator (whose module
is imported only when its preset is used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planted.groundtruth import Config, Toy, nearest
from planted.toys._family import family, from_config

_PRESETS: dict[str, tuple[Callable[..., Config], str]] = {}


def _preset(name: str, description: str):
    def register(fn: Callable[..., Config]) -> Callable[..., Config]:
        _PRESETS[name] = (fn, description)
        return fn

    return register


@_preset("sharkey2022", "512 features in d=256, 5 active on average, firing decay 0.99 (Sharkey, Braun & Millidge 2022)")
def _sharkey2022(seed: int, **overrides: Any) -> Config:
    base = dict(
        n_features=512,
        d_model=256,
        n_samples=50_000,
        firing="exponential",
        decay=0.99,
        mean_active=5.0,
        magnitude="uniform",
        magnitude_mean=0.5,
    )
    return family("sparse_features").config(**{**base, **overrides, "seed": seed})


@_preset(
    "synth16k",
    "16,384 features in d=768, Zipf firing, 128x4x3 mutually exclusive hierarchy, rank-25 correlation "
    "(SynthSAEBench-16k, Chanin & Garriga-Alonso 2026)",
)
def _synth16k(seed: int, **overrides: Any) -> Config:
    base = dict(
        n_features=16_384,
        d_model=768,
        n_samples=10_000,
        firing="zipf",
        zipf_exponent=0.5,
        p_max=0.4,
        p_min=5e-4,
        mean_active=None,
        hierarchy_roots=128,
        hierarchy_branching=4,
        hierarchy_depth=3,
        mutually_exclusive=True,
        correlation_rank=25,
        correlation_scale=0.1,
        magnitude="folded_normal",
        magnitude_mean=1.0,
        magnitude_std=0.5,
    )
    return family("sparse_features").config(**{**base, **overrides, "seed": seed})


@_preset(
    "tms_5_2",
    "toy model of superposition, 5 features in 2 dims, feature probability 0.05, AdamW (wd 0.01, lr 5e-3), 10k steps "
    "of 1024 (the TMS_5-2 target model of Braun et al. 2025 and Bushnaq et al. 2025)",
)
def _tms_5_2(seed: int, **overrides: Any) -> Config:
    base = dict(n_features=5, n_hidden=2, sparsity=0.95, n_steps=10_000, batch_size=1024, lr=5e-3, weight_decay=0.01)
    return family("superposition").config(**{**base, **overrides, "seed": seed})


@_preset(
    "tms_40_10",
    "toy model of superposition, 40 features in 10 dims, feature probability 0.05, AdamW (wd 0.01, lr 5e-3), 10k steps "
    "of 8192 (the TMS_40-10 target model of Braun et al. 2025 and Bushnaq et al. 2025)",
)
def _tms_40_10(seed: int, **overrides: Any) -> Config:
    base = dict(n_features=40, n_hidden=10, sparsity=0.95, n_steps=10_000, batch_size=8192, lr=5e-3, weight_decay=0.01)
    return family("superposition").config(**{**base, **overrides, "seed": seed})


@_preset(
    "chalearn2014",
    "1,000 LIF neurons (alpha synaptic currents, short-term depression) on a 1 mm square in 10 modules holding 80% of the connections, "
    "clustered and reciprocated inside modules, 1.2% density of active (excitatory) synapses, network bursts at "
    "about 0.1 Hz, one hour of calcium fluorescence at 50 frames/s with the challenge's calcium and light-scattering "
    "model (ChaLearn Connectomics Challenge; Stetter et al. 2012, Orlandi et al. 2015)",
)
def _chalearn2014(seed: int, **overrides: Any) -> Config:
    # The organizers' NEST scripts: iaf_neuron (alpha-shaped synaptic currents, tau_syn 2 ms;
    # C_m 1 pF and tau_m 20 ms, so 1 pA is 20 mV here), threshold 20 mV above rest, reset to
    # rest, refractory 2 ms, dt 0.1 ms, delay 1.5 ms, depression U 0.3 and tau_rec 0.5 s;
    # spontaneous spikes from 0.2 Hz Poisson inputs of 11.2 pA (224), each strong enough to fire
    # the neuron; inhibitory synapses blocked. Their network file (normal-1): 14,912 connections
    # among 1,000 neurons (density 0.0149), 80% inside 10 groups of about 100 (density 0.118
    # inside, 0.0033 between), positions unrelated to the wiring, directed clustering 0.222 with
    # reciprocity 0.34, reciprocated pairs all inside groups and sharing twice the neighbours of
    # the others (which rewiring for directed clustering reproduces, see toys.connectome._rewire);
    # 20% of the neurons inhibitory, so 11,949 active synapses (density 0.012). They tuned the
    # weight by bisection per network to 0.1 bursts/s (> 50% of neurons active in a 50 ms bin),
    # starting from 7.5 pA; here one weight, 5.3 pA (106): 0.095 bursts/s on seed 0, as on their
    # network under these dynamics (0.107).
    base = dict(n_neurons=1000, n_modules=10, mixing=0.2, density=0.0149, clustering=0.222, exc_fraction=0.8,
                inhibition=0.0, dim=2, weight=106.0, weight_sigma=0.0, synapse="alpha", depression=True,
                depression_u=0.3, depression_tau=0.5, delay=1.5e-3, tau_syn=0.002, reset=0.0, background_rate=0.2,
                background_weight=224.0, duration=3600.0, observation="calcium", frame_rate=50.0, scatter=0.15,
                scatter_length=1 / 1000**0.5)
    return family("connectome").config(**{**base, **overrides, "seed": seed})


@_preset(
    "flywire_scale",
    "139,255 LIF neurons and about 54.5 million synapses (the FlyWire whole-brain connectome's size, Dorkenwald "
    "et al. 2024) in 20 modules with heavy-tailed degrees and hubs; one second of spikes",
)
def _flywire_scale(seed: int, **overrides: Any) -> Config:
    n = 139_255
    base = dict(n_neurons=n, density=54.5e6 / (n * (n - 1)), n_modules=20, mixing=0.3, degree_sigma=0.5,
                hub_fraction=0.01, exc_fraction=0.8, dim=3, weight=0.5, inhibition=5.0, background_weight=3.5, duration=1.0,
                observation="spikes", frame_rate=100.0)
    return family("connectome").config(**{**base, **overrides, "seed": seed})


@_preset(
    "v1_flashes",
    "400 visual-cortex-like LIF neurons (80% excitatory, 4 modules) driven by 6 full-field flash types through a "
    "mixed-selectivity tuning matrix; five minutes of spikes in 10 ms bins",
)
def _v1_flashes(seed: int, **overrides: Any) -> Config:
    base = dict(n_neurons=400, n_modules=4, density=0.05, mixing=0.2, exc_fraction=0.8, dim=2, weight=1.0,
                background_weight=3.0, stimulus="flashes", n_features=6, tuning_density=0.3, tuning_gain=8.0,
                stimulus_period=1.0, stimulus_on=0.25, duration=300.0, observation="spikes", frame_rate=100.0)
    return family("connectome").config(**{**base, **overrides, "seed": seed})


def presets() -> dict[str, str]:
    """Names of the presets with a one-line description of each."""
    return {name: description for name, (_, description) in sorted(_PRESETS.items())}


def check_preset(name: str) -> None:
    """Raise ``ValueError`` naming the closest presets when ``name`` is not one."""
    if name not in _PRESETS:
        raise nearest(name, _PRESETS, "preset")


def preset_config(name: str, *, seed: int = 0, **overrides: Any) -> Config:
    """The config of preset ``name``, with optional field overrides."""
    check_preset(name)
    return _PRESETS[name][0](seed, **overrides)


def preset(name: str, *, seed: int = 0, **overrides: Any) -> Toy:
    """Generate the toy of preset ``name`` (see ``presets()``), e.g. ``preset("sharkey2022", seed=0)``."""
    return from_config(preset_config(name, seed=seed, **overrides))
