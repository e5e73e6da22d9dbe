"""The runner and its store: resumable after kill -9, safe with two writers, failures recorded."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from planted import evaluators
from planted.evaluators import MethodSpec, Store, run
from planted.evaluators._methods import pca_method
from planted.evaluators.suites import SUITES

FAST = ["pca", "ica"]


def _assert_same_metrics(a, b):
    assert set(a) == set(b)
    for name, value in a.items():
        if value is None:
            assert b[name] is None, name
        else:
            assert value == pytest.approx(b[name], rel=1e-5, abs=1e-6), name


def _count(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*), COUNT(DISTINCT toy_id || method || seed) FROM cells").fetchone()


@pytest.fixture
def helpers(tmp_path, monkeypatch):
    """A module of user methods importable by worker and CLI subprocesses."""
    (tmp_path / "user_methods.py").write_text(textwrap.dedent('''
        import time
        from planted.evaluators._methods import pca_method

        def slow_pca(x, *, seed):
            time.sleep(0.4)
            return pca_method(x, seed=seed)

        def broken(x, *, seed):
            raise RuntimeError("boom")

        def wrong_type(x, *, seed):
            return x
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return tmp_path


def test_rerun_skips_finished_cells(tmp_path):
    store = tmp_path / "s.sqlite"
    first = run("quick", methods=FAST, seeds=[0], store=store)
    assert len(first) == 6 and all(r.status == "ok" for r in first)
    t = time.perf_counter()
    second = run("quick", methods=FAST, seeds=[0], store=store)
    assert time.perf_counter() - t < 5
    assert [r.metrics for r in second] == [r.metrics for r in first]
    assert _count(store) == (6, 6)
    assert {r.suite_version for r in first} == {SUITES["quick"].version}


def _written(path) -> int:
    """Cells written so far: 0 while the store's file exists but its tables do not yet."""
    with sqlite3.connect(path) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cells'").fetchone() is None:
            return 0
    return _count(path)[0]


@pytest.mark.slow
def test_resume_after_kill_9(helpers, tmp_path):
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "planted", "bench", "--suite", "quick", "--method", "user_methods:slow_pca",
           "--seeds", "4", "--store", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if store.exists() and _written(store) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _count(store)[0]
    assert 2 <= partial < 12, "the run should have been killed mid-suite"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _count(store) == (12, 12)  # every cell present exactly once


