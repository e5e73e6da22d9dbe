"""Generators of networks and data sets with planted, known internals.

``sparse_features`` plants sparse features in superposition; ``feature_view`` writes a window
of one code stream's features in a frame of its own (for comparing representations); ``superposition`` trains toy models
of superposition (Elhage et al. 2022), ``superposition_sweep`` many at once and
``phase_diagram`` a grid of them; ``planted_mlp`` compiles boolean formulas into a residual MLP
with known circuits and a catalog of the situations where circuit methods fail
(``FAILURE_MODES``), and ``lesion_census`` and ``exact_shapley`` measure what lesioning its
components costs, and ``damaged`` makes a damaged copy of one (its twin in disease vs normal); ``rasp_transformer`` compiles a RASP program into a transformer whose
attention-head circuit is known and verified; ``connectome`` wires, simulates and records a synthetic connectome (and
``connectome_lesions`` lesions groups of its neurons and simulates it again);
``preset(name)`` builds a named configuration from a paper; ``from_config(config)`` regenerates
any toy from its config; ``save``/``load`` write and verify toys without pickle;
``planted.toys.strategies`` has hypothesis strategies; ``planted.toys.rasp`` compiles RASP
programs into transformers that compute them exactly. Each family is declared once
(``family(kind)``, ``FAMILY_KINDS``). Names load on first use: a features toy never imports JAX.
"""

from planted._lazy import exports

_NAMES = {
    "FAMILY_KINDS": "._family",
    "Family": "._family",
    "config_from_json": "._family",
    "families": "._family",
    "family": "._family",
    "from_config": "._family",
    "preset": "._presets",
    "preset_config": "._presets",
    "presets": "._presets",
    "load": "._storage",
    "save": "._storage",
    "strategies": ".strategies",
    "rasp": ".rasp",
    "ConnectomeConfig": "._connectome",
    "ConnectomeToy": "._connectome",
    "calcium": "._connectome",
    "connectome": "._connectome",
    "connectome_lesions": "._connectome._lesions",
    "network_bursts": "._connectome",
    "wiring_statistics": "._connectome",
    "FeatureViewConfig": "._feature_view",
    "feature_view": "._feature_view",
    "DamagedConfig": "._damaged",
    "DamagedToy": "._damaged",
    "damaged": "._damaged",
    "FAILURE_MODES": "._planted_mlp",
    "PlantedCircuitToy": "._planted_mlp",
    "PlantedMLPConfig": "._planted_mlp",
    "planted_mlp": "._planted_mlp",
    "lesion_census": "._planted_mlp._lesions",
    "exact_shapley": "._planted_mlp._lesions",
    "shapley_from_table": "._planted_mlp._lesions",
    "RASP_PROGRAMS": "._rasp._programs",
    "TRAINED_PROGRAMS": "._rasp._programs",
    "SUPERPOSED_PROGRAMS": "._rasp._programs",
    "TRANSFORMER_FAILURE_MODES": "._rasp._catalog",
    "RASPTransformerConfig": "._rasp",
    "RASPTransformerToy": "._rasp",
    "rasp_transformer": "._rasp",
    "SparseFeaturesConfig": "._sparse_features",
    "sparse_features": "._sparse_features",
    "PHASES": "._superposition",
    "PhaseDiagram": "._superposition",
    "SuperpositionConfig": "._superposition",
    "dimensionality": "._superposition",
    "dimensions_per_feature": "._superposition",
    "phase_diagram": "._superposition",
    "superposition": "._superposition",
    "superposition_sweep": "._superposition",
}
__getattr__, __dir__ = exports(__name__, globals(), _NAMES)

__all__ = sorted(_NAMES)
