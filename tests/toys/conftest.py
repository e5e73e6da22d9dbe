import pytest

from planted import toys

# One tiny config per toy family; tests/toys/test_storage.py fails when a family is added without one.
TINY = {
    "sparse_features": lambda: toys.SparseFeaturesConfig(n_features=12, d_model=6, n_samples=40, mean_active=2.0,
                                                         hierarchy_roots=2, hierarchy_branching=2, hierarchy_depth=1,
                                                         seed=3),
    "feature_view": lambda: toys.FeatureViewConfig(n_pool=12, n_features=8, d_model=6, offset=2, n_samples=40,
                                                   mean_active=2.0, frame="random", rescale=0.5, deleted_pcs=1, seed=1),
    "superposition": lambda: toys.SuperpositionConfig(n_features=5, n_hidden=2, n_samples=16, sparsity=0.9, n_steps=20,
                                                      snapshot_every=10, seed=0),
    "planted_mlp": lambda: toys.PlantedMLPConfig(n_inputs=8, n_tasks=2, depth=2, n_blocks=3, width=32, n_samples=16,
                                                 naturalise=True, seed=1),
    "damaged": lambda: toys.DamagedConfig(base=TINY["planted_mlp"]().to_json(), damage="noise", fraction=0.3,
                                          strength=1.0, seed=2),
    "connectome": lambda: toys.ConnectomeConfig(n_neurons=40, duration=2.0, seed=0),
    "rasp_transformer": lambda: toys.RASPTransformerConfig(program="successor", n_samples=8, seed=0),
}


@pytest.fixture
def tiny():
    """``{kind: () -> a tiny config}`` for every toy family."""
    return TINY
