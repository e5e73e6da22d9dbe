"""Counter-based random numbers for compiled loops.

``jax.random``'s default threefry generator costs 20 rounds of a 64-bit block cipher per pair of
numbers on a CPU, which can dominate a small compiled loop. Element c of step t of a stream keyed
(k0, k1) is instead ``mix(mix(mix(c) ^ mix(k0 + t * golden)) + k1)`` with ``mix`` the "lowbias32"
integer hash (C. Wellons), a bijection of uint32 with low avalanche bias: a pure function of the
key, the step and the index, so runs are exactly reproducible. Keys come from threefry
(``words(jax.random.key(seed))``), so streams of different seeds are unrelated. Uniforms carry 24
random bits.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_GOLDEN = 0x9E3779B9


def mix(x):
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def uniform(words, step, shape):
    """Uniforms on [0, 1) of ``shape`` for ``step`` of the run keyed by ``words`` (2 uint32)."""
    counter = mix(jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape))
    step_word = mix(words[0] + jnp.asarray(step, jnp.uint32) * jnp.uint32(_GOLDEN))
    bits = mix(mix(counter ^ step_word) + words[1])
    return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def words(key):
    """The two uint32 key words of a jax key."""
    return jax.random.key_data(key).reshape(-1)[:2].astype(jnp.uint32)
