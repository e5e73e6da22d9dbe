"""Benchmark suites for the features task: toys x methods x seeds, scored and tabulated."""

from __future__ import annotations

import dataclasses
import difflib
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np

import methods
import toys
from evaluators.features import score_features
from groundtruth import Config, Dictionary
from groundtruth._progress import Progress

# A features method as a benchmark runs it: (activations, seed) -> Dictionary. It receives the
# activations only, never the toy or its truth.
FeatureMethod = Callable[[np.ndarray, int], Dictionary]


def _sae(kind: str, expansion: int = 4, **kwargs) -> FeatureMethod:
    """An SAE with ``expansion * d_model`` latents (sized from the activations, never the truth)."""
    def run(x: np.ndarray, seed: int) -> Dictionary:
        return methods.sae(x, expansion * x.shape[1], kind=kind, seed=seed, progress=False, **kwargs)

    return run


FEATURE_METHODS: dict[str, FeatureMethod] = {
    "pca": lambda x, seed: methods.pca(x, n_components=x.shape[1]),
    "ica": lambda x, seed: methods.ica(x, n_components=x.shape[1], seed=seed),
    "nmf": lambda x, seed: methods.nmf(x, n_components=2 * x.shape[1], seed=seed, max_iter=200),
    "sae-relu": _sae("relu", n_steps=1500, batch_size=512),
    "sae-topk": _sae("topk", k=4, n_steps=1500, batch_size=512),
    "sae-batchtopk": _sae("batchtopk", k=4, n_steps=1500, batch_size=512),
    "sae-jumprelu": _sae("jumprelu", n_steps=1500, batch_size=512),
}


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named, versioned grid of toys x methods x seeds."""

    name: str
    version: int
    toys: tuple[tuple[str, Callable[[int], Config]], ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    description: str = ""


def _quick_toys() -> tuple[tuple[str, Callable[[int], Config]], ...]:
    def ratio2(seed: int) -> Config:
        return toys.SparseFeaturesConfig(
            n_features=128, d_model=64, n_samples=10_000, seed=seed, firing="exponential", decay=0.99,
            mean_active=4.0, magnitude="uniform", magnitude_mean=0.5,
        )

    def hierarchy(seed: int) -> Config:
        return toys.SparseFeaturesConfig(
            n_features=96, d_model=32, n_samples=10_000, seed=seed, firing="zipf", zipf_exponent=0.5,
            p_max=0.3, p_min=0.01, mean_active=None, hierarchy_roots=8, hierarchy_branching=2, hierarchy_depth=2,
            mutually_exclusive=True, magnitude="folded_normal", noise_std=0.01,
        )

    return (("sparse-r2", ratio2), ("hierarchy-r3", hierarchy))


SUITES: dict[str, Suite] = {
    "quick": Suite(
        name="quick",
        version=1,
        toys=_quick_toys(),
        methods=tuple(FEATURE_METHODS),
        seeds=(0, 1, 2),
        description="two small sparse-feature toys (superposition ratio 2 and 3, one hierarchical) x 7 methods x 3 seeds",
    ),
}


@dataclasses.dataclass(frozen=True)
class CellResult:
    """One benchmark cell: a method run on a toy with a seed, and its scores."""

    suite: str
    suite_version: int
    toy: str
    toy_id: str
    method: str
    seed: int
    status: str  # "ok" or "failed"
    scores: dict
    seconds: float
    error: str = ""


def nearest(name: str, options: Sequence[str], what: str) -> ValueError:
    close = difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.3)
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    return ValueError(f"unknown {what} {name!r}{hint} Choose from: {', '.join(sorted(options))}")


def run_suite(
    suite: str | Suite,
    *,
    method_names: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    extra_methods: dict[str, FeatureMethod] | None = None,
    progress: bool | None = None,
) -> list[CellResult]:
    """Run every cell of a suite in this process; a method that raises is recorded as failed."""
    if isinstance(suite, str):
        if suite not in SUITES:
            raise nearest(suite, SUITES, "suite")
        suite = SUITES[suite]
    available = {**FEATURE_METHODS, **(extra_methods or {})}
    names = list(method_names) if method_names else list(suite.methods) + list(extra_methods or {})
    for name in names:
        if name not in available:
            raise nearest(name, available, "method")
    seeds = tuple(seeds) if seeds is not None else suite.seeds
    results = []
    total = len(suite.toys) * len(seeds) * len(names)
    with Progress(total, f"bench {suite.name}", enabled=progress) as bar:
        for toy_name, make_config in suite.toys:
            for seed in seeds:
                toy = toys.from_config(make_config(seed))
                for name in names:
                    bar.note(f"{toy_name} seed {seed} {name}")
                    results.append(_run_cell(suite, toy_name, toy, name, available[name], seed))
                    bar.update()
    return results


def _run_cell(suite: Suite, toy_name: str, toy, name: str, method: FeatureMethod, seed: int) -> CellResult:
    start = time.perf_counter()
    try:
        prediction = method(toy.activations.copy(), seed)
        scores = score_features(prediction, toy.truth, activations=toy.activations).as_dict()
        status, error = "ok", ""
    except Exception as exc:  # a failing method is a result, not a crash of the suite
        scores, status = {}, "failed"
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return CellResult(
        suite=suite.name, suite_version=suite.version, toy=toy_name, toy_id=toy.id, method=name, seed=seed,
        status=status, scores=scores, seconds=time.perf_counter() - start, error=error,
    )


LEADERBOARD_METRICS = ("mmcs", "matched_cosine", "recovered", "spurious", "fvu", "l0")


def leaderboard(results: Sequence[CellResult], metrics: Sequence[str] = LEADERBOARD_METRICS) -> str:
    """A plain-text table: per toy and method, the mean (and spread) of each metric over seeds."""
    rows = []
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for r in results:
        groups.setdefault((r.toy, r.method), []).append(r)
    header = ["toy", "method", "seeds", *metrics, "seconds"]
    for (toy_name, method), cells in groups.items():
        ok = [c for c in cells if c.status == "ok"]
        row = [toy_name, method, f"{len(ok)}/{len(cells)}"]
        for m in metrics:
            values = [c.scores[m] for c in ok if c.scores.get(m) is not None]
            row.append(f"{np.mean(values):.3f}±{np.std(values):.3f}" if values else "-")
        row.append(f"{np.mean([c.seconds for c in cells]):.1f}")
        rows.append(row)
    rows.sort(key=lambda r: (r[0], -float(r[3].split("±")[0]) if r[3] != "-" else 1))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        lines.append(f"FAILED {r.toy} {r.method} seed {r.seed}: {r.error}")
    return "\n".join(lines)
