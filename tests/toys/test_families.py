"""Each toy family is declared once, and everything that names families derives from that.

For every family: its kind is its config's kind; the public generator's parameters are exactly the
config's fields, with the same defaults (the seed is asked for by keyword), and its docstring names each one (so a setting cannot be
added to one and forgotten in the others); ``from_config`` and ``config_from_json`` find it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from planted import toys

KINDS = toys.FAMILY_KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_a_family_has_one_kind(kind):
    family = toys.family(kind)
    assert family.kind == family.config.kind == kind
    assert getattr(toys, family.generator.__name__) is family.generator
    assert getattr(toys, family.config.__name__) is family.config


@pytest.mark.parametrize("kind", KINDS)
def test_generator_signature_and_docs_match_the_config(kind):
    family = toys.family(kind)
    fields = {f.name: f for f in dataclasses.fields(family.config)}
    params = inspect.signature(family.generator).parameters
    assert list(params) == list(fields) or set(params) == set(fields), (sorted(set(params) ^ set(fields)))
    for name, param in params.items():
        field = fields[name]
        default = field.default if field.default is not dataclasses.MISSING else inspect.Parameter.empty
        if name == "seed":  # a generator asks for its seed explicitly, by keyword (the config defaults to 0)
            assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty
            continue
        assert param.default == default, f"{kind}.{name}: generator default {param.default!r}, config {default!r}"
    doc = (family.generator.__doc__ or "") + (family.config.__doc__ or "")
    undocumented = [name for name in fields if name not in doc]
    assert not undocumented, f"{kind}: settings not described in the docs: {undocumented}"


def test_config_from_json_names_the_known_kinds():
    with pytest.raises(ValueError, match="unknown config kind 'sparse_feature'; did you mean sparse_features"):
        toys.config_from_json({"kind": "sparse_feature", "schema": 1, "fields": {}})


@pytest.mark.parametrize("kind", KINDS)
def test_config_json_round_trip(kind, tiny):
    config = tiny[kind]()
    again = toys.config_from_json(json.loads(config.to_json()))
    assert again == config and again.id == config.id


OVERSIZED = [
    (lambda: toys.sparse_features(512, 256, n_samples=10**8, mean_active=5, seed=0), "sparse_features: .* lower n_samples"),
    (lambda: toys.sparse_features(10**6, 10**5, n_samples=100, mean_active=5, seed=0), "lower n_features or d_model"),
    (lambda: toys.feature_view(64, 32, 100_000, n_samples=10**7, seed=0), "feature_view: .* lower n_samples or d_model"),
    (lambda: toys.superposition(100_000, 100_000, restarts=1024, seed=0), "lower n_features, n_hidden or restarts"),
    (lambda: toys.connectome(10**6, seed=0), "connectome: .* lower n_neurons or density"),
    (lambda: toys.connectome(1000, seed=0, duration=1e6, frame_rate=1000.0), "lower duration, frame_rate or n_neurons"),
    (lambda: toys.planted_mlp(seed=0, width=65_536, n_blocks=64), "planted_mlp: .* lower width or n_blocks"),
    (lambda: toys.rasp_transformer("shuffle_dyck3", 100_000, seed=0), "rasp_transformer: .* lower n_samples"),
]


@pytest.mark.parametrize("make, match", OVERSIZED)
def test_oversized_configs_are_refused_before_anything_is_allocated(make, match):
    """A config needing more memory than the machine has is a ValueError naming the parameters,
    raised from an estimate in well under a second and a few MiB, instead of a MemoryError after
    minutes or a JAX abort."""
    import time
    import tracemalloc

    for kind in toys.FAMILY_KINDS:  # every family's module imported before measuring
        toys.family(kind)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        make()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "GiB" in str(info.value) and "available" in str(info.value)
    assert seconds < 5 and peak < 64 << 20, (seconds, peak)
