"""Synthetic connectomes: planted wiring, simulated spiking activity, and recordings of it.

A toy has three stages, each a pure function of the config's seed and each a module:

``_wiring``
    A degree-corrected stochastic block model with planted modules, hubs, a rich club, Dale's
    law, distance-dependent wiring, and reciprocity and clustering raised by degree- and
    module-preserving swaps; ``wiring_statistics`` measures the last two.
``_dynamics``
    Leaky integrate-and-fire or rate neurons, exponential or alpha synapses, optional short-term
    depression, Poisson background and a stimulus reaching neurons through a planted tuning
    matrix; simulated one synaptic delay at a time (compiled JAX or host-loop scipy, the same
    spikes).
``_observation``
    Spike counts per frame, or calcium fluorescence as in the ChaLearn connectomics challenge
    (``calcium``), with noise, light scattering and a recorded subset; ``network_bursts``
    measures the bursting the challenge's networks show.

``_config`` holds ``ConnectomeConfig`` and its validation, ``_build`` the toy and the generator
that runs the stages, ``_storage`` the toy's storage halves. The artifact (``toy.artifact``) is
the ``groundtruth.Recording``; the truth (``groundtruth.ConnectomeTruth``) holds the wiring, cell
types, modules, hubs, tuning, stimulus and every spike.
"""

from planted.toys._connectome._build import ConnectomeToy, build, connectome
from planted.toys._connectome._config import KERNELS, MODELS, OBSERVATIONS, STIMULI, SYNAPSES, ConnectomeConfig
from planted.toys._connectome._observation import calcium, network_bursts
from planted.toys._connectome._storage import _check, _from_arrays, _to_arrays
from planted.toys._connectome._wiring import wiring_statistics
from planted.toys._family import Family

__all__ = [
    "KERNELS",
    "MODELS",
    "OBSERVATIONS",
    "STIMULI",
    "SYNAPSES",
    "ConnectomeConfig",
    "ConnectomeToy",
    "build",
    "calcium",
    "connectome",
    "network_bursts",
    "wiring_statistics",
]

FAMILY = Family(kind=ConnectomeConfig.kind, config=ConnectomeConfig, toy=ConnectomeToy, build=build, generator=connectome,
                to_arrays=_to_arrays, from_arrays=_from_arrays, check=_check)
