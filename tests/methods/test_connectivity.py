"""Connectivity methods on planted networks simulated here: every method finds the synapses of a
spiking network seen through calcium fluorescence, partial correlation sees through common input,
the lagged methods find direction and sign, and no option or silent neuron yields NaN."""

import numpy as np
import pytest
import scipy.signal
from sklearn.covariance import LedoitWolf, ShrunkCovariance

from planted import methods
from planted.evaluators.circuits import auroc
from planted.evaluators.connectome import score_connectivity
from planted.groundtruth import Recording
from planted.methods.connectivity import preprocess

FRAME_RATE = 50.0


def _network(rng, n, density, *, inhibitory=0.0, low=0.03, high=0.1):
    """Random directed weights [pre, post] without self-connections; inhibitory rows negative."""
    mask = (rng.random((n, n)) < density) & ~np.eye(n, dtype=bool)
    w = np.where(mask, rng.uniform(low, high, (n, n)), 0.0)
    w[rng.random(n) < inhibitory] *= -1
    return w


def _calcium(seed, n=50, n_frames=30_000, n_hubs=3):
    """A Bernoulli spiking network (a spike of ``pre`` raises ``post``'s firing probability in the
    next frame by the weight; rare network bursts drive everyone) seen through the calcium model
    of the ChaLearn data (Stetter et al. 2012): each spike adds 50 to a concentration decaying
    with tau = 1 s, fluorescence Ca / (Ca + 300) plus white noise of 0.03."""
    rng = np.random.default_rng([seed, 0])
    w = _network(rng, n, 0.08)
    for hub in range(n_hubs):
        targets = rng.choice(np.delete(np.arange(n), hub), min(15, n - 1), replace=False)
        w[hub, targets] = rng.uniform(0.1, 0.2, targets.size)
    uniform = rng.random((n_frames, n))
    burst = np.where(rng.random(n_frames) < 0.002, 0.3, 0.0)
    spikes = np.zeros((n_frames, n), np.float32)
    previous = np.zeros(n)
    for t in range(n_frames):
        previous = (uniform[t] < 0.01 + burst[t] + previous @ w).astype(np.float64)
        spikes[t] = previous
    decay = np.exp(-1.0 / FRAME_RATE)
    calcium = 0.1 + scipy.signal.lfilter([50.0], [1.0, -decay], spikes, axis=0)
    fluorescence = calcium / (calcium + 300.0) + 0.03 * rng.standard_normal(spikes.shape)
    return Recording(fluorescence, FRAME_RATE, "calcium"), w


def _var(seed, n=40, n_frames=4000):
    """A linear-Gaussian VAR(1) ``x_t = x_{t-1} @ A + noise`` with excitatory and inhibitory
    neurons, spectral radius 0.6."""
    rng = np.random.default_rng([seed, 1])
    a = _network(rng, n, 0.08, inhibitory=0.3, low=0.2, high=0.4)
    a *= 0.6 / np.abs(np.linalg.eigvals(a)).max()
    noise = rng.standard_normal((n_frames, n))
    x = np.zeros((n_frames, n))
    for t in range(1, n_frames):
        x[t] = x[t - 1] @ a + noise[t]
    return Recording(x, FRAME_RATE, "calcium"), a


def _common_input(seed, n=40, n_frames=3000):
    """Instantaneous linear-Gaussian activity ``x = noise @ inv(I - W)`` (acyclic W) where four
    recorded drivers each project to 12 neurons: their targets correlate without a synapse."""
    rng = np.random.default_rng([seed, 2])
    w = np.zeros((n, n))
    for driver in range(4):
        targets = rng.choice(np.arange(4, n), 12, replace=False)
        w[driver, targets] = rng.uniform(0.7, 1.0, targets.size)
    extra = (rng.random((n, n)) < 0.04) & np.triu(np.ones((n, n), bool), 1) & (w == 0)
    w[extra] = rng.uniform(0.3, 0.6, int(extra.sum()))
    x = rng.standard_normal((n_frames, n)) @ np.linalg.inv(np.eye(n) - w)
    return Recording(x, FRAME_RATE, "calcium"), w


@pytest.fixture(scope="module")
def calcium():
    return _calcium(0)


@pytest.fixture(scope="module")
def small():
    """A short recording with a silent neuron (constant fluorescence) and one of all zeros."""
    recording, _ = _calcium(1, n=12, n_frames=3000, n_hubs=1)
    traces = recording.traces.copy()
    traces[:, 3] = 0.2
    traces[:, 7] = 0.0
    return Recording(traces, FRAME_RATE, "calcium")


# name, method, options, minimal AUROC on the calcium network (measured 0.04-0.06 above each)
METHODS = [
    ("correlation", methods.correlation, {}, 0.75),
    ("correlation-filtered", methods.correlation, dict(preprocess="filtered"), 0.85),
    ("partial_correlation", methods.partial_correlation, {}, 0.84),
    ("partial_correlation-fixed", methods.partial_correlation, dict(shrinkage=0.1), 0.83),
    ("partial_correlation-glasso", methods.partial_correlation, dict(shrinkage="glasso"), 0.84),
    ("lagged_correlation", methods.lagged_correlation, {}, 0.88),
    ("granger", methods.granger, {}, 0.88),
    ("granger-order2", methods.granger, dict(order=2), 0.88),
]
IDS = [m[0] for m in METHODS]


