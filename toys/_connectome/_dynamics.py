"""Dynamics: the stimulus, the planted tuning, and the simulated spikes of a synthetic connectome.

A current-based leaky integrate-and-fire network (``model="lif"``), or a rate network whose
neurons fire Poisson spikes at a rectified-linear function of their filtered input
(``model="rate"``), with exponential or alpha-shaped synaptic currents (``synapse``) and
optional Tsodyks-Markram short-term depression, driven by Poisson background input and a
stimulus protocol whose features reach neurons through a planted tuning matrix with mixed
selectivity. Spikes reach their targets after a synaptic ``delay``; the simulation advances one
delay at a time: the recurrent input of a whole block of steps is known from the previous block,
so it is one sparse product, and the neurons' steps inside a block run in a compiled
``lax.scan``. ``kernel="jax"`` runs every block in one scan (the rows of the neurons that
spiked, from dense weights, up to 4,096 neurons; a BCOO product beyond: the path for an
accelerator); ``kernel="scipy"`` loops over blocks on the host with event-driven CSR rows, which
is faster on a CPU for large networks. ``"auto"`` picks the first up to 4,096 neurons. Both give
the same spikes.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from planted.toys import _random as rnd
from planted.toys._connectome._config import _STREAM_DYNAMICS, _STREAM_TUNING, ConnectomeConfig
from planted.toys._connectome._wiring import _row_entries


# --- stimulus and tuning ------------------------------------------------------------------------


def _features(cfg: ConnectomeConfig, times: np.ndarray, rng) -> np.ndarray:
    """(len(times), n_features) stimulus feature time courses in [0, 1].

    ``flashes``: every ``stimulus_period`` one of the features (a flash type, chosen at random)
    is on for ``stimulus_on``. ``gratings``: each period shows a grating of random orientation for
    ``stimulus_on``; feature k is an orientation channel preferring k * 180 / n_features degrees,
    ``exp(4 (cos 2(theta - theta_k) - 1))``, so channels overlap. ``events``: each feature turns on
    for ``stimulus_on`` at Poisson times, one per ``stimulus_period`` on average, independently.
    """
    f = np.zeros((times.size, cfg.n_features))
    if cfg.stimulus == "none" or cfg.n_features == 0:
        return f
    period = np.floor(times / cfg.stimulus_period).astype(np.int64)
    n_periods = int(period.max()) + 1 if times.size else 0
    on = (times - period * cfg.stimulus_period) < cfg.stimulus_on
    if cfg.stimulus == "flashes":
        which = rng.integers(0, cfg.n_features, size=n_periods)
        f[np.flatnonzero(on), which[period[on]]] = 1.0
    elif cfg.stimulus == "gratings":
        angle = rng.random(n_periods) * np.pi
        preferred = np.arange(cfg.n_features) * np.pi / cfg.n_features
        channel = np.exp(4.0 * (np.cos(2.0 * (angle[:, None] - preferred[None, :])) - 1.0))
        f[on] = channel[period[on]]
    else:
        duration = float(times[-1]) + cfg.stimulus_period if times.size else 0.0
        for k in range(cfg.n_features):
            starts = np.sort(rng.random(rng.poisson(duration / cfg.stimulus_period)) * duration)
            index = np.searchsorted(starts, times, side="right") - 1
            f[:, k] = (index >= 0) & (times - starts[np.maximum(index, 0)] < cfg.stimulus_on)
    return f


def _tuning(cfg: ConnectomeConfig) -> np.ndarray:
    """(n_neurons, n_features): each neuron driven by each feature with probability
    ``tuning_density`` (mixed selectivity), with lognormal gains of median ``tuning_gain`` mV."""
    rng = np.random.default_rng([cfg.seed, _STREAM_TUNING])
    shape = (cfg.n_neurons, cfg.n_features)
    return np.where(rng.random(shape) < cfg.tuning_density, cfg.tuning_gain * np.exp(0.5 * rng.normal(size=shape)), 0.0)


# --- dynamics -------------------------------------------------------------------------------------


class _Dynamics(tuple):
    """The constants a compiled block depends on (hashable, so blocks of equal dynamics share
    compiled code): per-step decays and the current's coupling into v, the alpha synapse's
    constants, threshold, reset, refractory steps, depression, the
    background weight and Poisson tails P(N >= j), j = 1, 2, 3 (the rest is below 2e-4 of the
    input at rate * dt <= 0.1), and for the rate model its rate law and step."""

    @staticmethod
    def of(cfg: ConnectomeConfig) -> _Dynamics:
        lam = cfg.background_rate * cfg.dt
        cdf, term, tails = 0.0, math.exp(-lam), []
        for j in range(3):
            cdf += term
            tails.append(max(0.0, 1.0 - cdf))
            term *= lam / (j + 1)
        h, tau_m, tau_s = cfg.dt, cfg.tau_m, cfg.tau_syn
        decay_m, decay_s = math.exp(-h / tau_m), math.exp(-h / tau_s)
        # v' = (I + drive - v) / tau_m with I' = -I / tau_s: over a step, v gains I * coupling.
        # Alpha synapse: a rise variable r (r' = -r / tau_s) feeds I' = -I / tau_s + r; an input
        # of weight w adds w e / tau_s to r, so the current peaks at w, tau_s later (NEST's
        # iaf_psc_alpha convention). Over a step, I gains r h decay_s and v gains r * rise_v.
        a = 1.0 / tau_s - 1.0 / tau_m
        if abs(a * h) > 1e-9:
            coupling = (decay_m - decay_s) * tau_s / (tau_m - tau_s)
            rise_v = decay_m * (1.0 - math.exp(-a * h) * (1.0 + a * h)) / (a * a * tau_m)
        else:  # tau_s == tau_m: the limits
            coupling, rise_v = decay_m * h / tau_m, decay_m * h * h / (2.0 * tau_m)
        alpha = (cfg.synapse == "alpha", math.e / tau_s, h * decay_s, rise_v)
        return _Dynamics((decay_m, decay_s, coupling, alpha, float(cfg.threshold),
                          float(cfg.reset), int(round(cfg.refractory / cfg.dt)), bool(cfg.depression),
                          float(cfg.depression_u), math.exp(-cfg.dt / cfg.depression_tau),
                          float(cfg.background_weight), tuple(tails), cfg.model,
                          (float(cfg.rate_base), float(cfg.rate_gain), float(cfg.rate_max), float(cfg.dt))))


def _initial(cfg: ConnectomeConfig, rng) -> tuple:
    n = cfg.n_neurons
    v = rng.random(n) * cfg.threshold if cfg.model == "lif" else np.zeros(n)
    state = (jnp.asarray(v, jnp.float32), jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.int32), jnp.ones(n, jnp.float32))
    return state + ((jnp.zeros(n, jnp.float32),) if cfg.synapse == "alpha" else ())  # the alpha synapse's rise


def _lif_steps(dyn: _Dynamics, state, recurrent, drive, first_step, words):
    """Advance ``recurrent.shape[0]`` steps of the network whose recurrent input (steps, n) is
    known; returns the state and each step's spike releases (steps, n): 0 where no spike, else
    1, or ``U x`` with depression (Tsodyks-Markram: resources x recover to 1 with their time
    constant and a spike releases the fraction U of them).

    The synaptic current ``I`` (mV) decays with ``tau_syn`` and jumps by the weights of the spikes
    and background inputs that arrive in a step (``synapse="exponential"``), or rises and falls as
    an alpha function peaking at the weight ``tau_syn`` after the input (``"alpha"``, as NEST's
    ``iaf_psc_alpha`` and the ChaLearn simulations); ``v`` follows ``tau_m v' = I + drive - v``,
    advanced by its exact propagator over each step (as NEST and Brian2's ``exact`` method do).
    LIF: a spike when ``v`` reaches the threshold, then reset and refractory. Rate model: ``v`` is
    the neuron's filtered input and its rate ``clip(base + gain v, 0, max)`` (Hz) emits Poisson
    spikes (a linear-nonlinear-Poisson network), refractory likewise.
    """
    decay_m, decay_s, coupling, alpha, threshold, reset, refractory, depression, use, recover, bg_weight, tails, model, law = dyn
    is_alpha, rise_jump, rise_current, rise_v = alpha
    rate_base, rate_gain, rate_max, dt = law
    n = recurrent.shape[1]

    def step(carry, inputs):
        v, current, wait, resources, *rise = carry
        inputs, chance = inputs
        # The exact propagator of (v, I) over a step, then the inputs that arrived in it.
        integrated = v * decay_m + coupling * current + (1 - decay_m) * drive
        if is_alpha:
            (r,) = rise
            integrated = integrated + rise_v * r
            current = current * decay_s + rise_current * r
            rise = [r * decay_s + rise_jump * inputs]
        else:
            current = current * decay_s + inputs
        free = wait == 0
        if model == "rate":
            v = integrated
            rate = jnp.clip(rate_base + rate_gain * v, 0.0, rate_max)
            spike = free & (chance < rate * dt)
        else:
            v = jnp.where(free, integrated, v)
            spike = free & (v >= threshold)
            v = jnp.where(spike, reset, v)
        wait = jnp.where(spike, float(refractory), jnp.maximum(wait - 1, 0))
        if depression:
            resources = 1.0 - (1.0 - resources) * recover
            release = jnp.where(spike, use * resources, 0.0)
            resources = resources - release
        else:
            release = spike.astype(jnp.float32)
        return jnp.stack([v, current, wait, resources, *rise]), release

    # What no spike of this block can change comes before the loop, for every step at once: the
    # background's Poisson counts (the same uniforms as drawn step by step: each is a function of
    # its step and neuron) and the inputs they add to the recurrent ones; the rate model's uniforms.
    steps = (first_step + jnp.arange(recurrent.shape[0], dtype=jnp.uint32))[:, None]
    u = rnd.uniform(words, steps, (n,))
    inputs = recurrent + bg_weight * sum((u < tail).astype(jnp.float32) for tail in tails)
    chance = rnd.uniform(words[::-1], steps, (n,)) if model == "rate" else jnp.zeros((recurrent.shape[0], 0))
    # The state travels through the loop as one (4 or 5, n) array, the refractory wait in float32
    # (whole numbers, exact): XLA then advances it in one kernel per step, not one per variable
    # plus a copy of each, which at a thousand neurons costs more than the arithmetic.
    v, current, wait, resources, *rise = state
    carry = jnp.stack([v, current, wait.astype(jnp.float32), resources, *rise])
    carry, release = jax.lax.scan(step, carry, (inputs, chance))
    v, current, wait, resources, *rise = carry
    return (v, current, wait.astype(jnp.int32), resources, *rise), release


@functools.partial(jax.jit, static_argnums=0)
def _lif_block(dyn: _Dynamics, state, recurrent, drive, first_step, words):
    """``_lif_steps`` compiled for the host loop, with the neurons that spiked in the block (n,):
    the host then reads the releases of those columns only."""
    state, release = _lif_steps(dyn, state, recurrent, drive, first_step, words)
    return state, release, (release > 0).any(axis=0)


_DENSE_MAX = 4096  # neurons up to which the JAX path keeps dense weights (BCOO beyond)
_EVENTS = (24, 96, 384, 1536)  # spiking neurons a block propagates row by row in the JAX path; more: the dense product


def _propagate(release, weights):
    """(k, n) recurrent input of the next block, ``release @ weights``: with dense weights, from
    the rows of the neurons that spiked in the block, gathered in the smallest of ``_EVENTS`` that
    holds them all (gathering unused rows costs more than the product saves), or the whole product
    when more spiked (or the rows are no fewer than half the neurons)."""
    tiers = [t for t in _EVENTS if 2 * t < release.shape[1]]
    if not isinstance(weights, jax.Array) or not tiers:
        return release @ weights
    spiked = release.max(axis=0)

    def rows(t: int):
        def product():
            _, index = jax.lax.top_k(spiked, t)  # every neuron that spiked, then some that did not (adding 0)
            return release[:, index] @ weights[index]
        return product

    tier = jnp.searchsorted(jnp.asarray(tiers), (spiked > 0).sum())  # the first that holds them; past the last: dense
    return jax.lax.switch(tier, [rows(t) for t in tiers] + [lambda: release @ weights])


@functools.partial(jax.jit, static_argnums=(0, 5))
def _lif_blocks(dyn: _Dynamics, state, recurrent, weights, drives, k: int, first_block, words):
    """Blocks of ``k`` steps in one scan, the recurrent input of each block the previous block's
    releases times ``weights`` (dense or BCOO, [pre, post]): the JAX path. Returns the state, the
    next block's recurrent input and the spikes (blocks, k, n) as bool."""

    def one(carry, inputs):
        state, rec = carry
        drive, b = inputs
        state, release = _lif_steps(dyn, state, rec, drive, b * k, words)
        return (state, _propagate(release, weights)), release > 0

    blocks = first_block + jnp.arange(drives.shape[0], dtype=jnp.uint32)
    (state, rec), spikes = jax.lax.scan(one, (state, recurrent), (drives, blocks))
    return state, rec, spikes


def _csr_rows(weights: sp.csr_matrix, steps: np.ndarray, pre: np.ndarray, release: np.ndarray, k: int) -> np.ndarray:
    """(k, n): for each spike (step, pre, release), ``release x weights[pre]`` added to row step."""
    n = weights.shape[1]
    offsets, lengths = _row_entries(weights, pre)
    out = np.zeros(k * n, np.float32)
    if offsets.size:
        target = np.repeat(steps * n, lengths) + weights.indices[offsets]
        np.add.at(out, target, np.repeat(release, lengths) * weights.data[offsets])
    return out.reshape(k, n)


def _nonzero(flags: np.ndarray) -> tuple[np.ndarray, ...]:
    """``np.nonzero`` of a sparse bool array, 8 flags at a time: the words of 8 flags that hold a
    spike first, then the spikes within them (8x less to scan; the same indices in the same order)."""
    flat = flags.reshape(-1)
    if flat.size % 8:
        flat = np.concatenate([flat, np.zeros(-flat.size % 8, bool)])
    words = np.flatnonzero(flat.view(np.uint64))
    row, col = np.nonzero(flat.reshape(-1, 8)[words])
    return np.unravel_index(words[row] * 8 + col, flags.shape)


def _simulate(cfg: ConnectomeConfig, weights: sp.csr_matrix, tuning: np.ndarray, features) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (s) and neurons, ordered by time. ``features(times) -> (len(times), F)``."""
    n, k = cfg.n_neurons, cfg.steps_per_block
    n_blocks = int(math.ceil(cfg.duration / (k * cfg.dt) - 1e-9))
    dyn = _Dynamics.of(cfg)
    rng = np.random.default_rng([cfg.seed, _STREAM_DYNAMICS])
    words = rnd.words(jax.random.fold_in(jax.random.key(cfg.seed), _STREAM_DYNAMICS))
    state = _initial(cfg, rng)
    def drives(start: int, count: int):
        """(count, n) stimulus drive of blocks start.. (held over each block), made as needed."""
        if not tuning.shape[1]:
            return jnp.zeros((count, n), jnp.float32)
        return jnp.asarray(features(np.arange(start, start + count) * k * cfg.dt) @ tuning.T, jnp.float32)

    times, neurons = [], []
    zeros = rec = jnp.zeros((k, n), jnp.float32)
    kernel = cfg.kernel if cfg.kernel != "auto" else ("jax" if n <= _DENSE_MAX else "scipy")
    if kernel == "jax":
        if n <= _DENSE_MAX:
            w = jnp.asarray(weights.toarray())
        else:
            from jax.experimental import sparse as jsparse

            w = jsparse.BCOO.from_scipy_sparse(weights)
        chunk = max(1, min(n_blocks, int(2e7 // (k * n))))
        for start in range(0, n_blocks, chunk):
            count = min(chunk, n_blocks - start)
            state, rec, spikes = _lif_blocks(dyn, state, rec, w, drives(start, count), k, jnp.uint32(start), words)
            b, s, j = _nonzero(np.asarray(spikes))
            times.append(((start + b) * k + s + 1) * cfg.dt)
            neurons.append(j)
    else:
        batch = max(1, min(n_blocks, int(2e6 // n)))  # drives made a batch of blocks at a time
        for b in range(n_blocks):
            if b % batch == 0:
                upcoming = drives(b, min(batch, n_blocks - b))
            drive = upcoming[b % batch]
            state, release, fired = _lif_block(dyn, state, rec, drive, jnp.uint32(b * k), words)
            fired = np.flatnonzero(np.asarray(fired))
            if fired.size:
                columns = np.asarray(release)[:, fired]
                s, i = np.nonzero(columns)  # by step, then neuron, as over the whole block
                times.append((b * k + s + 1) * cfg.dt)
                neurons.append(fired[i])
                rec = jnp.asarray(_csr_rows(weights, s, fired[i], columns[s, i], k))
            else:
                rec = zeros
    times = np.concatenate(times) if times else np.zeros(0)
    neurons = np.concatenate(neurons).astype(np.int32) if neurons else np.zeros(0, np.int32)
    keep = times <= cfg.duration + 1e-12
    order = np.argsort(times[keep], kind="stable")
    return times[keep][order], neurons[keep][order]
