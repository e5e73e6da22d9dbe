"""Synthetic connectomes: the wiring's statistics match its config, the LIF dynamics and the
calcium model match their equations, both simulation kernels agree, and configs are validated."""

import dataclasses
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planted import groundtruth
from planted import toys
from planted.toys import ConnectomeConfig, calcium, network_bursts
from planted.toys import wiring_statistics as _statistics
from planted.toys._connectome._wiring import _wiring


def _degrees(w):
    out = np.diff(w.indptr)
    inn = np.bincount(w.indices, minlength=w.shape[0])
    return out, inn


def test_wiring_statistics_match_the_config():
    cfg = ConnectomeConfig(n_neurons=3000, n_modules=5, density=0.01, mixing=0.25, exc_fraction=0.75, weight=2.0,
                           weight_sigma=0.6, inhibition=3.0, dim=2, seed=4)
    w, types, positions, modules, hubs = _wiring(cfg)
    n = cfg.n_neurons
    pre, post = w.nonzero()
    assert (pre != post).all()  # no self-loops
    assert w.nnz == pytest.approx(cfg.density * n * (n - 1), rel=0.03)
    assert np.mean(modules[pre] != modules[post]) == pytest.approx(cfg.mixing, abs=0.02)
    assert np.bincount(modules).min() == n // cfg.n_modules
    assert np.mean(types > 0) == pytest.approx(cfg.exc_fraction, abs=0.03)
    values = np.asarray(w[pre, post]).ravel()
    assert (np.sign(values) == types[pre]).all()  # Dale's law: every synapse has its neuron's sign
    exc = values[types[pre] > 0]
    assert np.median(exc) == pytest.approx(cfg.weight, rel=0.05)
    assert np.log(exc).std() == pytest.approx(cfg.weight_sigma, abs=0.03)
    inh = -values[types[pre] < 0]
    assert np.median(inh) == pytest.approx(cfg.inhibition * cfg.weight, rel=0.08)
    assert positions.shape == (n, 2) and positions.min() >= 0 and positions.max() <= 1
    assert not hubs.any()


def test_hubs_rich_club_and_distance():
    cfg = ConnectomeConfig(n_neurons=2000, n_modules=2, density=0.01, hub_fraction=0.05, hub_boost=5.0, rich_club=0.3,
                           dim=2, seed=1)
    w, types, positions, modules, hubs = _wiring(cfg)
    out, inn = _degrees(w)
    # Degree-corrected: a hub's expected degree is hub_boost times the others' (up to the
    # normalisation of propensities within a module), before the rich club adds its edges.
    base = dataclasses.replace(cfg, rich_club=0.0)
    wb, *_ = _wiring(base)
    ob, ib = _degrees(wb)
    assert (ob[hubs].mean() / ob[~hubs].mean()) == pytest.approx(cfg.hub_boost, rel=0.15)
    assert (ib[hubs].mean() / ib[~hubs].mean()) == pytest.approx(cfg.hub_boost, rel=0.15)
    # The rich club: hubs connect to each other with probability about rich_club (plus the rest).
    h = np.flatnonzero(hubs)
    among = w[h][:, h].nnz / (h.size * (h.size - 1))
    assert among == pytest.approx(cfg.rich_club + wb[h][:, h].nnz / (h.size * (h.size - 1)), abs=0.05)
    # Distance-dependent wiring: connected pairs are closer than random pairs, with the mean
    # distance exp(-d / length_scale) weighting implies.
    local = ConnectomeConfig(n_neurons=2000, n_modules=1, density=0.01, dim=2, length_scale=0.1, seed=2)
    wl, _, pos, *_ = _wiring(local)
    pre, post = wl.nonzero()
    d = np.linalg.norm(pos[pre] - pos[post], axis=1)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2000, 200_000), rng.integers(0, 2000, 200_000)
    far = np.linalg.norm(pos[a] - pos[b], axis=1)
    weight = np.exp(-far / 0.1)
    assert d.mean() == pytest.approx((far * weight).sum() / weight.sum(), rel=0.05)
    assert wl.nnz == pytest.approx(local.density * 2000 * 1999, rel=0.03)


