"""Hostile and broken toy folders: every fault is a ValueError naming the file, in bounded time and
memory, and nothing altered loads unnoticed.

The fuzz test saves a tiny toy of every family and loads hundreds of mutated copies of it: bit
flips and truncations of both files, zip-level corruption (compression methods, the encryption
flag, declared sizes, duplicated and foreign members, an .npy in place of the .npz), re-hashed
edits of arrays and of the manifest (wrong shapes, dtypes, out-of-range indices, NaN, giant
integers, deep JSON), links out of the folder, and decompression bombs. It prints one summary line
(run with ``-s`` to see it).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from planted import toys
from planted.toys._storage import _digest, _manifest_digest

# Per load: a tiny toy's folder is a few kB, so anything past these is a fault of the loader.
_SECONDS = 5.0
_PEAK_BYTES = 64 << 20


# --- building archives by hand -------------------------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _zip(members, *, comment: bytes = b"") -> bytes:
    """A zip archive of ``members``: (name, payload, method, file_size, crc, flags), the payload
    already compressed by ``method``; sizes and flags are written as given (they may lie)."""
    out, central = bytearray(), bytearray()
    for name, payload, method, file_size, crc, flags in members:
        raw_name = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, len(payload), file_size,
                           len(raw_name), 0) + raw_name + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc, len(payload),
                               file_size, len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, len(comment)) + comment
    return bytes(out)


def _stored(name: str, data: bytes):
    return (name, data, 0, len(data), zlib.crc32(data), 0)


def _deflated(name: str, data: bytes):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (name, c.compress(data) + c.flush(), 8, len(data), zlib.crc32(data), 0)


def _bomb(name: str, shape: tuple[int, ...], dtype: str = "<f8") -> tuple:
    """A deflated member holding an .npy header for ``shape`` and that many zero bytes, built from one
    compressed 64 MiB block repeated (full flushes make the blocks independent)."""
    header = _npy_header(shape, dtype)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    block = 64 << 20
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    assert nbytes % block == 0
    payload = head + piece * (nbytes // block) + zlib.compressobj(1, zlib.DEFLATED, -15).flush()
    return (name, payload, 8, len(header) + nbytes, 0, 0)


def _npy_header(shape, dtype) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


# --- the mutations -------------------------------------------------------------------------------


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_rehashed(folder: Path, arrays: dict | None = None, manifest: dict | None = None) -> None:
    """Write arrays and/or a manifest with every checksum recomputed (a forger's edit)."""
    manifest = manifest if manifest is not None else _manifest(folder)
    if arrays is not None:
        np.savez(folder / "arrays.npz", **arrays)
        manifest["arrays"] = {n: {"sha256": _digest(a), "shape": list(a.shape), "dtype": a.dtype.str} for n, a in arrays.items()}
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _flip_bits(name):
    def mutate(folder: Path, rng: np.random.Generator) -> None:
        data = bytearray((folder / name).read_bytes())
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(data)))
            data[i] ^= 1 << int(rng.integers(8))
        (folder / name).write_bytes(bytes(data))
    return mutate


def _truncate(name):
    def mutate(folder: Path, rng: np.random.Generator) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: int(rng.integers(len(data)))])
    return mutate


def _edit_array(folder: Path, rng: np.random.Generator) -> None:
    """Re-hashed: one array replaced by a plausible but wrong one."""
    arrays = _arrays(folder)
    name = sorted(arrays)[int(rng.integers(len(arrays)))]
    a = arrays[name]
    choice = int(rng.integers(9))
    if choice == 0 and a.size:  # one value changed
        a = a.copy().reshape(-1)
        a[int(rng.integers(a.size))] = (1 if a.dtype.kind == "b" else (-(10**6) if a.dtype.kind in "iu" else np.nan)) if a.dtype.kind != "U" else "zz"
        a = a.reshape(arrays[name].shape)
    elif choice == 1:  # a row fewer
        a = a[:-1] if a.ndim and a.shape[0] else np.zeros(3, a.dtype if a.dtype.kind != "U" else "<U1")
    elif choice == 2:  # flattened
        a = a.reshape(-1)[:, None] if a.ndim != 2 else a.reshape(-1)
    elif choice == 3:  # another dtype
        a = a.astype(np.float64 if a.dtype != np.float64 else np.int32) if a.dtype.kind != "U" else np.zeros(a.shape)
    elif choice == 4 and a.dtype.kind in "iu" and a.size:  # an index out of range
        a = a.copy().reshape(-1)
        a[int(rng.integers(a.size))] = np.iinfo(a.dtype).max if rng.integers(2) else (np.iinfo(a.dtype).min or 7)
        a = a.reshape(arrays[name].shape)
    elif choice == 5:  # emptied
        a = np.zeros((0,) + a.shape[1:], a.dtype)
    elif choice == 6:  # deleted
        del arrays[name]
        _write_rehashed(folder, arrays)
        return
    elif choice == 7:  # a stranger added
        arrays["stranger"] = np.arange(4)
        _write_rehashed(folder, arrays)
        return
    else:  # infinities in a float array, or a bool array in place of an int one
        a = np.full(a.shape, np.inf) if a.dtype.kind == "f" else a.astype(bool)
    arrays[name] = np.asarray(a)
    _write_rehashed(folder, arrays)


