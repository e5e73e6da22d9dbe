"""``sae``: checks, input scaling, feeding blocks of batches to the compiled loop, and the trained
SAE as a dictionary in input units."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from planted.groundtruth import Dictionary, Encoder, Problems
from planted.groundtruth import as_matrix
from planted.groundtruth import Progress
from planted.methods._sae._step import KINDS, _Hyper, _optimizer, _Schedule, _batch_threshold, _train_block

_BLOCK = 32  # steps per compiled call; shorter blocks are padded to this (or, for runs below it, a power of two)


def _check(seed, n_latents, kind, k, batch_size, n_steps, lr, l1_coefficient, sparsity_coefficient, d: int, **extra) -> None:
    p = Problems()
    p.integer("n_latents", n_latents, low=1, high=1 << 20)
    p.integer("seed", seed, low=0)
    p.choice("kind", kind, KINDS)
    if kind in ("topk", "batchtopk"):
        if k is None:
            p.add(f"k is required for kind={kind!r} (the number of active latents per sample)")
        else:
            p.integer("k", k, low=1, high=n_latents if isinstance(n_latents, int) else None)
    p.integer("batch_size", batch_size, low=1)
    p.integer("n_steps", n_steps, low=1)
    p.number("lr", lr, low=0, low_open=True)
    p.number("l1_coefficient", l1_coefficient, low=0)
    p.number("sparsity_coefficient", sparsity_coefficient, low=0)
    p.number("jumprelu_bandwidth", extra["jumprelu_bandwidth"], low=0, low_open=True)
    p.number("initial_threshold", extra["initial_threshold"], low=0, low_open=True)
    p.number("aux_coefficient", extra["aux_coefficient"], low=0)
    p.integer("dead_after", extra["dead_after"], low=1)
    p.raise_if_any("planted.methods.sae")


def sae(
    activations,
    n_latents: int,
    *,
    kind: str = "relu",
    seed: int,
    k: int | None = None,
    n_steps: int = 4000,
    batch_size: int = 1024,
    lr: float = 3e-3,
    l1_coefficient: float = 2.0,
    sparsity_coefficient: float = 1.0,
    jumprelu_bandwidth: float = 0.05,
    initial_threshold: float = 0.5,
    aux_coefficient: float = 1 / 32,
    dead_after: int = 500,
    progress: bool | None = None,
) -> Dictionary:
    """Train a sparse autoencoder and return its decoder as a dictionary.

    Parameters
    ----------
    activations : (n_samples, d_model) array, or an iterable of (batch, d_model) arrays
        An array is sampled in shuffled epochs; an iterable (e.g. a generator over
        ``toy.batches``) is streamed once and re-batched to ``batch_size``; training ends after
        ``n_steps`` or when the stream does.
    n_latents : int
        Dictionary size.
    kind : {"relu", "topk", "batchtopk", "jumprelu"}
        ReLU with an L1 penalty (``l1_coefficient``); TopK keeping ``k`` latents per sample;
        BatchTopK keeping ``k * batch`` latents per batch (a global threshold, the mean over the
        second half of training of the smallest kept activation, is used at inference); JumpReLU with learned thresholds
        and an L0 penalty (``sparsity_coefficient``) trained through straight-through
        pseudo-derivatives with a rectangle kernel of width ``jumprelu_bandwidth``.
    seed : int
    k : int, required for topk and batchtopk
    n_steps, batch_size, lr : training length, batch size, Adam learning rate (decayed linearly to
        zero over the last fifth of training)
    l1_coefficient : float
        ReLU: weight of the L1 penalty on codes (inputs are scaled to mean squared norm
        ``d_model``; the penalty is ramped up over the first 5% of steps).
    sparsity_coefficient, jumprelu_bandwidth, initial_threshold : float
        JumpReLU: weight of the L0 penalty, width of the pseudo-derivative's kernel, and the
        thresholds' starting value (in scaled units).
    aux_coefficient : weight of the AuxK loss on dead latents (dead after ``dead_after`` steps
        without firing)

    The defaults (4000 steps of 1024, lr 3e-3, L1 2.0) recover the ``sharkey2022`` preset with
    MMCS 0.997. The encoder starts as the decoder's transpose and the decoder bias as the mean
    input.
    progress : bool, optional
        Report progress (default: on; a bar with the time left on a terminal or in a notebook, a
        line every 30 s elsewhere once training has run that long); False is silent.

    Returns
    -------
    Dictionary
        ``directions`` (n_latents, d_model), unit rows (the decoder); ``encoder`` reproducing the
        trained encoder; ``decoder_bias``; ``codes`` of ``activations`` when it is an array (CSR).
    """
    is_array = isinstance(activations, np.ndarray) or hasattr(activations, "__array__")
    if is_array:
        x = as_matrix("activations", activations)
        d = x.shape[1]
    elif isinstance(activations, Iterable) and not isinstance(activations, (str, bytes, dict)):
        stream = _rebatch(activations, batch_size if isinstance(batch_size, int) and batch_size > 0 else 1)
        first = next(stream, None)
        if first is None:
            raise ValueError("activations is an empty iterable; it must yield (batch, d_model) arrays")
        d = first.shape[1]
        stream = itertools.chain([first], stream)
    else:
        raise ValueError(
            "activations must be a (n_samples, d_model) array or an iterable of (batch, d_model) arrays, "
            f"got {type(activations).__name__}"
        )
    _check(seed, n_latents, kind, k, batch_size, n_steps, lr, l1_coefficient, sparsity_coefficient, d,
           jumprelu_bandwidth=jumprelu_bandwidth, initial_threshold=initial_threshold,
           aux_coefficient=aux_coefficient, dead_after=dead_after)
    rng = np.random.default_rng([seed, 303])
    # Inputs are scaled so their mean squared norm is d_model (estimated on the first batch of a stream).
    mean_sq = float(np.mean(np.sum((x if is_array else first).astype(np.float64) ** 2, axis=1)))
    if mean_sq == 0:
        raise ValueError("activations are all zero; an SAE needs signal to fit")
    scale = float(np.sqrt(d / mean_sq))
    blocks = _array_blocks(x, batch_size, n_steps, rng) if is_array else _stream_blocks(stream, batch_size, n_steps)

    hp = _Hyper(
        kind=kind,
        n_latents=n_latents,
        k=k or 0,
        l1_coefficient=float(l1_coefficient),
        sparsity_coefficient=float(sparsity_coefficient),
        bandwidth=float(jumprelu_bandwidth),
        aux_coefficient=float(aux_coefficient),
        k_aux=max(1, min(n_latents, d // 2)),
        dead_after=int(dead_after),
        batch_size=batch_size,
        lr=float(lr),
    )
    schedule = jax.tree.map(jnp.int32, _Schedule.of(n_steps))
    w_dec = rng.standard_normal((n_latents, d)).astype(np.float32)
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    params = {
        "W_enc": jnp.asarray(w_dec.T.copy()),
        "b_enc": jnp.zeros(n_latents, jnp.float32),
        "W_dec": jnp.asarray(w_dec),
        "b_dec": jnp.asarray(scale * (x if is_array else first).mean(axis=0), jnp.float32),
    }
    if kind == "jumprelu":
        params["log_threshold"] = jnp.full(n_latents, np.log(initial_threshold), jnp.float32)
    state = (params, _optimizer(hp, schedule).init(params), jnp.zeros(n_latents, jnp.int32), jnp.zeros((), jnp.int32))
    threshold_sum, threshold_count = 0.0, 0
    steps_done = 0
    with Progress(n_steps, f"sae[{kind}]", enabled=progress) as bar:
        length = min(_BLOCK, 1 << (n_steps - 1).bit_length())  # 32, or a power of two for shorter runs
        last = None  # the block in flight: the next one is drawn and scaled while it trains (BatchTopK's
        # threshold, read in the second half of training, waits for each block instead)
        for block in blocks:
            block = block * np.float32(scale)
            steps = block.shape[0]
            padded = block if steps == length else np.concatenate([block, np.zeros((length - steps, *block.shape[1:]), block.dtype)])
            # device_put copies once; jnp.asarray took twice as long for a block of 32 MB
            state, mse = _train_block(state, jax.device_put(padded), jnp.int32(steps), schedule, hp)
            steps_done += steps
            if kind == "batchtopk" and steps_done > n_steps // 2:  # once the encoder has settled
                threshold_sum, threshold_count = _track_threshold(state[0], block, hp, threshold_sum, threshold_count)
            if last is not None:
                _report(bar, *last, d)
            last = (mse, steps)
        if last is not None:
            _report(bar, *last, d)
    params = jax.tree.map(np.asarray, state[0])
    return _to_dictionary(params, hp, scale, threshold_sum / max(threshold_count, 1), x if is_array else None)


def _report(bar: Progress, mse: jax.Array, steps: int, d: int) -> None:
    """Advance the progress bar by a finished block (this waits for it) and show its last error."""
    last = float(np.asarray(mse)[steps - 1])  # waits for this block only
    bar.update(steps)
    bar.note(f"mse {last / d:.4f}")


def _track_threshold(params, block: np.ndarray, hp: _Hyper, total: float, count: int) -> tuple[float, int]:
    """Running mean of the smallest activation BatchTopK keeps (its inference threshold)."""
    x = jnp.asarray(block[-1])
    pre = jax.nn.relu((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"])
    t = float(_batch_threshold(pre, hp.k * pre.shape[0]))
    return total + t, count + 1


def _to_dictionary(params, hp: _Hyper, scale: float, batch_threshold: float, x: np.ndarray | None) -> Dictionary:
    """Express the trained SAE in input units: codes and biases divide by ``scale``."""
    w_dec = params["W_dec"].astype(np.float32)
    pre_bias = params["b_dec"] / scale
    bias = params["b_enc"] / scale
    if hp.kind == "relu":
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="relu")
    elif hp.kind == "topk":
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="topk", k=hp.k)
    elif hp.kind == "batchtopk":
        threshold = np.full(hp.n_latents, max(batch_threshold, 0.0) / scale, np.float32)
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="threshold", threshold=threshold)
    else:
        threshold = np.exp(params["log_threshold"]) / scale
        encoder = Encoder(weights=params["W_enc"], bias=bias, pre_bias=pre_bias, activation="threshold", threshold=threshold)
    codes = encoder.sparse(x) if x is not None else None
    return Dictionary(directions=w_dec, codes=codes, encoder=encoder, decoder_bias=pre_bias, method=f"sae-{hp.kind}")


def _array_blocks(x: np.ndarray, batch_size: int, n_steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of (steps, batch, d) drawn from shuffled epochs over ``x``."""
    n = x.shape[0]
    batch = min(batch_size, n)
    order = rng.permutation(n)
    position = 0
    done = 0
    while done < n_steps:
        steps = min(_BLOCK, n_steps - done)
        idx = np.empty((steps, batch), dtype=np.int64)
        for s in range(steps):
            if position + batch > n:
                order = rng.permutation(n)
                position = 0
            idx[s] = order[position : position + batch]
            position += batch
        yield x[idx]
        done += steps


def _rebatch(stream: Iterable, batch_size: int) -> Iterator[np.ndarray]:
    """Re-cut an iterable of (m, d) arrays into (batch_size, d) float32 arrays (last one dropped if short)."""
    pending: list[np.ndarray] = []
    count = 0
    width = None
    for i, item in enumerate(stream):
        a = as_matrix(f"activations batch {i}", item, cols=width)
        width = a.shape[1]
        pending.append(a)
        count += a.shape[0]
        while count >= batch_size:
            allp = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield allp[:batch_size]
            pending, count = [allp[batch_size:]], count - batch_size


def _stream_blocks(stream: Iterator[np.ndarray], batch_size: int, n_steps: int) -> Iterator[np.ndarray]:
    done = 0
    while done < n_steps:
        steps = min(_BLOCK, n_steps - done)
        batches = list(itertools.islice(stream, steps))
        if not batches:
            return
        if batches[0].shape[0] != batch_size:
            return
        yield np.stack(batches)
        done += len(batches)
