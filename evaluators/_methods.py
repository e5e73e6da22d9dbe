"""The method registry: every built-in method, with its hyperparameters and the task it serves.

A method is called as ``fn(artifact, *, seed, **params)`` and returns its task's prediction type.
``METHODS`` is the one list of built-in methods; suites pick from it by name or by task
(``methods_for``), so a method added here for a task joins that task's suites and nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import marshal
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from planted import __version__, methods
from planted.groundtruth import CircuitPrediction, DamagePrediction, Dictionary, Formation, EdgeScores, NodeScores, Partition, Similarities, nearest

# Features methods. Sizes are given relative to d_model (read off the activations), never from the truth.


def pca_method(x: np.ndarray, *, seed: int, components: float = 1.0) -> Dictionary:
    return methods.pca(x, n_components=max(1, min(int(round(components * x.shape[1])), *x.shape)))


def ica_method(x: np.ndarray, *, seed: int, components: float = 1.0, max_iter: int = 400) -> Dictionary:
    return methods.ica(x, n_components=max(1, min(int(round(components * x.shape[1])), *x.shape)), seed=seed, max_iter=max_iter)


def nmf_method(x: np.ndarray, *, seed: int, components: float = 2.0, max_iter: int = 200) -> Dictionary:
    return methods.nmf(x, n_components=max(1, int(round(components * x.shape[1]))), seed=seed, max_iter=max_iter)


def sae_method(x: np.ndarray, *, seed: int, expansion: float = 4.0, **params: Any) -> Dictionary:
    return methods.sae(x, max(1, int(round(expansion * x.shape[1]))), seed=seed, progress=False, **params)


CIRCUIT_METHOD_NAMES = (
    "ablation", "acdc", "activation_patching", "attribution_patching", "edge_attribution_patching", "eap_ig",
    "gradient_x_input", "integrated_gradients", "layerwise_relevance", "magnitude_pruning", "msa", "weight_centrality",
)


def circuit_method(artifact, *, seed: int, method: str, **params: Any) -> CircuitPrediction:
    """Run a ``methods.circuits`` method (by name) on every task of a circuit artifact."""
    from planted.methods import circuits

    if method not in CIRCUIT_METHOD_NAMES:
        raise nearest(method, CIRCUIT_METHOD_NAMES, "circuit method")
    fn = getattr(circuits, method)
    extra = {"seed": seed} if "seed" in inspect.signature(fn).parameters else {}
    return CircuitPrediction(tuple(fn(artifact, t, **params, **extra) for t in range(len(artifact.tasks))))


# The circuit methods on planted MLPs, each serving the circuits task (as named) and, where it
# scores every input and neuron (nodes=True), the lesions task (as lesion-<name>).
CIRCUIT_METHODS = (
    ("activation-patching", {"method": "activation_patching"}, True),
    ("zero-ablation", {"method": "ablation", "kind": "zero"}, True),
    ("mean-ablation", {"method": "ablation", "kind": "mean"}, True),
    ("resample-ablation", {"method": "ablation", "kind": "resample"}, True),
    ("msa", {"method": "msa", "kind": "zero", "n_permutations": 32}, True),
    ("attribution-patching", {"method": "attribution_patching"}, True),
    ("eap", {"method": "edge_attribution_patching"}, False),
    ("eap-ig", {"method": "eap_ig", "steps": 5}, False),
    ("acdc", {"method": "acdc", "threshold": 0.01}, False),
    ("gradient-x-input", {"method": "gradient_x_input"}, False),
    ("integrated-gradients", {"method": "integrated_gradients"}, False),
    ("lrp", {"method": "layerwise_relevance"}, True),
    ("imp", {"method": "magnitude_pruning", "control": "magnitude"}, True),
    ("random-ticket", {"method": "magnitude_pruning", "control": "random"}, True),
    ("degree", {"method": "weight_centrality", "kind": "degree"}, True),
    ("strength", {"method": "weight_centrality", "kind": "strength"}, True),
    ("eigenvector", {"method": "weight_centrality", "kind": "eigenvector"}, True),
    ("pagerank", {"method": "weight_centrality", "kind": "pagerank"}, True),
)


TRANSFORMER_METHOD_NAMES = (
    "ablation", "acdc", "activation_patching", "attention_heuristic", "attribution_patching", "eap_ig",
    "edge_activation_patching", "edge_attribution_patching", "msa",
)

# The transformer circuit methods, each declared once: (name, parameters, whether it scores every
# node). Each serves the transformer_circuits task as tf-<name>; those scoring every node also serve
# the transformer_lesions task as tf-lesion-<name>.
TRANSFORMER_CIRCUIT_METHODS = (
    ("activation-patching", {"method": "activation_patching"}, True),
    ("zero-ablation", {"method": "ablation", "kind": "zero"}, True),
    ("mean-ablation", {"method": "ablation", "kind": "mean"}, True),
    ("resample-ablation", {"method": "ablation", "kind": "resample"}, True),
    ("msa", {"method": "msa", "kind": "zero", "n_permutations": 32}, True),
    ("attribution-patching", {"method": "attribution_patching"}, True),
    ("path-patching", {"method": "edge_activation_patching"}, False),
    ("eap", {"method": "edge_attribution_patching"}, False),
    ("eap-ig", {"method": "eap_ig", "steps": 5}, False),
    ("acdc", {"method": "acdc", "threshold": 0.01}, False),
    ("acdc-zero", {"method": "acdc", "threshold": 0.01, "source": "zero"}, False),
    ("previous-token", {"method": "attention_heuristic", "kind": "previous_token"}, False),  # heads only
    ("prefix-matching", {"method": "attention_heuristic", "kind": "prefix_matching"}, False),
    ("copying", {"method": "attention_heuristic", "kind": "copying"}, False),
)


def transformer_circuit_method(artifact, *, seed: int, method: str, **params: Any) -> CircuitPrediction:
    """Run a ``methods.transformers`` method (by name) on every task of a transformer circuit artifact."""
    from planted.methods import transformers

    if method not in TRANSFORMER_METHOD_NAMES:
        raise nearest(method, TRANSFORMER_METHOD_NAMES, "transformer circuit method")
    fn = getattr(transformers, method)
    extra = {"seed": seed} if "seed" in inspect.signature(fn).parameters else {}
    return CircuitPrediction(tuple(fn(artifact, t, **params, **extra) for t in range(len(artifact.tasks))))


def similarity_method(artifact, *, seed: int, measure: str, **params: Any) -> Similarities:
    """A ``methods.similarity`` measure (by name) on every pair of a comparison problem's
    representations (a tuple of activations of the same samples)."""
    from planted.methods import similarity

    return similarity.similarities(artifact, measure, **params)


# The similarity measures, each serving the comparison task (as named) and layer matching (as layers-<name>).
SIMILARITY_METHODS = (
    ("linear-cka", {"measure": "linear_cka"}),
    ("rbf-cka", {"measure": "rbf_cka", "sigma": 0.8}),
    ("cca", {"measure": "cca"}),
    ("svcca", {"measure": "svcca", "keep": 0.99}),
    ("pwcca", {"measure": "pwcca"}),
    ("rsa", {"measure": "rsa"}),
    ("procrustes", {"measure": "procrustes"}),
    ("regression", {"measure": "regression"}),
    ("features-first", {"measure": "features_first", "components": 1.0}),
    ("features-first-sae", {"measure": "features_first", "dictionary": "sae", "components": 2.0, "k": 8}),
)

DYNAMICS_METHOD_NAMES = ("gini_change_points", "loss_change_points", "norm_growth", "norm_half_final")


def dynamics_method(artifact, *, seed: int, method: str, **params: Any) -> Formation:
    """A ``methods.dynamics`` method (by name) on a training record."""
    from planted.methods import dynamics

    if method not in DYNAMICS_METHOD_NAMES:
        raise nearest(method, DYNAMICS_METHOD_NAMES, "dynamics method")
    return getattr(dynamics, method)(artifact, seed=seed, **params)


DAMAGE_METHOD_NAMES = ("activation_difference", "connectivity_difference", "lesion_explanation", "trace_difference",
                       "weight_difference")


def damage_method(artifact, *, seed: int, method: str, **params: Any) -> DamagePrediction:
    """A ``methods.damage`` method (by name) on a (normal, damaged) pair of circuit artifacts or of
    recordings."""
    from planted.methods import damage

    if method not in DAMAGE_METHOD_NAMES:
        raise nearest(method, DAMAGE_METHOD_NAMES, "damage method")
    return getattr(damage, method)(artifact, seed=seed, **params)


CONNECTIVITY_METHOD_NAMES = ("correlation", "partial_correlation", "lagged_correlation", "granger")


def _connectivity(recording, method: str, params: Mapping[str, Any]) -> np.ndarray:
    from planted.methods import connectivity

    if method not in CONNECTIVITY_METHOD_NAMES:
        raise nearest(method, CONNECTIVITY_METHOD_NAMES, "connectivity method")
    return getattr(connectivity, method)(recording, **params)


def connectivity_method(recording, *, seed: int, method: str, **params: Any) -> EdgeScores:
    """Run a ``methods.connectivity`` method (by name) on a recording: scores (m, m)."""
    return EdgeScores(_connectivity(recording, method, params))


def module_method(recording, *, seed: int, method: str, resolution: float = 1.0, community: str = "louvain",
                  **params: Any) -> Partition:
    """Communities (``community``: Louvain or Leiden) of the positive part of a connectivity
    method's scores: labels (m,)."""
    from planted.methods.graphs import communities

    scores = np.clip(_connectivity(recording, method, params), 0, None)
    return Partition(communities(scores, resolution=resolution, seed=seed, method=community))