def test_reciprocity_and_clustering_reach_their_targets_inside_modules_keeping_degrees():
    import networkx as nx

    cfg = ConnectomeConfig(n_neurons=600, n_modules=3, density=0.025, mixing=0.2, degree_sigma=0.3, exc_fraction=0.8,
                           reciprocity=0.45, clustering=0.2, dim=2, seed=3)
    w, types, _, modules, _ = _wiring(cfg)
    drawn, *_ = _wiring(dataclasses.replace(cfg, reciprocity=0.0, clustering=0.0))
    graph = nx.from_scipy_sparse_array(w, create_using=nx.DiGraph)
    before = nx.from_scipy_sparse_array(drawn, create_using=nx.DiGraph)
    # networkx is the reference for both statistics, and both reach their targets from well below.
    assert nx.reciprocity(before) < 0.1 and nx.average_clustering(before) < 0.15
    reciprocity, clustering = _statistics(w)
    assert reciprocity == pytest.approx(nx.reciprocity(graph), abs=1e-12)
    assert clustering == pytest.approx(nx.average_clustering(graph), abs=1e-12)
    assert cfg.reciprocity - 0.005 <= reciprocity < cfg.reciprocity + 0.025
    assert cfg.clustering - 0.005 <= clustering < cfg.clustering + 0.025
    # Clustering alone brings reciprocity with it (a reciprocated connection closes twice the
    # triangles), and the floors are floors: reciprocity ends where clustering left it.
    only = _wiring(dataclasses.replace(cfg, reciprocity=0.0))[0]
    carried, reached = _statistics(only)
    assert 0.2 < carried < cfg.reciprocity and cfg.clustering - 0.005 <= reached < cfg.clustering + 0.025
    low_floor = _statistics(_wiring(dataclasses.replace(cfg, reciprocity=0.1))[0])
    assert low_floor[0] > 0.2 and low_floor[1] == pytest.approx(cfg.clustering, abs=0.025)
    # Every neuron keeps its in- and out-degree; the connections between modules are the drawn
    # ones, so reciprocated pairs sit inside modules.
    for a, b in zip(_degrees(w), _degrees(drawn)):
        np.testing.assert_array_equal(a, b)
    pre, post = w.nonzero()
    pre0, post0 = drawn.nonzero()
    across, across0 = modules[pre] != modules[post], modules[pre0] != modules[post0]
    np.testing.assert_array_equal(pre[across] * 600 + post[across], pre0[across0] * 600 + post0[across0])
    assert np.asarray(w[post[across], pre[across]] != 0).mean() < 0.02
    assert (np.sign(np.asarray(w[pre, post]).ravel()) == types[pre]).all()  # Dale's law
    assert (pre != post).all()
    with pytest.raises(ValueError, match=r"clustering=0\.9 not reachable"):
        _wiring(dataclasses.replace(cfg, clustering=0.9))


def test_lif_period_matches_the_equation():
    # No synapses, no background: a constant drive I > threshold fires with the period
    # t_ref + tau_m ln((I - reset) / (I - threshold)) (to within a step).
    cfg = dict(density=1e-9, background_rate=0.0, stimulus="flashes", n_features=1, tuning_density=1.0,
               tuning_gain=30.0, stimulus_period=10.0, stimulus_on=10.0, duration=2.0, observation="spikes",
               tau_m=0.02, threshold=20.0, reset=10.0, refractory=0.002, dim=0, scatter=0.0)
    toy = toys.connectome(60, seed=0, **cfg)
    truth = toy.truth
    assert truth.weights.nnz == 0
    drive = truth.tuning[:, 0]
    for i in np.flatnonzero(drive > 21.0):
        t = truth.spike_times[truth.spike_neurons == i]
        period = 0.002 + 0.02 * math.log((drive[i] - 10.0) / (drive[i] - 20.0))
        assert np.diff(t)[1:] == pytest.approx(np.full(t.size - 2, period), abs=1.01e-4)
    assert not np.isin(np.flatnonzero(drive < 19.9), truth.spike_neurons).any()  # below threshold: silent