_HOSTILE_VALUES = [None, True, -1, 0, 10**30, 10**12, -(10**12), 1e308, -1e308, "x", [], {}, [1, 2], {"a": 1}, 2.5, "nan"]


def _edit_manifest(folder: Path, rng: np.random.Generator) -> None:
    """Re-hashed: one manifest entry (a config field, the family, an extra, an array's record) set
    to a hostile value."""
    manifest = _manifest(folder)
    value = _HOSTILE_VALUES[int(rng.integers(len(_HOSTILE_VALUES)))]
    where = int(rng.integers(5))
    if where == 0:
        fields = manifest["config"]["fields"]
        fields[sorted(fields)[int(rng.integers(len(fields)))]] = value
    elif where == 1:
        manifest[["family", "schema_version", "toy_id", "config", "extra", "format"][int(rng.integers(6))]] = value
    elif where == 2 and manifest["extra"]:
        extra = manifest["extra"]
        extra[sorted(extra)[int(rng.integers(len(extra)))]] = value
    elif where == 3:
        record = manifest["arrays"][sorted(manifest["arrays"])[int(rng.integers(len(manifest["arrays"])))]]
        record[["shape", "dtype", "sha256"][int(rng.integers(3))]] = value
    else:
        manifest["config"]["fields"] = value
    _write_rehashed(folder, manifest=manifest)


def _deep_json(folder: Path, rng: np.random.Generator) -> None:
    depth = int(rng.choice([100, 10_000, 200_000]))
    (folder / "manifest.json").write_text("[" * depth + "]" * depth)


def _giant_integer(folder: Path, rng: np.random.Generator) -> None:
    text = (folder / "manifest.json").read_text()
    digits = int(rng.choice([20, 5000, 100_000]))
    (folder / "manifest.json").write_text(text.replace('"schema_version": 2', '"schema_version": ' + "9" * digits, 1))