@pytest.mark.parametrize("name, fn, kwargs, minimum", METHODS, ids=IDS)
def test_returns_finite_scores_and_ignores_silent_neurons(small, name, fn, kwargs, minimum):
    scores = fn(small, **kwargs)
    assert scores.shape == (12, 12) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert (np.diag(scores) == 0).all()
    assert (scores[[3, 7]] == 0).all() and (scores[:, [3, 7]] == 0).all()
    assert np.abs(scores).max() > 0
    np.testing.assert_array_equal(scores, fn(small, **kwargs))
    silent = Recording(np.full((100, 4), 0.5, np.float32), FRAME_RATE, "calcium")
    np.testing.assert_array_equal(fn(silent, **kwargs), np.zeros((4, 4)))


@pytest.mark.parametrize("name, fn, kwargs, minimum", METHODS, ids=IDS)
def test_recovers_the_synapses_of_a_spiking_network(calcium, name, fn, kwargs, minimum):
    recording, w = calcium
    result = score_connectivity(fn(recording, **kwargs), w)
    assert result.auroc >= minimum, result
    assert result.auprc >= 3 * result.n_edges / result.n_pairs, result  # three times chance


def test_filtering_beats_raw_fluorescence(calcium):
    recording, w = calcium
    raw = score_connectivity(methods.correlation(recording), w)
    filtered = score_connectivity(methods.correlation(recording, preprocess="filtered"), w)
    assert filtered.auroc >= raw.auroc + 0.05 and filtered.auprc >= raw.auprc + 0.05, (raw, filtered)


def test_lagged_methods_find_direction(calcium):
    recording, w = calcium
    edge = w != 0
    one_way = edge ^ edge.T  # pairs with a synapse one way only: the reverse is the decoy
    correlation = methods.correlation(recording, preprocess="filtered")
    assert auroc(correlation[one_way], edge[one_way]) == 0.5  # a symmetric method cannot tell
    for fn, kwargs in [(methods.lagged_correlation, {}), (methods.granger, {}), (methods.granger, dict(order=2))]:
        directed = auroc(fn(recording, **kwargs)[one_way], edge[one_way])
        assert directed >= 0.8, (fn.__name__, kwargs, directed)


def test_lagged_methods_find_direction_and_sign_of_a_var_process():
    recording, a = _var(0)
    for fn in (methods.granger, methods.lagged_correlation):
        result = score_connectivity(fn(recording, preprocess="raw"), a, absolute=True)
        assert result.auroc >= 0.97 and result.sign_accuracy >= 0.97, (fn.__name__, result)
    symmetric = score_connectivity(methods.correlation(recording), a, absolute=True)
    assert symmetric.auroc <= 0.65, symmetric


def test_partial_correlation_sees_through_common_input():
    for seed in (0, 1):
        recording, w = _common_input(seed)
        plain = score_connectivity(methods.correlation(recording), w).auroc
        partial = score_connectivity(methods.partial_correlation(recording, preprocess="raw"), w).auroc
        assert partial >= plain + 0.03, (seed, plain, partial)


def test_ledoit_wolf_never_shrinks_the_ranking_away(small):
    events = preprocess(small.traces, "calcium")[:, [i for i in range(12) if i not in (3, 7)]]
    assert LedoitWolf().fit(_standardized(events)).shrinkage_ == 1.0  # too few frames of sparse events
    capped = methods.partial_correlation(small)
    np.testing.assert_array_equal(capped, methods.partial_correlation(small, shrinkage=0.99))
    assert np.abs(capped).max() > 0


def _standardized(x):
    x = np.asarray(x, np.float64)
    return (x - x.mean(0)) / x.std(0)


def _partial(precision):
    d = np.sqrt(np.diag(precision))
    out = -precision / np.outer(d, d)
    np.fill_diagonal(out, 0.0)
    return out


def test_partial_correlation_matches_scikit_learn():
    recording, _ = _common_input(0, n=20, n_frames=500)
    z = _standardized(recording.traces)
    ledoit_wolf = methods.partial_correlation(recording, preprocess="raw")
    np.testing.assert_allclose(ledoit_wolf, _partial(LedoitWolf().fit(z).precision_), atol=1e-5)
    fixed = methods.partial_correlation(recording, preprocess="raw", shrinkage=0.3)
    np.testing.assert_allclose(fixed, _partial(ShrunkCovariance(shrinkage=0.3).fit(z).precision_), atol=1e-5)
    corr = methods.correlation(recording)
    np.testing.assert_allclose(corr, np.corrcoef(recording.traces.T.astype(np.float64)) - np.eye(20), atol=1e-5)


