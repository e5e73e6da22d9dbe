"""Methods cannot cheat and cannot break each other: a user's method runs in a process of its own
that sees only the artifact, cannot open the store or the secret, and the driver notices rows it
did not write; the private split keeps public configs from rebuilding the toys; workers die with
the driver."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from planted.evaluators import Store, TamperingDetected, run

CHEATS = '''
import gc, inspect, os, sqlite3, sys
import numpy as np
from planted.evaluators._methods import pca_method
from planted.evaluators.suites import Suite, ToySpec
from planted.evaluators._methods import methods_for
from planted import toys
from planted.groundtruth import Dictionary, FeatureTruth

SUITE = Suite(name="cheat-test", task="features", seeds=(0,), methods=methods_for("features", "pca"),
              toys=(ToySpec("small", "sparse_features", dict(n_features=24, d_model=12, n_samples=1500, mean_active=2.0)),))


def _perfect(truth):
    return Dictionary(directions=truth.directions, method="cheat")


def peek(x, *, seed):
    """Look for the truth in the caller's frames and in every object of this process."""
    frame = inspect.currentframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            truth = getattr(value, "truth", None)
            if isinstance(truth, FeatureTruth):
                return _perfect(truth)
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, FeatureTruth):
            return _perfect(obj)
    return pca_method(x, seed=seed)


