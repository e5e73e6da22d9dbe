"""The floors: groundtruth < toys, methods < evaluators; toys and methods never import each other.

Every import is read from the source (module level, inside functions, ``importlib.import_module``
and ``__import__`` with a constant name), so an import that only runs on some path is checked too.
A lower floor may import by a computed name only relative to its own package (the lazy exports
and the family list do); a relative name cannot leave the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"planted": ROOT / "planted", "groundtruth": ROOT / "groundtruth", "toys": ROOT / "toys",
           "methods": ROOT / "methods", "evaluators": ROOT / "evaluators"}
FLOOR = {"planted": 0, "groundtruth": 1, "toys": 2, "methods": 2, "evaluators": 3, "__main__": 4}
SIBLINGS = {("toys", "methods"), ("methods", "toys")}
TOP_LEVEL = ("groundtruth", "toys", "methods", "evaluators")


def _modules():
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            dotted = ".".join(["planted"] + ([] if package == "planted" else [package]) + parts)
            # ``python -m planted`` is the command line: it stands on every floor.
            floor = "__main__" if dotted == "planted.__main__" else package
            yield floor, path, dotted, path.name == "__init__.py"


def _resolve(name: str, level: int, dotted: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = dotted.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(tree: ast.AST, dotted: str, is_package: bool):
    """(line, imported module name or None for a computed name, relative?) for every import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, False
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, dotted, is_package)
            yield node.lineno, base, node.level > 0
            for alias in node.names:  # ``from planted import toys`` imports planted.toys
                yield node.lineno, f"{base}.{alias.name}", node.level > 0
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in ("import_module", "__import__") or not node.args:
                continue
            first = node.args[0]
            relative_to = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "package"), None)
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                target = first.value
                if target.startswith("."):
                    level = len(target) - len(target.lstrip("."))
                    target = _resolve(target.lstrip("."), level, dotted, is_package)
                yield node.lineno, target, False
            else:
                yield node.lineno, None, relative_to is not None


def _floor_of(name: str):
    parts = name.split(".")
    if parts[0] in TOP_LEVEL:
        return "bare", parts[0]
    if parts[0] != "planted":
        return None, None
    if len(parts) == 1 or parts[1] not in FLOOR:
        return "planted", "planted"
    return "planted", parts[1]


def _violations():
    found = []
    for package, path, dotted, is_package in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        where = f"{path.relative_to(ROOT)}"
        for line, target, relative in _imports(tree, dotted, is_package):
            if target is None:
                if FLOOR[package] < 3 and not relative:
                    found.append(f"{where}:{line}: import by a computed name outside its own package")
                continue
            how, floor = _floor_of(target)
            if how is None:
                continue
            if how == "bare":
                found.append(f"{where}:{line}: imports {target!r} without the planted namespace")
            elif FLOOR[floor] > FLOOR[package] or (package, floor) in SIBLINGS:
                found.append(f"{where}:{line}: {package} imports {target} (a higher or sibling floor)")
    return found


def test_no_import_runs_up_a_floor():
    assert _violations() == []


def test_the_checker_sees_every_kind_of_import(tmp_path):
    """The walk finds function-level, importlib and __import__ imports, absolute and relative."""
    source = (
        "import importlib\n"
        "def f():\n    from planted.toys import planted_mlp\n"
        "def g():\n    return importlib.import_module('planted.evaluators.runner')\n"
        "def h():\n    return __import__('planted.methods')\n"
        "def k(name):\n    return importlib.import_module(name)\n"
        "from ..toys import _family\n"
    )
    found = list(_imports(ast.parse(source), "planted.groundtruth._x", False))
    targets = {t for _, t, _ in found}
    assert {"planted.toys.planted_mlp", "planted.evaluators.runner", "planted.methods", "planted.toys._family"} <= targets
    assert (9, None, False) in found  # the computed name, not relative to a package


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("planted.groundtruth", ("planted.toys", "planted.methods", "planted.evaluators")),
        ("planted.methods", ("planted.toys", "planted.evaluators")),
        ("planted.toys", ("planted.methods", "planted.evaluators")),
    ],
)
def test_importing_a_floor_loads_nothing_above_it(package, forbidden):
    """At run time too: importing every module of a floor loads no module of a higher floor."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.startswith({forbidden!r}))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
