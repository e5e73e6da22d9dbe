"""Every entry of every registry, on a tiny case: each built-in method (``METHODS``) on one tiny toy
of its task (``TASKS``), and every method of every built-in suite (``SUITES``).

The lists come from the registries at run time, so a method, task or suite added there is tested
here without an edit. The contract: the method returns its task's prediction type, scores are
finite, the same seed gives the same output, the artifact it receives holds no truth, and input
with a NaN is rejected with a ValueError.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from planted import evaluators, toys
from planted.evaluators.tasks import TASKS, private_copy
from planted.groundtruth import CircuitTruth, ConnectomeTruth, DamageTruth, FeatureTruth

# One tiny toy per task; a task added without one fails test_every_task_has_a_tiny_toy.
TINY = {
    "features": lambda: toys.sparse_features(20, 8, 400, mean_active=3, noise_std=0.01, seed=0),
    "circuits": lambda: toys.planted_mlp(8, 2, seed=0, depth=2, n_blocks=3, width=32, n_samples=32),
    "lesions": lambda: toys.planted_mlp(8, 2, seed=0, depth=2, n_blocks=3, width=32, n_samples=32, redundancy=True),
    "transformer_circuits": lambda: toys.rasp_transformer("induction", 16, seed=0),
    "transformer_lesions": lambda: toys.rasp_transformer("induction", 16, seed=0, backup=True),
    "connectivity": lambda: _connectome(),
    "modules": lambda: _connectome(),
    "hubs": lambda: _connectome(),
    "damage": lambda: _twins(),
    "connectome_damage": lambda: _connectome_twins(),
    "dynamics": lambda: toys.superposition(6, 2, n_samples=64, sparsity=0.8, n_steps=200, snapshot_every=20, seed=0),
    "layers": lambda: (toys.planted_mlp(8, 2, seed=0, depth=2, n_blocks=3, width=32, n_samples=32, weights_seed=0),
                       toys.planted_mlp(8, 2, seed=0, depth=2, n_blocks=3, width=32, n_samples=32, weights_seed=1)),
    "comparison": lambda: tuple(toys.feature_view(16, 8, 8, offset=o, n_samples=200, mean_active=3, seed=0, view=v)
                                for v, o in enumerate((0, 0, 4, 8))),
}
TRUTHS = (FeatureTruth, CircuitTruth, ConnectomeTruth, DamageTruth)


@functools.cache
def _connectome():
    return toys.connectome(80, seed=0, duration=20.0, n_modules=2, hub_fraction=0.1, hub_boost=4.0,
                           exc_fraction=1.0, weight=24.0, depression=True, background_weight=2.8, density=0.05)


@functools.cache
def _twins():
    normal = toys.PlantedMLPConfig(n_inputs=8, n_tasks=3, depth=2, n_blocks=3, width=32, n_samples=32, seed=0)
    return toys.from_config(normal), toys.damaged(normal, damage="noise", fraction=0.3, strength=1.0, seed=0)


@functools.cache
def _connectome_twins():
    normal = toys.ConnectomeConfig(n_neurons=40, n_modules=2, density=0.1, hub_fraction=0.1, weight=12.0, duration=2.0,
                                   seed=0)
    return toys.from_config(normal), toys.damaged(normal, damage="ablate", fraction=0.5, target="hubs", seed=0)


@functools.cache
def _toy(task: str):
    return TINY[task]()


def _fast(params: dict) -> dict:
    """A tiny case's hyperparameters: training methods run a few dozen steps."""
    return {**params, **({"n_steps": 48, "batch_size": 64} if "n_steps" in params else {})}


@functools.cache
def _run(name: str, params_json: str, task: str, seed: int = 0):
    spec = evaluators.METHODS[name]
    toy = _toy(task)
    return spec.resolve()(TASKS[task].artifact(toy), seed=seed, **_fast(dict(spec.params)))


def _arrays(value):
    """Every array inside a prediction, in a fixed order."""
    if isinstance(value, np.ndarray):
        return [value]
    if dataclasses.is_dataclass(value):
        return [a for f in dataclasses.fields(value) for a in _arrays(getattr(value, f.name))]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    if hasattr(value, "toarray"):
        return [value.toarray()]
    return []


