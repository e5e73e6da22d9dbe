import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from planted.groundtruth import Dictionary, Encoder, FeatureTruth

D = np.eye(4, dtype=np.float32)


def _truth(**changes):
    kwargs = dict(
        directions=D,
        norms=np.ones(4),
        represented=np.ones(4, bool),
        codes=sp.csr_matrix((10, 4), dtype=np.float32),
        firing_probabilities=np.full(4, 0.1),
        labels=tuple("abcd"),
    )
    kwargs.update(changes)
    return FeatureTruth(**kwargs)


nan = np.where(np.eye(3, 4) > 0, np.nan, 0).astype(np.float32)
inf = np.full((3, 4), np.inf, np.float32)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(directions=np.zeros((0, 4))), "directions must not be empty"),
        (dict(directions=np.ones(4)), "directions must be 2-D"),
        (dict(directions=nan), "directions contains 3 NaN"),
        (dict(directions=inf), "directions contains 0 NaN and 12 inf"),
        (dict(directions=D, codes=np.ones((5, 3))), "codes must have 4 columns"),
        (dict(directions=D, codes=np.full((5, 4), np.nan)), "codes contains"),
        (dict(directions=D, decoder_bias=np.ones(3)), "decoder_bias must have length 4"),
        (dict(directions=D, encoder="not an encoder"), "encoder must be a groundtruth.Encoder"),
        (dict(directions=[[1, 2], [3]]), "directions must be a 2-D numeric array"),
        (dict(directions=np.array([["a", "b"]])), "directions must be numeric"),
    ],
)
def test_invalid_dictionaries_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dictionary(**kwargs)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(directions=2 * D), "unit rows"),
        (dict(norms=np.ones(3)), "norms must have length 4"),
        (dict(represented=np.ones(4)), "represented must be a bool array"),
        (dict(codes=sp.csr_matrix((10, 3))), "codes must have 4 columns"),
        (dict(firing_probabilities=np.full(4, 1.5)), "firing_probabilities must lie in"),
        (dict(labels=("a",)), "labels must have 4 entries"),
        (dict(parents=np.array([-1, 0, 9, 1])), "parents must be -1 or a feature index"),
    ],
)
def test_invalid_truths_name_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        _truth(**changes)


