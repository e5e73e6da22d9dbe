"""Toy Models of Superposition (Elhage et al. 2022), trained with optax, many instances at once.

The ReLU-output model ``x' = ReLU(W^T W x + b)`` with ``W`` (n_hidden, n_features), and the variant
with a ReLU hidden layer, ``x' = ReLU(W^T ReLU(W x) + b)``. Features are uniform on [0, 1) when
present and zero with probability ``sparsity``; the loss is the importance-weighted squared error;
the optimiser is AdamW. One instance is written as a pure function and lifted with ``jax.vmap``
over restarts and over grid points inside one ``jax.jit``, with ``lax.scan`` over steps.

Local minima. Adam from a single random start sometimes stops in a worse configuration (for
n=5, m=2 at high sparsity: four features in antipodal pairs and one dropped, at about twice the
pentagon's loss). Every instance is therefore trained from ``restarts`` random starts at once
(vmapped) and the start with the lowest loss on one evaluation batch, common to all the starts
of an instance, is kept. The loss the toy reports is then measured again on fresh samples that
neither training nor the choice saw (``_HELDOUT_SAMPLES``), so it is an unbiased estimate of the
kept model's expected loss, with its standard error: the minimum over starts of the selection
batch's losses is biased low.

References
----------
Elhage et al. (2022), "Toy Models of Superposition", Transformer Circuits Thread.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from planted.groundtruth import (
    REPRESENTED_NORM,
    Config,
    FeatureTruth,
    Problems,
    SuperpositionToy,
    TrainingDynamics,
    dimensionality,
    dimensions_per_feature,
)
from planted.groundtruth._threads import cpu_cores
from planted.toys import _random as rnd
from planted.toys._checks import as_float, require_memory
from planted.toys._family import Family
from planted.toys._feature_storage import check_superposition, superposition_arrays, superposition_toy

CORRELATIONS = ("none", "correlated", "anticorrelated")
_EVAL_SAMPLES = 8192
# Fresh samples for the reported loss, in chunks of _EVAL_SAMPLES.
_HELDOUT_SAMPLES = 16 * _EVAL_SAMPLES
_STREAM_TRAIN, _STREAM_EVAL, _STREAM_DATA, _STREAM_HELDOUT = 11, 12, 13, 14


@dataclasses.dataclass(frozen=True)
class SuperpositionConfig(Config):
    """Config of ``toys.superposition``; see that function for each field's meaning."""

    kind = "superposition"

    n_features: int
    n_hidden: int
    n_samples: int = 10_000
    seed: int = 0
    sparsity: float = 0.0
    importance: float | tuple[float, ...] = 1.0
    hidden_relu: bool = False
    tied: bool = True
    correlation: str = "none"
    n_steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    restarts: int = 4
    snapshot_every: int = 0

    def _check(self, p: Problems) -> None:
        p.integer("n_features", self.n_features, low=1, high=100_000)
        if isinstance(self.n_features, int) and self.n_features >= 1:
            p.integer("n_hidden", self.n_hidden, low=1, high=self.n_features)
        else:
            p.integer("n_hidden", self.n_hidden, low=1)
        p.integer("n_samples", self.n_samples, low=1, high=100_000_000)
        p.integer("seed", self.seed, low=0, high=2**31 - 1)
        p.number("sparsity", self.sparsity, low=0, high=1, high_open=True)
        if isinstance(self.importance, tuple):
            if isinstance(self.n_features, int) and len(self.importance) != self.n_features:
                p.add(f"importance must have n_features ({self.n_features}) entries, got {len(self.importance)}")
            for i, v in enumerate(self.importance):
                p.number(f"importance[{i}]", v, low=0, high=1e6)
        else:
            p.number("importance", self.importance, low=0, high=1e6, low_open=True)
            if (isinstance(self.n_features, int) and not p.messages
                    and self.n_features > 1 and math.log10(self.importance) * (self.n_features - 1) > 30):
                p.add(f"importance {self.importance} ** (n_features - 1 = {self.n_features - 1}) exceeds 1e30; "
                      "choose an importance closer to 1")
        p.boolean("hidden_relu", self.hidden_relu)
        p.boolean("tied", self.tied)
        p.choice("correlation", self.correlation, CORRELATIONS)
        if self.correlation != "none" and isinstance(self.n_features, int) and self.n_features % 2:
            p.add(f"correlation={self.correlation!r} pairs features, so n_features must be even, got {self.n_features}")
        if self.correlation == "anticorrelated" and isinstance(self.sparsity, (int, float)) and self.sparsity < 0.5:
            p.add(f"anticorrelated pairs need sparsity >= 0.5 (a pair holds one feature at a time), got {self.sparsity}")
        p.integer("n_steps", self.n_steps, low=1, high=10_000_000)
        p.integer("batch_size", self.batch_size, low=1, high=1 << 20)
        p.number("lr", self.lr, low=0, high=10, low_open=True)
        p.number("weight_decay", self.weight_decay, low=0, high=10)
        p.integer("restarts", self.restarts, low=1, high=1024)
        p.integer("snapshot_every", self.snapshot_every, low=0, high=self.n_steps if isinstance(self.n_steps, int) else None)

    def importances(self) -> np.ndarray:
        """Per-feature importance (n_features,): ``importance ** i`` for a float, else as given."""
        if isinstance(self.importance, tuple):
            return np.asarray(self.importance, dtype=np.float32)
        return (float(self.importance) ** np.arange(self.n_features)).astype(np.float32)


