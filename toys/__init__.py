"""Generators of networks and data sets with planted, known internals.

``sparse_features`` plants sparse features in superposition; ``superposition`` trains toy models
of superposition (Elhage et al. 2022), ``superposition_sweep`` many at once and
``phase_diagram`` a grid of them; ``planted_mlp`` compiles boolean formulas into a residual MLP
with known circuits and a catalog of the situations where circuit methods fail; ``connectome``
wires, simulates and records a synthetic connectome; ``preset(name)``
builds a named configuration from a paper; ``from_config(config)`` regenerates any toy from its
config.
"""

from planted.toys._presets import from_config, preset, preset_config, presets
from planted.toys.connectome import ConnectomeConfig, ConnectomeToy, connectome
from planted.toys.planted_mlp import PlantedCircuitToy, PlantedMLPConfig, planted_mlp
from planted.toys.sparse_features import SparseFeaturesConfig, sparse_features
from planted.toys.superposition import (
    PHASES,
    PhaseDiagram,
    SuperpositionConfig,
    dimensionality,
    dimensions_per_feature,
    phase_diagram,
    superposition,
    superposition_sweep,
)

__all__ = [
    "ConnectomeConfig",
    "ConnectomeToy",
    "PHASES",
    "PhaseDiagram",
    "PlantedCircuitToy",
    "PlantedMLPConfig",
    "SparseFeaturesConfig",
    "SuperpositionConfig",
    "connectome",
    "dimensionality",
    "dimensions_per_feature",
    "from_config",
    "phase_diagram",
    "planted_mlp",
    "preset",
    "preset_config",
    "presets",
    "sparse_features",
    "superposition",
    "superposition_sweep",
]