@pytest.mark.parametrize("synapse", ["exponential", "alpha"])
def test_postsynaptic_potential_matches_its_closed_form(synapse):
    # One input of weight w at t = 0, no threshold in reach: v(t) is the leaky membrane's response
    # to the synaptic current, w e^{-t/tau_s} (exponential) or w (e/tau_s) t e^{-t/tau_s} (alpha,
    # peaking at w when t = tau_s), convolved with e^{-t/tau_m} / tau_m.
    from planted.toys._connectome._dynamics import _Dynamics, _lif_block

    cfg = ConnectomeConfig(n_neurons=2, n_modules=1, dim=0, background_rate=0.0, tau_m=0.02, tau_syn=0.002, dt=1e-4, delay=1e-4,
                           threshold=1000.0, reset=0.0, synapse=synapse, seed=0)
    dyn, w, steps = _Dynamics.of(cfg), 40.0, 300
    zeros = jnp.zeros(2, jnp.float32)
    state = (zeros, zeros, jnp.zeros(2, jnp.int32), jnp.ones(2, jnp.float32)) + ((zeros,) if synapse == "alpha" else ())
    words = jnp.zeros(2, jnp.uint32)
    recurrent = jnp.zeros((steps, 2), jnp.float32).at[0, 0].set(w)  # arrives at the end of step 0
    vs = []
    for k in range(steps):
        state, *_ = _lif_block(dyn, state, recurrent[k : k + 1], jnp.zeros(2, jnp.float32), jnp.uint32(k), words)
        vs.append(float(state[0][0]))
    t = np.arange(1, steps) * cfg.dt  # v after step k is the response k steps after the input
    tm, ts = cfg.tau_m, cfg.tau_syn
    a = 1 / ts - 1 / tm
    if synapse == "exponential":
        expected = w * ts / (tm - ts) * (np.exp(-t / tm) - np.exp(-t / ts))
    else:
        expected = w * math.e / (ts * tm) * np.exp(-t / tm) * (1 - np.exp(-a * t) * (1 + a * t)) / a**2
    np.testing.assert_allclose(vs[1:], expected, rtol=1e-4, atol=1e-5)
    assert vs[0] == 0.0 and float(state[0][1]) == 0.0


def test_rate_model_fires_at_its_rate_law():
    # No synapses, no background, a constant drive: each neuron fires Poisson spikes at
    # clip(base + gain * drive) Hz, less the refractory dead time: r / (1 + r t_ref).
    cfg = dict(model="rate", density=1e-9, background_rate=0.0, stimulus="flashes", n_features=1, tuning_density=1.0,
               tuning_gain=10.0, stimulus_period=100.0, stimulus_on=100.0, duration=40.0, observation="spikes",
               rate_base=5.0, rate_gain=2.0, rate_max=60.0, refractory=0.002, dim=0)
    toy = toys.connectome(80, seed=1, **cfg)
    drive = toy.truth.tuning[:, 0]
    law = np.clip(5.0 + 2.0 * drive, 0, 60.0)
    expected = law / (1 + law * 0.002)
    measured = np.bincount(toy.truth.spike_neurons, minlength=80) / 40.0
    assert measured.sum() == pytest.approx(expected.sum(), rel=0.02)
    z = (measured - expected) / np.sqrt(expected / 40.0)  # Poisson standard errors
    assert np.abs(z).max() < 4.5 and abs(z.mean()) < 0.5