# --- random numbers ------------------------------------------------------------------------
#
# Training draws a fresh (n_features, batch) block of uniforms every step. jax's default threefry
# generator spent about 60% of a step on it on a CPU, so training uses the counter-based hash of
# ``toys._random`` instead, keyed per instance and restart from threefry.

# --- one instance, pure JAX -----------------------------------------------------------------
#
# Inside training, data and activations are laid out (features, batch): the batch axis is the
# long, contiguous one, which XLA vectorises well; (batch, features) was 1.5-2x slower here.


def _sample(words, step, batch: int, n: int, sparsity, correlation: str):
    """Inputs (n, batch): uniform on [0, 1), present with probability 1 - sparsity (pairs for correlations)."""
    if correlation == "none":
        # One uniform u serves both draws: present when u >= sparsity, and then
        # (u - sparsity) / (1 - sparsity) is uniform on [0, 1). Half the random numbers of two draws.
        u = rnd.uniform(words, step, (n, batch))
        return jnp.where(u >= sparsity, (u - sparsity) / (1 - sparsity), 0.0)
    u = rnd.uniform(words, step, (2 * n, batch))
    values, pair_u, first_u = u[:n], u[n : n + n // 2], u[n + n // 2 :]
    if correlation == "correlated":
        present = jnp.repeat(pair_u >= sparsity, 2, axis=0)
    else:
        pair = pair_u < 2 * (1 - sparsity)
        first = first_u < 0.5
        present = jnp.stack([pair & first, pair & ~first], axis=1).reshape(n, batch)
    return values * present


def _init(key, n: int, m: int, tied: bool):
    k1, k2 = jax.random.split(key)
    scale = jnp.sqrt(2.0 / (n + m))  # Xavier normal
    params = {"W": scale * jax.random.normal(k1, (m, n)), "b": jnp.zeros(n)}
    if not tied:
        params["W_out"] = scale * jax.random.normal(k2, (m, n))
    return params


def _forward(params, x, hidden_relu: bool):
    """x (n, batch) -> x' (n, batch)."""
    h = params["W"] @ x
    if hidden_relu:
        h = jax.nn.relu(h)
    return jax.nn.relu(params.get("W_out", params["W"]).T @ h + params["b"][:, None])


def _loss(params, x, importance, hidden_relu: bool):
    return jnp.sum(importance[:, None] * (x - _forward(params, x, hidden_relu)) ** 2) / x.shape[1]


def _train_one(key, eval_key, sparsity, importance, *, cfg: SuperpositionConfig):
    """Train one instance from one start; return (params, loss on the evaluation batch of
    ``eval_key``, snapshots). Every start of an instance gets the same ``eval_key``."""
    init_key, train_key = jax.random.split(key, 2)
    words = rnd.words(train_key)
    params = _init(init_key, cfg.n_features, cfg.n_hidden, cfg.tied)
    optimizer = optax.adamw(cfg.lr, weight_decay=cfg.weight_decay)
    grad = jax.grad(_loss)

    def step(carry, t):
        params, opt_state = carry
        x = _sample(words, t, cfg.batch_size, cfg.n_features, sparsity, cfg.correlation)
        updates, opt_state = optimizer.update(grad(params, x, importance, cfg.hidden_relu), opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    def run(carry, first, count: int):
        """``count`` steps from step ``first`` (an int or a traced uint32)."""
        return jax.lax.scan(step, carry, first + jnp.arange(count, dtype=jnp.uint32))[0]

    carry = (params, optimizer.init(params))
    snapshots = None
    every = cfg.snapshot_every
    x_eval = _sample(rnd.words(eval_key), 0, _EVAL_SAMPLES, cfg.n_features, sparsity, cfg.correlation)

    def record(p):  # a snapshot: the embedding, the bias and the loss on the evaluation batch
        return p["W"], p["b"], _loss(p, x_eval, importance, cfg.hidden_relu)

    if every:
        blocks = cfg.n_steps // every

        def block(carry, b):
            carry = run(carry, b * every, every)
            return carry, record(carry[0])

        carry, taken = jax.lax.scan(block, carry, jnp.arange(blocks, dtype=jnp.uint32))
        snapshots = tuple(jnp.concatenate([first[None], rest]) for first, rest in zip(record(params), taken))
        if cfg.n_steps % every:  # the final state closes the record
            carry = run(carry, blocks * every, cfg.n_steps % every)
            snapshots = tuple(jnp.concatenate([a, p[None]]) for a, p in zip(snapshots, record(carry[0])))
    else:
        carry = run(carry, 0, cfg.n_steps)
    params = carry[0]
    return params, _loss(params, x_eval, importance, cfg.hidden_relu), snapshots


@functools.partial(jax.jit, static_argnames="cfg")
def _train_instances(keys, eval_keys, sparsities, importances, *, cfg: SuperpositionConfig):
    """Train instances keys (k,), eval_keys (k,), sparsities (k,), importances (k, n) side by side (one vmap)."""
    return jax.vmap(functools.partial(_train_one, cfg=cfg))(keys, eval_keys, sparsities, importances)


def _train_grid(keys, eval_keys, sparsities, importances, *, cfg: SuperpositionConfig):
    """keys (points, restarts); eval_keys, sparsities (points,); importances (points, n).

    Points and restarts are flattened into one list of instances (XLA runs one batch dimension of
    small matmuls more than twice as fast as two nested ones), cut into one equal group per CPU
    core, and the groups run on a thread pool: one compiled call keeps about 1.2 of this machine's
    2 cores busy, two concurrent calls keep both, which is 2-3x faster. Each instance's result does
    not depend on the group it lands in. On an accelerator the instances run as one group.
    """
    points, restarts = keys.shape[:2]
    total = points * restarts
    keys = keys.reshape(total)
    eval_keys = jnp.repeat(eval_keys, restarts)
    sparsities = jnp.repeat(sparsities, restarts)
    importances = jnp.repeat(importances, restarts, axis=0)
    groups = max(1, min(cpu_cores(), total)) if jax.default_backend() == "cpu" else 1
    size = -(-total // groups)
    pad = groups * size - total  # the last group is padded with copies of the first instance
    keys, eval_keys, sparsities, importances = (
        jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) for a in (keys, eval_keys, sparsities, importances)
    )
    train = functools.partial(_train_instances, cfg=cfg)
    with concurrent.futures.ThreadPoolExecutor(groups) as pool:
        parts = list(pool.map(
            lambda g: jax.tree.map(np.asarray, train(*(a[g * size : (g + 1) * size] for a in (keys, eval_keys, sparsities, importances)))),
            range(groups),
        ))
    return jax.tree.map(
        lambda *a: np.concatenate(a)[:total].reshape((points, restarts) + a[0].shape[1:]), *parts,
    )


# --- public API -----------------------------------------------------------------------------


def superposition(
    n_features: int,
    n_hidden: int,
    n_samples: int = 10_000,
    *,
    seed: int,
    sparsity: float = 0.0,
    importance: float | Sequence[float] = 1.0,
    hidden_relu: bool = False,
    tied: bool = True,
    correlation: str = "none",
    n_steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    restarts: int = 4,
    snapshot_every: int = 0,
) -> SuperpositionToy:
    """Train a toy model of superposition and return it with the geometry it learned.

    Parameters
    ----------
    n_features, n_hidden : int
        n features squeezed through m = n_hidden dimensions (1 <= m <= n).
    n_samples : int
        Inputs drawn for the artifact: ``toy.activations`` are their hidden activations ``W x``
        (``ReLU(W x)`` with ``hidden_relu``) and ``toy.truth.codes`` the inputs themselves.
    seed : int
    sparsity : float in [0, 1)
        Probability that a feature is zero; present features are uniform on [0, 1).
    importance : float or sequence of n_features floats
        A float r gives feature i importance r**i (1.0: all equal); a sequence gives each.
    hidden_relu : bool
        The variant with a ReLU on the hidden layer.
    tied : bool
        Read out with W itself (the paper's model) or with a separate matrix.
    correlation : {"none", "correlated", "anticorrelated"}
        Features in pairs (0, 1), (2, 3), ...: always present together, or never together.
    n_steps, batch_size, lr, weight_decay :
        AdamW training; the defaults (10,000 steps of 1,024, lr 1e-3) converge for the paper's
        small models.
    restarts : int
        Random starts trained together; the one with the lowest loss on an evaluation batch
        common to all of them is kept.
    snapshot_every : int
        Keep W and b every this many steps (0: none), inside the compiled loop, as
        ``truth.dynamics``: the step at which each feature became represented and the steps at
        which the geometry changed are then part of the truth. The initialisation (step 0) and the
        final state are always among the snapshots.

    Returns
    -------
    SuperpositionToy
        ``weights`` (n_hidden, n_features), ``bias``, ``loss`` (the kept model's expected loss,
        estimated on 131,072 fresh samples) with ``loss_stderr``, ``restart_losses`` (each
        start's loss on the common evaluation batch), and ``truth`` (``FeatureTruth``):
        ``directions`` the unit columns of W, ``norms`` their lengths, ``represented``
        (norm > 0.5), ``dimensionality`` D_i, ``dimensions_per_feature`` D*, ``codes``,
        ``firing_probabilities`` (1 - sparsity).

    References
    ----------
    Elhage et al. (2022), "Toy Models of Superposition".
    """
    config = SuperpositionConfig(
        n_features=n_features, n_hidden=n_hidden, n_samples=n_samples, seed=seed, sparsity=sparsity,
        importance=tuple(as_float(v) for v in importance) if isinstance(importance, (list, tuple, np.ndarray)) else as_float(importance),
        hidden_relu=hidden_relu, tied=tied, correlation=correlation, n_steps=n_steps, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, restarts=restarts, snapshot_every=snapshot_every,
    )
    return build(config)


def build(config: SuperpositionConfig) -> SuperpositionToy:
    """Train the toy a ``SuperpositionConfig`` describes."""
    return _build_many([config])[0]


def superposition_sweep(
    n_features: int,
    n_hidden: int,
    *,
    sparsities: Sequence[float],
    importances: Sequence[float | Sequence[float]] = (1.0,),
    seeds: Sequence[int] = (0,),
    **kwargs,
) -> list[SuperpositionToy]:
    """Train the grid sparsities x importances x seeds in one compiled, vmapped call.

    Returns one toy per grid point, in the order ``for s in sparsities for r in importances for
    seed in seeds``; each equals (to float tolerance) what ``superposition`` gives for that point.
    Other keyword arguments are those of ``superposition`` and are shared by the whole grid.
    """
    configs = [
        SuperpositionConfig(
            n_features=n_features, n_hidden=n_hidden, seed=seed, sparsity=float(s),
            importance=tuple(as_float(v) for v in r) if isinstance(r, (list, tuple, np.ndarray)) else as_float(r), **kwargs,
        )
        for s in sparsities
        for r in importances
        for seed in seeds
    ]
    if not configs:
        raise ValueError("sparsities, importances and seeds must each have at least one value")
    return _build_many(configs)


PHASES = ("not represented", "dedicated", "superposition")


@dataclasses.dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """Where the last feature lands, over feature density x its relative importance (Elhage et al. 2022).

    Attributes
    ----------
    densities : (k,) float
        Feature density 1 - sparsity (every feature has the same one).
    relative_importances : (l,) float
        Importance of the last feature; every other feature has importance 1.
    phase : (l, k) int8
        Index into ``PHASES``: 0 the last feature is not represented (its norm is at most 0.5),
        1 it has a dedicated dimension (dimensionality D > 0.9: nothing else shares its
        direction), 2 it is in superposition (represented, sharing its dimension).
    norms, dimensionality : (l, k) float
        The last feature's embedding norm and dimensionality D.
    toys : list of SuperpositionToy
        The trained toys, row-major over (relative importance, density).
    """

    densities: np.ndarray
    relative_importances: np.ndarray
    phase: np.ndarray
    norms: np.ndarray
    dimensionality: np.ndarray
    toys: list = dataclasses.field(repr=False)


def phase_diagram(
    n_features: int = 2,
    n_hidden: int = 1,
    *,
    densities: Sequence[float] = tuple(np.logspace(-2, 0, 12)),
    relative_importances: Sequence[float] = tuple(np.logspace(-1, 1, 12)),
    seed: int = 0,
    **kwargs,
) -> PhaseDiagram:
    """Train the grid relative importance x feature density in one sweep and classify each point.

    The paper's Figure (section "Superposition as a Phase Change"): with n=2 features and m=1
    dimension, a dense, unimportant extra feature is not represented, a dense, important one takes
    the dimension for itself, and sparse ones share it in superposition (antipodal). ``n_features=3,
    n_hidden=2`` gives the paper's second diagram. Other keyword arguments are those of
    ``superposition`` (steps, batch size, restarts ...), shared by the grid.
    """
    dens = np.asarray(densities, np.float64)
    rel = np.asarray(relative_importances, np.float64)
    if dens.ndim != 1 or dens.size == 0 or (dens <= 0).any() or (dens > 1).any():
        raise ValueError(f"densities must be a non-empty list of values in (0, 1], got {densities!r}")
    if rel.ndim != 1 or rel.size == 0 or (rel <= 0).any():
        raise ValueError(f"relative_importances must be a non-empty list of positive values, got {relative_importances!r}")
    configs = [
        SuperpositionConfig(n_features=n_features, n_hidden=n_hidden, seed=seed, sparsity=float(1 - d),
                            importance=(1.0,) * (n_features - 1) + (float(r),), **{"n_samples": 1, **kwargs})
        for r in rel
        for d in dens
    ]
    built = _build_many(configs)
    norms = np.array([t.truth.norms[-1] for t in built]).reshape(rel.size, dens.size)
    dims = np.array([t.truth.dimensionality[-1] for t in built]).reshape(rel.size, dens.size)
    phase = np.where(norms <= REPRESENTED_NORM, 0, np.where(dims > 0.9, 1, 2)).astype(np.int8)
    return PhaseDiagram(densities=dens, relative_importances=rel, phase=phase, norms=norms, dimensionality=dims, toys=built)


def _build_many(configs: list[SuperpositionConfig]) -> list[SuperpositionToy]:
    """Train configs that differ only in seed, sparsity and importance, all at once."""
    # The compiled function sees one canonical config: seed, sparsity and importance are traced.
    shared = dataclasses.replace(configs[0], seed=0, sparsity=0.5, importance=1.0)
    for c in configs:
        if dataclasses.replace(c, seed=0, sparsity=0.5, importance=1.0) != shared:
            raise ValueError("a sweep's configs may differ only in seed, sparsity and importance")
    require_memory(shared.kind, *_memory(shared, len(configs)))
    keys = jnp.stack([
        jax.random.split(jax.random.fold_in(jax.random.key(c.seed), _STREAM_TRAIN), c.restarts) for c in configs
    ])
    sparsities = jnp.asarray([c.sparsity for c in configs], jnp.float32)
    importances = jnp.asarray(np.stack([c.importances() for c in configs]))
    eval_keys = jnp.stack([jax.random.fold_in(jax.random.key(c.seed), _STREAM_EVAL) for c in configs])
    # n_samples sizes only the artifact: training compiles alike for any.
    params, losses, snapshots = _train_grid(keys, eval_keys, sparsities, importances,
                                            cfg=dataclasses.replace(shared, n_samples=1))
    built = []
    for i, c in enumerate(configs):
        best = int(np.argmin(losses[i]))
        dynamics = None
        if snapshots is not None:
            every = c.snapshot_every
            steps = np.arange(0, c.n_steps + 1, every)
            if c.n_steps % every:
                steps = np.append(steps, c.n_steps)
            dynamics = TrainingDynamics(steps=steps, weights=snapshots[0][i, best], biases=snapshots[1][i, best],
                                        losses=snapshots[2][i, best])
        built.append(_toy(c, {k: v[i] for k, v in params.items()}, losses[i], dynamics))
    return built


def _memory(config: SuperpositionConfig, points: int = 1) -> tuple[float, str, str]:
    """An estimate of the bytes training ``points`` instances of ``config`` holds at its peak,
    what makes them, and the parameters that set them: per instance and restart, the weights with
    their gradient and AdamW's two moments (float32), a batch and the evaluation batch through
    the model, the snapshots; then the artifact (hidden activations and the inputs' codes)."""
    m, n, r = config.n_hidden, config.n_features, config.restarts
    matrices = 1 if config.tied else 2
    instances = points * r
    params = 4.0 * 4 * matrices * m * n * instances
    batches = 4.0 * 4 * (config.batch_size + _EVAL_SAMPLES) * (n + m) * min(instances, 2 * cpu_cores())
    snapshots = 4.0 * (config.n_steps // config.snapshot_every + 2 if config.snapshot_every else 0) * (m + 1) * n * instances
    artifact = points * (4.0 * config.n_samples * m + 12.0 * config.n_samples * n * (1 - config.sparsity))
    return (params + batches + snapshots + artifact,
            f"{instances} trained instances: weights and optimiser state {params / 2**30:.1f} GiB, batches "
            f"{batches / 2**30:.1f} GiB, snapshots {snapshots / 2**30:.1f} GiB; artifact {artifact / 2**30:.1f} GiB",
            "n_features, n_hidden or restarts" if params + snapshots >= batches + artifact
            else "batch_size or n_samples")


def _toy(config: SuperpositionConfig, restart_params: dict, restart_losses: np.ndarray, dynamics) -> SuperpositionToy:
    best = int(np.argmin(restart_losses))
    w = restart_params["W"][best].astype(np.float32)
    b = restart_params["b"][best].astype(np.float32)
    w_out = restart_params["W_out"][best].astype(np.float32) if "W_out" in restart_params else w
    norms = np.linalg.norm(w, axis=0)
    directions = np.zeros((config.n_features, config.n_hidden), np.float32)
    nonzero = norms > 1e-8
    directions[nonzero] = (w[:, nonzero] / norms[nonzero]).T
    directions[~nonzero, 0] = 1.0  # a feature with no embedding has no direction; any unit vector stands in
    sampler = functools.partial(_sample_chunk, config, w)
    n_chunks = -(-config.n_samples // _CHUNK)
    chunks = [sampler(c) for c in range(n_chunks)]
    h = np.concatenate([a for a, _ in chunks])[: config.n_samples]
    codes = sp.vstack([c for _, c in chunks], format="csr")[: config.n_samples]
    truth = FeatureTruth(
        directions=directions,
        norms=norms,
        represented=norms > REPRESENTED_NORM,
        codes=codes,
        firing_probabilities=np.full(config.n_features, 1.0 - config.sparsity),
        labels=tuple(f"f{i:03d}" for i in range(config.n_features)),
        dimensionality=dimensionality(w),
        dimensions_per_feature=dimensions_per_feature(w),
        dynamics=dynamics,
    )
    return SuperpositionToy(
        config=config, truth=truth, activations=h, sampler=sampler, chunk_size=_CHUNK, weights=w, bias=b, output_weights=w_out,
        restart_losses=restart_losses.astype(np.float32), **_heldout_loss(config, w, b, w_out),
    )


def _heldout_loss(config: SuperpositionConfig, w: np.ndarray, b: np.ndarray, w_out: np.ndarray) -> dict[str, float]:
    """The model's importance-weighted loss on ``_HELDOUT_SAMPLES`` fresh inputs (a stream of its
    own): {"loss": the mean, "loss_stderr": its standard error}, in float64."""
    words = rnd.words(jax.random.fold_in(jax.random.key(config.seed), _STREAM_HELDOUT))
    importance = config.importances().astype(np.float64)
    w, b, w_out = (np.asarray(a, np.float64) for a in (w, b, w_out))
    per_sample = []
    for chunk in range(_HELDOUT_SAMPLES // _EVAL_SAMPLES):
        x = np.asarray(_sample(words, chunk, _EVAL_SAMPLES, config.n_features, config.sparsity, config.correlation), np.float64)
        h = w @ x
        if config.hidden_relu:
            h = np.maximum(h, 0)
        out = np.maximum(w_out.T @ h + b[:, None], 0)
        per_sample.append((importance[:, None] * (x - out) ** 2).sum(axis=0))
    values = np.concatenate(per_sample)
    return {"loss": float(values.mean()), "loss_stderr": float(values.std(ddof=1) / np.sqrt(values.size))}


_CHUNK = 4096


def _sample_chunk(config: SuperpositionConfig, w: np.ndarray, chunk: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Inputs ``chunk * 4096 ...`` of the toy's stream, and their hidden activations."""
    words = rnd.words(jax.random.fold_in(jax.random.key(config.seed), _STREAM_DATA))
    x = np.asarray(_sample(words, chunk, _CHUNK, config.n_features, config.sparsity, config.correlation), np.float32).T
    h = x @ w.T
    if config.hidden_relu:
        h = np.maximum(h, 0)
    return h.astype(np.float32), sp.csr_matrix(x)


FAMILY = Family(kind=SuperpositionConfig.kind, config=SuperpositionConfig, toy=SuperpositionToy, build=build, generator=superposition,
                to_arrays=superposition_arrays, from_arrays=superposition_toy, check=check_superposition)
