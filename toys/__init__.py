"""Generators of networks and data sets with planted, known internals.

``sparse_features`` plants sparse features in superposition; ``preset(name)`` builds a named
configuration from a paper; ``from_config(config)`` regenerates any toy from its config.
"""

from toys._presets import from_config, preset, preset_config, presets
from toys.sparse_features import SparseFeaturesConfig, sparse_features

__all__ = ["SparseFeaturesConfig", "from_config", "preset", "preset_config", "presets", "sparse_features"]