@pytest.mark.parametrize("model, synapse", [("lif", "exponential"), ("rate", "exponential"), ("lif", "alpha")])
def test_kernels_agree_and_runs_repeat(model, synapse):
    # An alpha current carries e times the charge of an exponential one of the same peak.
    background = 3.5 if synapse == "exponential" else 3.5 / math.e
    cfg = dict(duration=1.5, background_weight=background, depression=True, n_modules=2, observation="spikes", dim=0,
               model=model, synapse=synapse)
    a = toys.connectome(300, seed=3, kernel="scipy", **cfg)
    b = toys.connectome(300, seed=3, kernel="jax", **cfg)
    assert a.truth.spike_times.size > 1000
    np.testing.assert_array_equal(a.truth.spike_neurons, b.truth.spike_neurons)
    np.testing.assert_allclose(a.truth.spike_times, b.truth.spike_times)
    again = toys.from_config(a.config)
    np.testing.assert_array_equal(again.artifact.traces, a.artifact.traces)
    # The refractory period holds and spike counts per frame are the binned spikes.
    for i in range(20):
        t = a.truth.spike_times[a.truth.spike_neurons == i]
        assert (np.diff(t) >= 0.002 - 1e-9).all()
    assert a.artifact.traces.sum() == a.truth.spike_times.size
    assert a.artifact.traces.shape == (int(1.5 * 50), 300)


def test_calcium_model_matches_its_equations_on_a_hand_made_train():
    cfg = ConnectomeConfig(frame_rate=50.0, calcium_tau=1.0, calcium_jump=50.0, calcium_base=0.1, calcium_kd=300.0)
    counts = np.zeros((200, 2), np.float32)
    counts[[5, 6, 50, 120], 0] = [1, 2, 1, 3]
    counts[100, 1] = 1
    f = calcium(counts, cfg)
    ca = np.zeros(2)
    for t in range(200):
        ca = ca * math.exp(-1 / 50.0) + 50.0 * counts[t]
        expected = (ca + 0.1) / (ca + 0.1 + 300.0)
        np.testing.assert_allclose(f[t], expected, rtol=1e-5)
    # A spike raises fluorescence by about jump / K_d; it falls to 1/e of that in tau.
    assert f[100, 1] - f[99, 1] == pytest.approx(50 / 350.1, rel=0.01)
    # Within a frame a spike has already decayed by its distance to the frame's end (the
    # organizers' model samples Ca at frame ends).
    from planted.toys._connectome._observation import _counts

    counts = _counts(dataclasses.replace(cfg, n_neurons=2, n_modules=1, duration=1.0), np.array([0.005, 0.03]), np.array([0, 1]),
                     np.arange(2), decay=1.0)
    assert counts[0, 0] == pytest.approx(math.exp(-0.015)) and counts[1, 1] == pytest.approx(math.exp(-0.01))


def test_observation_noise_scatter_and_partial_recording():
    common = dict(duration=2.0, background_weight=3.5, dim=2, seed=5)
    clean = toys.connectome(400, fluorescence_noise=0.0, scatter=0.0, **common)
    noisy = toys.connectome(400, fluorescence_noise=0.05, scatter=0.0, **common)
    assert (noisy.artifact.traces - clean.artifact.traces).std() == pytest.approx(0.05, rel=0.03)
    scattered = toys.connectome(400, fluorescence_noise=0.0, scatter=0.1, scatter_length=0.05, **common)
    f = clean.artifact.traces
    pos = clean.truth.positions
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    k = np.where((d > 0) & (d <= 0.15), 0.1 * np.exp(-((d / 0.05) ** 2)), 0.0)
    np.testing.assert_allclose(scattered.artifact.traces, f + f @ k.T, atol=1e-4)
    part = toys.connectome(400, observed_fraction=0.25, **common)
    assert part.artifact.n_observed == 100 == part.truth.observed.size
    np.testing.assert_array_equal(part.artifact.positions, part.truth.positions[part.truth.observed])
    assert part.truth.adjacency().shape == (100, 100)


