"""Damaged twins: the damage is exactly where the truth says (verified by intervention), the
deficits are the measured ones, and the config says what is wrong with bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from planted import toys
from planted.groundtruth import DAMAGES, Patch

BASE = toys.PlantedMLPConfig(n_tasks=4, seed=0)


@functools.cache
def _normal():
    return toys.from_config(BASE)


@functools.cache
def _damaged(damage: str, target: str = "circuit"):
    return toys.damaged(BASE, damage=damage, fraction=0.25, strength={"scale": 0.3, "noise": 1.0}.get(damage, 0.5),
                        target=target, seed=1)


def _rows(toy, node):
    n_in, width = toy.model.params["embed"].shape[0], toy.model.params["w_in"].shape[1]
    b, s = divmod(node - n_in, width)
    return b, s


@pytest.mark.parametrize("damage", DAMAGES)
def test_only_the_damaged_neurons_weights_change_and_restoring_them_restores_the_twin(damage):
    normal, twin = _normal(), _damaged(damage)
    assert twin.truth.base_id == normal.id and twin.truth.damage == damage
    chosen = np.flatnonzero(twin.truth.damaged)
    assert chosen.size >= 2 and normal.truth.nodes[:, chosen].any(axis=0).all()  # target="circuit"
    a, b = normal.model.params, twin.model.params
    changed = set()
    for name in a:
        for index in zip(*np.nonzero(a[name] != b[name])):
            assert name in ("w_in", "b_in", "w_out"), name
            changed.add(index[:2])
    assert changed == {_rows(twin, n) for n in chosen}  # every damaged neuron changed, nothing else
    restored = {k: v.copy() for k, v in b.items()}
    for node in chosen:
        blk, slot = _rows(twin, node)
        for name in ("w_in", "b_in", "w_out"):
            restored[name][blk, slot] = a[name][blk, slot]
    x = np.concatenate([t.clean for t in normal.tasks])
    again = type(normal.model)(params=restored, graph=normal.graph)
    np.testing.assert_array_equal(again.run(x)["outputs"], normal.model.run(x)["outputs"])


def _accuracy(model, task):
    return ((model.run(task.clean)["outputs"][:, task.index] > 0.5) == task.labels.astype(bool)).mean()


@pytest.mark.parametrize("damage", DAMAGES)
def test_deficits_are_the_accuracy_drops(damage):
    normal, twin = _normal(), _damaged(damage)
    for t, task in enumerate(normal.tasks):
        assert twin.truth.deficits[t] == _accuracy(normal.model, task) - _accuracy(twin.model, task)
    assert twin.truth.deficits.max() > 0  # a fifth of the circuits' neurons: some task suffers


def test_ablating_a_neuron_is_removing_it():
    """The ablate damage is the lesion of its neurons: the normal network with their activations
    patched to 0 computes the damaged copy's outputs."""
    normal, twin = _normal(), _damaged("ablate")
    x = np.concatenate([t.clean for t in normal.tasks])
    mask = twin.truth.damaged.astype(np.float32)
    lesioned = normal.model.run(x, Patch(node_mask=mask, node_values=np.zeros_like(mask)))["outputs"]
    np.testing.assert_allclose(lesioned, twin.model.run(x)["outputs"], atol=1e-5)


def test_any_target_reaches_distractors_and_is_often_silent():
    twin = _damaged("ablate", target="any")
    normal = _normal()
    chosen = np.flatnonzero(twin.truth.damaged)
    assert not normal.truth.nodes[:, chosen].any(axis=0).all()


@pytest.mark.parametrize("fields, match", [
    (dict(base="{}"), "base must be the canonical JSON of a planted_mlp config"),
    (dict(base=toys.FeatureViewConfig(n_pool=8, n_features=2, d_model=2).to_json()), "base must be a planted_mlp config"),
    (dict(base=BASE.to_json(), damage="melt"), "damage must be one of 'ablate'"),
    (dict(base=BASE.to_json(), damage="scale", strength=1.0), "strength must be in \\[0, 1\\), got 1.0"),
    (dict(base=BASE.to_json(), fraction=0.0), "fraction must be in \\(0, 1\\], got 0.0"),
])
def test_bad_configs_name_the_parameter(fields, match):
    with pytest.raises(ValueError, match=match):
        toys.DamagedConfig(**fields)
