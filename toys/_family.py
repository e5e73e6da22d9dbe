"""The family record: one declaration per toy family, and the list of families.

A family is declared once, in its own module, as ``FAMILY = Family(...)``: its kind string (used
by configs, storage and suites alike), its config class, its toy class, its build function, its
public generator function and its storage halves. ``FAMILY_MODULES`` below is the one list of
families; every other list (``config_from_json``, ``from_config``, ``save``/``load``, the
strategies, the tests) derives from it. A family's module is imported only when that family is
used, so loading a features toy never imports JAX.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from planted.groundtruth import SCHEMA_VERSION, Config, Toy, nearest

# kind -> the module that declares FAMILY. Adding a family adds one line here.
FAMILY_MODULES: dict[str, str] = {
    "sparse_features": "._sparse_features",
    "feature_view": "._feature_view",
    "superposition": "._superposition",
    "planted_mlp": "._planted_mlp",
    "connectome": "._connectome",
    "damaged": "._damaged",
    "rasp_transformer": "._rasp",
}
FAMILY_KINDS: tuple[str, ...] = tuple(FAMILY_MODULES)

Arrays = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Family:
    """A toy family.

    Attributes
    ----------
    kind : str
        The family's one name: its config's ``kind``, the manifest's ``family``, the suites' family.
    config : type
        The frozen ``Config`` subclass; ``config.kind == kind``.
    toy : type
        The ``Toy`` subclass ``build`` returns.
    build : callable(config) -> toy
    generator : callable(...) -> toy
        The public function (``toys.sparse_features`` ...): its parameters are the config's fields.
    to_arrays : callable(toy) -> (arrays, extra)
        The storage half that writes: named arrays and JSON-able extras.
    from_arrays : callable(config, arrays, extra) -> toy
        The storage half that reads what ``to_arrays`` wrote (arrays already verified).
    check : callable(toy) -> list[str]
        What is wrong with a loaded toy beyond its records' own checks: the relations between its
        arrays and its config (sizes, index ranges, inputs and labels), one message per problem.
        ``load`` refuses a toy with any. Default: nothing more.
    """

    kind: str
    config: type[Config]
    toy: type[Toy]
    build: Callable[[Any], Toy]
    generator: Callable[..., Toy]
    to_arrays: Callable[[Any], tuple[Arrays, dict[str, Any]]]
    from_arrays: Callable[[Any, Arrays, dict[str, Any]], Toy]
    check: Callable[[Any], list[str]] = lambda toy: []  # noqa: E731 - nothing more to check


def family(kind: str) -> Family:
    """The family called ``kind`` (its module imported on first use)."""
    module = FAMILY_MODULES.get(kind)
    if module is None:
        raise nearest(kind, FAMILY_MODULES, "toy family")
    declared = importlib.import_module(module, __package__).FAMILY
    if declared.kind != kind or declared.config.kind != kind:
        raise TypeError(f"family module {module} declares kind {declared.kind!r}, listed as {kind!r}")
    return declared


def families() -> tuple[Family, ...]:
    """Every family, in declaration order (imports every family's module)."""
    return tuple(family(kind) for kind in FAMILY_MODULES)


def from_config(config: Config) -> Toy:
    """Regenerate a toy from its config (any family)."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a planted config, got {type(config).__name__}")
    declared = family(config.kind)
    if not isinstance(config, declared.config):
        raise ValueError(f"config of kind {config.kind!r} must be a {declared.config.__name__}, got {type(config).__name__}")
    return declared.build(config)


def config_from_json(payload: dict[str, Any]) -> Config:
    """Rebuild a config from ``json.loads(config.to_json())``."""
    if not isinstance(payload, dict):
        raise ValueError(f"a config payload must be a JSON object, got {type(payload).__name__}")
    kind = payload.get("kind")
    if kind not in FAMILY_MODULES:
        raise nearest(kind, FAMILY_MODULES, "config kind")
    if payload.get("schema") != SCHEMA_VERSION:
        raise ValueError(
            f"config schema {payload.get('schema')!r} is not supported (this version reads {SCHEMA_VERSION})"
        )
    return family(kind).config.from_dict(payload.get("fields"))
