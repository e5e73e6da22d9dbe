import csv
import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from planted import toys
from planted.evaluators import (
    TASKS, Store, Suite, Task, ToySpec, bootstrap_ci, leaderboard, run, summarize, write_report,
)
from planted.evaluators.store import CellResult
from planted.groundtruth import Dictionary, FeatureTruth


def _forbid_building(monkeypatch):
    """Make every way a report could build or train a toy raise."""
    def refuse(*args, **kwargs):
        raise AssertionError("a report must not build or train a toy")

    from planted.toys import _family

    monkeypatch.setattr(_family, "from_config", refuse)
    for name in ("from_config", "phase_diagram", "superposition", "superposition_sweep", "planted_mlp", "connectome"):
        monkeypatch.setattr(toys, name, refuse)


def _cell(toy, method, seed, mmcs, status="ok", axes=None):
    return CellResult(
        suite="s", suite_version="v", task="features", toy=toy, toy_id=toy, axes=axes or {"superposition": 2.0},
        method=method, params="{}", seed=seed, status=status,
        metrics={"mmcs": mmcs, "recovered": mmcs / 2} if status == "ok" else {}, seconds=1.0,
    )


CELLS = [
    _cell("a", "good", 0, 0.9), _cell("a", "good", 1, 0.8), _cell("a", "good", 2, 1.0),
    _cell("a", "bad", 0, 0.2), _cell("a", "bad", 1, 0.3), _cell("a", "bad", 2, 0.0, status="failed"),
    _cell("b", "good", 0, 0.7, axes={"superposition": 8.0}),
]


def test_bootstrap_interval_brackets_the_mean():
    lo, hi = bootstrap_ci([0.8, 0.9, 1.0])
    assert 0.8 <= lo < 0.9 < hi <= 1.0
    assert bootstrap_ci([0.5]) == (0.5, 0.5)
    wide = bootstrap_ci(list(np.random.default_rng(0).normal(0, 1, 10)))
    narrow = bootstrap_ci(list(np.random.default_rng(0).normal(0, 1, 1000)))
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def test_summary_matches_the_cells():
    s = {(x.toy, x.method, x.metric): x for x in summarize(CELLS, ["mmcs"])}
    assert s[("a", "good", "mmcs")].mean == pytest.approx(0.9) and s[("a", "good", "mmcs")].n == 3
    assert s[("a", "bad", "mmcs")].mean == pytest.approx(0.25) and s[("a", "bad", "mmcs")].failed == 1


def test_tables_agree_with_each_other_and_the_cells():
    rows = list(csv.DictReader(io.StringIO(leaderboard(CELLS, ["mmcs"], fmt="csv"))))
    by = {(r["toy"], r["method"]): r for r in rows}
    assert float(by[("a", "good")]["mmcs_mean"]) == pytest.approx(0.9)
    assert by[("a", "bad")]["ok"] == "2" and by[("a", "bad")]["cells"] == "3"
    assert [r["method"] for r in rows if r["toy"] == "a"] == ["good", "bad"]  # best first
    md = leaderboard(CELLS, ["mmcs"], fmt="markdown")
    assert "| a | good | 3/3 | 0.900 ± " in md
    tex = leaderboard(CELLS, ["mmcs"], fmt="latex")
    assert r"\begin{tabular}" in tex and r"0.900 $\pm$" in tex
    js = json.loads(leaderboard(CELLS, ["mmcs"], fmt="json"))
    assert [(g["suite"], g["version"]) for g in js["suites"]] == [("s", "v")] and "bootstrap" in js["interval"]
    assert {(r["toy"], r["method"]) for r in js["suites"][0]["rows"]} == set(by)
    assert js["suites"][0]["failed"] == [{"toy": "a", "method": "bad", "seed": 2, "error": ""}]
    text = leaderboard(CELLS, ["mmcs"])
    assert "FAILED a bad seed 2" in text
    with pytest.raises(ValueError, match="fmt must be one of"):
        leaderboard(CELLS, fmt="xml")


