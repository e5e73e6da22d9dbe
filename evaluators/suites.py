"""Suites: named, versioned grids of toys x methods x seeds, and the built-in methods they run.

A suite's version is a hash of its whole grid (every toy config, every method with its
hyperparameters, the seeds), so it changes whenever the grid changes and numbers published
against one version stay comparable.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from planted import methods
from planted import toys
from planted.groundtruth import Config, Dictionary
from planted.groundtruth._circuits import CircuitPrediction


def nearest(name: str, options, what: str) -> ValueError:
    """A one-line ``ValueError`` for an unknown name, with the closest valid ones."""
    close = difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.3)
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    return ValueError(f"unknown {what} {name!r}{hint} Choose from: {', '.join(sorted(options))}")


# Built-in features methods, as the runner calls them: fn(activations, *, seed, **params).
# Sizes are given relative to d_model (read off the activations), never from the truth.


def pca_method(x: np.ndarray, *, seed: int, components: float = 1.0) -> Dictionary:
    return methods.pca(x, n_components=max(1, min(int(round(components * x.shape[1])), *x.shape)))


def ica_method(x: np.ndarray, *, seed: int, components: float = 1.0, max_iter: int = 400) -> Dictionary:
    return methods.ica(x, n_components=max(1, min(int(round(components * x.shape[1])), *x.shape)), seed=seed, max_iter=max_iter)


def nmf_method(x: np.ndarray, *, seed: int, components: float = 2.0, max_iter: int = 200) -> Dictionary:
    return methods.nmf(x, n_components=max(1, int(round(components * x.shape[1]))), seed=seed, max_iter=max_iter)


def sae_method(x: np.ndarray, *, seed: int, expansion: float = 4.0, **params: Any) -> Dictionary:
    return methods.sae(x, max(1, int(round(expansion * x.shape[1]))), seed=seed, progress=False, **params)


def circuit_method(artifact, *, seed: int, method: str, **params: Any) -> CircuitPrediction:
    """Run a ``methods.circuits`` method (by name) on every task of a circuit artifact."""
    import planted.methods.circuits as mc

    if method not in CIRCUIT_METHOD_NAMES:
        raise nearest(method, CIRCUIT_METHOD_NAMES, "circuit method")
    fn = getattr(mc, method)
    extra = {"seed": seed} if method == "ablation" and params.get("kind") == "resample" else {}
    return CircuitPrediction(tuple(fn(artifact, t, **params, **extra) for t in range(len(artifact.tasks))))


CONNECTIVITY_METHOD_NAMES = ("correlation", "partial_correlation", "lagged_correlation", "granger")


def _connectivity(recording, method: str, params: Mapping[str, Any]) -> np.ndarray:
    from planted.methods import connectivity as mcn

    if method not in CONNECTIVITY_METHOD_NAMES:
        raise nearest(method, CONNECTIVITY_METHOD_NAMES, "connectivity method")
    return getattr(mcn, method)(recording, **params)


def connectivity_method(recording, *, seed: int, method: str, **params: Any) -> np.ndarray:
    """Run a ``methods.connectivity`` method (by name) on a recording: scores (m, m)."""
    return _connectivity(recording, method, params)


def module_method(recording, *, seed: int, method: str, resolution: float = 1.0, community: str = "louvain",
                  **params: Any) -> np.ndarray:
    """Communities (``community``: Louvain or Leiden) of the positive part of a connectivity
    method's scores: labels (m,)."""
    from planted.methods.graphs import communities

    scores = np.clip(_connectivity(recording, method, params), 0, None)
    return communities(scores, resolution=resolution, seed=seed, method=community)


def hub_method(recording, *, seed: int, method: str, kind: str = "strength", **params: Any) -> np.ndarray:
    """A centrality of the positive part of a connectivity method's scores: one value per neuron."""
    from planted.methods.graphs import centrality

    return centrality(np.clip(_connectivity(recording, method, params), 0, None), kind, seed=seed)