def tamper(x, *, seed):
    """Rewrite the store: zero every other row's metrics and insert a row nobody ran."""
    with sqlite3.connect(os.environ["CHEAT_STORE"]) as db:
        db.execute("UPDATE cells SET metrics = '{\\"mmcs\\": 0.0}' WHERE method = 'pca'")
        row = db.execute("SELECT * FROM cells LIMIT 1").fetchone()
        cols = [c[1] for c in db.execute("PRAGMA table_info(cells)")]
        fake = dict(zip(cols, row))
        fake["method"] = "fake"
        db.execute(f"INSERT INTO cells ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [fake[c] for c in cols])
    return pca_method(x, seed=seed)


def read_secret(x, *, seed):
    """Read the secret file, or the driver's command line and environment."""
    found = []
    for path in [os.environ["CHEAT_SECRET"], f"/proc/{os.getppid()}/environ", f"/proc/{os.getppid()}/cmdline"]:
        with open(path, "rb") as fh:
            found.append(fh.read())
    raise RuntimeError(f"read {len(found)} files")


def regenerate(x, *, seed):
    """Rebuild the suite's toys from their public configs and return the one that matches."""
    for spec in SUITE.toys:
        for s in range(3):
            toy = toys.from_config(spec.make(s))
            if toy.activations.shape == x.shape and np.array_equal(toy.activations, x):
                return _perfect(toy.truth)
    return pca_method(x, seed=seed)
'''


@pytest.fixture
def cheats(tmp_path, monkeypatch):
    (tmp_path / "cheats.py").write_text(textwrap.dedent(CHEATS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    import importlib

    sys.modules.pop("cheats", None)
    return importlib.import_module("cheats")


def _rows(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return sorted(db.execute("SELECT method, seed, status, metrics FROM cells").fetchall())


def test_a_method_that_looks_for_the_truth_finds_nothing(cheats, tmp_path):
    """In the driver's process the probe finds the truth (so it can fail); isolated, it cannot."""
    honest = run(cheats.SUITE, methods=["pca"], store=None)[0].metrics["mmcs"]
    beside = run(cheats.SUITE, methods={"peek": cheats.peek}, store=None, isolate=False)[0]
    assert beside.metrics["mmcs"] == pytest.approx(1.0)  # the probe works when nothing stops it
    alone = run(cheats.SUITE, methods=["cheats:peek"], store=None)[0]  # a user method: isolated by default
    assert alone.status == "ok" and alone.metrics["mmcs"] == pytest.approx(honest, abs=1e-6) and honest < 0.9
    also = run(cheats.SUITE, methods={"peek": cheats.peek}, store=None)[0]  # a module-level function too
    assert also.metrics["mmcs"] == pytest.approx(honest, abs=1e-6)


def test_a_method_that_writes_the_store_is_refused_and_noticed(cheats, tmp_path, monkeypatch):
    store = tmp_path / "s.sqlite"
    monkeypatch.setenv("CHEAT_STORE", str(store))
    run(cheats.SUITE, methods=["pca"], seeds=[0, 1], store=store)
    before = _rows(store)
    results = run(cheats.SUITE, methods=["pca", "cheats:tamper"], seeds=[0, 1], store=store)
    failed = [r for r in results if r.method == "cheats:tamper"]
    assert all(r.status == "failed" and "may not open a database" in r.error for r in failed), failed
    assert [r for r in _rows(store) if r[0] != "cheats:tamper"] == before  # nothing changed, nothing added
    # Run beside the truth (isolation off), the same method reaches the store; the driver notices.
    with pytest.warns(RuntimeWarning, match="written by another process"):
        with pytest.raises(TamperingDetected, match="changed or vanished during the run"):
            run(cheats.SUITE, methods={"pca": "planted.evaluators._methods:pca_method", "tamper2": cheats.tamper},
                seeds=[2], store=store, isolate=False)


def test_a_method_cannot_read_the_secret_or_the_drivers_environment(cheats, tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("a maintainer's secret of some length")
    monkeypatch.setenv("CHEAT_SECRET", str(secret))
    result = run(cheats.SUITE, methods=["cheats:read_secret"], store=None, secret=secret)[0]
    assert result.status == "failed" and "may not access" in result.error and str(secret) in result.error


def test_the_private_split_keeps_public_configs_from_rebuilding_its_toys(cheats):
    public = run(cheats.SUITE, methods=["cheats:regenerate"], store=None)[0]
    assert public.metrics["mmcs"] == pytest.approx(1.0)  # public toys can always be rebuilt
    honest = run(cheats.SUITE, methods=["pca"], store=None, secret="a maintainer's secret of some length")[0]
    private = run(cheats.SUITE, methods=["cheats:regenerate"], store=None, secret="a maintainer's secret of some length")[0]
    assert private.status == "ok" and private.metrics["mmcs"] == pytest.approx(honest.metrics["mmcs"], abs=1e-6)
    assert private.toy_id != public.toy_id and private.suite_version.endswith("-private-" + private.suite_version[-10:])
    again = run(cheats.SUITE, methods=["pca"], store=None, secret=b"a maintainer's secret of some length")[0]
    assert again.toy_id == honest.toy_id  # the same secret rebuilds the same toys
    with pytest.raises(ValueError, match="secret must be at least 16 bytes"):
        run(cheats.SUITE, methods=["pca"], store=None, secret="short")


def test_every_cheat_is_counted(cheats, tmp_path, monkeypatch, capsys):
    """The figures of the closing note: cheating methods tried, and how many got anything."""
    store = tmp_path / "s.sqlite"
    secret = tmp_path / "secret"
    secret.write_text("a maintainer's secret of some length")
    monkeypatch.setenv("CHEAT_STORE", str(store))
    monkeypatch.setenv("CHEAT_SECRET", str(secret))
    honest = run(cheats.SUITE, methods=["pca"], store=store, secret=secret)[0].metrics["mmcs"]
    before = _rows(store)
    tried = succeeded = 0
    for name in ("peek", "tamper", "read_secret", "regenerate"):
        result = run(cheats.SUITE, methods=[f"cheats:{name}"], store=store, secret=secret)[0]
        tried += 1
        gained = result.status == "ok" and result.metrics["mmcs"] > honest + 1e-6
        changed = [r for r in _rows(store) if not r[0].startswith("cheats:")] != before
        succeeded += gained or changed
    print(f"\ncheating methods tried {tried}, succeeded {succeeded}")
    assert succeeded == 0


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):  # a process that ended while we looked has no children to list
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
                found.update(kids)
                todo.extend(kids)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_workers_and_method_processes_die_with_the_driver(cheats, tmp_path):
    """kill -9 of ``planted bench --workers 2``: its workers and their method processes exit within
    seconds instead of computing discarded cells, re-parented to PID 1."""
    (tmp_path / "slow.py").write_text(textwrap.dedent('''
        import time
        from planted.evaluators._methods import pca_method

        def slow(x, *, seed):
            time.sleep(30)
            return pca_method(x, seed=seed)
    '''))
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "planted", "bench", "--suite", "quick", "--method", "slow:slow", "--workers", "2",
           "--store", str(store)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.time() + 120
    kids: set[int] = set()
    while time.time() < deadline and len(kids) < 4:  # 2 workers, each with its method's process
        time.sleep(0.5)
        kids = _descendants(driver.pid)
    assert len(kids) >= 4, kids
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    orphans = [k for k in kids if _alive(k)]
    print(f"\nprocesses of a killed driver: {len(kids)}, still running after it: {len(orphans)}")
    for k in orphans:
        os.kill(k, signal.SIGKILL)
    assert orphans == []
    assert not store.exists() or Store(store).results() == []


def test_a_script_that_runs_an_isolated_method_is_not_run_again_in_its_process(tmp_path):
    """Spawning runs the starting script again (so that functions defined there can be found), but
    an isolated method never lives in the script (the runner refuses those), so the method's
    process starts without re-running it from the top."""
    (tmp_path / "script.py").write_text(textwrap.dedent('''
        import dataclasses
        from sklearn.decomposition import PCA
        from planted import evaluators, methods

        with open("runs.txt", "a") as f:
            f.write("ran\\n")
        quick = evaluators.SUITES["quick"]
        small = dataclasses.replace(quick, toys=quick.toys[:1], seeds=(0,))
        adapter = methods.sklearn_method(PCA(), components=1.0)
        results = evaluators.run(small, methods={"adapter": adapter}, store=None, isolate=True)
        assert all(r.status == "ok" for r in results), [r.error for r in results]
    '''))
    subprocess.run([sys.executable, "script.py"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "runs.txt").read_text().count("ran") == 1