def _contains_truth(value, depth: int = 0) -> bool:
    if isinstance(value, TRUTHS):
        return True
    if depth > 6 or isinstance(value, (np.ndarray, str, bytes, int, float)):
        return False
    if isinstance(value, dict):
        return any(_contains_truth(v, depth + 1) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_contains_truth(v, depth + 1) for v in value)
    if dataclasses.is_dataclass(value):
        return any(_contains_truth(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    return False


def _with_nan(value):
    """A copy of an artifact with one NaN in its first floating-point input array."""
    done = []

    def poison(v):
        if isinstance(v, np.ndarray) and not done and np.issubdtype(v.dtype, np.floating) and v.size:
            out = v.copy()
            out.flat[0] = np.nan
            done.append(True)
            return out
        if isinstance(v, dict):
            return {k: poison(x) for k, x in v.items()}
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return tuple(poison(x) for x in v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            clone = private_copy(v)
            for f in dataclasses.fields(v):
                if f.name in ("tasks", "traces", "clean"):  # inputs before weights
                    object.__setattr__(clone, f.name, poison(getattr(v, f.name)))
            for f in dataclasses.fields(v):
                object.__setattr__(clone, f.name, poison(getattr(clone, f.name)))
            return clone
        return v

    poisoned = poison(value)
    assert done, "no floating-point array to poison"
    return poisoned


ENTRIES = [(name, spec.task) for name, spec in evaluators.METHODS.items()]


def test_every_task_has_a_tiny_toy_and_every_method_a_task():
    assert sorted(TINY) == sorted(TASKS)
    assert all(task in TASKS for _, task in ENTRIES)


@pytest.mark.parametrize("name, task", ENTRIES, ids=[e[0] for e in ENTRIES])
def test_every_method_keeps_the_contract(name, task):
    spec = evaluators.METHODS[name]
    toy = _toy(task)
    artifact = TASKS[task].artifact(toy)
    assert not _contains_truth(artifact)
    prediction = _run(name, spec.params_json, task)
    TASKS[task].check_prediction(prediction, name)
    scores = TASKS[task].score(prediction, toy)
    assert scores and all(v is None or np.isfinite(v) for v in scores.values()), scores
    again = spec.resolve()(TASKS[task].artifact(toy), seed=0, **_fast(dict(spec.params)))
    for a, b in zip(_arrays(prediction), _arrays(again), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        spec.resolve()(_with_nan(artifact), seed=0, **_fast(dict(spec.params)))


SUITE_METHODS = sorted({(s.name, m.name) for s in evaluators.SUITES.values() for m in s.methods})


@pytest.mark.parametrize("suite, method", SUITE_METHODS, ids=[f"{s}-{m}" for s, m in SUITE_METHODS])
def test_every_suite_method_returns_its_tasks_prediction(suite, method):
    """The circuits suite once ran 13 connectome methods that could only fail."""
    s = evaluators.SUITES[suite]
    spec = next(m for m in s.methods if m.name == method)
    assert spec.task == s.task
    toy = _toy(s.task)
    prediction = spec.resolve()(TASKS[s.task].artifact(toy), seed=0, **_fast(dict(spec.params)))
    assert isinstance(prediction, TASKS[s.task].prediction_type)


def test_a_suite_refuses_a_method_of_another_task():
    with pytest.raises(ValueError, match="serve other tasks: pca"):
        dataclasses.replace(evaluators.SUITES["circuits"], methods=(evaluators.METHODS["pca"],))
    with pytest.raises(ValueError, match="serves the features task"):
        evaluators.methods_for("circuits", "pca")


def _vandal(x, *, seed):
    x[0, 0] = 1e6  # writes into its input
    return evaluators.METHODS["pca"].resolve()(x, seed=seed)


def test_a_method_writing_into_its_input_fails_and_changes_nothing_for_the_next():
    quick = evaluators.SUITES["quick"]
    suite = dataclasses.replace(quick, name="vandal", toys=quick.toys[:1], seeds=(0,))
    pca = evaluators.METHODS["pca"]
    alone = evaluators.run(suite.with_methods([pca]), store=None, progress=False)
    both = evaluators.run(suite.with_methods([evaluators.MethodSpec("vandal", _vandal), pca]), store=None,
                          progress=False)
    vandal, after = both
    assert vandal.status == "failed" and "read-only" in vandal.error
    assert after.status == "ok" and after.metrics == alone[0].metrics


def _reachable(value, seen=None):
    """Every array reachable from ``value`` through fields, attributes, dicts and tuples."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, (str, bytes, int, float, type)) or value is None or callable(value) and not dataclasses.is_dataclass(value):
        return []
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _reachable(v, seen)]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _reachable(v, seen)]
    if hasattr(value, "__dict__"):
        return [a for v in vars(value).values() for a in _reachable(v, seen)]
    return []


def _smash(artifact) -> int:
    """What a hostile method can do to what it was given: turn every reachable array writeable
    again and fill it with garbage, then replace every field. Returns the arrays it wrote."""
    wrote = 0
    for a in _reachable(artifact):
        if a.flags.owndata or a.base is None:  # an array that owns its memory can be made writeable again
            a.flags.writeable = True
            a[...] = 7
            wrote += 1
    for obj in [artifact] + [v for v in getattr(artifact, "__dict__", {}).values() if dataclasses.is_dataclass(v)]:
        for f in dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else ():
            object.__setattr__(obj, f.name, None)
    return wrote


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_method_reaching_every_array_of_its_artifact_changes_nothing_for_the_next(task):
    """A private copy all the way down: a method that makes its arrays writeable again, fills every
    array reachable from its artifact (private attributes included) and replaces its fields leaves
    the toy, its truth and the next method's artifact exactly as they were."""
    toy = _toy(task)
    before_artifact = [a.copy() for a in _reachable(TASKS[task].artifact(toy))]
    truths = tuple(t.truth for t in toy) if isinstance(toy, tuple) else toy.truth
    before_truth = [a.copy() for a in _reachable(truths)]
    assert _smash(TASKS[task].artifact(toy)) > 0
    after_artifact = _reachable(TASKS[task].artifact(toy))
    assert len(after_artifact) == len(before_artifact)
    assert all(np.array_equal(a, b) for a, b in zip(after_artifact, before_artifact))
    assert all(np.array_equal(a, b) for a, b in zip(_reachable(truths), before_truth, strict=True))


def _as_arrays(prediction) -> dict:
    """A prediction written as a predictions file's arrays (the formats of ``_exchange``)."""
    from planted.groundtruth import (CircuitPrediction, DamagePrediction, Dictionary, EdgeScores, Formation,
                                     NodeScores, Partition, Similarities)

    if isinstance(prediction, Dictionary):
        out = {"directions": prediction.directions}
        if prediction.codes is not None:
            out["codes"] = prediction.codes.toarray() if hasattr(prediction.codes, "toarray") else prediction.codes
        if prediction.decoder_bias is not None:
            out["decoder_bias"] = prediction.decoder_bias
        return out
    if isinstance(prediction, CircuitPrediction):
        out = {}
        for t, s in enumerate(prediction.scores):
            out.update({f"{kind}.{t}": v for kind, v in (("nodes", s.nodes), ("edges", s.edges)) if v is not None})
        return out
    if isinstance(prediction, EdgeScores):
        return {"scores": prediction.scores}
    if isinstance(prediction, Partition):
        return {"labels": prediction.labels}
    if isinstance(prediction, NodeScores):
        return {"values": prediction.values}
    if isinstance(prediction, Similarities):
        return {"similarities": prediction.values}
    if isinstance(prediction, Formation):
        return {k: v for k, v in (("formation_steps", prediction.steps), ("events", prediction.events)) if v is not None}
    if isinstance(prediction, DamagePrediction):
        return {"damage": prediction.nodes, **({} if prediction.deficits is None else {"deficits": prediction.deficits})}
    raise AssertionError(f"no file format for {type(prediction).__name__}")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_goes_to_files_and_its_predictions_come_back(task):
    """Each task's artifact is plain numeric arrays, and a built-in method's prediction written in
    the task's format reads back to the same scores (``Task.files`` / ``Task.read``)."""
    spec = TASKS[task]
    assert spec.files is not None and spec.read is not None, f"task {task} cannot be exported"
    toy = _toy(task)
    arrays, description = spec.files(toy)
    assert arrays and all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in arrays.values())
    assert "predictions" in description and spec.read({}, toy) is None
    name = next(n for n, m in evaluators.METHODS.items() if m.task == task)
    prediction = _run(name, evaluators.METHODS[name].params_json, task)
    again = spec.read(_as_arrays(prediction), toy)
    assert type(again) is type(prediction)
    assert spec.score(again, toy) == spec.score(prediction, toy)


def test_every_metric_of_every_task_is_explained():
    """The report's glossary and chance columns come from ``_metrics.METRICS``: every metric a
    task shows has a direction and a meaning there."""
    from planted.evaluators._metrics import METRICS

    shown = {m for task in TASKS.values() for m in task.metrics} | {t.headline for t in TASKS.values()}
    missing = sorted(shown - set(METRICS))
    assert missing == [], f"metrics without an entry in evaluators/_metrics.py: {missing}"
    assert all(len(METRICS[m].meaning) > 20 for m in shown)
