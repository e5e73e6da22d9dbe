"""The stated public API: every ``__all__`` name imports, no public definition hides outside
``__all__``, no function shadows a module, and the installed package list matches the tree.

A public module (a name without a leading underscore) lists in ``__all__`` every public function and
class it defines; a private module's public names are its package's internals or are re-exported
by the package's ``__init__``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
import tomllib
from pathlib import Path

import pytest

import planted

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planted.groundtruth", "planted.toys", "planted.methods", "planted.evaluators")


def _all_modules():
    names = ["planted"]
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
    return names


MODULES = _all_modules()


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split(".")[1:])


@pytest.mark.parametrize("name", [m for m in MODULES if _public(m)])
def test_every_all_name_imports(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    for attr in module.__all__:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


@pytest.mark.parametrize("name", [m for m in MODULES if _public(m) and not m.endswith("__main__")])
def test_no_public_definition_outside_all(name):
    module = importlib.import_module(name)
    path = Path(module.__file__)
    tree = ast.parse(path.read_text())
    defined = {
        node.name for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    }
    missing = sorted(defined - set(getattr(module, "__all__", ())))
    assert not missing, f"{name} defines public {missing} outside __all__"


@pytest.mark.parametrize("package", ("planted",) + PACKAGES)
def test_no_function_shadows_a_module(package):
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        value = getattr(pkg, info.name, None)
        assert value is None or inspect.ismodule(value), f"{package}.{info.name} is a {type(value).__name__}"


def test_the_version_is_declared_once():
    from importlib import metadata

    assert planted.__version__ == metadata.version("planted")


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = {"planted"}
    for package in PACKAGES:
        folder = ROOT / mapping[package]
        for init in folder.rglob("__init__.py"):
            found.add(".".join([package, *init.parent.relative_to(folder).parts]))
    assert listed == found


def test_importing_planted_and_the_help_import_no_jax():
    import subprocess

    code = (
        "import sys, planted, planted.toys, planted.methods, planted.evaluators\n"
        "from planted.evaluators import cli\n"
        "cli._parser().format_help()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'optax', 'flax', 'matplotlib', 'sklearn')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
