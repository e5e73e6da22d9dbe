import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from planted.evaluators import Store, bootstrap_ci, leaderboard, run, summarize, write_report
from planted.evaluators.store import CellResult


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
    assert {(r["toy"], r["method"]) for r in js} == set(by)
    text = leaderboard(CELLS, ["mmcs"])
    assert "FAILED a bad seed 2" in text
    with pytest.raises(ValueError, match="fmt must be one of"):
        leaderboard(CELLS, fmt="xml")


def test_report_from_a_real_store(tmp_path):
    store = tmp_path / "s.sqlite"
    run("quick", methods=["pca", "ica"], seeds=[0, 1], store=store)
    with Store(store) as s:
        results = s.results()
    table = {(r["toy"], r["method"]): r for r in csv.DictReader(io.StringIO(leaderboard(results, fmt="csv")))}
    for toy in ("sparse-r2", "hierarchy-r3", "tms-20-5"):
        for method in ("pca", "ica"):
            values = [r.metrics["mmcs"] for r in results if r.toy == toy and r.method == method]
            assert float(table[(toy, method)]["mmcs_mean"]) == pytest.approx(np.mean(values), rel=1e-5)
    with Store(store) as s:
        paths = write_report(results, tmp_path / "report", store=s)
    names = {p.name for p in paths}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.tex", "leaderboard.json", "leaderboard-mmcs.png"} <= names
    assert "mmcs-vs-superposition.png" in names
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
    assert fig.axes[0].get_xlabel() == "superposition" and fig.axes[0].get_ylabel() == "mmcs"
    with pytest.raises(ValueError, match="no cells carry"):
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


def test_circuits_suite_report_has_the_catalog_and_circuit_figures(tmp_path):
    store = tmp_path / "c.sqlite"
    results = run("circuits", methods=["activation-patching", "eap", "degree"], seeds=[0], store=store)
    assert all(r.status == "ok" for r in results), [r.error for r in results if r.status != "ok"]
    by = {(r.toy, r.method): r.metrics for r in results}
    assert by[("plain", "eap")]["edge_auroc"] > 0.9 and by[("plain", "eap")]["cpr"] > 0.9
    assert by[("naturalise", "degree")]["edge_auroc"] < by[("plain", "degree")]["edge_auroc"]
    with Store(store) as s:
        paths = write_report(s.results(), tmp_path / "report", store=s)
    names = {p.name for p in paths}
    assert {"catalog.md", "catalog.csv", "circuit-circuits-plain.png", "circuit-circuits-redundancy.png"} <= names
    table = (tmp_path / "report" / "catalog.md").read_text()
    assert table.splitlines()[0] == "| method | plain | cancellation | naturalise | redundancy | saturation | shared | trained |"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report" / "catalog.csv").read_text())))
    assert float(rows[0]["plain"]) == pytest.approx(max(by[("plain", m)]["edge_auroc"] for m in ("activation-patching", "eap", "degree")), abs=1e-6)
