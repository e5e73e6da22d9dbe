import json

import numpy as np
import pytest

from planted.evaluators.features import chance_mmcs
from planted.groundtruth import Problems
from planted.toys import config_from_json
from planted.toys import SparseFeaturesConfig


def test_id_is_canonical_and_content_addressed():
    a = SparseFeaturesConfig(n_features=10, d_model=4, seed=1)
    b = SparseFeaturesConfig(d_model=4, n_features=10, seed=1)
    assert a.id == b.id and len(a.id) == 64
    assert a.id != a.replace(seed=2).id
    payload = json.loads(a.to_json())
    assert payload["kind"] == "sparse_features" and payload["schema"] == 1
    assert a.to_json() == json.dumps(payload, sort_keys=True, separators=(",", ":"))


def test_json_round_trip():
    a = SparseFeaturesConfig(n_features=30, d_model=8, hierarchy_roots=2, hierarchy_branching=3, seed=5)
    b = config_from_json(json.loads(a.to_json()))
    assert b == a and b.id == a.id


def test_all_problems_are_reported_together():
    with pytest.raises(ValueError) as info:
        SparseFeaturesConfig(n_features=0, d_model=-1, noise_std=-1.0, firing="gaussian", seed=0)
    message = str(info.value)
    for name in ("n_features", "d_model", "noise_std", "firing"):
        assert name in message
    assert "4 problems" in message
    assert "got -1" in message


def test_problems_integer_takes_numpy_integers_but_not_bools():
    p = Problems()
    p.integer("task", np.int64(1), low=0, high=2)
    assert p.messages == []
    p.integer("task", np.int64(5), low=0, high=2)
    p.integer("flag", True)
    assert p.messages == ["task must be in [0, 2], got 5", "flag must be an integer, got True"]


def test_bad_parameters_of_one_call_are_reported_together():
    with pytest.raises(ValueError) as info:
        chance_mmcs(0, 1)
    message = str(info.value)
    assert message.startswith("chance_mmcs: 2 problems:")
    assert "n_latents must be in [1, inf), got 0" in message
    assert "d_model must be in [2, inf), got 1" in message


def test_unknown_fields_and_kinds_are_rejected():
    with pytest.raises(ValueError, match="no field"):
        SparseFeaturesConfig.from_dict({"n_features": 3, "d_model": 2, "colour": 1})
    with pytest.raises(ValueError, match="unknown config kind"):
        config_from_json({"kind": "nope", "schema": 1, "fields": {}})
    with pytest.raises(ValueError, match="schema"):
        config_from_json({"kind": "sparse_features", "schema": 99, "fields": {"n_features": 3, "d_model": 2}})


def test_a_field_added_to_a_published_family_keeps_every_earlier_id():
    """``weights_seed`` joined planted_mlp's config after its toys were published: at its default it
    is not in the canonical JSON, so every earlier id holds; set, it is, and it round-trips."""
    import json

    from planted import toys

    plain = toys.PlantedMLPConfig(seed=3)
    assert "weights_seed" not in plain.to_json() and "weights_seed" not in plain.to_dict()
    assert plain.id == "f87c90514522377bd0bca3cfa1d262566b44421a5231678b88a854f460592f8e"  # its id before the field
    twin = plain.replace(weights_seed=7)
    assert json.loads(twin.to_json())["fields"]["weights_seed"] == 7 and twin.id != plain.id
    assert toys.config_from_json(json.loads(twin.to_json())) == twin
    assert toys.config_from_json(json.loads(plain.to_json())) == plain
