"""The compiled transformer: a pure ``apply(params, ids)``, its ``flax.nnx`` module, and decoding.

Params (a flat dict of float32 NumPy arrays; ``d`` is ``d_model``):

- ``embed_tokens`` (n_vocab + 1, d): row 0 is BOS, row i + 1 is ``vocab[i]``
- ``embed_positions`` (max_seq_len + 1, d)
- ``w_q``, ``w_k``, ``w_v`` (n_layers, n_heads, d, d_head); ``w_o`` (n_layers, n_heads, d_head, d)
- ``w_in`` (n_layers, d, d_mlp); ``w_out`` (n_layers, d_mlp, d): ReLU MLPs without biases
- ``unembed`` (d, n_outputs)

Each layer is ``x += attention(x); x += relu(x @ w_in) @ w_out``; no layer norm, no attention
scaling (the compiler's weights carry the scale). Unused heads and neurons have zero weights.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from planted.toys._rasp._compiler import Compiled
from planted.toys._rasp._language import CATEGORICAL

PARAM_NAMES = ("embed_tokens", "embed_positions", "w_q", "w_k", "w_v", "w_o", "w_in", "w_out", "unembed")


def _one(params: dict, ids: jnp.ndarray, causal: bool) -> dict:
    """Forward pass of one sequence ``ids`` (n,) with BOS at 0; everything a method may inspect."""
    n = ids.shape[0]
    x = params["embed_tokens"][ids] + params["embed_positions"][:n]
    resid, patterns, head_out, hidden = [x], [], [], []
    mask = jnp.tril(jnp.ones((n, n), bool)) if causal else jnp.ones((n, n), bool)
    for layer in range(params["w_q"].shape[0]):
        q = jnp.einsum("pd,hde->hpe", x, params["w_q"][layer])
        k = jnp.einsum("pd,hde->hpe", x, params["w_k"][layer])
        v = jnp.einsum("pd,hde->hpe", x, params["w_v"][layer])
        logits = jnp.where(mask, jnp.einsum("hqe,hke->hqk", q, k), -jnp.inf)
        pattern = jax.nn.softmax(logits, axis=-1)
        z = jnp.einsum("hqk,hke->hqe", pattern, v)
        per_head = jnp.einsum("hqe,hed->hqd", z, params["w_o"][layer])
        x = x + per_head.sum(0)
        resid.append(x)
        h = jax.nn.relu(x @ params["w_in"][layer])
        x = x + h @ params["w_out"][layer]
        resid.append(x)
        patterns.append(pattern)
        head_out.append(per_head)
        hidden.append(h)
    return {"logits": x @ params["unembed"], "resid": jnp.stack(resid), "patterns": jnp.stack(patterns),
            "head_out": jnp.stack(head_out), "hidden": jnp.stack(hidden)}


@functools.partial(jax.jit, static_argnames=("causal",))
def _batched(params, ids, causal):
    return jax.vmap(_one, in_axes=(None, 0, None))(params, ids, causal)


def apply(params: dict, ids, *, causal: bool = False) -> np.ndarray:
    """Logits (batch, n, n_outputs) for token ids (batch, n) that start with BOS (id 0).

    A pure function of ``params`` (the flat dict of ``Compiled.params``); vmapped over the batch
    and jit-compiled. ``causal`` must match the program's compilation.
    """
    return np.asarray(_batched({k: jnp.asarray(params[k]) for k in PARAM_NAMES}, jnp.asarray(ids, jnp.int32), causal)["logits"])


def _numpy(params: dict, ids: np.ndarray, causal: bool) -> dict[str, np.ndarray]:
    """The same forward pass in NumPy (float64), batched: an independent implementation, and
    faster than compiling the JAX one for a model that runs once."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    batch, n = ids.shape
    x = p["embed_tokens"][ids] + p["embed_positions"][:n]
    resid, patterns, head_out, hidden = [x], [], [], []
    allowed = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    for layer in range(p["w_q"].shape[0]):
        q = np.einsum("bpd,hde->bhpe", x, p["w_q"][layer])
        k = np.einsum("bpd,hde->bhpe", x, p["w_k"][layer])
        v = np.einsum("bpd,hde->bhpe", x, p["w_v"][layer])
        logits = np.where(allowed, np.einsum("bhqe,bhke->bhqk", q, k), -np.inf)
        logits = logits - logits.max(-1, keepdims=True)
        pattern = np.exp(logits)
        pattern /= pattern.sum(-1, keepdims=True)
        per_head = np.einsum("bhqk,bhke,hed->bhqd", pattern, v, p["w_o"][layer], optimize=True)
        x = x + per_head.sum(1)
        resid.append(x)
        h = np.maximum(x @ p["w_in"][layer], 0.0)
        x = x + h @ p["w_out"][layer]
        resid.append(x)
        patterns.append(pattern)
        head_out.append(per_head)
        hidden.append(h)
    return {"logits": x @ p["unembed"], "resid": np.stack(resid, 1), "patterns": np.stack(patterns, 1),
            "head_out": np.stack(head_out, 1), "hidden": np.stack(hidden, 1)}