def test_encoder_activations():
    w = np.eye(3, dtype=np.float32)
    x = np.array([[3.0, -1.0, 2.0], [0.5, 0.2, 0.1]], np.float32)
    relu = Encoder(weights=w, bias=np.zeros(3), pre_bias=np.zeros(3), activation="relu")
    np.testing.assert_array_equal(relu(x), np.maximum(x, 0))
    topk = Encoder(weights=w, bias=np.zeros(3), pre_bias=np.zeros(3), activation="topk", k=1)
    np.testing.assert_array_equal(topk(x), [[3, 0, 0], [0.5, 0, 0]])
    thr = Encoder(weights=w, bias=np.zeros(3), pre_bias=np.full(3, 1.0), activation="threshold", threshold=np.full(3, 0.5))
    np.testing.assert_array_equal(thr(x), [[2, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match=r"encoder.k must be in \[1, 3\], got 7"):
        Encoder(weights=w, bias=np.zeros(3), pre_bias=np.zeros(3), activation="topk", k=7)
    with pytest.raises(ValueError, match="activations must have 3 columns"):
        relu(np.ones((2, 4)))


@pytest.mark.parametrize("activation, k, tied", [("topk", 5, False), ("topk", 5, True), ("topk", 40, False),
                                                 ("relu", None, False), ("identity", None, False), ("threshold", None, False)])
def test_sparse_codes_are_scipys_conversion_of_the_dense_codes(activation, k, tied, monkeypatch):
    """``Encoder.sparse`` builds its CSR itself (for topk from the chosen entries): the same
    entries, order and index type as SciPy's conversion of the dense codes, across row blocks,
    with top-k entries that the ReLU zeroes, exact zeros, a single row, and (``tied``) latents
    in pairs of equal weights, so that some rows tie at their k-th largest value."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 40)).astype(np.float32)
    if tied:
        w[:, 30:] = w[:, 20:30]
    x = rng.standard_normal((3000, 6)).astype(np.float32)
    monkeypatch.setattr("planted.groundtruth._records._BLOCK_ENTRIES", 40 * 700)  # blocks of 700 rows: five
    x[5] = 0.0
    bias = rng.standard_normal(40) - 1.5
    if tied:
        bias[30:] = bias[20:30]
    e = Encoder(weights=w, bias=bias, pre_bias=np.zeros(6), activation=activation, k=k,
                threshold=np.full(40, 0.3) if activation == "threshold" else None)
    assert len(e._row_blocks(x.shape[0])) == 5
    if tied:
        pre = x @ w + bias.astype(np.float32)
        ties = (pre >= np.sort(pre, axis=1)[:, -k, None]).sum(axis=1) != k
        assert 0.05 < ties.mean() < 0.95, ties.mean()
    for rows in (x, x[:1]):
        got, want = e.sparse(rows), sp.csr_matrix(e(rows))
        assert got.shape == want.shape and got.dtype == want.dtype and got.indices.dtype == want.indices.dtype
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
    # the blocks one after the other or side by side: the same codes
    with threadpool_limits(limits=1, user_api="blas"):
        serial, dense = e.sparse(x), e(x)
    with threadpool_limits(limits=2, user_api="blas"):
        np.testing.assert_array_equal(e(x), dense)
        assert (e.sparse(x) != serial).nnz == 0
    if activation == "topk":
        assert 0 < e.sparse(x).nnz < k * x.shape[0]  # some chosen entries were not positive
        pre = (x @ w + bias).astype(np.float32)  # the dense codes against argpartition's choice in every row
        keep = np.argpartition(-pre, k - 1, axis=1)[:, :k]
        want = np.zeros_like(pre)
        np.put_along_axis(want, keep, np.maximum(np.take_along_axis(pre, keep, axis=1), 0), axis=1)
        np.testing.assert_allclose(e(x), want, rtol=1e-6, atol=1e-6)
        assert ((e(x) != 0) == (want != 0)).all()


def test_codes_do_not_depend_on_the_blas_threads():
    """Blocks of an input large enough for the BLAS to split its products across threads: the
    products run on one BLAS thread, side by side or one after the other, so the codes are the same
    bit for bit under any thread setting."""
    rng = np.random.default_rng(1)
    e = Encoder(weights=rng.standard_normal((256, 512)).astype(np.float32), bias=rng.standard_normal(512),
                pre_bias=rng.standard_normal(256), activation="topk", k=16)
    x = rng.standard_normal((9000, 256)).astype(np.float32)  # 4.6M codes: nine blocks, the last short
    assert len(e._row_blocks(x.shape[0])) == 9
    codes = {}
    for threads in (1, 2, 3):
        with threadpool_limits(limits=threads, user_api="blas"):
            codes[threads] = (e(x), e.sparse(x))
    for threads in (2, 3):
        np.testing.assert_array_equal(codes[threads][0], codes[1][0])
        assert (codes[threads][1] != codes[1][1]).nnz == 0


def test_dictionary_reconstructs_with_bias():
    d = Dictionary(directions=D, decoder_bias=np.arange(4), codes=np.eye(4))
    np.testing.assert_array_equal(d.reconstruct(d.codes), np.eye(4) + np.arange(4))
    with pytest.raises(ValueError, match="no encoder"):
        d.encode(np.eye(4))


def test_progress_writes_lines_when_not_on_a_terminal_and_a_bar_on_one():
    import io

    from planted.groundtruth import Progress

    quiet = io.StringIO()
    with Progress(10, "short", stream=quiet) as bar:  # ends before the first line is due
        bar.update(10)
    assert quiet.getvalue() == ""
    log = io.StringIO()
    with Progress(4, "cells", stream=log, every=0.0, unit="cells") as bar:
        bar.update(1)
        bar.update(1)
        bar.update(2)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("cells: 1/4 cells 25%") and "elapsed, about" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("cells: 4/4 cells done")
    assert "\r" not in log.getvalue()

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    with Progress(3, "bar", stream=term) as bar:
        bar.update(3)
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()
    silent = io.StringIO()
    with Progress(3, "off", stream=silent, enabled=False, every=0.0) as bar:
        bar.update(3)
    assert silent.getvalue() == ""


def test_a_state_dict_with_anything_but_tensors_is_refused_and_runs_nothing(tmp_path):
    """A .pt whose pickle names another callable (os.system here) is refused before anything is
    called; truncated and foreign archives are ValueErrors naming the file."""
    import pickle
    import zipfile

    from planted.groundtruth import read_torch_state_dict

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        z.writestr("archive/byteorder", "little")
    with pytest.raises(ValueError, match=r"evil.pt: refuses (posix|os)\.system"):
        read_torch_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()
    (tmp_path / "cut.pt").write_bytes((tmp_path / "evil.pt").read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.pt: not a readable PyTorch state dict"):
        read_torch_state_dict(tmp_path / "cut.pt")
    with zipfile.ZipFile(tmp_path / "other.pt", "w") as z:
        z.writestr("x.txt", "hello")
    with pytest.raises(ValueError, match="other.pt: not a torch.save archive"):
        read_torch_state_dict(tmp_path / "other.pt")
