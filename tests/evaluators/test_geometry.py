"""Figures of learned geometry: what each draws, and the report's superposition figures."""

import numpy as np
import pytest
from PIL import Image

from planted import toys
from planted.evaluators import METHODS, Store, run, write_report
from planted.evaluators.geometry import plot_dimensionality, plot_directions, plot_gram, plot_phase_diagram
from planted.evaluators.store import suite_key
from planted.evaluators.suites import Suite, ToySpec


@pytest.fixture(scope="module")
def sweep():
    return toys.superposition_sweep(5, 2, sparsities=[0.0, 0.6, 0.9], importances=[0.9], n_steps=1500, n_samples=64)


def test_directions_are_the_columns_of_w(sweep):
    toy = sweep[2]
    fig = plot_directions(toy)
    tips = np.array([line.get_xydata()[0] for line in fig.axes[0].lines if len(line.get_xydata()) == 1])
    np.testing.assert_allclose(tips, toy.weights.T, atol=1e-6)
    wide = toys.superposition(6, 3, seed=0, n_steps=50, n_samples=8)
    with pytest.raises(ValueError, match="n_hidden=3"):
        plot_directions(wide)


def test_gram_heatmap_is_w_transpose_w_with_the_bias(sweep):
    toy = sweep[1]
    image = plot_gram(toy).axes[0].images[0].get_array()
    np.testing.assert_allclose(image[:, :5], toy.weights.T @ toy.weights, atol=1e-5)
    np.testing.assert_allclose(image[:, 5], toy.bias, atol=1e-6)


def test_dimensionality_curve_plots_d_star_against_inverse_density(sweep):
    fig = plot_dimensionality(sweep)
    curve = next(line for line in fig.axes[0].lines if line.get_label().startswith("D*"))
    np.testing.assert_allclose(curve.get_xdata(), [1, 2.5, 10], rtol=1e-5)
    np.testing.assert_allclose(curve.get_ydata(), [t.truth.dimensions_per_feature for t in sweep])
    with pytest.raises(ValueError, match="at least 2"):
        plot_dimensionality(sweep[:1])


def test_phase_diagram_colours_each_cell_by_its_phase():
    diagram = toys.phase_diagram(densities=[0.02, 1.0], relative_importances=[0.1, 10.0], n_steps=1500, batch_size=256)
    mesh = plot_phase_diagram(diagram).axes[0].collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(2, 2), diagram.phase)


def _forbid_building(monkeypatch):
    """Make every way a report could build or train a toy raise."""
    def refuse(*args, **kwargs):
        raise AssertionError("a report must not build or train a toy")

    for name in ("from_config", "phase_diagram", "superposition", "superposition_sweep"):
        monkeypatch.setattr(toys, name, refuse)


@pytest.mark.slow
def test_runner_stores_the_geometry_and_phase_diagram_and_the_report_only_reads_them(tmp_path, monkeypatch):
    real = toys.phase_diagram
    asked = []

    def small_phase_diagram(**kwargs):  # the runner asks for the paper's grid; a 2 x 2 one keeps the test fast
        asked.append(kwargs)
        return real(densities=[0.02, 1.0], relative_importances=[0.1, 10.0], n_steps=300, batch_size=64)

    monkeypatch.setattr(toys, "phase_diagram", small_phase_diagram)
    specs = tuple(ToySpec(f"s{s:g}", "superposition", dict(n_features=5, n_hidden=2, n_samples=64, sparsity=s,
                                                           n_steps=300), {"sparsity": s}) for s in (0.0, 0.6, 0.9))
    suite = Suite(name="tiny-tms", task="features", toys=specs, methods=(METHODS["pca"],), seeds=(0, 1),
                  figures=("phase_diagram",))
    with Store(tmp_path / "s.sqlite") as store:
        results = run(suite, store=store, progress=False)
        assert asked == [{"n_steps": 5000, "batch_size": 512}]
        stored = store.toy_arrays(suite_key("tiny-tms", suite.version, "phase_diagram"), task="features")
        assert stored["phase"].shape == (2, 2) and list(stored["phases"]) == list(toys.PHASES)
        toy = toys.from_config(specs[2].make(0))
        arrays = store.toy_arrays(toy.config.id, task="features")
        np.testing.assert_allclose(arrays["weights"], toy.weights)
        represented = toy.truth.directions[toy.truth.represented]
        assert all(np.abs(represented - row).max(axis=1).min() < 1e-6 for row in arrays["cosine_truth"])
        _forbid_building(monkeypatch)
        run(suite, store=store, progress=False)  # everything stored: nothing runs, nothing is recomputed
        paths = write_report(results, tmp_path / "report", store=store)
    names = {p.name for p in paths}
    expected = ({f"directions-tiny-tms-s{s}.png" for s in ("0", "0.6", "0.9")}
                | {f"gram-tiny-tms-s{s}.png" for s in ("0", "0.6", "0.9")}
                | {"dimensionality-tiny-tms.png", "phase-diagram-tiny-tms.png"}
                | {f"cosines-tiny-tms-s{s}.png" for s in ("0", "0.6", "0.9")})
    assert expected <= names
    for p in paths:
        if p.suffix == ".png":
            assert Image.open(p).size[0] > 300
    without_store = {p.name for p in write_report(results, tmp_path / "bare")}
    assert not any(n.startswith(("gram-", "directions-", "phase-", "cosines-")) for n in without_store)