def run(compiled: Compiled, ids, *, backend: str = "jax") -> dict[str, np.ndarray]:
    """Every activation of the compiled model on ids (batch, n): ``logits`` (batch, n, n_outputs),
    ``resid`` (batch, 2 * n_layers + 1, n, d_model) after the embedding and after each sublayer,
    ``patterns`` (batch, n_layers, n_heads, n, n), ``head_out`` (batch, n_layers, n_heads, n,
    d_model), ``hidden`` (batch, n_layers, n, d_mlp). ``backend``: "jax" (jit-compiled, vmapped,
    float32) or "numpy" (float64)."""
    if backend == "numpy":
        return _numpy(compiled.params, np.asarray(ids), compiled.causal)
    if backend != "jax":
        raise ValueError(f"backend must be 'jax' or 'numpy', got {backend!r}")
    out = _batched({k: jnp.asarray(v) for k, v in compiled.params.items()}, jnp.asarray(ids, jnp.int32), compiled.causal)
    return {k: np.asarray(v) for k, v in out.items()}


def encode(compiled: Compiled, sequences: Sequence[Sequence[Hashable]]) -> np.ndarray:
    """Token ids (batch, n + 1) with BOS first, for sequences that all have length n."""
    lookup = {tok: i + 1 for i, tok in enumerate(compiled.vocab)}
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"sequences must all have one length to share a batch, got lengths {sorted(lengths)}")
    (n,) = lengths
    if not 1 <= n <= compiled.max_seq_len:
        raise ValueError(f"sequence length must be from 1 to max_seq_len ({compiled.max_seq_len}), got {n}")
    ids = np.zeros((len(sequences), n + 1), np.int32)
    for b, seq in enumerate(sequences):
        for i, tok in enumerate(seq):
            if tok not in lookup:
                raise ValueError(f"token {tok!r} at position {i} of sequence {b} is not in the vocab {compiled.vocab!r}")
            ids[b, i + 1] = lookup[tok]
    return ids


def decode(compiled: Compiled, logits: np.ndarray) -> list[list]:
    """The program's output per sequence and input position (BOS dropped): a categorical output is
    the value of the largest logit (None for null); a numerical one is its value, or None where the
    null logit exceeds 1/2."""
    logits = np.asarray(logits)[:, 1:]
    if compiled.output_encoding == CATEGORICAL:
        picks = logits.argmax(-1)
        return [[compiled.output_values[j] for j in row] for row in picks]
    return [[None if null > 0.5 else float(value) for value, null in row] for row in logits]


def evaluate_model(compiled: Compiled, sequences: Sequence[Sequence[Hashable]]) -> list[list]:
    """The compiled model's decoded output for each sequence (any lengths; batched by length)."""
    out: list = [None] * len(sequences)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(sequences):
        by_length.setdefault(len(s), []).append(i)
    for _, members in sorted(by_length.items()):
        ids = encode(compiled, [sequences[i] for i in members])
        for i, row in zip(members, decode(compiled, apply(compiled.params, ids, causal=compiled.causal))):
            out[i] = row
    return out


class CompiledTransformer(nnx.Module):
    """A compiled program as a ``flax.nnx`` module: ``module(ids)`` returns logits (batch, n, n_outputs).

    Its parameters are ``nnx.Param``s named as in ``Compiled.params``; ``params()`` gives them back
    as the flat NumPy dict that the pure ``apply`` takes.
    """

    def __init__(self, compiled: Compiled):
        self.causal = compiled.causal
        for name in PARAM_NAMES:
            setattr(self, name, nnx.Param(jnp.asarray(compiled.params[name])))

    def __call__(self, ids):
        params = {name: getattr(self, name)[...] for name in PARAM_NAMES}
        return _batched(params, jnp.asarray(ids, jnp.int32), self.causal)["logits"]

    def params(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)[...]) for name in PARAM_NAMES}