CIRCUIT_METHOD_NAMES = (
    "ablation", "acdc", "activation_patching", "attribution_patching", "edge_attribution_patching", "eap_ig",
    "gradient_x_input", "integrated_gradients", "layerwise_relevance", "weight_centrality",
)


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method with its hyperparameters.

    ``function`` is a callable ``fn(artifact, *, seed, **params)`` or a ``"package.module:function"``
    reference to one (imported when the cell runs, so it also works in worker processes).
    """

    name: str
    function: Callable[..., Any] | str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True, separators=(",", ":"))

    @property
    def reference(self) -> str:
        f = self.function
        return f if isinstance(f, str) else f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"

    def resolve(self) -> Callable[..., Any]:
        return resolve_function(self.function)


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
        raise ValueError(f"method reference {function!r}: cannot import {module_name!r} ({exc})") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise nearest(part, names, f"function in {module_name}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"method reference {function!r} is not callable")
    return target


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in [
        MethodSpec("pca", pca_method),
        MethodSpec("ica", ica_method),
        MethodSpec("nmf", nmf_method),
        MethodSpec("sae-relu", sae_method, {"kind": "relu", "n_steps": 1500, "batch_size": 512}),
        MethodSpec("sae-topk", sae_method, {"kind": "topk", "k": 4, "n_steps": 1500, "batch_size": 512}),
        MethodSpec("sae-batchtopk", sae_method, {"kind": "batchtopk", "k": 4, "n_steps": 1500, "batch_size": 512}),
        MethodSpec("sae-jumprelu", sae_method, {"kind": "jumprelu", "n_steps": 1500, "batch_size": 512}),
        # Circuit methods (the circuits task).
        MethodSpec("activation-patching", circuit_method, {"method": "activation_patching"}),
        MethodSpec("zero-ablation", circuit_method, {"method": "ablation", "kind": "zero"}),
        MethodSpec("mean-ablation", circuit_method, {"method": "ablation", "kind": "mean"}),
        MethodSpec("resample-ablation", circuit_method, {"method": "ablation", "kind": "resample"}),
        MethodSpec("attribution-patching", circuit_method, {"method": "attribution_patching"}),
        MethodSpec("eap", circuit_method, {"method": "edge_attribution_patching"}),
        MethodSpec("eap-ig", circuit_method, {"method": "eap_ig", "steps": 5}),
        MethodSpec("acdc", circuit_method, {"method": "acdc", "threshold": 0.01}),
        MethodSpec("gradient-x-input", circuit_method, {"method": "gradient_x_input"}),
        MethodSpec("integrated-gradients", circuit_method, {"method": "integrated_gradients"}),
        MethodSpec("lrp", circuit_method, {"method": "layerwise_relevance"}),
        MethodSpec("degree", circuit_method, {"method": "weight_centrality", "kind": "degree"}),
        MethodSpec("strength", circuit_method, {"method": "weight_centrality", "kind": "strength"}),
        MethodSpec("eigenvector", circuit_method, {"method": "weight_centrality", "kind": "eigenvector"}),
        MethodSpec("pagerank", circuit_method, {"method": "weight_centrality", "kind": "pagerank"}),
        # Connectome methods: connectivity, modules and hubs tasks.
        MethodSpec("correlation-raw", connectivity_method, {"method": "correlation", "preprocess": "raw"}),
        MethodSpec("correlation-filtered", connectivity_method, {"method": "correlation", "preprocess": "filtered"}),
        MethodSpec("partial-correlation", connectivity_method, {"method": "partial_correlation"}),
        MethodSpec("lagged-correlation", connectivity_method, {"method": "lagged_correlation"}),
        MethodSpec("granger", connectivity_method, {"method": "granger"}),
        MethodSpec("louvain-correlation", module_method, {"method": "correlation", "preprocess": "filtered"}),
        MethodSpec("louvain-partial", module_method, {"method": "partial_correlation"}),
        MethodSpec("louvain-granger", module_method, {"method": "granger"}),
        MethodSpec("leiden-partial", module_method, {"method": "partial_correlation", "community": "leiden"}),
        MethodSpec("leiden-granger", module_method, {"method": "granger", "community": "leiden"}),
        MethodSpec("strength-correlation", hub_method, {"method": "correlation", "preprocess": "filtered"}),
        MethodSpec("strength-partial", hub_method, {"method": "partial_correlation"}),
        # PageRank ranks by in-flow, but a hub shows in Granger scores as a driver: on the modular
        # toys its outgoing scores are 6x a non-hub's, while non-hubs give hubs no more than their
        # share of their own out-weight, so this baseline ranks hubs last (AUROC about 0.03; the
        # reversed graph's PageRank ranks them first, 0.99). Kept as the direction lesson it is.
        MethodSpec("pagerank-granger", hub_method, {"method": "granger", "kind": "pagerank"}),
    ]
}

FEATURE_METHODS = ("pca", "ica", "nmf", "sae-relu", "sae-topk", "sae-batchtopk", "sae-jumprelu")


@dataclasses.dataclass(frozen=True)
class ToySpec:
    """A toy of a suite: ``make(seed)`` gives its config; ``axes`` its difficulty coordinates."""

    name: str
    make: Callable[[int], Config]
    axes: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named grid of toys x methods x seeds for one task."""

    name: str
    task: str
    toys: tuple[ToySpec, ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    description: str = ""
    figures: tuple[str, ...] = ()  # extra report figures: "phase_diagram"

    @property
    def version(self) -> str:
        """12 hex digits of the sha256 of the canonical grid."""
        grid = {
            "task": self.task,
            "toys": [[t.name, t.make(s).to_json(), sorted(t.axes.items())] for t in self.toys for s in self.seeds],
            "methods": [[m.name, m.reference, m.params_json] for m in self.methods],
            "seeds": list(self.seeds),
        }
        return hashlib.sha256(json.dumps(grid, sort_keys=True).encode()).hexdigest()[:12]

    def with_methods(self, specs: Sequence[MethodSpec]) -> Suite:
        return dataclasses.replace(self, methods=tuple(specs))

    def with_seeds(self, seeds: Sequence[int]) -> Suite:
        return dataclasses.replace(self, seeds=tuple(seeds))


def _sparse(**fields: Any) -> Callable[[int], Config]:
    def make(seed: int) -> Config:
        return toys.SparseFeaturesConfig(**fields, seed=seed)

    return make


def _quick() -> Suite:
    ratio2 = ToySpec(
        "sparse-r2",
        _sparse(n_features=128, d_model=64, n_samples=10_000, firing="exponential", decay=0.99, mean_active=4.0,
                magnitude="uniform", magnitude_mean=0.5),
        {"superposition": 2.0, "mean_active": 4.0, "noise_std": 0.0, "correlation_scale": 0.0},
    )
    hierarchy = ToySpec(
        "hierarchy-r3",
        _sparse(n_features=96, d_model=32, n_samples=10_000, firing="zipf", zipf_exponent=0.5, p_max=0.3, p_min=0.01,
                mean_active=None, hierarchy_roots=8, hierarchy_branching=2, hierarchy_depth=2,
                mutually_exclusive=True, magnitude="folded_normal", noise_std=0.01),
        {"superposition": 3.0, "noise_std": 0.01, "correlation_scale": 0.0},
    )
    tms = ToySpec(
        "tms-20-5",
        lambda seed: toys.SuperpositionConfig(n_features=20, n_hidden=5, n_samples=10_000, sparsity=0.9,
                                              importance=1.0, n_steps=5000, seed=seed),
        {"superposition": 4.0, "noise_std": 0.0, "correlation_scale": 0.0},
    )
    return Suite(
        name="quick",
        task="features",
        toys=(ratio2, hierarchy, tms),
        methods=tuple(METHODS[n] for n in FEATURE_METHODS),
        seeds=(0, 1, 2),
        description="2 small sparse-feature toys (superposition 2 and 3, one hierarchical) and a trained toy model of "
        "superposition (20 features in 5 dims) x 7 methods x 3 seeds; < 5 min",
    )


def _standard() -> Suite:
    specs = []
    for ratio in (2, 4, 8):
        specs.append(ToySpec(
            f"sparse-r{ratio}",
            _sparse(n_features=64 * ratio, d_model=64, n_samples=20_000, firing="exponential", decay=0.995,
                    mean_active=5.0, magnitude="uniform", magnitude_mean=0.5, noise_std=0.01),
            {"superposition": float(ratio), "mean_active": 5.0, "noise_std": 0.01, "correlation_scale": 0.0},
        ))
    specs.append(ToySpec(
        "hierarchy-r4",
        _sparse(n_features=256, d_model=64, n_samples=20_000, firing="zipf", zipf_exponent=0.5, p_max=0.3, p_min=0.005,
                mean_active=None, hierarchy_roots=16, hierarchy_branching=3, hierarchy_depth=2, mutually_exclusive=True,
                correlation_rank=4, correlation_scale=0.1, magnitude="folded_normal", noise_std=0.01),
        {"superposition": 4.0, "noise_std": 0.01, "correlation_scale": 0.1},
    ))
    heavier = {name: dataclasses.replace(spec, params={**spec.params, "n_steps": 3000}) if name.startswith("sae") else spec
               for name, spec in METHODS.items() if name in FEATURE_METHODS}
    return Suite(
        name="standard",
        task="features",
        toys=tuple(specs),
        methods=tuple(heavier.values()),
        seeds=(0, 1, 2, 3, 4),
        description="superposition 2/4/8 plus a correlated hierarchy, 7 methods, 5 seeds; < 60 min",
    )


def _features_sweep() -> Suite:
    specs = []
    for ratio in (1, 4, 16):
        for active in (2.0, 8.0):
            for noise in (0.0, 0.05):
                for corr in (0.0, 0.3):
                    specs.append(ToySpec(
                        f"r{ratio}-a{active:g}-n{noise:g}-c{corr:g}",
                        _sparse(n_features=32 * ratio, d_model=32, n_samples=10_000, mean_active=active,
                                magnitude="uniform", magnitude_mean=0.5, noise_std=noise,
                                correlation_rank=4 if corr else 0, correlation_scale=corr if corr else 0.1),
                        {"superposition": float(ratio), "mean_active": active, "noise_std": noise, "correlation_scale": corr},
                    ))
    chosen = [METHODS[n] for n in ("pca", "ica", "sae-relu", "sae-topk")]
    chosen = [dataclasses.replace(m, params={**m.params, "k": 8}) if m.name == "sae-topk" else m for m in chosen]
    return Suite(
        name="features-sweep",
        task="features",
        toys=tuple(specs),
        methods=tuple(chosen),
        seeds=(0, 1),
        description="superposition 1/4/16 x mean active 2/8 x noise 0/0.05 x correlation 0/0.3; 4 methods, 2 seeds",
    )


def _tms() -> Suite:
    def superposition(sparsity: float) -> Callable[[int], Config]:
        def make(seed: int) -> Config:
            return toys.SuperpositionConfig(n_features=20, n_hidden=5, n_samples=10_000, sparsity=sparsity,
                                            n_steps=5000, seed=seed)

        return make

    specs = [
        ToySpec(f"tms-20-5-s{s:g}", superposition(s), {"sparsity": s, "superposition": 4.0})
        for s in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
    ]
    specs += [
        ToySpec("tms-5-2", lambda seed: toys.preset_config("tms_5_2", seed=seed), {"sparsity": 0.95, "superposition": 2.5}),
        ToySpec("tms-40-10", lambda seed: toys.preset_config("tms_40_10", seed=seed), {"sparsity": 0.95, "superposition": 4.0}),
    ]
    return Suite(
        name="tms",
        task="features",
        toys=tuple(specs),
        methods=tuple(METHODS[n] for n in ("pca", "ica", "sae-relu", "sae-topk")),
        seeds=(0, 1, 2),
        description="toy models of superposition: a sparsity sweep of 20 features in 5 dims and the tms_5_2 / "
        "tms_40_10 presets x 4 methods x 3 seeds; the report adds the learned geometry and a phase diagram",
        figures=("phase_diagram",),
    )


def _circuits() -> Suite:
    def planted(**modes: Any) -> Callable[[int], Config]:
        def make(seed: int) -> Config:
            return toys.PlantedMLPConfig(n_inputs=12, n_tasks=2, depth=2, n_blocks=3, width=48, seed=seed, **modes)

        return make

    specs = [ToySpec("plain", planted())]
    specs += [ToySpec(mode, planted(**{"naturalise" if mode == "naturalisation" else mode: True}))
              for mode in ("redundancy", "cancellation", "saturation", "shared", "naturalisation")]
    specs.append(ToySpec("trained", planted(trained=True)))
    return Suite(
        name="circuits",
        task="circuits",
        toys=tuple(specs),
        methods=tuple(spec for name, spec in METHODS.items() if name not in FEATURE_METHODS),
        seeds=(0, 1, 2),
        description="planted circuits: a plain toy, one per failure mode (redundancy, cancellation, saturation, "
        "shared, naturalisation) and the trained kind x 15 circuit and connectomics methods x 3 seeds; the report "
        "adds the catalog table",
    )


CONNECTOME_METHODS = {
    "connectivity": ("correlation-raw", "correlation-filtered", "partial-correlation", "lagged-correlation", "granger"),
    "modules": ("louvain-correlation", "louvain-partial", "louvain-granger", "leiden-partial", "leiden-granger"),
    "hubs": ("strength-correlation", "strength-partial", "pagerank-granger"),
}


def _connectome(task: str) -> Suite:
    def modular(**fields: Any) -> Callable[[int], Config]:
        def make(seed: int) -> Config:
            # Excitatory and depressing, like the ChaLearn networks: synapses strong enough that
            # a spike is seen downstream, at rates (~1 Hz) where calcium resolves single spikes.
            base = dict(n_neurons=500, n_modules=4, density=0.02, mixing=0.1, hub_fraction=0.05, hub_boost=4.0,
                        rich_club=0.2, exc_fraction=1.0, weight=24.0, depression=True, background_weight=2.8, dim=2,
                        duration=300.0)
            return toys.ConnectomeConfig(**{**base, **fields, "seed": seed})

        return make

    specs = (
        ToySpec("chalearn-5min", lambda seed: toys.preset_config("chalearn2014", seed=seed, duration=300.0),
                {"observed_fraction": 1.0}),
        ToySpec("modular-calcium", modular(), {"observed_fraction": 1.0}),
        ToySpec("modular-spikes", modular(observation="spikes"), {"observed_fraction": 1.0}),
        ToySpec("modular-half", modular(observed_fraction=0.5), {"observed_fraction": 0.5}),
    )
    if task == "hubs":  # the ChaLearn networks plant no hubs (their modules are the organizers' 10 groups)
        specs = specs[1:]
    names = CONNECTOME_METHODS[task]
    return Suite(
        name="connectome" if task == "connectivity" else f"connectome-{task}",
        task=task,
        toys=specs,
        methods=tuple(METHODS[n] for n in names),
        seeds=(0, 1, 2),
        description=f"synthetic connectomes ({', '.join(s.name for s in specs)}) x {len(names)} {task} methods x 3 seeds",
    )


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (_quick(), _standard(), _features_sweep(), _tms(), _circuits(), _connectome("connectivity"),
              _connectome("modules"), _connectome("hubs"))
}
