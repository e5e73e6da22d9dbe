"""Figures of the circuits task: the planted circuit beside each method's top edges, and the
failure-mode catalog tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from planted.evaluators._figures._common import axes, figure, lowest_seeds, save, stored_arrays, stored_panels, text


def plot_circuit(toy, task: int = 0, edge_scores: np.ndarray | None = None, *, ax=None, title: str = ""):
    """The component graph by layer with ``task``'s planted circuit (grey) and, given a method's
    edge scores, its top-k edges for k the circuit's size: green where planted, red where not.

    Parameters
    ----------
    toy : a circuit toy (``toy.graph``, ``toy.truth`` a ``CircuitTruth``)
    task : int
    edge_scores : (n_edges,) array, optional
        A method's score per edge of ``toy.graph`` (canonical order); NaN ranks last.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    truth = toy.truth
    src, dst = toy.graph.edges()
    return circuit_panel(toy.graph.layers, src, dst, truth.edges[task], truth.nodes[task], edge_scores,
                         ax=axes(ax, (3.4, 2.8)), title=title or f"{truth.task_names[task]}: {truth.formulas[task]}",
                         names=layer_names(toy.graph))


def layer_names(graph) -> list[str]:
    """A short name per layer of a component graph: "in", the label prefix its nodes share before a
    dot ("b2" for planted_mlp's block 2, "a1" for a transformer's layer-1 heads, "m1" for its MLP),
    "out"."""
    names = []
    top = int(graph.layers.max())
    for layer in range(top + 1):
        prefixes = {label.split(".")[0] for label, at in zip(graph.labels, graph.layers) if at == layer}
        names.append("in" if layer == 0 else "out" if layer == top else prefixes.pop() if len(prefixes) == 1 else f"L{layer}")
    return names


def circuit_panel(layers: np.ndarray, src: np.ndarray, dst: np.ndarray, planted_edges: np.ndarray,
                  members: np.ndarray, edge_scores: np.ndarray | None = None, *, ax, title: str = "",
                  names: Sequence[str] | None = None):
    """``plot_circuit`` from arrays: each node's layer (n_nodes,), each edge's ends (n_edges,), the
    planted edges' indices (k,), the circuit's nodes as a (n_nodes,) bool mask and, optionally, each
    layer's name (``layer_names``)."""
    layers = np.asarray(layers)
    members = np.asarray(members, bool)
    y = np.zeros(layers.size)
    for layer in np.unique(layers):
        idx = np.flatnonzero(layers == layer)
        y[idx] = np.linspace(0, 1, idx.size) if idx.size > 1 else 0.5
    for e in planted_edges:
        ax.plot([layers[src[e]], layers[dst[e]]], [y[src[e]], y[dst[e]]], color="0.75", lw=3, zorder=1,
                solid_capstyle="round")
    if edge_scores is not None:
        planted = np.zeros(src.size, bool)
        planted[planted_edges] = True
        order = np.argsort(-np.abs(np.nan_to_num(np.asarray(edge_scores, float), nan=-np.inf)),
                           kind="mergesort")[:len(planted_edges)]
        for e in order:
            ax.plot([layers[src[e]], layers[dst[e]]], [y[src[e]], y[dst[e]]],
                    color="tab:green" if planted[e] else "tab:red", lw=1, zorder=2)
    ax.scatter(layers[~members], y[~members], s=2, color="0.8", zorder=3)
    ax.scatter(layers[members], y[members], s=10, color="k", zorder=4)
    ax.set_xticks(np.unique(layers))
    if names is None:
        names = ["in"] + [f"b{i}" for i in range(1, layers.max())] + ["out"]
    ax.set_xticklabels([str(n) for n in names], fontsize=6)
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    return ax.figure


def circuits_figure_data(toy) -> dict[str, np.ndarray]:
    """What ``circuit_panel`` draws of task 0: ``layers`` (n_nodes,), ``src``/``dst`` (n_edges,),
    ``planted_edges`` (k,), ``members`` (n_nodes,) bool, the 0-d string ``task_name`` and
    ``layer_names`` (n_layers,)."""
    truth = toy.truth
    src, dst = toy.graph.edges()
    return {
        "layers": np.asarray(toy.graph.layers, np.int64),
        "src": np.asarray(src, np.int64),
        "dst": np.asarray(dst, np.int64),
        "planted_edges": np.asarray(truth.edges[0], np.int64),
        "members": np.asarray(truth.nodes[0], bool),
        "task_name": np.asarray(truth.task_names[0]),
        "layer_names": np.asarray(layer_names(toy.graph)),
    }


def circuits_figures(results: Sequence, store, folder: Path) -> list[Path]:
    """``catalog.md`` and ``catalog.csv`` (methods x toys, edge AUROC with CIs; ``report.catalog``;
    ``catalog-{task}`` for a task other than circuits)
    and, per toy (lowest seed) with stored arrays, ``circuit-{suite}-{toy}.png``: the planted
    circuit of task 0 beside each method's top edges."""
    from planted.evaluators._files import write_text
    from planted.evaluators.report import catalog

    written: list[Path] = []
    tasks = {r.task for r in results}
    stem = "catalog" if tasks <= {"circuits"} else "catalog-" + "-".join(sorted(tasks))
    for fmt, ext in (("markdown", "md"), ("csv", "csv")):
        try:
            table = catalog(results, fmt=fmt)
        except ValueError:
            break
        written.append(write_text(folder / f"{stem}.{ext}", table))
    for suite, toy, seed, cells in lowest_seeds(results):
        arrays = stored_arrays(store, cells[0])
        panels = stored_panels(cells, store)
        if "layers" not in arrays or not panels:
            continue
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig = figure((2.4 * cols, 2.2 * rows))
        grid = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (c, scores) in zip(grid, panels):
            circuit_panel(arrays["layers"], arrays["src"], arrays["dst"], arrays["planted_edges"], arrays["members"],
                          scores, ax=ax, title=c.method,
                          names=[str(n) for n in arrays["layer_names"]] if "layer_names" in arrays else None)
        for ax in grid[len(panels):]:
            ax.axis("off")
        fig.suptitle(f"{toy} (seed {seed}), task 0 ({text(arrays['task_name'])}): planted (grey), top edges found "
                     "(green: planted, red: not)", fontsize=7)
        save(fig, folder / f"circuit-{suite}-{toy}.png", written)
    return written
