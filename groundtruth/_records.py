"""The records: what was planted (truth), what a method predicts, and the toy that carries both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from planted.groundtruth._arrays import as_csr, as_matrix, as_vector
from planted.groundtruth._config import Config, Problems
from planted.groundtruth._dynamics import TrainingDynamics
from planted.groundtruth._threads import map_parts

# A sampler maps a chunk index to that chunk's (activations (chunk, d), codes CSR (chunk, n_features)).
Sampler = Callable[[int], tuple[np.ndarray, sp.csr_matrix]]


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureTruth:
    """What a sparse-feature toy planted.

    Attributes
    ----------
    directions : np.ndarray, (n_features, d_model) float32
        Unit-norm feature directions.
    norms : np.ndarray, (n_features,) float32
        Each feature's scale in activation space: feature i adds ``code * norms[i] * directions[i]``.
    represented : np.ndarray, (n_features,) bool
        Features that reach the activations at all (fire with nonzero probability and nonzero norm).
        Recovery metrics average over these.
    codes : scipy.sparse.csr_matrix, (n_samples, n_features) float32
        The true coefficient of every feature on every sample of the toy's activations.
    firing_probabilities : np.ndarray, (n_features,) float32
        The marginal probability that each feature is active on a sample, after hierarchy gating.
    labels : tuple[str, ...]
        A deterministic name per feature (``"f00012"``, or ``"t003.1.2"`` for the tree path of a
        hierarchical feature).
    parents : np.ndarray | None, (n_features,) int32
        Index of each feature's parent, -1 for features without one; None when no hierarchy was
        planted.
    dimensionality : np.ndarray | None, (n_features,) float32
        For learned embeddings (toy models of superposition): each feature's dimensionality
        ``D_i = |W_i|^2 / sum_j (W_i_hat . W_j)^2`` (Elhage et al. 2022); None otherwise.
    dimensions_per_feature : float | None
        ``D* = d_model / |W|_F^2`` for learned embeddings; None otherwise.
    dynamics : TrainingDynamics | None
        For learned embeddings trained with snapshots: W over training, the step at which each
        feature became represented and the steps at which the geometry changed; None otherwise.
    """

    directions: np.ndarray
    norms: np.ndarray
    represented: np.ndarray
    codes: sp.csr_matrix
    firing_probabilities: np.ndarray
    labels: tuple[str, ...]
    parents: np.ndarray | None = None
    dimensionality: np.ndarray | None = None
    dimensions_per_feature: float | None = None
    dynamics: TrainingDynamics | None = None

    def __post_init__(self) -> None:
        directions = as_matrix("directions", self.directions)
        n, _ = directions.shape
        lengths = np.linalg.norm(directions, axis=1)
        if not np.allclose(lengths, 1.0, atol=1e-4):
            worst = int(np.argmax(np.abs(lengths - 1)))
            raise ValueError(f"directions must have unit rows; row {worst} has norm {lengths[worst]:.6f}")
        object.__setattr__(self, "directions", directions)
        object.__setattr__(self, "norms", as_vector("norms", self.norms, length=n))
        represented = np.asarray(self.represented)
        if represented.shape != (n,) or represented.dtype != bool:
            raise ValueError(f"represented must be a bool array of shape ({n},), got {represented.dtype} {represented.shape}")
        object.__setattr__(self, "represented", represented)
        codes = as_csr("codes", self.codes)
        if codes.shape[1] != n:
            raise ValueError(f"codes must have {n} columns (one per feature), got shape {codes.shape}")
        object.__setattr__(self, "codes", codes)
        probs = as_vector("firing_probabilities", self.firing_probabilities, length=n)
        if (probs < 0).any() or (probs > 1).any():
            raise ValueError("firing_probabilities must lie in [0, 1]")
        object.__setattr__(self, "firing_probabilities", probs)
        labels = tuple(str(x) for x in self.labels)
        if len(labels) != n:
            raise ValueError(f"labels must have {n} entries, got {len(labels)}")
        object.__setattr__(self, "labels", labels)
        if self.parents is not None:
            parents = as_vector("parents", self.parents, length=n, dtype=np.int32)
            if (parents < -1).any() or (parents >= n).any():
                raise ValueError(f"parents must be -1 or a feature index in [0, {n}), got {parents.min()}..{parents.max()}")
            object.__setattr__(self, "parents", parents)
        if self.dimensionality is not None:
            object.__setattr__(self, "dimensionality", as_vector("dimensionality", self.dimensionality, length=n))
        if self.dimensions_per_feature is not None:
            object.__setattr__(self, "dimensions_per_feature", float(self.dimensions_per_feature))
        if self.dynamics is not None:
            if not isinstance(self.dynamics, TrainingDynamics):
                raise ValueError(f"dynamics must be a TrainingDynamics, got {type(self.dynamics).__name__}")
            if self.dynamics.weights.shape[2] != n:
                raise ValueError(f"dynamics.weights must cover {n} features, got {self.dynamics.weights.shape[2]}")

    @property
    def n_features(self) -> int:
        return self.directions.shape[0]

    @property
    def d_model(self) -> int:
        return self.directions.shape[1]

    def children(self, feature: int) -> np.ndarray:
        """Indices of the features whose parent is ``feature`` (empty without a hierarchy)."""
        if self.parents is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.parents == feature)


_BLOCK_ENTRIES = 1 << 19  # codes are computed in row blocks of about this many entries,
_BLOCKS_AT_ONCE = 32  # up to this many side by side (a TopK block holds about 11 bytes an entry)


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
    """A feed-forward encoder ``codes = act((x - pre_bias) @ weights + bias)`` in plain NumPy.

    Attributes
    ----------
    weights : (d_model, n_latents) float32
    bias : (n_latents,) float32
    pre_bias : (d_model,) float32
        Subtracted from the input first (an SAE's decoder bias, PCA's mean).
    activation : "identity" | "relu" | "topk" | "threshold"
        ``topk`` keeps the ``k`` largest positive pre-activations per sample; ``threshold`` keeps
        pre-activations above ``threshold`` (JumpReLU, and BatchTopK at inference).
    k : int | None
        For ``topk``.
    threshold : (n_latents,) float32 | None
        For ``threshold``.
    """

    weights: np.ndarray
    bias: np.ndarray
    pre_bias: np.ndarray
    activation: Literal["identity", "relu", "topk", "threshold"] = "relu"
    k: int | None = None
    threshold: np.ndarray | None = None

    activations: ClassVar[tuple[str, ...]] = ("identity", "relu", "topk", "threshold")

    def __post_init__(self) -> None:
        weights = as_matrix("encoder.weights", self.weights)
        d, n = weights.shape
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "bias", as_vector("encoder.bias", self.bias, length=n))
        object.__setattr__(self, "pre_bias", as_vector("encoder.pre_bias", self.pre_bias, length=d))
        p = Problems()
        p.choice("encoder.activation", self.activation, self.activations)
        if self.activation == "topk":
            if self.k is None:
                p.add(f"encoder.k is required for the topk activation: an integer in [1, {n}]")
            else:
                p.integer("encoder.k", self.k, low=1, high=n)
        if self.activation == "threshold" and self.threshold is None:
            p.add("encoder.threshold is required for the threshold activation")
        p.raise_if_any("Encoder")
        if self.activation == "topk":
            object.__setattr__(self, "k", int(self.k))
        if self.activation == "threshold":
            object.__setattr__(self, "threshold", as_vector("encoder.threshold", self.threshold, length=n))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Codes for ``x`` (n_samples, d_model) as a dense (n_samples, n_latents) float32 array."""
        x = as_matrix("activations", x, cols=self.weights.shape[0])
        out = np.empty((x.shape[0], self.weights.shape[1]), dtype=np.float32)

        def fill(rows: slice) -> None:
            out[rows] = self._activate(self._pre(x[rows]))

        map_parts(fill, self._row_blocks(x.shape[0]), workers=_BLOCKS_AT_ONCE)
        return out

    def sparse(self, x: np.ndarray) -> sp.csr_matrix:
        """Codes for ``x`` as CSR: the same matrix as ``scipy.sparse.csr_matrix(self(x))``; for
        ``topk`` built from the chosen entries without a dense block (1.5-1.6x faster for 32 of
        4,096 latents, the product included)."""
        x = as_matrix("activations", x, cols=self.weights.shape[0])
        blocks = map_parts(lambda rows: self._sparse(self._pre(x[rows])), self._row_blocks(x.shape[0]), workers=_BLOCKS_AT_ONCE)
        return sp.vstack(blocks, format="csr")

    def _pre(self, x: np.ndarray) -> np.ndarray:
        return (x - self.pre_bias) @ self.weights + self.bias

    def _row_blocks(self, n_rows: int) -> list[slice]:
        """Row blocks of about ``_BLOCK_ENTRIES`` codes (at least one row), which run side by side
        with the BLAS on one thread (``map_parts``): the blocks and their products' bits depend on
        the input's shape only, not on the machine's cores or thread settings; memory is bounded
        by ``_BLOCKS_AT_ONCE`` blocks."""
        rows = max(1, _BLOCK_ENTRIES // self.weights.shape[1])
        return [slice(start, start + rows) for start in range(0, max(n_rows, 1), rows)]

    def _sparse(self, pre: np.ndarray) -> sp.csr_matrix:
        """``_activate(pre)`` as CSR: its nonzero entries, in row-major order."""
        if self.activation != "topk":
            return sp.csr_matrix(self._activate(pre))
        rows, cols = np.nonzero(self._chosen(pre) & (pre > 0))  # the ReLU: a chosen entry not positive is a zero code
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=pre.shape[0]))])
        return sp.csr_matrix((pre[rows, cols], cols, indptr), shape=pre.shape)

    def _chosen(self, pre: np.ndarray) -> np.ndarray:
        """(rows, n_latents) bool: each row's ``k`` largest pre-activations. They are the entries
        at or above the row's k-th largest value (np.partition takes about half of argpartition's
        time); a row with a tie at that value takes argpartition's choice."""
        n, k = pre.shape[1], self.k
        chosen = pre >= np.partition(pre, n - k, axis=1)[:, n - k, None]
        tied = np.flatnonzero(chosen.sum(axis=1) != k)
        if tied.size:
            chosen[tied] = False
            chosen[np.repeat(tied, k), np.argpartition(-pre[tied], k - 1, axis=1)[:, :k].ravel()] = True
        return chosen

    def _activate(self, pre: np.ndarray) -> np.ndarray:
        if self.activation == "identity":
            return pre
        if self.activation == "relu":
            return np.maximum(pre, 0)
        if self.activation == "threshold":
            return np.where(pre > self.threshold, pre, 0).astype(np.float32)
        return np.where(self._chosen(pre), np.maximum(pre, 0), 0).astype(pre.dtype, copy=False)