def test_report_from_a_real_store_builds_nothing(tmp_path, monkeypatch):
    store = tmp_path / "s.sqlite"
    run("quick", methods=["pca", "ica"], seeds=[0, 1], store=store)
    with Store(store) as s:
        results = s.results()
    table = {(r["toy"], r["method"]): r for r in csv.DictReader(io.StringIO(leaderboard(results, fmt="csv")))}
    for toy in ("sparse-r2", "hierarchy-r3", "tms-20-5"):
        for method in ("pca", "ica"):
            values = [r.metrics["mmcs"] for r in results if r.toy == toy and r.method == method]
            assert float(table[(toy, method)]["mmcs_mean"]) == pytest.approx(np.mean(values), rel=1e-5)
    _forbid_building(monkeypatch)
    with Store(store) as s:
        paths = write_report(results, tmp_path / "report", store=s)
    names = {p.name for p in paths}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.tex", "leaderboard.json", "quick-leaderboard-mmcs.png",
            "quick-leaderboard-mmcs.svg", "quick-leaderboard-mmcs.pdf", "report.html"} <= names
    # The quick suite's toys differ in more than their superposition: no curve pools them.
    assert not any("-vs-" in n for n in names)
    assert {"cosines-quick-sparse-r2.png", "cosines-quick-hierarchy-r3.png", "gram-quick-tms-20-5.png"} <= names
    for p in paths:
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            w, h = Image.open(p).size
            assert w > 300 and h > 200


def test_figures_carry_their_axis_labels():
    from planted.evaluators import plot_axis, plot_leaderboard

    fig = plot_leaderboard(CELLS, "mmcs")
    assert fig.axes[0].get_xlabel() == "mmcs (mean, 95% CI)"
    assert any("good" in t.get_text() for t in fig.axes[0].get_yticklabels())
    fig = plot_axis(CELLS, "mmcs", "superposition")
    assert fig.axes[0].get_xlabel() == "superposition" and fig.axes[0].get_ylabel().startswith("mmcs")
    with pytest.raises(ValueError, match="no two toys differ in the axis .noise_std. alone"):
        plot_axis(CELLS, "mmcs", "noise_std")


def test_cosine_heatmap_of_a_perfect_dictionary_is_diagonal():
    from planted import toys
    from planted.evaluators import plot_cosines

    toy = toys.sparse_features(30, 16, 10, seed=0)
    perm = np.random.default_rng(0).permutation(30)
    fig = plot_cosines(-toy.truth.directions[perm], toy.truth, max_features=20)
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.diag(image), 1, atol=1e-6)
    assert fig.axes[0].get_xlabel() == "matched latent"


@pytest.mark.slow
def test_circuits_suite_report_has_the_catalog_and_circuit_figures(tmp_path, monkeypatch):
    store = tmp_path / "c.sqlite"
    results = run("circuits", methods=["activation-patching", "eap", "degree"], seeds=[0], store=store)
    assert all(r.status == "ok" for r in results), [r.error for r in results if r.status != "ok"]
    by = {(r.toy, r.method): r.metrics for r in results}
    assert by[("plain", "eap")]["edge_auroc"] > 0.9 and by[("plain", "eap")]["cpr"] > 0.9
    assert by[("naturalise", "degree")]["edge_auroc"] < by[("plain", "degree")]["edge_auroc"]
    _forbid_building(monkeypatch)
    with Store(store) as s:
        paths = write_report(s.results(), tmp_path / "report", store=s)
    names = {p.name for p in paths}
    assert {"catalog.md", "catalog.csv", "circuit-circuits-plain.png", "circuit-circuits-redundancy.png"} <= names
    table = (tmp_path / "report" / "catalog.md").read_text()
    assert table.splitlines()[0] == "| method | plain | cancellation | naturalise | redundancy | saturation | shared | trained |"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report" / "catalog.csv").read_text())))
    assert float(rows[0]["plain"]) == pytest.approx(max(by[("plain", m)]["edge_auroc"] for m in ("activation-patching", "eap", "degree")), abs=1e-6)


