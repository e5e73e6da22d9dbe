"""Lesions of a synthetic connectome: groups of neurons removed (every synapse in and out) and the
network simulated again with the same stimulus and the same noise, so every change of activity
is the lesion's.

References
----------
Alstott, Breakspear, Hagmann, Cammoun & Sporns (2009), "Modeling the impact of lesions in the
human brain". van den Heuvel & Sporns (2011), "Rich-club organization of the human connectome".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from planted.groundtruth import ConnectomeLesions
from planted.toys._connectome._build import _stimulus
from planted.toys._connectome._dynamics import _simulate
from planted.toys._connectome._observation import _bursts

_STREAM_CONTROLS = 707


def default_groups(truth, *, seed: int = 0) -> dict[str, np.ndarray]:
    """The planted hubs, as many non-hubs drawn at random (``seed``), and each module."""
    hubs = np.flatnonzero(truth.hubs)
    groups = {}
    if hubs.size:
        rng = np.random.default_rng([seed, _STREAM_CONTROLS])
        groups["hubs"] = hubs
        groups["non-hubs"] = np.sort(rng.choice(np.flatnonzero(~truth.hubs), hubs.size, replace=False))
    for module in np.unique(truth.modules):
        groups[f"module {int(module)}"] = np.flatnonzero(truth.modules == module)
    return groups


def connectome_lesions(toy, groups: Mapping[str, Sequence[int]] | None = None, *, seed: int = 0) -> ConnectomeLesions:
    """Lesion each group of neurons of a ``connectome`` toy alone and simulate it again.

    Parameters
    ----------
    toy : ConnectomeToy
    groups : {name: neuron indices}, optional
        Default: the planted hubs, as many non-hubs drawn at random and each module.
    seed : int
        The draw of the non-hubs.

    Returns
    -------
    ConnectomeLesions
        Rates (Hz) and network bursts intact and after each lesion (a lesioned neuron counts as
        silent, and bursts are counted among the neurons left); one simulation per group, with
        the intact run's stimulus and noise (lesioning nothing reproduces it spike for spike).
    """
    if getattr(toy, "kind", None) != "connectome":
        raise ValueError(f"connectome_lesions needs a connectome toy, got {getattr(toy, 'kind', type(toy).__name__)!r}")
    truth, config = toy.truth, toy.config
    n = truth.n_neurons
    groups = default_groups(truth, seed=seed) if groups is None else dict(groups)
    members = []
    for name, group in groups.items():
        group = np.unique(np.asarray(group, np.int64))
        if group.size and (group.min() < 0 or group.max() >= n):
            raise ValueError(f"group {name!r} names neurons outside [0, {n})")
        if group.size == n:
            raise ValueError(f"group {name!r} names every neuron; a lesion must spare some")
        members.append(group)
    tuning, features = _stimulus(config)
    after, burst_after = np.zeros((len(members), n)), np.zeros(len(members))
    for g, group in enumerate(members):
        keep = np.ones(n, np.float32)
        keep[group] = 0.0
        spare = sp.diags(keep)
        weights = (spare @ truth.weights @ spare).tocsr()
        weights.eliminate_zeros()
        times, neurons = _simulate(config, weights.astype(np.float32), tuning, features)
        spared = keep[neurons] > 0  # a lesioned neuron is gone: its own spikes are not counted
        times, neurons = times[spared], neurons[spared]
        after[g] = np.bincount(neurons, minlength=n) / truth.duration
        # bursts among the neurons left, numbered 0 .. n_left - 1 (more than half of them in a bin)
        left = np.cumsum(keep).astype(np.int64) - 1
        burst_after[g] = _bursts(times, left[neurons], int(keep.sum()), truth.duration)[0]
    return ConnectomeLesions(names=tuple(groups), members=tuple(members), rates=truth.rates(), lesioned_rates=after,
                             bursts=_bursts(truth.spike_times, truth.spike_neurons, n, truth.duration)[0],
                             lesioned_bursts=burst_after)
