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

from planted.groundtruth import Patch
from planted.toys._rasp._circuit import _run, _run_jit
from planted.toys._rasp._compiler import Compiled
from planted.toys._rasp._language import CATEGORICAL

PARAM_NAMES = ("embed_tokens", "embed_positions", "w_q", "w_k", "w_v", "w_o", "w_in", "w_out", "unembed")


def _one(params: dict, ids: jnp.ndarray, causal: bool) -> jnp.ndarray:
    """Logits (n, n_outputs) of one sequence ``ids`` (n,) with BOS at 0: the lean path of ``apply``
    (every head of a layer in one einsum). ``run`` is the same model with interventions."""
    n = ids.shape[0]
    x = params["embed_tokens"][ids] + params["embed_positions"][:n]
    mask = jnp.tril(jnp.ones((n, n), bool)) if causal else jnp.ones((n, n), bool)
    for layer in range(params["w_q"].shape[0]):
        q = jnp.einsum("pd,hde->hpe", x, params["w_q"][layer])
        k = jnp.einsum("pd,hde->hpe", x, params["w_k"][layer])
        v = jnp.einsum("pd,hde->hpe", x, params["w_v"][layer])
        pattern = jax.nn.softmax(jnp.where(mask, jnp.einsum("hqe,hke->hqk", q, k), -jnp.inf), axis=-1)
        x = x + jnp.einsum("hqk,hke,hed->qd", pattern, v, params["w_o"][layer])
        x = x + jax.nn.relu(x @ params["w_in"][layer]) @ params["w_out"][layer]
    return x @ params["unembed"]


@functools.partial(jax.jit, static_argnames=("causal",))
def _batched(params, ids, causal):
    return jax.vmap(_one, in_axes=(None, 0, None))(params, ids, causal)


def apply(params: dict, ids, *, causal: bool = False) -> np.ndarray:
    """Logits (batch, n, n_outputs) for token ids (batch, n) that start with BOS (id 0).

    A pure function of ``params`` (the flat dict of ``Compiled.params``); vmapped over the batch
    and jit-compiled. ``causal`` must match the program's compilation.
    """
    # NumPy in: the compiled call copies it, where jnp.asarray would compile a program per shape
    return np.asarray(_batched({k: params[k] for k in PARAM_NAMES}, np.asarray(ids, np.int32), causal))


def run(compiled: Compiled, ids, *, backend: str = "jax") -> dict[str, np.ndarray]:
    """Every activation of the compiled model on ids (batch, n), through the circuit interface's
    forward pass (``_circuit._run``): ``logits`` (batch, n, n_outputs), ``activations`` (batch,
    n_components, n, d_model: what each embedding, head and layer MLP writes; the last is the final
    residual stream), ``patterns`` (batch, n_layers, n_heads, n, n). ``backend``: "jax"
    (jit-compiled, float32) or "numpy" (float64, nothing to compile)."""
    if backend not in ("jax", "numpy"):
        raise ValueError(f"backend must be 'jax' or 'numpy', got {backend!r}")
    if backend == "numpy":
        out = _run(compiled.params, np.asarray(ids), Patch(), compiled.causal, np)
    else:
        out = _run_jit(jax.device_put(compiled.params), jax.device_put(np.asarray(ids, np.int32)), Patch(),
                       compiled.causal, jnp)
    return {"logits": np.asarray(out["outputs"]), "activations": np.asarray(out["activations"]),
            "patterns": np.asarray(out["patterns"])}


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
        return _batched(params, jnp.asarray(ids, jnp.int32), self.causal)

    def params(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)[...]) for name in PARAM_NAMES}
