"""The config of planted circuits, its validation, and the named random streams of its seed."""

from __future__ import annotations

import dataclasses

from planted.groundtruth import ADDED, Config, Problems
from planted.toys._planted_mlp._catalog import MODES
from planted.toys._planted_mlp._formula import GATES

# The seed's streams: the formulas and their placement, the task inputs, the weights.
_STREAM_PLAN, _STREAM_DATA, _STREAM_WEIGHTS = 301, 302, 303


@dataclasses.dataclass(frozen=True)
class PlantedMLPConfig(Config):
    """Config of ``toys.planted_mlp``; see that function for each field's meaning."""

    kind = "planted_mlp"

    n_inputs: int = 12
    n_tasks: int = 2
    depth: int = 2
    fan_in: int = 2
    n_blocks: int = 3
    width: int = 32
    superposition: float = 1.0
    gates: tuple[str, ...] = GATES
    distractor_fraction: float = 1.0
    # The failure-mode toggles: one per catalog entry, named and ordered as ``MODES`` (a test checks).
    redundancy: bool = False
    cancellation: bool = False
    saturation: bool = False
    shared: bool = False
    naturalise: bool = False
    noise: float = 3e-4
    trained: bool = False
    n_samples: int = 256
    seed: int = 0
    weights_seed: int | None = dataclasses.field(default=None, metadata=ADDED)
    snapshot_every: int = dataclasses.field(default=0, metadata=ADDED)

    @property
    def weights_stream(self) -> int:
        """The seed of the residual directions, the weights and their training (``weights_seed``,
        or ``seed`` when None); the formulas, their placement and the task inputs come from ``seed``."""
        return self.seed if self.weights_seed is None else self.weights_seed

    def _check(self, p: Problems) -> None:
        p.integer("n_inputs", self.n_inputs, low=2, high=64)
        p.integer("n_tasks", self.n_tasks, low=1, high=64)
        p.integer("n_blocks", self.n_blocks, low=1, high=64)
        p.integer("depth", self.depth, low=1, high=self.n_blocks if isinstance(self.n_blocks, int) else None)
        p.integer("fan_in", self.fan_in, low=2, high=8)
        p.integer("width", self.width, low=1, high=65_536)
        p.number("superposition", self.superposition, low=1.0, high=8.0)
        if not isinstance(self.gates, tuple) or not self.gates:
            p.add(f"gates must be a non-empty tuple drawn from {GATES}, got {self.gates!r}")
        else:
            for g in self.gates:
                p.choice("gates[]", g, GATES)
            if set(self.gates) == {"not"}:
                p.add("gates must include a gate with two or more inputs, not only 'not'")
        p.number("distractor_fraction", self.distractor_fraction, low=0, high=1)
        for mode in MODES:
            p.boolean(mode.name, getattr(self, mode.name))
        for mode in MODES:
            if getattr(self, mode.name) is True and mode.constraints is not None:
                mode.constraints(self, p)
        p.number("noise", self.noise, low=0, high=0.1)
        p.boolean("trained", self.trained)
        for mode in MODES:
            if self.trained is True and not mode.trainable and getattr(self, mode.name) is True:
                p.add(f"trained cannot be combined with {mode.name}, a compiled construction training would undo: set {mode.name}=False")
        if self.trained is True and isinstance(self.superposition, (int, float)) and self.superposition != 1.0:
            p.add(f"trained needs superposition=1.0 (trained variables are unbounded, so their interference in a shared frame is not controlled), got {self.superposition}")
        p.integer("n_samples", self.n_samples, low=8, high=1_000_000)
        p.integer("seed", self.seed, low=0, high=2**31 - 1)
        if self.weights_seed is not None:
            p.integer("weights_seed", self.weights_seed, low=0, high=2**31 - 1)
        p.integer("snapshot_every", self.snapshot_every, low=0, high=100_000)
        if self.snapshot_every and self.trained is not True:
            p.add(f"snapshot_every={self.snapshot_every} records training: it needs trained=True")

