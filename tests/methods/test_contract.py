"""Contract tests over every features method: one registry, one shared set of promises.

Adding a method is one line in METHODS.
"""

import inspect

import numpy as np
import pytest
import scipy.sparse as sp

from planted import methods
from planted import toys
from planted.groundtruth import Dictionary, FeatureToy, FeatureTruth

METHODS = [
    ("pca", methods.pca, dict(n_components=8), False),
    ("ica", methods.ica, dict(n_components=8, seed=0), True),
    ("nmf", methods.nmf, dict(n_components=12, seed=0, max_iter=50), True),
    ("sae-relu", methods.sae, dict(n_latents=24, kind="relu", seed=0, n_steps=64, batch_size=64), True),
    ("sae-topk", methods.sae, dict(n_latents=24, kind="topk", k=3, seed=0, n_steps=64, batch_size=64), True),
    ("sae-batchtopk", methods.sae, dict(n_latents=24, kind="batchtopk", k=3, seed=0, n_steps=64, batch_size=64), True),
    ("sae-jumprelu", methods.sae, dict(n_latents=24, kind="jumprelu", seed=0, n_steps=64, batch_size=64), True),
]
IDS = [m[0] for m in METHODS]


@pytest.fixture(scope="module")
def toy():
    return toys.sparse_features(20, 8, 600, mean_active=3, noise_std=0.01, seed=0)


@pytest.mark.parametrize("name, fn, kwargs, seeded", METHODS, ids=IDS)
def test_returns_a_finite_dictionary_of_the_right_shape(toy, name, fn, kwargs, seeded):
    d = fn(toy.activations, **kwargs)
    assert isinstance(d, Dictionary)
    k = kwargs.get("n_latents", kwargs.get("n_components"))
    assert d.directions.shape == (k, 8) and d.directions.dtype == np.float32
    assert np.isfinite(d.directions).all()
    assert d.codes is not None and d.codes.shape == (600, k)
    codes = d.codes.toarray() if sp.issparse(d.codes) else d.codes
    assert np.isfinite(codes).all()
    if d.encoder is not None:
        np.testing.assert_allclose(d.encode(toy.activations), codes, rtol=1e-4, atol=1e-4)
    # codes @ directions + bias reconstructs the input better than its mean does
    err = ((toy.activations - d.reconstruct(codes)) ** 2).sum()
    assert err < ((toy.activations - toy.activations.mean(0)) ** 2).sum()


@pytest.mark.parametrize("name, fn, kwargs, seeded", METHODS, ids=IDS)
def test_same_seed_same_output(toy, name, fn, kwargs, seeded):
    a, b = fn(toy.activations, **kwargs), fn(toy.activations, **kwargs)
    np.testing.assert_array_equal(a.directions, b.directions)
    if seeded and name != "nmf":  # NMF's nndsvda start is deterministic, the seed only breaks ties
        c = fn(toy.activations, **{**kwargs, "seed": 1})
        assert not np.array_equal(a.directions, c.directions)


@pytest.mark.parametrize("name, fn, kwargs, seeded", METHODS, ids=IDS)
def test_methods_never_accept_truth(toy, name, fn, kwargs, seeded):
    """A method handed a toy or a truth object refuses it: it may only see activations."""
    for leak in (toy, toy.truth):
        with pytest.raises(ValueError, match="activations"):
            fn(leak, **kwargs)
    params = inspect.signature(fn).parameters
    assert not any(p.annotation in (FeatureTruth, FeatureToy, "FeatureTruth", "FeatureToy") for p in params.values())


@pytest.mark.parametrize("name, fn, kwargs, seeded", METHODS, ids=IDS)
def test_bad_activations_are_rejected(name, fn, kwargs, seeded):
    bad = np.ones((50, 8), np.float32)
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="activations contains 1 NaN"):
        fn(bad, **kwargs)
    with pytest.raises(ValueError, match="activations must be 2-D"):
        fn(np.ones(8), **kwargs)


@pytest.mark.parametrize(
    "fn, kwargs, match",
    [
        (methods.pca, dict(n_components=0), r"pca: n_components must be in \[1, 8\], got 0"),
        (methods.pca, dict(n_components=9), r"n_components must be in \[1, 8\], got 9"),
        (methods.nmf, dict(n_components=41, seed=0), r"nmf: n_components must be in \[1, 40\], got 41"),
        (methods.ica, dict(n_components=2.5, seed=0), "n_components"),
        (methods.nmf, dict(n_components=-1, seed=0), "n_components"),
        (methods.sae, dict(n_latents=0, seed=0), "n_latents"),
        (methods.sae, dict(n_latents=8, kind="gated", seed=0), "kind must be one of"),
        (methods.sae, dict(n_latents=8, kind="topk", seed=0), "k is required"),
        (methods.sae, dict(n_latents=8, kind="topk", k=9, seed=0), "k must be in"),
        (methods.sae, dict(n_latents=8, seed=0, lr=0.0), "lr"),
        (methods.sae, dict(n_latents=8, seed=0, n_steps=0), "n_steps"),
        (methods.sae, dict(n_latents=8, seed=0, l1_coefficient=-1.0), "l1_coefficient"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(fn, kwargs, match):
    x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        fn(x, **kwargs)


_DECOMPOSITION_DIGEST = """
import hashlib
from planted import methods, toys
x = toys.sparse_features(n_features=256, d_model=128, n_samples=20_000, seed=0).activations
for d in (methods.pca(x, 64), methods.ica(x, 128, seed=0, max_iter=50), methods.nmf(x[:4000], 64, seed=0, max_iter=50)):
    print(hashlib.sha256(d.directions.tobytes() + d.codes.tobytes()).hexdigest())
"""


def test_decompositions_are_the_same_on_one_thread_and_on_many():
    """FastICA's result moved with the BLAS thread count (its products split their sums by
    thread); PCA, ICA and NMF now give the same arrays bit for bit whatever the thread settings."""
    import os
    import subprocess
    import sys

    one = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    default = {k: v for k, v in os.environ.items() if k not in one}
    runs = [subprocess.run([sys.executable, "-c", _DECOMPOSITION_DIGEST], env=env, capture_output=True, text=True,
                           check=True).stdout for env in (default, {**default, **one})]
    assert len(runs[0].split()) == 3 and runs[0] == runs[1]