def _rezip(folder: Path, rng: np.random.Generator) -> None:
    """The archive rebuilt by hand with one zip-level fault."""
    arrays = _arrays(folder)
    members = [_stored(f"{n}.npy", _npy(a)) for n, a in arrays.items()]
    i = int(rng.integers(len(members)))
    name, payload, method, size, crc, flags = members[i]
    fault = int(rng.integers(9))
    if fault == 0:  # an unsupported compression method (bzip2, lzma, zstd, AES)
        members[i] = (name, payload, int(rng.choice([12, 14, 93, 99])), size, crc, flags)
    elif fault == 1:  # the encryption flag
        members[i] = (name, payload, method, size, crc, flags | 1)
    elif fault == 2:  # a declared size that lies
        members[i] = (name, payload, method, int(rng.choice([0, size - 1, size + 1, 2**32 - 1])), crc, flags)
    elif fault == 3:  # a wrong CRC
        members[i] = (name, payload, method, size, crc ^ 0x5A5A, flags)
    elif fault == 4:  # a duplicated member
        members.append(members[i])
    elif fault == 5:  # a member that is not an .npy
        members.append(_stored("readme.txt", b"hello"))
    elif fault == 6:  # deflated, with a payload cut short
        n, p, m, s, c, f = _deflated(name, payload)
        members[i] = (n, p[: len(p) // 2], m, s, c, f)
    elif fault == 7:  # an .npy whose header lies about the shape
        members[i] = _stored(name, payload.replace(b"'shape': (", b"'shape': (99999999, ", 1))
    else:  # an object array, which would need pickle
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        members[i] = _stored(name, buf.getvalue())
    (folder / "arrays.npz").write_bytes(_zip(members))


def _npy_for_npz(folder: Path, rng: np.random.Generator) -> None:
    arrays = _arrays(folder)
    (folder / "arrays.npz").write_bytes(_npy(next(iter(arrays.values()))))


def _not_a_file(folder: Path, rng: np.random.Generator) -> None:
    name = ["arrays.npz", "manifest.json"][int(rng.integers(2))]
    (folder / name).unlink()
    if rng.integers(2):
        (folder / name).mkdir()
    else:
        os.mkfifo(folder / name)


def _link_outside(folder: Path, rng: np.random.Generator) -> None:
    """A file replaced by a link to a copy of itself outside the folder (or to a system file)."""
    name = ["arrays.npz", "manifest.json"][int(rng.integers(2))]
    outside = folder.parent / f"outside-{folder.name}-{name}"
    shutil.copyfile(folder / name, outside)
    (folder / name).unlink()
    (folder / name).symlink_to(outside if rng.integers(2) else Path("/etc/hostname"))


def _empty(folder: Path, rng: np.random.Generator) -> None:
    (folder / ["arrays.npz", "manifest.json"][int(rng.integers(2))]).write_bytes(b"")


MUTATIONS = {
    "flip bits of arrays.npz": (_flip_bits("arrays.npz"), 60),
    "flip bits of manifest.json": (_flip_bits("manifest.json"), 40),
    "truncate arrays.npz": (_truncate("arrays.npz"), 25),
    "truncate manifest.json": (_truncate("manifest.json"), 15),
    "re-hashed array edit": (_edit_array, 60),
    "re-hashed manifest edit": (_edit_manifest, 60),
    "zip-level fault": (_rezip, 45),
    "deep JSON": (_deep_json, 3),
    "giant integer": (_giant_integer, 3),
    ".npy in place of the .npz": (_npy_for_npz, 2),
    "not a regular file": (_not_a_file, 4),
    "link out of the folder": (_link_outside, 4),
    "empty file": (_empty, 4),
}
_REHASHED = {"re-hashed array edit", "re-hashed manifest edit"}


def _same(a, b) -> bool:
    left, right = (toys.family(t.kind).to_arrays(t)[0] for t in (a, b))
    return a.config == b.config and sorted(left) == sorted(right) and all(
        left[n].dtype == right[n].dtype and np.array_equal(left[n], right[n], equal_nan=left[n].dtype.kind in "fc")
        for n in left
    )


def _describe(before: Path, after: Path) -> str:
    """What a re-hashed edit changed: the arrays and manifest entries that differ."""
    a, b = _arrays(before), _arrays(after)
    arrays = sorted(n for n in set(a) | set(b) if n not in a or n not in b or a[n].shape != b[n].shape
                    or a[n].dtype != b[n].dtype or not np.array_equal(a[n], b[n], equal_nan=True))
    ma, mb = _manifest(before), _manifest(after)
    keys = sorted(k for k in set(ma) | set(mb) if k not in ("arrays", "manifest_sha256") and ma.get(k) != mb.get(k))
    return f"arrays {arrays}, manifest {keys} {[str(mb.get(k))[:80] for k in keys]}"


def _try(folder: Path, original) -> tuple[str, str, float, int]:
    """(outcome, detail, seconds, peak traced bytes) of loading ``folder``."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        loaded = toys.load(folder)
    except ValueError as exc:
        outcome, detail = "rejected", str(exc)
    except BaseException as exc:  # noqa: BLE001 - every other exception is the failure being counted
        outcome, detail = "other", f"{type(exc).__name__}: {exc}"[:300]
    else:
        outcome, detail = ("intact" if _same(loaded, original) else "altered"), ""
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, detail, seconds, peak


def _original(tiny, kind: str, folder: Path):
    toy = toys.from_config(tiny[kind]())
    return toys.save(toy, folder), toy


@pytest.mark.parametrize("kind", toys.FAMILY_KINDS)
def test_mutated_toy_folders_are_rejected_cleanly(kind, tiny, tmp_path):
    folder0, original = _original(tiny, kind, tmp_path / "original")
    assert _same(toys.load(folder0), original)
    rng = np.random.default_rng([2026, toys.FAMILY_KINDS.index(kind)])
    counts = {"tried": 0, "rejected": 0, "intact": 0, "altered": 0, "other": 0}
    problems, worst_time, worst_peak, n = [], 0.0, 0, 0
    for label, (mutate, times) in MUTATIONS.items():
        for _ in range(times):
            n += 1
            folder = tmp_path / f"m{n}"
            shutil.copytree(folder0, folder)
            mutate(folder, rng)
            outcome, detail, seconds, peak = _try(folder, original)
            counts["tried"] += 1
            counts[outcome] += 1
            worst_time, worst_peak = max(worst_time, seconds), max(worst_peak, peak)
            if outcome == "altered" and os.environ.get("PLANTED_FUZZ_VERBOSE"):
                print(f"  {label} loaded: {_describe(folder0, folder)}")
            if outcome == "other":
                problems.append(f"{label}: {detail}")
            elif outcome == "altered" and label not in _REHASHED:
                problems.append(f"{label}: loaded a toy that differs from the one saved")
            elif outcome == "rejected" and not detail.startswith(str(folder)):
                problems.append(f"{label}: the message does not name the file: {detail[:120]}")
            if seconds > _SECONDS or peak > _PEAK_BYTES:
                problems.append(f"{label}: {seconds:.2f} s, {peak / 2**20:.1f} MiB traced")
    wrongly = sum(p.endswith("differs from the one saved") for p in problems)
    print(f"\n{kind}: mutated folders tried {counts['tried']}, rejected cleanly {counts['rejected']}, "
          f"other exceptions {counts['other']}, accepted wrongly {wrongly}, loaded intact {counts['intact']}, "
          f"re-hashed edits loaded as consistent toys {counts['altered'] - wrongly}; slowest "
          f"{worst_time * 1000:.0f} ms, peak {worst_peak / 2**20:.1f} MiB traced")
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    assert counts["rejected"] >= 0.9 * counts["tried"]


_BOMB_SCRIPT = """
import sys, time
from planted import toys
t = time.perf_counter()
try:
    toys.load(sys.argv[1])
except ValueError as exc:
    outcome = "ValueError: " + str(exc)
else:
    outcome = "loaded"
# The peak resident memory of this process since its exec, in KiB (ru_maxrss would also count
# what the forking parent held).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{time.perf_counter() - t:.3f}", peak, outcome)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc")
@pytest.mark.parametrize("declared", ["manifest", "forged"])
def test_a_decompression_bomb_is_rejected_before_it_inflates(tiny, tmp_path, declared):
    """A 2 GiB member in a ~2 MB archive: rejected from its header, in well under a second and
    without the memory it declares (the old loader spent 1.9 GiB and 20-30 s)."""
    folder0, _ = _original(tiny, "sparse_features", tmp_path / "original")
    folder = tmp_path / "bomb"
    shutil.copytree(folder0, folder)
    arrays = _arrays(folder)
    shape = (2**28,)  # 2 GiB of float64
    members = [_stored(f"{n}.npy", _npy(a)) for n, a in arrays.items() if n != "activations"]
    members.append(_bomb("activations.npy", shape))
    data = _zip(members)
    assert len(data) < 4 << 20
    (folder / "arrays.npz").write_bytes(data)
    if declared == "forged":  # the manifest re-hashed to declare the bomb's shape
        manifest = _manifest(folder)
        manifest["arrays"]["activations"].update(shape=list(shape), dtype="<f8")
        _write_rehashed(folder, manifest=manifest)
    baseline = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT, str(folder0)], capture_output=True, text=True, check=True)
    base_rss = int(baseline.stdout.split()[1])
    out = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT, str(folder)], capture_output=True, text=True, timeout=120)
    seconds, rss, outcome = out.stdout.split(maxsplit=2)
    print(f"\nbomb ({declared} shape): {len(data) / 2**20:.1f} MB archive declaring 2 GiB: {float(seconds) * 1000:.0f} ms, "
          f"peak RSS {int(rss) / 1024:.0f} MiB (a clean load: {base_rss / 1024:.0f} MiB); {outcome.strip()[:160]}")
    assert outcome.startswith("ValueError: " + str(folder / "arrays.npz")), outcome
    assert float(seconds) < 2.0
    assert int(rss) - base_rss < 64 * 1024  # KiB: nothing like the 2 GiB declared