def test_truth_never_reaches_a_method_and_storage_round_trips(tmp_path):
    toy = toys.connectome(150, seed=2, duration=1.0, background_weight=3.5, stimulus="gratings", n_features=4)
    artifact = toy.artifact
    assert isinstance(artifact, groundtruth.Recording)
    assert {f.name for f in dataclasses.fields(artifact)} == {"traces", "frame_rate", "kind", "positions"}
    assert toy.truth.stimulus.shape == (50, 4) and toy.truth.stimulus.max() > 0.9
    assert (np.count_nonzero(toy.truth.tuning, axis=1) >= 1).mean() > 0.7  # mixed selectivity
    back = toys.load(toys.save(toy, tmp_path / "c"))
    np.testing.assert_array_equal(back.artifact.traces, artifact.traces)
    assert (back.truth.weights != toy.truth.weights).nnz == 0
    np.testing.assert_array_equal(back.truth.spike_times, toy.truth.spike_times)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"density": 0.0}, "density"),
        ({"mixing": 1.5}, "mixing"),
        ({"rich_club": 0.2}, "rich_club=0.2 connects hubs"),
        ({"length_scale": 0.1, "dim": 0}, "length_scale=0.1 makes wiring depend on distance"),
        ({"dim": 1}, "dim must be 0"),
        ({"stimulus": "movies"}, "stimulus"),
        ({"stimulus": "flashes"}, "needs n_features"),
        ({"reset": 30.0}, "reset"),
        ({"observation": "voltage"}, "observation"),
        ({"observed_fraction": 0.0}, "observed_fraction"),
        ({"kernel": "cuda"}, "kernel"),
        ({"model": "hodgkin-huxley"}, "model"),
        ({"synapse": "delta"}, "synapse"),
        ({"reciprocity": 1.0}, "reciprocity"),
        ({"clustering": -0.1}, "clustering"),
    ],
)
def test_invalid_configs_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toys.connectome(100, seed=0, **kwargs)