@dataclasses.dataclass(frozen=True, eq=False)
class Dictionary:
    """A features method's prediction: a set of directions, and optionally how to encode with them.

    Attributes
    ----------
    directions : np.ndarray, (n_latents, d_model) float32
        Decoder directions as learned (need not be unit; evaluators compare them by cosine).
    codes : np.ndarray | scipy.sparse.csr_matrix | None, (n_samples, n_latents)
        Codes of the activations the method was given, so ``codes @ directions + decoder_bias``
        reconstructs them.
    encoder : Encoder | None
        Computes codes for new activations.
    decoder_bias : np.ndarray | None, (d_model,)
        Added to every reconstruction.
    method : str
        The method's name, for tables.
    """

    directions: np.ndarray
    codes: Any = None
    encoder: Encoder | None = None
    decoder_bias: np.ndarray | None = None
    method: str = ""

    def __post_init__(self) -> None:
        directions = as_matrix("directions", self.directions)
        k, d = directions.shape
        object.__setattr__(self, "directions", directions)
        if self.codes is not None:
            if sp.issparse(self.codes):
                codes = as_csr("codes", self.codes)
            else:
                codes = as_matrix("codes", self.codes)
            if codes.shape[1] != k:
                raise ValueError(f"codes must have {k} columns (one per direction), got shape {codes.shape}")
            object.__setattr__(self, "codes", codes)
        if self.encoder is not None:
            if not isinstance(self.encoder, Encoder):
                raise ValueError(f"encoder must be a groundtruth.Encoder, got {type(self.encoder).__name__}")
            if self.encoder.weights.shape != (d, k):
                raise ValueError(
                    f"encoder.weights must have shape ({d}, {k}) to match directions, got {self.encoder.weights.shape}"
                )
        if self.decoder_bias is not None:
            object.__setattr__(self, "decoder_bias", as_vector("decoder_bias", self.decoder_bias, length=d))

    @property
    def n_latents(self) -> int:
        return self.directions.shape[0]

    @property
    def d_model(self) -> int:
        return self.directions.shape[1]

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codes (n_samples, n_latents) for activations ``x``; needs an encoder."""
        if self.encoder is None:
            raise ValueError("this dictionary has no encoder; pass codes, or use a method that returns one")
        return self.encoder(x)

    def reconstruct(self, codes) -> np.ndarray:
        """``codes @ directions + decoder_bias`` as a dense float32 array."""
        out = np.asarray(codes @ self.directions, dtype=np.float32)
        if self.decoder_bias is not None:
            out = out + self.decoder_bias
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureBatch:
    """One streamed batch: activations with their true codes (never hand ``codes`` to a method)."""

    start: int
    activations: np.ndarray  # (batch, d_model) float32
    codes: sp.csr_matrix  # (batch, n_features) float32


@dataclasses.dataclass(frozen=True, eq=False)
class Toy:
    """A generated network or data set: its config, the artifact a method may see, and the truth.

    Families subclass this; ``artifact`` is what a method receives, ``truth`` what evaluators score
    against. ``toy.id`` is the config's content hash.
    """

    config: Config
    truth: Any

    @property
    def kind(self) -> str:
        """The toy's family: its config's ``kind``."""
        return self.config.kind

    @property
    def artifact(self) -> Any:
        raise NotImplementedError

    @property
    def id(self) -> str:
        return self.config.id


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureToy(Toy):
    """A sparse-feature data set: activations = codes @ (norms * directions) + noise.

    Attributes
    ----------
    config : Config
    truth : FeatureTruth
    activations : np.ndarray, (n_samples, d_model) float32
        The artifact: what a features method receives.
    sampler : callable | None
        Generates chunk ``i`` of the infinite sample stream (the first ``n_samples`` samples are
        ``activations``). None for a toy loaded from disk, which streams only its stored samples.
    chunk_size : int
        Samples per generated chunk.
    """

    truth: FeatureTruth
    activations: np.ndarray = dataclasses.field(default=None, repr=False)
    sampler: Sampler | None = dataclasses.field(default=None, repr=False)
    chunk_size: int = 4096

    def __post_init__(self) -> None:
        acts = as_matrix("activations", self.activations, cols=self.truth.d_model)
        if acts.shape[0] != self.truth.codes.shape[0]:
            raise ValueError(
                f"activations have {acts.shape[0]} samples but truth.codes has {self.truth.codes.shape[0]}"
            )
        acts = acts.view()
        acts.flags.writeable = False  # batches and the artifact are views: nobody may edit the toy
        object.__setattr__(self, "activations", acts)

    @property
    def artifact(self) -> np.ndarray:
        return self.activations

    @property
    def n_samples(self) -> int:
        return self.activations.shape[0]

    def batches(self, batch_size: int, *, n_samples: int | None = None, start: int = 0) -> Iterator[FeatureBatch]:
        """Yield consecutive batches of the sample stream with their true codes.

        Parameters
        ----------
        batch_size : int
            Samples per batch (the last batch may be shorter).
        n_samples : int, optional
            How many samples to stream; defaults to the toy's own ``n_samples - start``. More than
            the toy holds are generated chunk by chunk, so 10^7 samples never sit in memory.
        start : int
            Index of the first sample. ``start=toy.n_samples`` streams samples disjoint from
            ``toy.activations`` (a held-out split).
        """
        p = Problems()
        p.integer("batch_size", batch_size, low=1)
        p.integer("start", start, low=0)
        if n_samples is not None:
            p.integer("n_samples", n_samples, low=0)
        p.raise_if_any("FeatureToy.batches")
        batch_size, start = int(batch_size), int(start)
        n_samples = max(self.n_samples - start, 0) if n_samples is None else int(n_samples)
        stop = start + n_samples
        if stop > self.n_samples and self.sampler is None:
            raise ValueError(
                f"this toy holds {self.n_samples} samples and cannot generate more (it was loaded from disk); "
                f"asked for samples {start}..{stop}. Regenerate it with toys.from_config(toy.config)"
            )
        pending_acts: list[np.ndarray] = []
        pending_codes: list[sp.csr_matrix] = []
        pending = 0
        position = start
        for acts, codes in self._spans(start, stop):
            pending_acts.append(acts)
            pending_codes.append(codes)
            pending += acts.shape[0]
            while pending >= batch_size:
                all_acts = np.concatenate(pending_acts) if len(pending_acts) > 1 else pending_acts[0]
                all_codes = sp.vstack(pending_codes, format="csr") if len(pending_codes) > 1 else pending_codes[0]
                yield FeatureBatch(position, all_acts[:batch_size], all_codes[:batch_size])
                position += batch_size
                pending_acts, pending_codes = [all_acts[batch_size:]], [all_codes[batch_size:]]
                pending -= batch_size
        if pending:
            yield FeatureBatch(position, np.concatenate(pending_acts), sp.vstack(pending_codes, format="csr"))

    def _spans(self, start: int, stop: int) -> Iterator[tuple[np.ndarray, sp.csr_matrix]]:
        """Pieces of samples ``start..stop``: stored ones first, then generated chunks."""
        stored_stop = min(stop, self.n_samples)
        if start < stored_stop:
            yield self.activations[start:stored_stop], self.truth.codes[start:stored_stop]
        position = max(start, self.n_samples)
        while position < stop:
            chunk = position // self.chunk_size
            acts, codes = self.sampler(chunk)
            offset = position - chunk * self.chunk_size
            end = min(stop - chunk * self.chunk_size, self.chunk_size)
            yield acts[offset:end], codes[offset:end]
            position = chunk * self.chunk_size + end


@dataclasses.dataclass(frozen=True, eq=False)
class SuperpositionToy(FeatureToy):
    """A trained toy model of superposition; its hidden activations are the features artifact.

    Attributes
    ----------
    weights : (n_hidden, n_features) float32
        W; feature i is embedded as column ``W[:, i]`` (the truth's directions are these columns,
        normalised; its norms their lengths).
    bias : (n_features,) float32
    output_weights : (n_hidden, n_features) float32
        The readout (equal to ``weights`` when tied).
    loss : float
        The kept restart's importance-weighted MSE, averaged over fresh inputs that neither
        training nor the choice of restart saw: an unbiased estimate of its expected loss.
    loss_stderr : float or None
        The standard error of ``loss`` (None for toys saved before it was recorded).
    restart_losses : (restarts,) float32
        Every restart's loss on one evaluation batch common to all of them (the kept restart has
        the lowest).
    """

    weights: np.ndarray = dataclasses.field(default=None, repr=False)
    bias: np.ndarray = dataclasses.field(default=None, repr=False)
    output_weights: np.ndarray = dataclasses.field(default=None, repr=False)
    loss: float = float("nan")
    loss_stderr: float | None = None
    restart_losses: np.ndarray = dataclasses.field(default=None, repr=False)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The model's output x' for inputs x (n, n_features), in NumPy."""
        h = np.asarray(x, np.float32) @ self.weights.T
        if getattr(self.config, "hidden_relu", False):
            h = np.maximum(h, 0)
        return np.maximum(h @ self.output_weights + self.bias, 0)