@pytest.mark.parametrize("order", [1, 2])
def test_granger_is_the_least_squares_var_fit(order):
    recording, _ = _var(0, n=15, n_frames=3000)
    z = _standardized(recording.traces)
    past = np.concatenate([z[order - lag : len(z) - lag] for lag in range(1, order + 1)], axis=1)
    now = z[order:]
    coef = np.linalg.solve(past.T @ past / len(z) + 1e-3 * np.eye(15 * order), past.T @ now / len(z))
    total = coef.reshape(order, 15, 15).sum(axis=0)
    np.fill_diagonal(total, 0.0)
    np.testing.assert_allclose(methods.granger(recording, preprocess="raw", order=order), total, atol=2e-3)


def test_preprocess_by_hand():
    x = np.zeros((10, 3), np.float32)
    x[5:, 0] = 0.5  # one spike onset at frame 5 in neuron 0
    x[6:, 1] = 0.05  # a rise below the threshold
    events = preprocess(x, "calcium", weighting=False)
    assert events.shape == (7, 3)
    np.testing.assert_array_equal(events[:, 0], [0, 0, 0.5, 0.5, 0.5, 0, 0])  # rows = frames 2..8
    assert (events[:, 1:] == 0).all()
    weighted = preprocess(x, "calcium")
    np.testing.assert_allclose(weighted[2:5, 0], 1.5**3, rtol=1e-6)  # (0.5 + 1) ** (1 + 1 / 0.5)
    assert (weighted[[0, 1, 5, 6]] == 1).all() and (weighted[:, 1:] == 1).all()
    counts = np.array([[1, 1], [1, 0], [0, 0]], np.float32)
    # a frame where both fire weighs each less than a frame where one fires alone
    np.testing.assert_allclose(preprocess(counts, "spikes"), [[2**1.5, 2**1.5], [4, 1], [1, 1]], rtol=1e-6)
    np.testing.assert_array_equal(preprocess(counts, "spikes", weighting=False), counts)


def test_preprocess_is_chunk_invariant(monkeypatch):
    recording, _ = _calcium(2, n=8, n_frames=1000, n_hubs=0)
    whole = preprocess(recording.traces, "calcium")
    monkeypatch.setattr("planted.methods.connectivity.CHUNK", 64)
    np.testing.assert_array_equal(preprocess(recording.traces, "calcium"), whole)
    chunked = methods.granger(recording, order=2)
    monkeypatch.undo()
    np.testing.assert_allclose(methods.granger(recording, order=2), chunked, atol=1e-5)


RECORDING = Recording(np.random.default_rng(0).random((50, 4), np.float32), FRAME_RATE, "calcium")
INVALID = [
    (methods.correlation, dict(preprocess="smooth"), "preprocess"),
    (methods.partial_correlation, dict(shrinkage="oas"), "shrinkage"),
    (methods.partial_correlation, dict(shrinkage=1.5), "shrinkage"),
    (methods.partial_correlation, dict(shrinkage="glasso", alpha=0.0), "alpha"),
    (methods.lagged_correlation, dict(max_lag=0), "max_lag"),
    (methods.lagged_correlation, dict(max_lag=1.5), "max_lag"),
    (methods.granger, dict(order=0), "order"),
    (methods.granger, dict(ridge=-1.0), "ridge"),
    (methods.granger, dict(ridge=float("nan")), "ridge"),
]


@pytest.mark.parametrize("fn, kwargs, match", INVALID, ids=[f"{f.__name__}-{m}-{k}" for f, k, m in INVALID])
def test_invalid_options_name_the_parameter(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(RECORDING, **kwargs)


def test_invalid_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="recording must be a groundtruth Recording"):
        methods.correlation(RECORDING.traces)
    with pytest.raises(ValueError, match="frames"):
        methods.correlation(Recording(np.ones((4, 2)), FRAME_RATE, "calcium"), preprocess="filtered")
    with pytest.raises(ValueError, match="kind"):
        preprocess(RECORDING.traces, "voltage")
    with pytest.raises(ValueError, match="threshold"):
        preprocess(RECORDING.traces, "calcium", threshold=-1.0)
    with pytest.raises(ValueError, match="spike counts must be >= 0"):
        preprocess(-RECORDING.traces, "spikes")
    with pytest.raises(ValueError, match="traces contains 1 NaN"):
        preprocess(np.where(np.eye(5, 3, dtype=bool) & (np.arange(3) == 1), np.nan, 0.0), "calcium")


def test_rich_club_is_found_where_planted_and_not_elsewhere():
    from planted.methods.graphs import rich_club
    from planted.toys import ConnectomeConfig
    from planted.toys._connectome._wiring import _wiring

    tops = []
    for strength in (0.0, 0.4):
        w, *_ = _wiring(ConnectomeConfig(n_neurons=500, n_modules=1, density=0.012, hub_fraction=0.05, hub_boost=3.0,
                                         rich_club=strength, seed=0))
        k, phi, normalised = rich_club(w, n_random=3, seed=0)
        assert np.isfinite(normalised).all() and (phi >= 0).all() and (phi <= 1).all()
        tops.append(normalised[k >= np.percentile(k, 60)].max())
    assert tops[0] < 1.3 < 2.0 < tops[1]
    with pytest.raises(ValueError, match="n_random"):
        rich_club(np.eye(3), n_random=0)
