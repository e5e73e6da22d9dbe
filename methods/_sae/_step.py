"""One training step for every kind: the hyperparameters, the encoders, the losses (AuxK
included), Adam with its schedule, and the compiled loop over a block of steps."""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from planted.methods._sae._sparse import _decode, _decode_dense, _gathered, _row_kth_keys

KINDS = ("relu", "topk", "batchtopk", "jumprelu")


@dataclasses.dataclass(frozen=True)
class _Hyper:
    kind: str
    n_latents: int
    k: int
    l1_coefficient: float
    sparsity_coefficient: float
    bandwidth: float
    aux_coefficient: float
    k_aux: int
    dead_after: int
    batch_size: int
    lr: float


class _Schedule(NamedTuple):
    """The step counts of a run, passed to the compiled loop as numbers rather than constants, so
    that runs of any length share one compilation (runs of 32 steps or more; shorter ones one per
    power of two)."""

    l1_warmup: int | jax.Array  # steps over which the L1 coefficient ramps up from zero
    decay_start: int | jax.Array  # the step from which the learning rate decays linearly...
    decay_steps: int | jax.Array  # ...to zero over this many steps

    @classmethod
    def of(cls, n_steps: int) -> _Schedule:
        decay_start = int(0.8 * n_steps)
        return cls(l1_warmup=max(1, n_steps // 20), decay_start=decay_start, decay_steps=max(n_steps - decay_start, 1))


def _jumprelu_fns():
    """JumpReLU and its step function with the straight-through pseudo-derivatives for theta."""

    def rect(u):
        return (jnp.abs(u) < 0.5).astype(u.dtype)

    @jax.custom_vjp
    def jumprelu(z, theta, eps):
        return z * (z > theta)

    def jumprelu_fwd(z, theta, eps):
        return jumprelu(z, theta, eps), (z, theta, eps)

    def jumprelu_bwd(res, g):
        z, theta, eps = res
        dz = g * (z > theta)
        dtheta = jnp.sum(g * (-theta / eps) * rect((z - theta) / eps), axis=0)
        return dz, dtheta, None

    jumprelu.defvjp(jumprelu_fwd, jumprelu_bwd)

    @jax.custom_vjp
    def step(z, theta, eps):
        return (z > theta).astype(z.dtype)

    def step_fwd(z, theta, eps):
        return step(z, theta, eps), (z, theta, eps)

    def step_bwd(res, g):
        z, theta, eps = res
        dtheta = jnp.sum(g * (-1.0 / eps) * rect((z - theta) / eps), axis=0)
        return jnp.zeros_like(z), dtheta, None

    step.defvjp(step_fwd, step_bwd)
    return jumprelu, step


_jumprelu, _step = _jumprelu_fns()


def _batch_threshold(pre: jax.Array, count: int) -> jax.Array:
    """The value above which ``count`` entries of ``pre`` lie, by bisection (no full sort)."""
    hi = jnp.max(pre)
    lo = jnp.zeros_like(hi)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        many = jnp.sum(pre > mid) > count
        return jnp.where(many, mid, lo), jnp.where(many, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 32, body, (lo, hi))
    return hi


def _encode(params, x, hp: _Hyper):
    """Pre-activations and codes for a batch; returns (pre, codes, auxiliary sparsity loss)."""
    pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    if hp.kind == "relu":
        codes = jax.nn.relu(pre)
        return pre, codes, jnp.sum(codes, axis=1).mean()
    if hp.kind == "batchtopk":
        relu = jax.nn.relu(pre)
        threshold = jax.lax.stop_gradient(_batch_threshold(relu, hp.k * pre.shape[0]))
        codes = jnp.where(relu > threshold, relu, 0.0)
        return pre, codes, jnp.zeros(())
    theta = jnp.exp(params["log_threshold"])
    codes = _jumprelu(pre, theta, hp.bandwidth)
    l0 = jnp.sum(_step(pre, theta, hp.bandwidth), axis=1).mean()
    return pre, codes, l0


def _aux_loss(params, x, err, dead, pre, k_aux: int, sparse: bool):
    """AuxK (Gao et al. 2024): reconstruct the residual from the top-``k_aux`` dead latents.

    Only dead latents are trained by it: the decoder bias and the residual are held fixed. Both
    paths choose on ``pre`` (the main loss's pre-activations, without a gradient). TopK
    (``sparse``) works from the chosen latents only; the dense kinds decode a (batch, n_latents)
    matrix of the chosen codes, as their main loss does.
    """
    centred = x - jax.lax.stop_gradient(params["b_dec"])
    if sparse:
        values, idx = _gathered(params, centred, pre, k_aux, allowed=dead)
        values = jnp.where(dead[idx], jax.nn.relu(values), 0.0)
        recon = _decode(params["W_dec"], values, idx)
    else:
        pre_aux = centred @ params["W_enc"] + params["b_enc"]
        keys, kth = _row_kth_keys(jnp.where(dead[None, :], pre, -jnp.inf), k_aux)
        chosen = dead[None, :] & (keys >= kth[:, None])
        recon = _decode_dense(jnp.where(chosen, jax.nn.relu(pre_aux), 0.0), params["W_dec"])
    aux_err = jax.lax.stop_gradient(err) - recon
    return jnp.sum(aux_err**2, axis=1).mean()


def _loss(params, x, dead, step, hp: _Hyper, l1_warmup=1):
    if hp.kind == "topk":
        # Sparse all the way: one dense product chooses the latents, everything else touches k of them.
        centred = x - params["b_dec"]
        pre = jax.lax.stop_gradient(centred @ params["W_enc"] + params["b_enc"])
        values, idx = _gathered(params, centred, pre, hp.k)
        values = jax.nn.relu(values)
        recon = _decode(params["W_dec"], values, idx) + params["b_dec"]
        fired = jnp.zeros(hp.n_latents, jnp.int32).at[idx].max((values > 0).astype(jnp.int32)) > 0
        sparsity = jnp.zeros(())
    else:
        pre, codes, sparsity = _encode(params, x, hp)
        recon = _decode_dense(codes, params["W_dec"]) + params["b_dec"]
        fired = jnp.any(codes > 0, axis=0)
        pre = jax.lax.stop_gradient(pre)
    err = x - recon
    mse = jnp.sum(err**2, axis=1).mean()
    if hp.kind == "relu":
        warm = jnp.minimum(1.0, (step + 1) * (1 / l1_warmup))  # (step + 1) / l1_warmup, as XLA compiled it
        penalty = warm * hp.l1_coefficient * sparsity
    elif hp.kind == "jumprelu":
        penalty = hp.sparsity_coefficient * sparsity
    else:
        penalty = 0.0
    if hp.aux_coefficient > 0:
        aux_fn = functools.partial(_aux_loss, k_aux=hp.k_aux, sparse=hp.kind == "topk")
        aux = jax.lax.cond(jnp.any(dead), aux_fn, lambda *a: jnp.zeros(()), params, x, err, dead, pre)
        loss = mse + penalty + hp.aux_coefficient * aux
    else:
        loss = mse + penalty
    return loss, (mse, fired)


def _optimizer(hp: _Hyper, schedule: _Schedule) -> optax.GradientTransformation:
    """Adam at ``lr``, decayed linearly to zero over the last fifth of training (optax's joined
    constant and linear schedules, written out so that the step counts may be traced)."""
    def rate(step):  # the divisions are products with the reciprocal, as XLA compiles a division by a constant:
        # the same rates, bit for bit, as the schedule with the counts as constants
        count = jnp.clip(step - schedule.decay_start, 0, schedule.decay_steps)
        return jnp.where(step < schedule.decay_start, hp.lr, hp.lr * (1 - count * (1 / schedule.decay_steps)))

    return optax.adam(rate)


@functools.partial(jax.jit, static_argnames="hp")
def _train_block(state, xs, n, schedule: _Schedule, hp: _Hyper):
    """Run the first ``n`` steps of ``xs`` (steps, batch, d_model); returns the state and each
    step's mean squared error (the entries past ``n`` are zero). Compiled once per (hp, shapes):
    the number of steps and the schedule are traced, so a short last block and runs of another
    length reuse the compilation."""
    optimizer = _optimizer(hp, schedule)

    def one(i, carry):
        (params, opt_state, since_fired, step), mses = carry
        dead = since_fired >= hp.dead_after
        (_, (mse, fired)), grads = jax.value_and_grad(_loss, has_aux=True)(
            params, xs[i], dead, step, hp, schedule.l1_warmup)
        w = params["W_dec"]
        grads["W_dec"] = grads["W_dec"] - jnp.sum(grads["W_dec"] * w, axis=1, keepdims=True) * w
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params["W_dec"] = params["W_dec"] / jnp.linalg.norm(params["W_dec"], axis=1, keepdims=True)
        since_fired = jnp.where(fired, 0, since_fired + 1)
        return (params, opt_state, since_fired, step + 1), mses.at[i].set(mse)

    return jax.lax.fori_loop(0, n, one, (state, jnp.zeros(xs.shape[0], xs.dtype)))