def hub_method(recording, *, seed: int, method: str, kind: str = "strength", **params: Any) -> NodeScores:
    """A centrality of the positive part of a connectivity method's scores: one value per neuron."""
    from planted.methods.graphs import centrality

    return NodeScores(centrality(np.clip(_connectivity(recording, method, params), 0, None), kind, seed=seed))


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method with its hyperparameters and the task it serves.

    ``function`` is a callable ``fn(artifact, *, seed, **params)`` or a ``"package.module:function"``
    reference to one (imported when the cell runs, so it also works in worker processes).
    ``task`` is the task the method serves; None (a user's method) means the suite's task.
    """

    name: str
    function: Callable[..., Any] | str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    task: str | None = None

    @property
    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True, separators=(",", ":"))

    @property
    def reference(self) -> str:
        f = self.function
        return f if isinstance(f, str) else f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"

    def resolve(self) -> Callable[..., Any]:
        return resolve_function(self.function)

    @property
    def fingerprint(self) -> str:
        """What a stored result of this method was computed by: the method's code and planted's
        own (``planted <version> <source digest>``: the toy builders, the scores and the built-in
        methods). For a method that is not planted's own, its part is 16 hex digits of the sha256
        of the function's source and of its module's whole file (the code object where there is
        no source). Editing the method, a helper beside it, a toy's builder or a score makes the
        stored cells stale, and they are run again."""
        own = getattr(self.function, "fingerprint", None)
        if isinstance(own, str):  # a configured callable says what it computes (``methods.sklearn_method``)
            method = own
        elif self.builtin:
            method = ""
        else:
            method = code_fingerprint(self.resolve())
        return f"{method} planted {__version__} {source_digest()}".strip()

    @property
    def builtin(self) -> bool:
        """Whether this is one of planted's own functions (trusted to run beside the truth)."""
        f = self.function
        return self.reference.startswith("planted.") and (isinstance(f, str) or inspect.isfunction(f))

    def with_params(self, **params: Any) -> MethodSpec:
        """A copy with some hyperparameters changed."""
        return dataclasses.replace(self, params={**self.params, **params})


# What a cell's numbers depend on besides planted's source (``source_digest``).
RESULT_DEPENDENCIES = ("jax", "numpy", "scipy", "scikit-learn", "igraph", "optax", "flax")
_PRESENTATION = ("_figures/", "_html.py", "report.py", "cli.py")  # evaluators' files no number depends on


@functools.cache
def source_digest() -> str:
    """16 hex digits of the sha256 of what computes a cell: every ``.py`` file of planted's packages
    (by path; the evaluators' figures, HTML, report and command line excepted) and the versions of
    ``RESULT_DEPENDENCIES``. What the toys were built, the built-in methods run and the cells
    scored with."""
    from importlib import metadata

    h = hashlib.sha256()
    for name in ("planted", "planted.groundtruth", "planted.toys", "planted.methods", "planted.evaluators"):
        for folder in importlib.import_module(name).__path__:
            root = Path(folder)
            files = sorted(root.glob("*.py")) if name == "planted" else sorted(root.rglob("*.py"))
            for path in files:
                relative = path.relative_to(root).as_posix()
                if name == "planted.evaluators" and relative.startswith(_PRESENTATION):
                    continue
                h.update(f"{name}/{relative}\0".encode())
                h.update(path.read_bytes())
    for package in RESULT_DEPENDENCIES:
        try:
            h.update(f"{package}=={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package} absent\0".encode())
    return h.hexdigest()[:16]


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """16 hex digits of the sha256 of ``fn``'s source and its module's file (see ``MethodSpec``)."""
    h = hashlib.sha256()
    target = inspect.unwrap(fn)
    try:
        h.update(inspect.getsource(target).encode())
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        h.update(marshal.dumps(code) if code is not None else repr(target).encode())
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if path and os.path.isfile(path):
        with open(path, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def resolve_function(function: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable, or the function a ``"package.module:function"`` string names."""
    if callable(function):
        return function
    module_name, sep, attr = str(function).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"method reference {function!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"method reference {function!r}: cannot import {module_name!r} ({exc}); the module must "
                         "be importable: in the current folder, on PYTHONPATH, or installed") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise nearest(part, names, f"function in {module_name}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"method reference {function!r} is not callable")
    return target


def _sae(kind: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, **params, "n_steps": 1500, "batch_size": 512}


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in [
        MethodSpec("pca", pca_method, task="features"),
        MethodSpec("ica", ica_method, task="features"),
        MethodSpec("nmf", nmf_method, task="features"),
        MethodSpec("sae-relu", sae_method, _sae("relu"), task="features"),
        MethodSpec("sae-topk", sae_method, _sae("topk", k=4), task="features"),
        MethodSpec("sae-batchtopk", sae_method, _sae("batchtopk", k=4), task="features"),
        MethodSpec("sae-jumprelu", sae_method, _sae("jumprelu"), task="features"),
        *(MethodSpec(name, circuit_method, params, task="circuits") for name, params, _ in CIRCUIT_METHODS),
        *(MethodSpec(f"lesion-{name}", circuit_method, params, task="lesions")
          for name, params, nodes in CIRCUIT_METHODS if nodes),
        *(MethodSpec(f"tf-{name}", transformer_circuit_method, params, task="transformer_circuits")
          for name, params, _ in TRANSFORMER_CIRCUIT_METHODS),
        *(MethodSpec(f"tf-lesion-{name}", transformer_circuit_method, params, task="transformer_lesions")
          for name, params, nodes in TRANSFORMER_CIRCUIT_METHODS if nodes),
        *(MethodSpec(name, similarity_method, params, task="comparison") for name, params in SIMILARITY_METHODS),
        *(MethodSpec(f"layers-{name}", similarity_method, params, task="layers") for name, params in SIMILARITY_METHODS),
        MethodSpec("norm-half-final", dynamics_method, {"method": "norm_half_final", "fraction": 0.5}, task="dynamics"),
        MethodSpec("norm-growth", dynamics_method, {"method": "norm_growth"}, task="dynamics"),
        MethodSpec("loss-change-points", dynamics_method, {"method": "loss_change_points", "threshold": 2.0},
                   task="dynamics"),
        MethodSpec("gini-change-points", dynamics_method, {"method": "gini_change_points", "threshold": 2.0},
                   task="dynamics"),
        MethodSpec("weight-difference", damage_method, {"method": "weight_difference"}, task="damage"),
        MethodSpec("activation-difference", damage_method, {"method": "activation_difference"}, task="damage"),
        MethodSpec("lesion-explanation", damage_method, {"method": "lesion_explanation", "kind": "zero"}, task="damage"),
        MethodSpec("trace-difference", damage_method, {"method": "trace_difference"}, task="connectome_damage"),
        MethodSpec("correlation-difference", damage_method, {"method": "connectivity_difference", "measure": "correlation"},
                   task="connectome_damage"),
        MethodSpec("partial-correlation-difference", damage_method,
                   {"method": "connectivity_difference", "measure": "partial_correlation"}, task="connectome_damage"),
        MethodSpec("correlation-raw", connectivity_method, {"method": "correlation", "preprocess": "raw"},
                   task="connectivity"),
        MethodSpec("correlation-filtered", connectivity_method, {"method": "correlation", "preprocess": "filtered"},
                   task="connectivity"),
        MethodSpec("partial-correlation", connectivity_method, {"method": "partial_correlation"}, task="connectivity"),
        MethodSpec("lagged-correlation", connectivity_method, {"method": "lagged_correlation"}, task="connectivity"),
        MethodSpec("granger", connectivity_method, {"method": "granger"}, task="connectivity"),
        MethodSpec("louvain-correlation", module_method, {"method": "correlation", "preprocess": "filtered"},
                   task="modules"),
        MethodSpec("louvain-partial", module_method, {"method": "partial_correlation"}, task="modules"),
        MethodSpec("louvain-granger", module_method, {"method": "granger"}, task="modules"),
        MethodSpec("leiden-partial", module_method, {"method": "partial_correlation", "community": "leiden"},
                   task="modules"),
        MethodSpec("leiden-granger", module_method, {"method": "granger", "community": "leiden"}, task="modules"),
        MethodSpec("strength-correlation", hub_method, {"method": "correlation", "preprocess": "filtered"},
                   task="hubs"),
        MethodSpec("strength-partial", hub_method, {"method": "partial_correlation"}, task="hubs"),
        # PageRank ranks by in-flow, but a hub shows in Granger scores as a driver: on the modular
        # toys its outgoing scores are 6x a non-hub's, while non-hubs give hubs no more than their
        # share of their own out-weight, so this baseline ranks hubs last (AUROC about 0.03; the
        # reversed graph's PageRank ranks them first, 0.99). Kept as the direction lesson it is.
        MethodSpec("pagerank-granger", hub_method, {"method": "granger", "kind": "pagerank"}, task="hubs"),
    ]
}


def methods_for(task: str, *names: str) -> tuple[MethodSpec, ...]:
    """The built-in methods of ``task``: those named (in that order), or all of them when none are."""
    served = {name: spec for name, spec in METHODS.items() if spec.task == task}
    if not served:
        raise nearest(task, sorted({s.task for s in METHODS.values()}), "task with built-in methods")
    for name in names:
        if name not in served:
            other = METHODS.get(name)
            if other is not None:
                raise ValueError(f"method {name!r} serves the {other.task} task, not {task}")
            raise nearest(name, served, f"{task} method")
    return tuple(served[n] for n in names) if names else tuple(served.values())
