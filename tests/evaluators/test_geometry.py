"""Figures of learned geometry: what each draws, and the report's superposition figures."""

import json

import numpy as np
import pytest
from PIL import Image

from planted import toys
from planted.evaluators.geometry import (
    plot_dimensionality,
    plot_directions,
    plot_gram,
    plot_phase_diagram,
    write_geometry_figures,
)
from planted.evaluators.store import CellResult
from planted.groundtruth import config_from_json


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


def test_report_draws_the_geometry_of_superposition_toys(tmp_path):
    cells = []
    for s in (0.0, 0.6, 0.9):
        config = toys.SuperpositionConfig(n_features=5, n_hidden=2, n_samples=64, sparsity=s, n_steps=300, seed=0)
        cells.append(CellResult(
            suite="tms", suite_version="v", task="features", toy=f"s{s:g}", toy_id=config.id, axes={"sparsity": s},
            method="pca", params="{}", seed=0, status="ok", metrics={"mmcs": 1.0}, seconds=1.0, config=config.to_json(),
        ))
    built = []

    def build(config_json):
        built.append(config_json)
        return toys.from_config(config_from_json(json.loads(config_json)))

    paths = write_geometry_figures(cells, tmp_path, build=build)
    assert sorted(p.name for p in paths) == sorted(
        [f"directions-tms-s{s}.png" for s in ("0", "0.6", "0.9")]
        + [f"gram-tms-s{s}.png" for s in ("0", "0.6", "0.9")]
        + ["dimensionality-tms.png"]
    )
    assert len(built) == 3  # one build per toy
    for p in paths:
        assert Image.open(p).size[0] > 300
