"""Suites: named, versioned grids of toys x methods x seeds, declared as data.

A suite names its task, its toys (a family and its fields, or a preset), its methods (picked from
the method registry by name or by task, with per-suite overrides of their hyperparameters) and its
seeds. A suite's version is a hash of its whole grid (every toy config, every method with its
hyperparameters, the seeds), so it changes whenever the grid changes and numbers published against
one version stay comparable.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from planted import toys
from planted.evaluators._methods import METHODS, MethodSpec, methods_for
from planted.groundtruth import Config, nearest


@dataclasses.dataclass(frozen=True)
class ToySpec:
    """A toy of a suite: a family and its fields (or a preset and its overrides); ``axes`` are its
    difficulty coordinates. ``make(seed)`` gives its config.

    With ``members``, the spec is a problem of several toys (a task that compares networks): one
    toy per member, each with ``fields`` updated by the member's own, all with the cell's seed
    (a member tells itself apart by a field of its family, say a feature view's ``view``); a
    member may instead be a module-level function ``(seed, configs before it) -> Config`` (a
    damaged twin names its normal twin's config). ``configs(seed)`` gives them in order."""

    name: str
    family: str
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    axes: Mapping[str, float] = dataclasses.field(default_factory=dict)
    preset: str | None = None
    members: tuple[Mapping[str, Any] | Callable[[int, tuple[Config, ...]], Config], ...] = ()

    def __post_init__(self) -> None:
        if self.family not in toys.FAMILY_KINDS:
            raise nearest(self.family, toys.FAMILY_KINDS, f"toy family of toy {self.name!r}")
        if len(self.members) == 1:
            raise ValueError(f"toy {self.name!r}: members must name at least 2 toys (or none, for one toy), got 1")

    def make(self, seed: int) -> Config:
        """The config of the toy (one toy: a problem of several has ``configs``)."""
        if self.members:
            raise ValueError(f"toy {self.name!r} is a problem of {len(self.members)} toys; use configs(seed)")
        return self._make(seed, {})

    def _make(self, seed: int, member: Mapping[str, Any]) -> Config:
        fields = {**self.fields, **member}
        if self.preset is not None:
            config = toys.preset_config(self.preset, seed=seed, **fields)
        else:
            config = toys.family(self.family).config(**{**fields, "seed": seed})
        if config.kind != self.family:
            raise ValueError(f"toy {self.name!r} is declared as {self.family!r} but makes a {config.kind!r} config")
        return config

    def configs(self, seed: int) -> tuple[Config, ...]:
        """The configs of the problem's toys: one, or one per member."""
        if not self.members:
            return (self.make(seed),)
        configs: list[Config] = []
        for member in self.members:
            configs.append(member(seed, tuple(configs)) if callable(member) else self._make(seed, member))
        return tuple(configs)

    def grid(self, seed: int) -> str | list[str]:
        """What the suite's version hashes for this toy and seed: its config's canonical JSON (a
        list of them for a problem of several)."""
        configs = self.configs(seed)
        return configs[0].to_json() if not self.members else [c.to_json() for c in configs]


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named grid of toys x methods x seeds for one task; every built-in method serves it."""

    name: str
    task: str
    toys: tuple[ToySpec, ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    description: str = ""
    figures: tuple[str, ...] = ()  # extra report figures: "phase_diagram"
    method_seeds: tuple[int, ...] = ()  # seeds of the methods apart from the toys' (empty: the toy's seed)

    def __post_init__(self) -> None:
        wrong = [f"{m.name} ({m.task})" for m in self.methods if m.task is not None and m.task != self.task]
        if wrong:
            raise ValueError(f"suite {self.name!r} is a {self.task} suite; these methods serve other tasks: "
                             f"{', '.join(wrong)}")

    @property
    def version(self) -> str:
        """12 hex digits of the sha256 of the canonical grid."""
        grid = {
            "task": self.task,
            "toys": [[t.name, t.grid(s), sorted(t.axes.items())] for t in self.toys for s in self.seeds],
            "methods": [[m.name, m.reference, m.params_json] for m in self.methods],
            "seeds": list(self.seeds),
        }
        if self.method_seeds:  # absent when empty, so the versions of suites without them are unchanged
            grid["method_seeds"] = list(self.method_seeds)
        return hashlib.sha256(json.dumps(grid, sort_keys=True).encode()).hexdigest()[:12]

    def with_methods(self, specs: Sequence[MethodSpec]) -> Suite:
        return dataclasses.replace(self, methods=tuple(specs))

    def with_seeds(self, seeds: Sequence[int]) -> Suite:
        return dataclasses.replace(self, seeds=tuple(seeds))


def _sparse(name: str, axes: Mapping[str, float], **fields: Any) -> ToySpec:
    return ToySpec(name, "sparse_features", fields, axes)


_FEATURES = ("pca", "ica", "nmf", "sae-relu", "sae-topk", "sae-batchtopk", "sae-jumprelu")


def _quick() -> Suite:
    return Suite(
        name="quick",
        task="features",
        toys=(
            _sparse("sparse-r2", {"superposition": 2.0, "mean_active": 4.0, "noise_std": 0.0, "correlation_scale": 0.0},
                    n_features=128, d_model=64, n_samples=10_000, firing="exponential", decay=0.99, mean_active=4.0,
                    magnitude="uniform", magnitude_mean=0.5),
            _sparse("hierarchy-r3", {"superposition": 3.0, "noise_std": 0.01, "correlation_scale": 0.0},
                    n_features=96, d_model=32, n_samples=10_000, firing="zipf", zipf_exponent=0.5, p_max=0.3,
                    p_min=0.01, mean_active=None, hierarchy_roots=8, hierarchy_branching=2, hierarchy_depth=2,
                    mutually_exclusive=True, magnitude="folded_normal", noise_std=0.01),
            ToySpec("tms-20-5", "superposition",
                    dict(n_features=20, n_hidden=5, n_samples=10_000, sparsity=0.9, importance=1.0, n_steps=5000),
                    {"superposition": 4.0, "noise_std": 0.0, "correlation_scale": 0.0}),
        ),
        methods=methods_for("features", *_FEATURES),
        seeds=(0, 1, 2),
        description="2 small sparse-feature toys (superposition 2 and 3, one hierarchical) and a trained toy model of "
        "superposition (20 features in 5 dims) x 7 methods x 3 seeds; < 5 min",
    )


def _standard() -> Suite:
    specs = [
        _sparse(f"sparse-r{ratio}",
                {"superposition": float(ratio), "mean_active": 5.0, "noise_std": 0.01, "correlation_scale": 0.0},
                n_features=64 * ratio, d_model=64, n_samples=20_000, firing="exponential", decay=0.995,
                mean_active=5.0, magnitude="uniform", magnitude_mean=0.5, noise_std=0.01)
        for ratio in (2, 4, 8)
    ]
    specs.append(_sparse(
        "hierarchy-r4", {"superposition": 4.0, "noise_std": 0.01, "correlation_scale": 0.1},
        n_features=256, d_model=64, n_samples=20_000, firing="zipf", zipf_exponent=0.5, p_max=0.3, p_min=0.005,
        mean_active=None, hierarchy_roots=16, hierarchy_branching=3, hierarchy_depth=2, mutually_exclusive=True,
        correlation_rank=4, correlation_scale=0.1, magnitude="folded_normal", noise_std=0.01,
    ))
    return Suite(
        name="standard",
        task="features",
        toys=tuple(specs),
        methods=_override(methods_for("features", *_FEATURES), {n: {"n_steps": 3000} for n in _FEATURES if "sae" in n}),
        seeds=(0, 1, 2, 3, 4),
        description="superposition 2/4/8 plus a correlated hierarchy, 7 methods, 5 seeds; < 60 min",
    )


def _override(specs: Sequence[MethodSpec], params: Mapping[str, Mapping[str, Any]]) -> tuple[MethodSpec, ...]:
    """``specs`` with the hyperparameters in ``params[name]`` replaced (a suite's overrides)."""
    unknown = sorted(set(params) - {s.name for s in specs})
    if unknown:
        raise ValueError(f"overrides name methods the suite does not run: {unknown}")
    return tuple(s.with_params(**params[s.name]) if s.name in params else s for s in specs)


def _features_sweep() -> Suite:
    specs = [
        _sparse(f"r{ratio}-a{active:g}-n{noise:g}-c{corr:g}",
                {"superposition": float(ratio), "mean_active": active, "noise_std": noise, "correlation_scale": corr},
                n_features=32 * ratio, d_model=32, n_samples=10_000, mean_active=active, magnitude="uniform",
                magnitude_mean=0.5, noise_std=noise, correlation_rank=4 if corr else 0,
                correlation_scale=corr if corr else 0.1)
        for ratio in (1, 4, 16) for active in (2.0, 8.0) for noise in (0.0, 0.05) for corr in (0.0, 0.3)
    ]
    return Suite(
        name="features-sweep",
        task="features",
        toys=tuple(specs),
        methods=_override(methods_for("features", "pca", "ica", "sae-relu", "sae-topk"), {"sae-topk": {"k": 8}}),
        seeds=(0, 1),
        description="superposition 1/4/16 x mean active 2/8 x noise 0/0.05 x correlation 0/0.3; 4 methods, 2 seeds",
    )


def _tms() -> Suite:
    specs = [
        ToySpec(f"tms-20-5-s{s:g}", "superposition",
                dict(n_features=20, n_hidden=5, n_samples=10_000, sparsity=s, n_steps=5000),
                {"sparsity": s, "superposition": 4.0})
        for s in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
    ]
    specs += [
        ToySpec("tms-5-2", "superposition", axes={"sparsity": 0.95, "superposition": 2.5}, preset="tms_5_2"),
        ToySpec("tms-40-10", "superposition", axes={"sparsity": 0.95, "superposition": 4.0}, preset="tms_40_10"),
    ]
    return Suite(
        name="tms",
        task="features",
        toys=tuple(specs),
        methods=methods_for("features", "pca", "ica", "sae-relu", "sae-topk"),
        seeds=(0, 1, 2),
        description="toy models of superposition: a sparsity sweep of 20 features in 5 dims and the tms_5_2 / "
        "tms_40_10 presets x 4 methods x 3 seeds; the report adds the learned geometry and a phase diagram",
        figures=("phase_diagram",),
    )


def _circuit_toys() -> tuple[ToySpec, ...]:
    """A plain planted circuit toy, one per failure mode and the trained kind."""
    base = dict(n_inputs=12, n_tasks=2, depth=2, n_blocks=3, width=48)
    specs = [ToySpec("plain", "planted_mlp", base)]
    specs += [ToySpec(mode, "planted_mlp", {**base, mode: True}) for mode in toys.FAILURE_MODES]
    specs.append(ToySpec("trained", "planted_mlp", {**base, "trained": True}))
    return tuple(specs)


def _circuits() -> Suite:
    served = methods_for("circuits")
    return Suite(
        name="circuits",
        task="circuits",
        toys=_circuit_toys(),
        methods=served,
        seeds=(0, 1, 2),
        description=f"planted circuits: a plain toy, one per failure mode ({', '.join(toys.FAILURE_MODES)}) and the "
        f"trained kind x {len(served)} circuit methods (patching, attribution, ACDC, input attributions and "
        "weight-graph centralities) x 3 seeds; the report adds the catalog table",
    )


def _lesions() -> Suite:
    # The circuits suite's toys, each scored against its exact lesion census.
    served = methods_for("lesions")
    return Suite(
        name="lesions",
        task="lesions",
        toys=_circuit_toys(),
        methods=served,
        seeds=(0, 1, 2),
        description=f"lesion censuses of planted circuits (plain, one per failure mode, trained) x {len(served)} "
        "node methods (ablations, patching, Shapley sampling, pruning and its random-ticket control, centralities) x "
        "3 seeds; the report draws each toy's census histogram",
    )


def _transformer_circuits() -> Suite:
    # shuffle_dyck3 is left out for time: shuffle_dyck2 has the same circuit with one bracket type fewer.
    specs = tuple(ToySpec(name, "rasp_transformer", {"program": name, "n_samples": 32}) for name in toys.RASP_PROGRAMS
                  if name != "shuffle_dyck3")
    # The catalog: every failure mode on induction and on the IOI-like circuit (whose effects run
    # through queries and keys), and on reverse (through values, which only saturation flattens).
    specs += tuple(ToySpec(f"{program}+{mode}", "rasp_transformer", {"program": program, "n_samples": 32, mode: True})
                   for program in ("induction", "ioi", "reverse") for mode in toys.TRANSFORMER_FAILURE_MODES)
    # The trained kind, on the programs whose interchange training verifies at the default steps.
    specs += tuple(ToySpec(f"{program}+trained", "rasp_transformer", {"program": program, "n_samples": 32, "trained": True})
                   for program in toys.TRAINED_PROGRAMS)
    specs += tuple(ToySpec(f"{program}+superposition", "rasp_transformer",
                           {"program": program, "n_samples": 32, "trained": True, "residual_fraction": 0.5})
                   for program in toys.SUPERPOSED_PROGRAMS)
    served = methods_for("transformer_circuits")
    return Suite(
        name="transformer-circuits",
        task="transformer_circuits",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"attention-head circuits of compiled RASP programs (tracr's library, induction, an IOI-like circuit, "
        f"a successor head; induction, IOI and reverse with each failure mode: {', '.join(toys.TRANSFORMER_FAILURE_MODES)}; "
        f"the trained kind of {', '.join(toys.TRAINED_PROGRAMS)}, and of {', '.join(toys.SUPERPOSED_PROGRAMS)} in a residual "
        f"stream half the compiled width (superposition)) x {len(served)} head-level methods (patching, path patching, "
        "attribution, EAP, EAP-IG, ACDC, "
        "attention-pattern heuristics) x 3 seeds; the report adds the catalog table",
    )


def _transformer_lesions() -> Suite:
    # Compiled transformers, plain, with a backup head (silent alone, lethal with its original: the
    # census finds the pair), and with distractor heads (silent by construction).
    specs = tuple(ToySpec(program, "rasp_transformer", {"program": program, "n_samples": 32})
                  for program in ("induction", "ioi", "reverse", "detect_pattern"))
    specs += tuple(ToySpec(f"{program}+backup", "rasp_transformer", {"program": program, "n_samples": 32, "backup": True})
                   for program in ("induction", "ioi", "reverse", "tracr_issue_25"))
    specs += (ToySpec("ioi+distractors", "rasp_transformer", {"program": "ioi", "n_samples": 32, "distractors": True}),)
    served = methods_for("transformer_lesions")
    return Suite(
        name="transformer-lesions",
        task="transformer_lesions",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"lesion censuses of compiled transformers (plain, with a backup head, with distractor heads) x "
        f"{len(served)} component methods (patching, ablations, attribution, Shapley sampling) x 3 seeds; the report "
        "draws each toy's census histogram",
    )


def _connectome(task: str) -> Suite:
    # Excitatory and depressing, like the ChaLearn networks: synapses strong enough that a spike is
    # seen downstream, at rates (~1 Hz) where calcium resolves single spikes.
    modular = dict(n_neurons=500, n_modules=4, density=0.02, mixing=0.1, hub_fraction=0.05, hub_boost=4.0,
                   rich_club=0.2, exc_fraction=1.0, weight=24.0, depression=True, background_weight=2.8, dim=2,
                   duration=300.0)
    specs = (
        ToySpec("chalearn-5min", "connectome", {"duration": 300.0}, {"observed_fraction": 1.0}, preset="chalearn2014"),
        ToySpec("modular-calcium", "connectome", modular, {"observed_fraction": 1.0}),
        ToySpec("modular-spikes", "connectome", {**modular, "observation": "spikes"}, {"observed_fraction": 1.0}),
        ToySpec("modular-half", "connectome", {**modular, "observed_fraction": 0.5}, {"observed_fraction": 0.5}),
    )
    if task == "hubs":  # the ChaLearn networks plant no hubs (their modules are the organizers' 10 groups)
        specs = specs[1:]
    served = methods_for(task)
    return Suite(
        name="connectome" if task == "connectivity" else f"connectome-{task}",
        task=task,
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"synthetic connectomes ({', '.join(s.name for s in specs)}) x {len(served)} {task} methods x 3 seeds",
    )


def _comparison() -> Suite:
    # Views of one stream of 128 pool features, 5 active per sample, 4,000 samples. "ladder":
    # seven 64-feature views in orthonormal frames at offsets 0, 0, 8, 16, 32, 48, 64, so their
    # pairs share 1 ... 0 of their features. "superposition": the same 64 features in a frame of
    # 64, 32 and 16 dimensions (superposition 1, 2, 4) beside views sharing half and none of them,
    # the case where CKA inverts (Liu et al. 2026). "rescaled": the ladder with every coordinate
    # rescaled (exp of N(0, 1)): an invertible map that keeps what is shared.
    common = dict(n_pool=128, n_features=64, d_model=64, n_samples=4000, mean_active=5.0)
    ladder = tuple({"offset": o, "view": v} for v, o in enumerate((0, 0, 8, 16, 32, 48, 64)))
    superposed = ({"view": 0}, {"view": 1}, {"view": 2, "frame": "random", "d_model": 32},
                  {"view": 3, "frame": "random", "d_model": 16}, {"view": 4, "offset": 32}, {"view": 5, "offset": 64})
    # "deletion" (Ding et al. 2021): three frames of the same 64 features (seed-only changes, no
    # functional difference) beside views with their top 1 ... 32 principal components deleted.
    deletion = tuple({"view": v} for v in range(3)) + tuple(
        {"view": 3 + i, "deleted_pcs": k} for i, k in enumerate((1, 2, 4, 8, 16, 32)))
    specs = (
        ToySpec("ladder", "feature_view", common, {"superposition": 1.0, "rescale": 0.0}, members=ladder),
        ToySpec("superposition", "feature_view", common, {"superposition": 4.0, "rescale": 0.0}, members=superposed),
        ToySpec("rescaled", "feature_view", {**common, "rescale": 1.0}, {"superposition": 1.0, "rescale": 1.0},
                members=ladder),
        ToySpec("deletion", "feature_view", common, {"superposition": 1.0, "rescale": 0.0}, members=deletion),
    )
    served = methods_for("comparison")
    return Suite(
        name="comparison",
        task="comparison",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"feature views of one code stream sharing known fractions of their features ({', '.join(s.name for s in specs)}) "
        f"x {len(served)} similarity measures x 3 seeds; < 2 min",
    )


def damaged_twin(seed: int, before: tuple[Config, ...], **fields: Any) -> Config:
    """A member of a damage problem: a damaged copy of the problem's first toy (``toys.damaged``
    with ``fields``), drawn with the cell's seed."""
    return toys.family("damaged").config(base=before[0].to_json(), seed=seed, **fields)


def weights_twin(seed: int, before: tuple[Config, ...], *, offset: int, **fields: Any) -> Config:
    """A member of a layer-matching problem: a ``planted_mlp`` config of the cell's seed with its
    weights drawn from ``seed + offset`` (``weights_seed``, modulo 2**31 - 1): the first member's fields (``fields``
    when it is the first), so every member computes the same formulas in the same blocks."""
    weights_seed = (seed + offset) % (2**31 - 1)  # a private split's seeds reach 2**31 - 2
    if before:
        return before[0].replace(weights_seed=weights_seed)
    return toys.family("planted_mlp").config(**fields, seed=seed, weights_seed=weights_seed)


def frame_twin(seed: int, before: tuple[Config, ...], *, offset: int, **fields: Any) -> Config:
    """A member of a layer-matching problem of compiled transformers: the program in a residual
    frame of its own (``naturalise`` with no noise: a random rotation drawn from ``seed + offset``),
    the first member's fields (``fields`` when it is the first)."""
    twin_seed = (seed + offset) % (2**31 - 1)
    if before:
        return before[0].replace(seed=twin_seed)
    return toys.family("rasp_transformer").config(**fields, seed=twin_seed)


def _layers() -> Suite:
    # Four-block planted circuits of depth 3 and their twins: the same formulas in other frames
    # (compiled, naturalised: noise and rescaled neurons, or trained under the same masks).
    base = dict(n_blocks=4, depth=3, n_samples=256)

    def twins(**fields):
        return (functools.partial(weights_twin, offset=0, **base, **fields), functools.partial(weights_twin, offset=10_000))

    specs = (
        ToySpec("compiled", "planted_mlp", base, {"trained": 0.0}, members=twins()),
        ToySpec("naturalised", "planted_mlp", base, {"trained": 0.0}, members=twins(naturalise=True)),
        ToySpec("trained", "planted_mlp", base, {"trained": 1.0}, members=twins(trained=True)),
        # A compiled transformer (reverse: three attention layers) and its twin in another frame:
        # sublayers that write nothing leave the stream as it was, so some layers are equal.
        ToySpec("tf-reverse", "rasp_transformer", dict(program="reverse", n_samples=16, naturalise=True, noise=0.0),
                {"trained": 0.0},
                members=(functools.partial(frame_twin, offset=0, program="reverse", n_samples=16, naturalise=True,
                                           noise=0.0), functools.partial(frame_twin, offset=10_000))),
    )
    served = methods_for("layers")
    return Suite(
        name="layers",
        task="layers",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"layer twins ({', '.join(s.name for s in specs)}) x {len(served)} similarity measures x 3 seeds; "
        "< 3 min",
    )


def _dynamics() -> Suite:
    # Toy models of superposition (20 features in 5 dimensions) trained 3,000 steps with a snapshot
    # every 30, at three sparsities: the features form one by one (Elhage et al. 2022). And the
    # circuits suite's trained planted circuit, its first fit (2,000 steps) recorded every 2 steps:
    # its gates form within the first 150. And a transformer trained to be the compiled shift_by
    # program (3,000 steps, a snapshot every 50): its previous-token head forms within a few hundred.
    specs = tuple(
        ToySpec(f"tms-s{sparsity}", "superposition",
                dict(n_features=20, n_hidden=5, n_samples=2000, sparsity=sparsity, n_steps=3000, snapshot_every=30),
                {"sparsity": sparsity})
        for sparsity in (0.7, 0.9, 0.97)
    ) + (ToySpec("mlp-trained", "planted_mlp", dict(n_inputs=12, n_tasks=2, depth=2, n_blocks=3, width=48,
                                                    trained=True, snapshot_every=2)),
          ToySpec("tf-shift_by", "rasp_transformer", dict(program="shift_by", n_samples=16, trained=True,
                                                          snapshot_every=50)))
    served = methods_for("dynamics")
    return Suite(
        name="dynamics",
        task="dynamics",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"training records of toy models of superposition, a trained planted circuit and a trained transformer "
        f"({', '.join(s.name for s in specs)}) x {len(served)} dynamics methods x 3 seeds; < 2 min",
    )


def _damage() -> Suite:
    # Four-task planted circuits (12 inputs, depth 2, three blocks of 32); a fifth of the planted
    # circuits' neurons damaged five ways. Compiled IOI-style transformers with distractor heads
    # (six layers of two heads and an MLP, 11 live components): a fifth of the live heads and MLPs,
    # in the circuit or not, removed, noised or pruned.
    base = dict(n_tasks=4, n_samples=256)
    specs = tuple(
        ToySpec(damage, "planted_mlp", base, {"fraction": 0.2},
                members=({}, functools.partial(damaged_twin, damage=damage, fraction=0.2, strength=strength)))
        for damage, strength in (("ablate", 0.5), ("scale", 0.3), ("noise", 1.0), ("rewire", 0.5), ("prune", 0.5))
    )
    specs += tuple(
        ToySpec(f"tf-{damage}", "rasp_transformer", {"program": "ioi", "distractors": True}, {"fraction": 0.2},
                members=({}, functools.partial(damaged_twin, damage=damage, fraction=0.2, strength=strength, target="any")))
        for damage, strength in (("ablate", 0.5), ("noise", 1.0), ("prune", 0.5))
    )
    served = methods_for("damage")
    return Suite(
        name="damage",
        task="damage",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"planted circuits and compiled transformers, each with a damaged copy ({', '.join(s.name for s in specs)}) "
        f"x {len(served)} damage methods x 3 seeds; < 2 min",
    )


def _connectome_damage() -> Suite:
    # 300 excitatory, depressing neurons in 3 modules with 15 hubs, 60 s of calcium imaging; the
    # outgoing synapses of a third of the hubs removed or scaled, or the synapses of 5% of all
    # neurons damaged each way.
    base = dict(n_neurons=300, n_modules=3, density=0.03, mixing=0.1, hub_fraction=0.05, hub_boost=4.0, exc_fraction=1.0,
                weight=24.0, depression=True, background_weight=2.8, duration=60.0)
    kinds = (("hubs", "ablate", 0.5, 0.3), ("hubs", "scale", 0.3, 0.3), ("any", "ablate", 0.5, 0.05),
             ("any", "noise", 1.0, 0.05), ("any", "rewire", 0.5, 0.05), ("any", "prune", 0.5, 0.05))
    specs = tuple(
        ToySpec(f"{target}-{damage}", "connectome", base, {"fraction": fraction},
                members=({}, functools.partial(damaged_twin, damage=damage, fraction=fraction, strength=strength,
                                               target=target)))
        for target, damage, strength, fraction in kinds
    )
    served = methods_for("connectome_damage")
    return Suite(
        name="connectome-damage",
        task="connectome_damage",
        toys=specs,
        methods=served,
        seeds=(0, 1, 2),
        description=f"synthetic connectomes and a copy with damaged synapses ({', '.join(s.name for s in specs)}), both "
        f"recorded under one stimulus x {len(served)} damage methods x 3 seeds",
    )


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (_quick(), _standard(), _features_sweep(), _tms(), _circuits(), _lesions(), _transformer_circuits(), _transformer_lesions(), _connectome("connectivity"),
              _connectome("modules"), _connectome("hubs"), _comparison(), _layers(), _damage(), _connectome_damage(), _dynamics())
}

__all__ = ["METHODS", "SUITES", "MethodSpec", "Suite", "ToySpec", "damaged_twin", "frame_twin", "methods_for",
           "weights_twin"]