def test_importing_the_evaluators_imports_no_matplotlib_and_a_report_keeps_the_backend(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import planted.evaluators, planted.evaluators.report, planted.evaluators.geometry
        from planted.evaluators import TASKS, plot_circuit, plot_cosines, write_report
        assert not [m for m in sys.modules if m.split(".")[0] == "matplotlib"], "matplotlib imported"
        import matplotlib
        matplotlib.use("svg")
        import matplotlib.pyplot as plt
        from planted.evaluators.store import CellResult
        cells = [CellResult(suite="s", suite_version="v", task="features", toy="t", toy_id="t", axes={{"x": float(i)}},
                            method="m", params="{{}}", seed=i, status="ok", metrics={{"mmcs": 0.5}}, seconds=1.0)
                 for i in range(2)]
        paths = write_report(cells, {str(tmp_path)!r})
        assert any(p.name == "s-leaderboard-mmcs.png" for p in paths), paths
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert plt.get_fignums() == [], plt.get_fignums()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _norm_score(prediction, toy):
    return {"rows": float(prediction.directions.shape[0])}


def _norm_figure_data(toy):
    return {"norms": toy.truth.norms.astype(np.float32), "label": np.asarray(toy.truth.labels[0])}


def _norm_figures(results, store, folder):
    """A user task's figures hook: one text file per toy, from the arrays its figure_data stored."""
    written = []
    for r in results:
        arrays = store.toy_arrays(r.toy_id, task=r.task) if store is not None else {}
        if "norms" in arrays:
            path = folder / f"norms-{r.toy}-{r.seed}.txt"
            path.write_text(f"{arrays['label']} {arrays['norms'].sum():.6f} {len(results)}")
            written.append(path)
    return written


def _rows(activations, *, seed):
    return Dictionary(directions=np.eye(activations.shape[1], dtype=np.float32))


def test_a_user_task_draws_its_own_figures_from_its_stored_arrays(tmp_path, monkeypatch):
    task = Task(name="norms", description="user task", truth_type=FeatureTruth, prediction_type=Dictionary,
                score=_norm_score, headline="rows", metrics=("rows",), figure_data=_norm_figure_data,
                figures=_norm_figures)
    monkeypatch.setitem(TASKS, "norms", task)
    spec = ToySpec("small", "sparse_features", dict(n_features=12, d_model=8, n_samples=200))
    suite = Suite(name="user", task="norms", toys=(spec,), methods=(), seeds=(0, 1))
    with Store(tmp_path / "u.sqlite") as store:
        results = run(suite, methods={"eye": _rows}, store=store, progress=False)
        assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
        expected = toys.from_config(spec.make(0)).truth.norms.sum()
        _forbid_building(monkeypatch)
        names = {p.name for p in write_report(results, tmp_path / "report", store=store)}
    assert {"norms-small-0.txt", "norms-small-1.txt", "user-leaderboard-rows.png"} <= names
    label, total, n = (tmp_path / "report" / "norms-small-0.txt").read_text().split()
    assert n == "2" and float(total) == pytest.approx(expected, rel=1e-5) and label


def test_a_store_written_before_figure_arrays_existed_still_opens_and_reports(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE toy_arrays")
    with Store(path) as store:
        store.write(CELLS[0])
        assert store.toy_arrays("a", task="features") == {} and not store.has_toy_arrays("a", task="features")
        store.write_toy_arrays("a", "features", {"w": np.ones((2, 3), np.float32), "name": np.asarray("x")})
        arrays = store.toy_arrays("a", task="features")
        assert arrays["w"].shape == (2, 3) and str(arrays["name"]) == "x"
        assert {p.name for p in write_report(store.results(), tmp_path / "r", store=store)} >= {"leaderboard.md"}


_REPORT_LOOP = textwrap.dedent(
    """
    import importlib.util
    spec = importlib.util.spec_from_file_location("report_cells", {here!r})
    here = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(here)
    CELLS, _scaled = here.CELLS, here._scaled
    from planted.evaluators import write_report
    cells = _scaled(CELLS, 0.5)
    print("ready", flush=True)
    while True:
        write_report(cells, {out!r})
    """
)


def _scaled(cells, factor):
    import dataclasses

    return [dataclasses.replace(c, metrics={k: v * factor for k, v in c.metrics.items()}) for c in cells]


@pytest.mark.slow
def test_a_report_killed_at_any_moment_leaves_no_torn_file(tmp_path):
    """kill -9 while a report is rewritten: every file is the previous report's or the new one's."""
    import os
    import random
    import signal
    import time

    old, new, out = tmp_path / "old", tmp_path / "new", tmp_path / "out"
    for folder, cells in ((old, CELLS), (new, _scaled(CELLS, 0.5)), (out, CELLS)):
        write_report(cells, folder)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    after = {p.name: p.read_bytes() for p in new.iterdir()}
    assert before.keys() == after.keys() and any(before[n] != after[n] for n in before)
    script = _REPORT_LOOP.format(here=__file__, out=str(out))
    rng = random.Random(0)
    kills, torn = 0, []
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        for p in out.iterdir():
            if p.name.startswith("."):
                assert p.name.endswith(".tmp"), p.name  # a temporary the kill left behind
                continue
            if p.read_bytes() not in (before[p.name], after[p.name]):
                torn.append(p.name)
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(before)
    print(f"\nkills during report: {kills}, torn files: {len(torn)}")
    assert kills == 6 and torn == []
    write_report(_scaled(CELLS, 0.5), out)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a later report sweeps the temporaries"
    assert os.listdir(out) and all((out / n).read_bytes() == after[n] for n in after)


@pytest.mark.slow
def test_a_store_of_two_suites_reports_each_with_its_own_grid(tmp_path, capsys):
    """bench quick, bench circuits, report: one table per suite with its own metrics, one valid
    JSON document naming suite and version, and every figure written; seeds outside a suite's grid
    are set apart and methods added beside it marked."""
    from planted.evaluators import cli

    store = str(tmp_path / "s.sqlite")
    assert cli.main(["bench", "--suite", "quick", "--method", "pca", "--seeds", "4", "--store", store]) == 0
    assert cli.main(["bench", "--suite", "circuits", "--method", "activation-patching", "--seeds", "1",
                     "--store", store]) == 0
    capsys.readouterr()
    assert cli.main(["report", "--store", store, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    suites = {g["suite"]: g for g in doc["suites"]}
    assert set(suites) == {"quick", "circuits"} and all(g["version"] for g in doc["suites"])
    assert "edge_auroc" in suites["circuits"]["rows"][0] and "mmcs" in suites["quick"]["rows"][0]
    assert "edge_auroc" not in suites["quick"]["rows"][0]
    assert suites["quick"]["seeds"] == [0, 1, 2]  # the grid's seeds; seed 3 is set apart
    assert any("seeds [3], outside the grid" in n for n in suites["quick"]["notes"])
    assert all(r["ok"] == 3 for r in suites["quick"]["rows"])
    assert cli.main(["report", "--store", store, "--out", str(tmp_path / "report")]) == 0
    text = capsys.readouterr()
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"leaderboard.md", "leaderboard.json", "quick-leaderboard-mmcs.png", "circuits-leaderboard-edge_auroc.png"} <= names
    assert "quick-leaderboard-edge_auroc.png" not in names
    assert "## suite quick" in (tmp_path / "report" / "leaderboard.md").read_text()
    assert "Traceback" not in text.err


def test_the_store_as_a_dataframe_matches_its_rows(tmp_path):
    pd = pytest.importorskip("pandas")
    store = tmp_path / "s.sqlite"
    run("quick", methods=["pca", "ica"], seeds=[0], store=store)
    with Store(store) as s:
        frame = s.to_pandas()
        results = s.results()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(results) == 6
    assert {"suite", "toy", "method", "seed", "status", "mmcs", "axis.superposition", "method_fingerprint"} <= set(frame.columns)
    for r in results:
        row = frame[(frame.toy == r.toy) & (frame.method == r.method)].iloc[0]
        assert row.mmcs == pytest.approx(r.metrics["mmcs"]) and row["axis.superposition"] == r.axes["superposition"]
    means = frame.groupby("method").mmcs.mean()
    assert means["ica"] == pytest.approx(np.mean([r.metrics["mmcs"] for r in results if r.method == "ica"]))


def test_a_difficulty_curve_joins_only_toys_that_differ_in_its_axis_alone():
    from planted.evaluators._figures._leaderboard import axis_series

    def cell(toy, superposition, noise, seed, value):
        return CellResult(suite="s", suite_version="v", task="features", toy=toy, toy_id=toy,
                          axes={"superposition": superposition, "noise_std": noise}, method="m", params="{}", seed=seed,
                          status="ok", metrics={"mmcs": value}, seconds=1.0)

    cells = [cell("r2", 2.0, 0.0, s, 0.9) for s in range(3)] + [cell("r4", 4.0, 0.0, s, 0.7) for s in range(3)]
    cells += [cell("noisy-r8", 8.0, 0.1, s, 0.2) for s in range(3)]  # differs in noise too: not on the curve
    series = axis_series(cells, "mmcs", "superposition")
    assert list(series) == [("s", (("noise_std", 0.0),))]
    assert series[("s", (("noise_std", 0.0),))]["m"] == {2.0: [0.9] * 3, 4.0: [0.7] * 3}
    assert axis_series(cells, "mmcs", "noise_std") == {}  # no two toys differ in noise alone


def test_paired_comparisons_on_shared_seeds():
    from planted.evaluators import paired

    cells = [_cell("a", "x", s, 0.5 + 0.01 * s) for s in range(6)] + [_cell("a", "y", s, 0.4 + 0.01 * s) for s in range(6)]
    cells += [_cell("a", "y", 9, 0.0)]  # a seed x did not run: not compared
    [p] = paired(cells, "mmcs", "x", "y")
    assert p.n == 6 and p.mean == pytest.approx(0.1) and p.low == pytest.approx(0.1) and p.high == pytest.approx(0.1)
    assert p.p_value == pytest.approx(0.03125)  # the exact two-sided Wilcoxon p for 6 positive differences
    [q] = paired(cells[:3] + cells[6:9], "mmcs", "x", "y")
    assert q.n == 3 and q.p_value is None
