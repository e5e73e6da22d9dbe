"""``SparseFeaturesConfig``, its validation, and the constants of the sample stream."""

from __future__ import annotations

import dataclasses
import math

from planted.groundtruth import Config, Problems

CHUNK_SIZE = 4096
# NumPy stream ids (nonzero: SeedSequence([s, 0]) equals SeedSequence(s)).
_STREAM_PLAN, _STREAM_SAMPLES = 101, 202

FIRINGS = ("uniform", "exponential", "zipf")
MAGNITUDES = ("constant", "uniform", "exponential", "folded_normal")
GEOMETRIES = ("random", "orthogonal")


@dataclasses.dataclass(frozen=True)
class SparseFeaturesConfig(Config):
    """Config of ``toys.sparse_features``; see that function for each field's meaning."""

    kind = "sparse_features"

    n_features: int
    d_model: int
    n_samples: int = 50_000
    seed: int = 0
    firing: str = "uniform"
    mean_active: float | None = 5.0
    decay: float = 0.99
    zipf_exponent: float = 1.0
    p_max: float = 0.3
    p_min: float = 0.01
    magnitude: str = "uniform"
    magnitude_mean: float = 1.0
    magnitude_std: float = 0.5
    correlation_rank: int = 0
    correlation_scale: float = 0.1
    hierarchy_roots: int = 0
    hierarchy_branching: int = 2
    hierarchy_depth: int = 1
    mutually_exclusive: bool = True
    compensate_hierarchy: bool = True
    geometry: str = "random"
    orthogonalize_steps: int = 200
    noise_std: float = 0.0

    def _check(self, p: Problems) -> None:
        p.integer("n_features", self.n_features, low=1, high=1_000_000)
        p.integer("d_model", self.d_model, low=1, high=100_000)
        p.integer("n_samples", self.n_samples, low=1, high=100_000_000)
        p.integer("seed", self.seed, low=0, high=2**63 - 1)
        p.choice("firing", self.firing, FIRINGS)
        p.choice("magnitude", self.magnitude, MAGNITUDES)
        p.choice("geometry", self.geometry, GEOMETRIES)
        p.number("decay", self.decay, low=0, high=1, low_open=True)
        p.number("zipf_exponent", self.zipf_exponent, low=0, low_open=True, high=10)
        p.number("p_max", self.p_max, low=0, high=1, low_open=True)
        p.number("p_min", self.p_min, low=0, high=1, low_open=True)
        if self.firing == "zipf" and _is_number(self.p_min) and _is_number(self.p_max) and self.p_min > self.p_max:
            p.add(f"p_min must be at most p_max ({self.p_max}), got {self.p_min}")
        if self.mean_active is None:
            if self.firing != "zipf":
                p.add(f"mean_active is required for firing={self.firing!r} (None is allowed only for 'zipf')")
        else:
            p.number("mean_active", self.mean_active, low=0, low_open=True)
            if _is_number(self.mean_active) and isinstance(self.n_features, int) and 1 <= self.n_features < self.mean_active:
                p.add(f"mean_active must be at most n_features ({self.n_features}), got {self.mean_active}")
        p.number("magnitude_mean", self.magnitude_mean, low=0, high=1e6, low_open=True)
        p.number("magnitude_std", self.magnitude_std, low=0, high=1e6)
        p.integer("correlation_rank", self.correlation_rank, low=0, high=1024)
        p.number("correlation_scale", self.correlation_scale, low=0, high=1)
        p.integer("hierarchy_roots", self.hierarchy_roots, low=0)
        p.integer("hierarchy_branching", self.hierarchy_branching, low=1, high=64)
        p.integer("hierarchy_depth", self.hierarchy_depth, low=1, high=8)
        p.boolean("mutually_exclusive", self.mutually_exclusive)
        p.boolean("compensate_hierarchy", self.compensate_hierarchy)
        p.integer("orthogonalize_steps", self.orthogonalize_steps, low=0, high=100_000)
        p.number("noise_std", self.noise_std, low=0, high=1e6)
        if not p.messages and self.hierarchy_roots:
            needed = self.hierarchy_nodes
            if needed > self.n_features:
                p.add(
                    f"hierarchy_roots x (1 + branching + ... + branching^depth) = {needed} features, more than "
                    f"n_features ({self.n_features}); lower hierarchy_roots/branching/depth or raise n_features"
                )

    @property
    def hierarchy_nodes(self) -> int:
        """Number of features that belong to a hierarchy tree."""
        if not self.hierarchy_roots:
            return 0
        return self.hierarchy_roots * sum(self.hierarchy_branching**level for level in range(self.hierarchy_depth + 1))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