@pytest.mark.slow
def test_two_concurrent_writers(helpers, tmp_path):
    store = tmp_path / "s.sqlite"
    base = [sys.executable, "-m", "planted", "bench", "--suite", "quick", "--seeds", "3", "--store", str(store)]
    a = subprocess.Popen(base + ["--method", "user_methods:slow_pca", "--method", "pca"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    b = subprocess.Popen(base + ["--method", "user_methods:slow_pca", "--method", "ica"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert a.wait(timeout=300) == 0, a.stderr.read()
    assert b.wait(timeout=300) == 0, b.stderr.read()
    # 3 toys x 3 seeds x {slow_pca (shared), pca, ica}
    assert _count(store) == (27, 27)


def test_failing_and_misbehaving_methods_are_recorded_and_the_suite_goes_on(helpers, tmp_path):
    results = run("quick", methods=["pca", "user_methods:broken", "user_methods:wrong_type"], seeds=[0],
                  store=tmp_path / "s.sqlite")
    status = {(r.toy, r.method): r for r in results}
    assert status[("sparse-r2", "pca")].status == "ok"
    assert status[("sparse-r2", "user_methods:broken")].status == "failed"
    assert "RuntimeError: boom" in status[("sparse-r2", "user_methods:broken")].error
    assert "needs a planted.groundtruth.Dictionary" in status[("sparse-r2", "user_methods:wrong_type")].error
    with Store(tmp_path / "s.sqlite") as s:
        assert sum(r.status == "failed" for r in s.results()) == 6
    # Failed cells are finished: a rerun skips them unless asked to retry.
    again = run("quick", methods=["user_methods:broken"], seeds=[0], store=tmp_path / "s.sqlite", retry_failed=True)
    assert all(r.status == "failed" for r in again)


def test_python_api_with_user_methods_and_no_store():
    def my_method(x, *, seed):
        return pca_method(x, seed=seed, components=0.5)

    results = run("quick", methods={"half-pca": my_method}, seeds=[1], store=None)
    assert {r.method for r in results} == {"half-pca"} and all(r.status == "ok" for r in results)
    # The method sized its dictionary from the activations alone: half of d_model.
    assert {r.toy: r.metrics["n_latents"] for r in results} == {"sparse-r2": 32, "hierarchy-r3": 16, "tms-20-5": 2}


def test_workers_give_the_same_numbers_as_in_process(tmp_path):
    one = run("quick", methods=FAST, seeds=[0], store=None)
    two = run("quick", methods=FAST, seeds=[0], store=tmp_path / "w.sqlite", workers=2)
    for a, b in zip(one, two):
        assert (a.toy, a.method, a.seed) == (b.toy, b.method, b.seed)
        _assert_same_metrics(a.metrics, b.metrics)
    with pytest.raises(ValueError, match="lambda"):
        run("quick", methods={"l": lambda x, seed: None}, store=None, workers=2)


def test_method_specs_and_versions():
    quick = SUITES["quick"]
    assert quick.version == SUITES["quick"].version and len(quick.version) == 12
    changed = quick.with_methods([MethodSpec("pca", pca_method, {"components": 0.5})])
    assert changed.version != quick.version
    assert quick.with_seeds([0, 1]).version != quick.version
    with pytest.raises(ValueError, match="unknown method 'sae-rel'; did you mean sae-relu"):
        run("quick", methods=["sae-rel"], store=None)
    with pytest.raises(ValueError, match="cannot import 'no_such_module'"):
        run("quick", methods=["no_such_module:f"], store=None)
    with pytest.raises(ValueError, match="unknown suite 'quik'; did you mean quick"):
        run("quik", store=None)
    with pytest.raises(ValueError, match=r"workers must be in \[1, inf\), got 0"):
        run("quick", workers=0, store=None)
    assert evaluators.TASKS["features"].headline == "mmcs"
    assert len(SUITES["features-sweep"].toys) == 24


@pytest.mark.slow
def test_ray_backend_gives_the_same_results_as_in_process(tmp_path):
    pytest.importorskip("ray")
    local = run("quick", methods=FAST, seeds=[0], store=None)
    remote = run("quick", methods=FAST, seeds=[0], store=tmp_path / "ray.sqlite", backend="ray", workers=2)
    assert [(r.toy, r.method, r.seed, r.status) for r in remote] == [(r.toy, r.method, r.seed, r.status) for r in local]
    for a, b in zip(local, remote):
        _assert_same_metrics(a.metrics, b.metrics)
    assert _count(tmp_path / "ray.sqlite") == (6, 6)
    with pytest.raises(ValueError, match="unknown backend 'rey'; did you mean ray"):
        run("quick", backend="rey", store=None)


def test_a_registered_task_reaches_worker_processes(helpers, monkeypatch):
    """A user's task (module-level functions) travels with its cells to spawned workers, though
    the workers' own TASKS never heard of it."""
    (helpers / "user_tasks.py").write_text(textwrap.dedent('''
        import numpy as np
        from planted.groundtruth import NodeScores

        def strongest(recording, *, seed):
            return NodeScores(np.abs(recording.traces).mean(axis=0))

        def score(prediction, toy):
            return {"top_is_hub": float(toy.truth.hubs[toy.truth.observed][int(np.argmax(prediction.values))])}
    '''))
    import user_tasks

    from planted.evaluators import TASKS, Suite, Task, ToySpec
    from planted.groundtruth import ConnectomeTruth, NodeScores

    task = Task(name="loudest", description="the loudest neuron is a hub", truth_type=ConnectomeTruth,
                prediction_type=NodeScores, score=user_tasks.score, headline="top_is_hub", metrics=("top_is_hub",))
    monkeypatch.setitem(TASKS, "loudest", task)
    toy = ToySpec("tiny", "connectome", {"n_neurons": 60, "duration": 5.0, "hub_fraction": 0.1})
    suite = Suite(name="loudest", task="loudest", toys=(toy,), methods=(MethodSpec("loud", "user_tasks:strongest"),),
                  seeds=(0, 1))
    here = run(suite, store=None, progress=False)
    there = run(suite, store=None, workers=2, progress=False)
    assert all(r.status == "ok" for r in there), [r.error for r in there]
    assert [r.metrics for r in there] == [r.metrics for r in here]


def test_editing_a_method_makes_its_stored_cells_stale(tmp_path, monkeypatch):
    """Cells are reused only when computed by the method's current code: editing the method's module
    reruns them (the old numbers never come back), ``force`` reruns everything, and a failure keeps
    its whole traceback."""
    import importlib

    module = tmp_path / "editable_method.py"
    body = "from planted.evaluators._methods import pca_method\n\ndef m(x, *, seed):\n    return pca_method(x, seed=seed, components={c})\n"
    module.write_text(body.format(c=0.5))
    monkeypatch.syspath_prepend(str(tmp_path))
    store = tmp_path / "s.sqlite"
    first = run("quick", methods=["editable_method:m"], seeds=[0], store=store)
    assert {r.metrics["n_latents"] for r in first if r.toy == "sparse-r2"} == {32}
    again = run("quick", methods=["editable_method:m"], seeds=[0], store=store)
    assert [r.seconds for r in again] == [r.seconds for r in first]  # reused: the same rows
    module.write_text(body.format(c=0.25))
    sys.modules.pop("editable_method", None)
    importlib.invalidate_caches()
    edited = run("quick", methods=["editable_method:m"], seeds=[0], store=store)
    assert {r.metrics["n_latents"] for r in edited if r.toy == "sparse-r2"} == {16}  # not the stale 32
    with Store(store) as s:
        assert {r.metrics["n_latents"] for r in s.results() if r.toy == "sparse-r2"} == {16}
        assert len({r.method_fingerprint for r in s.results()}) == 1
    forced = run("quick", methods=["pca"], seeds=[0], store=store, force=True)
    redone = run("quick", methods=["pca"], seeds=[0], store=store, force=True)
    assert [r.seconds for r in forced] != [r.seconds for r in redone]
    module.write_text("def m(x, *, seed):\n    return helper(x)\n\ndef helper(x):\n    raise RuntimeError('deep inside')\n")
    sys.modules.pop("editable_method", None)
    importlib.invalidate_caches()
    failed = run("quick", methods=["editable_method:m"], seeds=[0], store=store)
    assert all(r.status == "failed" and r.error == "RuntimeError: deep inside" for r in failed)
    with Store(store) as s:
        stored = [r for r in s.results() if r.method == "editable_method:m"]
    assert all("in helper" in r.traceback and "Traceback" in r.traceback for r in stored)


def test_a_store_written_before_fingerprints_opens_and_its_cells_are_rerun(tmp_path):
    store = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as db:
        db.execute(
            "CREATE TABLE cells (suite TEXT NOT NULL, suite_version TEXT NOT NULL, task TEXT NOT NULL, toy TEXT NOT NULL, "
            "toy_id TEXT NOT NULL, axes TEXT NOT NULL, method TEXT NOT NULL, params TEXT NOT NULL, seed INTEGER NOT NULL, "
            "status TEXT NOT NULL, metrics TEXT NOT NULL, seconds REAL NOT NULL, finished_at REAL NOT NULL, "
            "package_version TEXT NOT NULL, error TEXT NOT NULL, config TEXT NOT NULL, "
            "PRIMARY KEY (suite, suite_version, task, toy_id, method, params, seed))")
    fresh = run("quick", methods=["pca"], seeds=[0], store=None)
    with sqlite3.connect(store) as db:
        for r in fresh:
            db.execute("INSERT INTO cells VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, 'ok', '{\"mmcs\": 0.123}', 1.0, 0, 'old', '', ?)",
                       (r.suite, r.suite_version, r.task, r.toy, r.toy_id, r.method, r.params, r.seed, r.config))
    with Store(store) as s:
        old = s.results()
    assert len(old) == 3 and {r.method_fingerprint for r in old} == {""} and old[0].metrics == {"mmcs": 0.123}
    rerun = run("quick", methods=["pca"], seeds=[0], store=store)
    assert [r.metrics["mmcs"] for r in rerun] == [r.metrics["mmcs"] for r in fresh]  # not the stored 0.123


def test_failures_point_to_retry_and_debug_shows_the_traceback(helpers, tmp_path):
    store = str(tmp_path / "s.sqlite")
    base = [sys.executable, "-m", "planted", "bench", "--suite", "quick", "--method", "user_methods:broken", "--seeds", "1",
            "--store", store]
    first = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1 and "--retry-failed" in first.stderr and "--debug" in first.stderr
    debug = subprocess.run(base + ["--debug"], capture_output=True, text=True, timeout=300)
    assert "Traceback (most recent call last)" in debug.stderr and "in broken" in debug.stderr


def _from_a_terminal(args: list[str]) -> list[str]:
    """``python -m planted *args`` started as from a terminal, where Ctrl-C is not ignored. A test
    session started in the background (``cmd &``) ignores SIGINT, and its commands inherit that; the
    command line keeps an ignored SIGINT ignored, as a shell job does, so it is reset first."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return [sys.executable, "-m", "planted", *args]
    start = ("import runpy, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "runpy.run_module('planted', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", start, *args]


@pytest.mark.slow
@pytest.mark.parametrize("sig, workers", [(signal.SIGINT, "1"), (signal.SIGTERM, "1"), (signal.SIGINT, "2")])
def test_ctrl_c_and_sigterm_stop_a_run_with_one_line_saying_what_was_saved(helpers, tmp_path, sig, workers):
    store = tmp_path / "s.sqlite"
    cmd = _from_a_terminal(["bench", "--suite", "quick", "--method", "user_methods:slow_pca",
                            "--seeds", "4", "--workers", workers, "--store", str(store)])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (store.exists() and _written(store) >= 2):
        time.sleep(0.05)
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    saved = int(re.search(r"interrupted; (\d+) cell\(s\) of this run saved in", last).group(1))
    assert saved >= 2 and "run the same command again to resume" in last
    assert _count(store)[0] == saved


def test_method_seeds_apart_from_toy_seeds_separate_data_and_method_variance(tmp_path):
    from planted.evaluators import variance

    store = tmp_path / "s.sqlite"
    results = run("quick", methods=["ica"], seeds=[0, 1], method_seeds=[0, 1, 2], store=store)
    assert len(results) == 3 * 2 * 3
    sparse = [r for r in results if r.toy == "sparse-r2"]
    assert {(r.seed, r.key.method_seed) for r in sparse} == {(s, m) for s in (0, 1) for m in (0, 1, 2)}
    assert len({r.toy_id for r in sparse}) == 2  # the toy follows its seed only
    by_seed = {}
    for r in sparse:
        by_seed.setdefault(r.seed, set()).add(round(r.metrics["mmcs"], 9))
    assert all(len(v) > 1 for v in by_seed.values())  # ICA's own randomness shows within a toy
    [v] = [v for v in variance(results, "mmcs") if v.toy == "sparse-r2"]
    assert v.toy_seeds == 2 and v.method_seeds == 3 and v.data >= 0 and v.method_sd > 0
    again = run("quick", methods=["ica"], seeds=[0, 1], method_seeds=[0, 1, 2], store=store)
    assert [r.seconds for r in again] == [r.seconds for r in results]  # every (toy seed, method seed) cell reused
    with Store(store) as s:
        assert {(r.seed, r.key.method_seed) for r in s.results() if r.toy == "sparse-r2"} == {(s_, m) for s_ in (0, 1) for m in (0, 1, 2)}


def test_a_store_from_before_method_seeds_is_migrated_in_place(tmp_path):
    """The method seed joins the key: an older store's rows keep their values, their method seed
    is their toy seed, and a run finds them (no cell runs twice)."""
    store = tmp_path / "old.sqlite"
    fresh = run("quick", methods=["pca"], seeds=[0], store=store)
    with sqlite3.connect(store) as db:  # take the store back to the layout before method seeds
        for table in ("cells", "predictions"):
            cols = [row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[1] != "method_seed"]
            schema = db.execute(f"SELECT sql FROM sqlite_master WHERE name = '{table}'").fetchone()[0]
            old = schema.replace(",\n    method_seed INTEGER NOT NULL", "").replace(", seed, method_seed)", ", seed)")
            db.execute(f"ALTER TABLE {table} RENAME TO t_old")
            db.execute(old)
            db.execute(f"INSERT INTO {table} SELECT {', '.join(cols)} FROM t_old")
            db.execute("DROP TABLE t_old")
        assert "method_seed" not in [row[1] for row in db.execute("PRAGMA table_info(cells)")]
    with Store(store) as s:
        rows = s.results()
        assert [r.key.method_seed for r in rows] == [r.seed for r in rows] and len(rows) == 3
        assert s.directions(rows[0].key) is not None
    again = run("quick", methods=["pca"], seeds=[0], store=store)
    assert [r.seconds for r in again] == [r.seconds for r in fresh]


def test_a_stop_request_ends_the_run_at_the_next_cell_even_if_the_interrupt_was_swallowed(tmp_path):
    from planted.evaluators import runner

    calls = []

    def swallowed(x, *, seed):  # a signal whose KeyboardInterrupt was dropped in a __del__: its stop request remains
        calls.append(seed)
        runner._request_stop()
        return pca_method(x, seed=seed)

    store = tmp_path / "s.sqlite"
    with pytest.warns(RuntimeWarning, match="runs in the process that holds the truth"):
        with pytest.raises(runner.Interrupted, match=r"interrupted; 1 cell\(s\) of this run saved in"):
            run("quick", methods={"swallowed": swallowed}, seeds=[0, 1], store=store)
    assert len(calls) == 1 and _count(store)[0] == 1
    assert len(run("quick", methods=["pca"], seeds=[0], store=None)) == 3  # the next run is not stopped


def test_the_command_line_drops_only_a_swallowed_interrupt_from_the_unraisable_report():
    import types

    from planted.evaluators.cli import _unraisable

    seen = []
    hook = _unraisable(seen.append)
    hook(types.SimpleNamespace(exc_value=KeyboardInterrupt(), exc_type=KeyboardInterrupt))
    other = types.SimpleNamespace(exc_value=RuntimeError("in __del__"), exc_type=RuntimeError)
    hook(other)
    assert seen == [other]
