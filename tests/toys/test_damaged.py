"""Damaged twins of planted circuits and of compiled transformers: the damage is exactly where the
truth says (verified by intervention), the deficits are the measured ones, and the config says what
is wrong with bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from planted import toys
from planted.groundtruth import DAMAGES, Patch, damage_candidates

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
    (dict(base="{}"), "base must be the canonical JSON of a planted_mlp, rasp_transformer or connectome config"),
    (dict(base=toys.FeatureViewConfig(n_pool=8, n_features=2, d_model=2).to_json()),
     "base must be a planted_mlp, rasp_transformer or connectome config, got a 'feature_view' one"),
    (dict(base=BASE.to_json(), damage="melt"), "damage must be one of 'ablate'"),
    (dict(base=BASE.to_json(), damage="scale", strength=1.0), "strength must be in \\[0, 1\\), got 1.0"),
    (dict(base=BASE.to_json(), fraction=0.0), "fraction must be in \\(0, 1\\], got 0.0"),
])
def test_bad_configs_name_the_parameter(fields, match):
    with pytest.raises(ValueError, match=match):
        toys.DamagedConfig(**fields)


# --- transformers: heads and MLPs damaged ----------------------------------------------------------

TF_BASE = toys.RASPTransformerConfig(program="ioi", distractors=True, n_samples=32, seed=0)


@functools.cache
def _tf_normal():
    return toys.from_config(TF_BASE)


@functools.cache
def _tf_damaged(damage: str, seed: int = 1):
    return toys.damaged(TF_BASE, damage=damage, fraction=0.3, strength={"scale": 0.3, "noise": 1.0}.get(damage, 0.5),
                        target="any", seed=seed)


def _owner(model):
    """{(parameter name, index into it): node} for every entry a node owns."""
    owner = {}
    for node, parts in model.node_parameters().items():
        for name, index in parts.inputs + parts.bias + parts.out:
            block = np.zeros(model.params[name].shape, bool)
            block[index] = True
            for entry in zip(*np.nonzero(block)):
                owner[(name, entry)] = node
    return owner


def test_node_parameters_partition_every_parameter():
    for model in (_tf_normal().model, _normal().model):
        owner = _owner(model)
        assert len(owner) == sum(v.size for v in model.params.values())  # every entry owned, by one node


@pytest.mark.parametrize("damage", DAMAGES)
def test_only_the_damaged_components_change_and_restoring_them_restores_the_transformer(damage):
    normal, twin = _tf_normal(), _tf_damaged(damage)
    assert twin.truth.base_id == normal.id and twin.artifact.model is twin.model
    assert type(twin.artifact).__name__ == "TransformerArtifact"
    chosen = set(np.flatnonzero(twin.truth.damaged).tolist())
    live = damage_candidates(normal.model)
    assert chosen and all(live[n] for n in chosen)  # a compiled model's empty heads and MLPs are never damaged
    owner = _owner(normal.model)
    a, b = normal.model.params, twin.model.params
    changed = {owner[(name, entry)] for name in a for entry in zip(*np.nonzero(a[name] != b[name]))}
    assert changed == chosen
    restored = {k: v.copy() for k, v in b.items()}
    for (name, entry), node in owner.items():
        if node in chosen:
            restored[name][entry] = a[name][entry]
    again = type(normal.model)(params=restored, graph=normal.graph, causal=normal.model.causal)
    ids = normal.tasks[0].clean
    np.testing.assert_array_equal(again.run(ids)["outputs"], normal.model.run(ids)["outputs"])


def test_a_tie_at_the_answer_is_a_wrong_answer():
    """A lesion that zeroes every logit leaves the answer's logit tied with every other: wrong, even
    where the answer is the first output column (argmax's pick)."""
    task = _tf_normal().tasks[0]
    outputs = np.zeros((task.clean.shape[0], task.clean.shape[1], 8))
    assert task.accuracy(outputs) == 0.0
    outputs[np.arange(task.clean.shape[0]), task.position, task.clean_answer] = 1.0
    assert task.accuracy(outputs) == 1.0


def test_removing_a_head_is_zeroing_its_write():
    """The ablate damage removes components: the normal transformer with their writes patched to 0
    (at every position) computes the damaged copy's outputs, and the deficit is the accuracy lost
    (a categorical answer's logit no longer the largest), counted here independently."""
    normal, twin = _tf_normal(), _tf_damaged("ablate")
    task = normal.tasks[0]
    mask = twin.truth.damaged.astype(np.float32)
    patched = normal.model.run_exact(task.clean, Patch(node_mask=mask, node_values=np.zeros((1,) * 4)))["outputs"]
    np.testing.assert_allclose(patched, twin.model.run_exact(task.clean)["outputs"], atol=1e-6)
    right = [int(np.argmax(row[task.position]) == answer) for row, answer in zip(patched, task.clean_answer)]
    assert twin.truth.intact[0] == 1.0 and twin.truth.deficits[0] == 1.0 - sum(right) / len(right)


def test_transformer_deficits_across_seeds_are_measured_and_varied():
    deficits = {float(_tf_damaged(d, seed).truth.deficits[0]) for d in ("ablate", "noise") for seed in (0, 1, 2)}
    assert len(deficits) >= 2 and max(deficits) > 0  # some damage costs the task, not all equally


def test_a_damaged_transformer_round_trips_and_a_swapped_task_is_rejected(tmp_path):
    twin = _tf_damaged("prune")
    path = toys.save(twin, tmp_path / "twin")
    loaded = toys.load(path)
    assert loaded.id == twin.id and type(loaded.artifact).__name__ == "TransformerArtifact"
    for k, v in twin.model.params.items():
        np.testing.assert_array_equal(loaded.model.params[k], v)
    np.testing.assert_array_equal(loaded.truth.damaged, twin.truth.damaged)
    ids = twin.tasks[0].clean
    np.testing.assert_array_equal(loaded.model.run(ids)["outputs"], twin.model.run(ids)["outputs"])
    other = toys.damaged(toys.RASPTransformerConfig(program="ioi", distractors=True, n_samples=32, seed=1), damage="prune",
                         fraction=0.3, target="any", seed=1)
    from planted.toys._damaged import _check

    swapped = type(twin)(config=twin.config, truth=twin.truth, model=twin.model, tasks=other.tasks)
    assert any("is not the base config's task" in p for p in _check(swapped))


# --- connectomes: synapses of hubs or of any neurons damaged ---------------------------------------

CONNECTOME = toys.ConnectomeConfig(n_neurons=120, n_modules=2, density=0.05, hub_fraction=0.1, hub_boost=4.0,
                                   exc_fraction=0.8, weight=12.0, duration=4.0, seed=0)


@functools.cache
def _c_normal():
    return toys.from_config(CONNECTOME)


@functools.cache
def _c_damaged(damage: str, target: str = "any"):
    return toys.damaged(CONNECTOME, damage=damage, fraction=0.5 if target == "hubs" else 0.1,
                        strength={"scale": 0.3, "noise": 1.0}.get(damage, 0.5), target=target, seed=1)


@pytest.mark.parametrize("damage", DAMAGES)
def test_only_the_damaged_neurons_synapses_change_and_restoring_them_restores_the_wiring(damage):
    normal, twin = _c_normal(), _c_damaged(damage)
    chosen = np.flatnonzero(twin.truth.damaged)
    assert twin.truth.base_id == normal.id and 10 <= chosen.size <= 12 and twin.truth.deficits.size == 0
    a, b = normal.truth.weights.toarray(), twin.weights.toarray()
    rows, cols = np.nonzero(a != b)
    outgoing, incoming = np.isin(rows, chosen), np.isin(cols, chosen)
    assert rows.size and {"ablate": outgoing, "scale": outgoing, "noise": incoming, "rewire": incoming,
                          "prune": outgoing | incoming}[damage].all()  # nothing else changed
    restored = b.copy()
    side = {"ablate": "out", "scale": "out", "noise": "in", "rewire": "in", "prune": "both"}[damage]
    if side in ("out", "both"):
        restored[chosen, :] = a[chosen, :]
    if side in ("in", "both"):
        restored[:, chosen] = a[:, chosen]
    np.testing.assert_array_equal(restored, a)
    excitatory = normal.truth.cell_types == 1
    assert (b[excitatory] >= 0).all() and (b[~excitatory] <= 0).all()  # Dale's law kept
    if damage == "rewire":  # the same weights onto each damaged neuron, from other partners of the same types
        for i in chosen:
            assert sorted(a[:, i][a[:, i] != 0]) == sorted(b[:, i][b[:, i] != 0])


def test_a_damaged_connectome_is_recorded_under_the_twins_stimulus_and_noise():
    """The damaged recording is the simulation of the damaged wiring under the twin's stimulus and
    noise: re-simulating the stored wiring reproduces it exactly, and the normal wiring the normal
    recording, so every difference between the two recordings is the damage's."""
    from planted.toys._connectome._build import _stimulus
    from planted.toys._connectome._dynamics import _simulate
    from planted.toys._connectome._observation import _observe

    normal, twin = _c_normal(), _c_damaged("ablate", "hubs")
    assert normal.truth.hubs[twin.truth.damaged].all()  # target="hubs"
    tuning, features = _stimulus(CONNECTOME)
    for weights, recording in ((twin.weights, twin.recording), (normal.truth.weights, normal.recording)):
        times, neurons = _simulate(CONNECTOME, weights, tuning, features)
        np.testing.assert_array_equal(_observe(CONNECTOME, times, neurons, normal.truth.positions)[1], recording.traces)
    assert not np.array_equal(twin.recording.traces, normal.recording.traces)


def test_a_damaged_connectome_marks_only_neurons_whose_own_synapses_changed():
    from planted.toys._damaged import connectome_candidates

    normal = _c_normal()
    for damage, side in (("ablate", 0), ("noise", 1), ("rewire", 1)):
        twin = _c_damaged(damage)
        change = abs(twin.weights - normal.truth.weights).tocoo()
        own = np.zeros(normal.truth.n_neurons, bool)
        own[(change.row, change.col)[side][change.data > 0]] = True
        np.testing.assert_array_equal(twin.truth.damaged, own)  # exactly the neurons changed on their side
        assert connectome_candidates(normal.truth, "any", damage)[twin.truth.damaged].all()


def test_a_damaged_connectome_round_trips(tmp_path):
    twin = _c_damaged("prune")
    loaded = toys.load(toys.save(twin, tmp_path / "twin"))
    assert loaded.id == twin.id and (loaded.weights != twin.weights).nnz == 0
    np.testing.assert_array_equal(loaded.artifact.traces, twin.artifact.traces)
    np.testing.assert_array_equal(loaded.truth.damaged, twin.truth.damaged)


def test_connectome_targets_are_checked():
    with pytest.raises(ValueError, match="target must be one of \\('hubs', 'any'\\) for a connectome twin, got 'circuit'"):
        toys.DamagedConfig(base=CONNECTOME.to_json())
    with pytest.raises(ValueError, match="target must be one of \\('circuit', 'any'\\) for a planted_mlp twin"):
        toys.DamagedConfig(base=BASE.to_json(), target="hubs")
    no_hubs = toys.ConnectomeConfig(n_neurons=40, duration=1.0, seed=0)
    with pytest.raises(ValueError, match="target='hubs' needs a connectome with planted hubs"):
        toys.damaged(no_hubs, target="hubs", seed=0)
