"""Lazy public names for the subpackages: a name's module is imported when the name is first used.

So ``import planted.toys`` and ``planted --help`` stay cheap (no JAX), and a numpy-only path (a
features toy, loading, scoring a file) never imports JAX. Each package passes ``{name: module}``
(``".strategies"`` for a public submodule named like its entry), with modules relative to the package itself, so a lazy name can never reach another floor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, namespace: dict[str, Any], names: Mapping[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to ``".module"``."""
    for module in names.values():
        if not module.startswith("."):
            raise ValueError(f"lazy export modules must be relative to {package}, got {module!r}")

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module, package)
        value = imported if module == "." + name else getattr(imported, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