def test_generator_parameters_are_the_config_fields():
    # The settings are declared once, in ConnectomeConfig: the generator's parameters are its
    # fields with the same defaults, in its order (n_neurons first, positional, then the
    # keyword-only seed, which the generator requires), and the docstring names each one.
    fields = dataclasses.fields(ConnectomeConfig)
    params = inspect.signature(toys.connectome).parameters
    expected = ["n_neurons", "seed"] + [f.name for f in fields if f.name not in ("n_neurons", "seed")]
    assert list(params) == expected
    for field in fields:
        param = params[field.name]
        if field.name == "seed":
            assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty
        else:
            assert param.default == field.default, f"{field.name}: generator {param.default!r}, config {field.default!r}"
    assert params["n_neurons"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    doc = toys.connectome.__doc__
    assert [f.name for f in fields if f.name not in doc] == []


def test_chalearn2014_wiring_has_the_challenge_networks_statistics():
    # The organizers' network file normal-1: 14,912 connections among 1,000 neurons, 80% inside
    # 10 groups, positions unrelated to the wiring; 20% of the neurons inhibitory with their
    # synapses blocked, leaving 11,949 active connections (density 0.012) with reciprocity 0.274
    # and directed clustering 0.206, reciprocated pairs all inside groups.
    w, types, positions, modules, _ = _wiring(toys.preset_config("chalearn2014", seed=0))
    pre, post = w.nonzero()
    assert w.shape == (1000, 1000) and (w.data > 0).all() and (types[pre] > 0).all()
    assert np.mean(types > 0) == pytest.approx(0.8, abs=0.03)
    assert w.nnz / (1000 * 999) == pytest.approx(0.012, rel=0.05)
    assert np.unique(modules).size == 10
    assert np.mean(modules[pre] == modules[post]) == pytest.approx(0.80, abs=0.02)
    reciprocity, clustering = _statistics(w)
    assert reciprocity == pytest.approx(0.274, abs=0.02) and clustering == pytest.approx(0.206, abs=0.015)
    across = modules[pre] != modules[post]
    assert np.asarray(w[post[across], pre[across]] != 0).mean() < 0.02
    connected = np.linalg.norm(positions[pre] - positions[post], axis=1).mean()
    everyone = np.linalg.norm(positions[:, None] - positions[None], axis=2).sum() / (1000 * 999)
    assert connected == pytest.approx(everyone, rel=0.03)


@pytest.mark.slow
def test_chalearn2014_bursts_and_keeps_the_published_ordering_on_two_minutes():
    # The preset's regime: network bursts (more than half the neurons active in a 50 ms bin)
    # near the organizers' 0.1 per second, and the published ordering of the methods' AUROC:
    # raw correlation < filtered correlation < filtered partial correlation (one hour gives
    # 0.689 < 0.786 < 0.930, benchmarks/chalearn_reproduction.py).
    from planted.evaluators.connectome import score_connectivity
    from planted.methods import connectivity as mc

    toy = toys.preset("chalearn2014", seed=1, duration=120.0)
    truth = toy.truth
    bursts, in_bursts = network_bursts(truth)
    assert 0.03 < bursts < 0.2 and in_bursts > 0.3
    raw = score_connectivity(mc.correlation(toy.artifact, preprocess="raw"), truth).auroc
    filtered = score_connectivity(mc.correlation(toy.artifact, preprocess="filtered"), truth).auroc
    partial = score_connectivity(mc.partial_correlation(toy.artifact), truth).auroc
    assert 0.6 < raw < filtered < partial


@pytest.mark.parametrize("shape", [(3, 5, 7), (40, 20, 1000), (1, 1, 1), (0, 4, 8)])
def test_sparse_nonzero_equals_numpy(shape):
    from planted.toys._connectome._dynamics import _nonzero

    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.001, 0.3, 1.0):
        flags = rng.random(shape) < density
        for ours, reference in zip(_nonzero(flags), np.nonzero(flags), strict=True):
            np.testing.assert_array_equal(ours, reference)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=300).filter(lambda w: sum(w) > 0), st.integers(0, 2**32 - 1))
def test_the_guide_table_finds_what_a_binary_search_finds(weights, seed):
    from planted.toys._connectome._wiring import _locator

    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    rng = np.random.default_rng(seed)
    u = np.concatenate([rng.random(2000), cdf[:-1], np.nextafter(cdf[:-1], 0), [0.0, np.nextafter(1.0, 0)]])
    u = u[(u >= 0) & (u < 1)]
    np.testing.assert_array_equal(_locator(cdf)(u), np.searchsorted(cdf, u, side="right"))


@pytest.mark.parametrize("n, spiking", [(1000, s) for s in (0, 5, 24, 25, 90, 300, 600, 1000)] + [(3200, 1000), (3200, 1600)])
def test_each_way_of_propagating_spikes_gives_the_dense_product(n, spiking):
    """The rows of the neurons that spiked, gathered in the smallest tier that holds them, or the
    dense product when more spiked: the recurrent input is the same."""
    from planted.toys._connectome._dynamics import _propagate

    rng = np.random.default_rng(spiking)
    k = 20
    weights = jnp.asarray(rng.normal(size=(n, n)) * (rng.random((n, n)) < 0.02), jnp.float32)
    release = np.zeros((k, n), np.float32)
    release[rng.integers(0, k, spiking), rng.choice(n, spiking, replace=False)] = rng.uniform(0.1, 1, spiking)
    ours = np.asarray(jax.jit(_propagate)(jnp.asarray(release), weights))
    np.testing.assert_allclose(ours, release.astype(np.float64) @ np.asarray(weights, np.float64), rtol=1e-5, atol=1e-5)
