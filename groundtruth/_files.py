"""Reading files that may be hostile: ``.npz`` archives and JSON, in bounded time and memory.

Every fault of a file is a ``ValueError`` that names the file and the fault, raised before the
file's contents are used; nothing is half-loaded, and nothing is unpickled.

An ``.npz`` is a zip archive of ``.npy`` members. ``read_npz`` reads the zip's directory, then
each member's ``.npy`` header (at most ``_MAX_HEADER`` bytes), and checks the member before reading
its data: stored or deflated only, not encrypted, a plain numeric, bool or string dtype, a shape
whose bytes equal the member's declared size, that size within the caller's budget (and within
the shape and dtype the caller expects, when it says). The data is then read into an array of
exactly that size: a member can never inflate to more than it declared, so a decompression bomb
costs the bytes of its header, not of its payload. The zip's CRC of every member is checked.
"""

from __future__ import annotations

import ast
import json
import math
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# A .npy header is a short Python dict literal; numpy writes at most a few hundred bytes.
_MAX_HEADER = 4096
_NPY_MAGIC = b"\x93NUMPY"
_KINDS = "biufcUS"  # bool, integers, floats, complex, strings; never objects or structured dtypes
_MAX_MEMBERS = 100_000
_MAX_NESTING = 64  # of a JSON document
_READ_CHUNK = 16 << 20  # bytes decompressed at a time into an array


def available_memory() -> int:
    """Bytes of memory this machine can still give (``MemAvailable`` on Linux; else the physical
    memory the OS reports free)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def default_read_budget() -> int:
    """What one read may allocate by default: half the memory available now."""
    return available_memory() // 2


def regular_file(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path:
    """``path`` checked to be a regular file (following links only inside ``folder`` when given).

    Raises ``ValueError`` naming the path when it is missing, not a regular file (a folder, a
    device, a pipe), or a link that leads outside ``folder``.
    """
    path = Path(path)
    if folder is not None:
        root = os.path.realpath(folder)
        real = os.path.realpath(path)
        if real != root and not real.startswith(root + os.sep):
            raise ValueError(f"{path}: is a link to {real}, outside {folder}; a toy folder's files must be its own")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError(f"{path}: file is missing") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: is not a regular file")
    return path


def read_json(path: str | os.PathLike, *, max_bytes: int = 16 << 20, folder: str | os.PathLike | None = None) -> Any:
    """The JSON document in ``path``: at most ``max_bytes``, nested at most 64 deep, no NaN or
    infinite numbers, no integer of more than 4,300 digits (Python's own limit)."""
    path = regular_file(path, folder)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{path}: larger than {max_bytes} bytes; not a file planted wrote")
    depth = _nesting(raw)
    if depth > _MAX_NESTING:
        raise ValueError(f"{path}: JSON nested {depth} deep (at most {_MAX_NESTING}); not a file planted wrote")

    def constant(name: str) -> Any:
        raise ValueError(f"the number {name} is not allowed")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=constant)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from None


def _nesting(raw: bytes) -> int:
    """The deepest nesting of [ and { in a JSON text (outside strings)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _header(fh, name: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, header length) of the .npy member ``fh``, checked."""
    magic = fh.read(8)
    if len(magic) != 8 or magic[:6] != _NPY_MAGIC:
        raise ValueError(f"member {name!r} is not a .npy array")
    major = magic[6]
    size_bytes = {1: 2, 2: 4, 3: 4}.get(major)
    if size_bytes is None:
        raise ValueError(f"member {name!r} has .npy format version {major}.{magic[7]}, which is not supported")
    raw = fh.read(size_bytes)
    if len(raw) != size_bytes:
        raise ValueError(f"member {name!r} ends inside its .npy header")
    (length,) = struct.unpack("<H" if size_bytes == 2 else "<I", raw)
    if length > _MAX_HEADER:
        raise ValueError(f"member {name!r} declares a .npy header of {length} bytes (at most {_MAX_HEADER})")
    text = fh.read(length)
    if len(text) != length:
        raise ValueError(f"member {name!r} ends inside its .npy header")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise ValueError(f"member {name!r} has an unreadable .npy header") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"member {name!r} has a malformed .npy header")
    shape, fortran = header["shape"], header["fortran_order"]
    if (not isinstance(shape, tuple) or len(shape) > 32
            or not all(type(s) is int and 0 <= s < 2**62 for s in shape)):
        raise ValueError(f"member {name!r} has an invalid shape {str(shape)[:80]}")
    if not isinstance(fortran, bool):
        raise ValueError(f"member {name!r} has an invalid fortran_order")
    descr = header["descr"]
    if not isinstance(descr, str) or len(descr) > 16:
        raise ValueError(f"member {name!r} has a dtype that is not a plain numeric, bool or string type")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise ValueError(f"member {name!r} has an unknown dtype {descr!r}") from None
    if dtype.kind not in _KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise ValueError(f"member {name!r} has dtype {dtype}; object arrays and structured dtypes are not read, "
                         "only numeric, bool and string arrays")
    return dtype, shape, fortran, 8 + size_bytes + length


def read_npz(
    path: str | os.PathLike,
    *,
    expected: Mapping[str, tuple[tuple[int, ...], str]] | None = None,
    max_bytes: int | None = None,
    folder: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, checked before it is read.

    Parameters
    ----------
    path : path
        A file written by ``numpy.savez`` or ``numpy.savez_compressed``.
    expected : mapping name -> (shape, dtype string), optional
        The arrays the file must hold, exactly (no more, no fewer), each of this shape and dtype
        (``dtype.str``, e.g. ``"<f4"``); checked from the headers, before any data is read.
    max_bytes : int, optional
        The most the arrays may take together; never more than half the memory available now
        (the default).
    folder : path, optional
        The folder the file belongs to: a link leading outside it is refused.

    Returns
    -------
    dict of str -> np.ndarray
        Writeable arrays, by name (the member name without ``.npy``).

    Raises
    ------
    ValueError
        Naming the file and the fault: not a zip archive, an unsupported compression, an
        encrypted or duplicated member, a member that is not a ``.npy`` array, an object or
        structured dtype, a shape that does not match the member's size, an array over the
        budget, a missing or unexpected array, a shape or dtype other than ``expected``, a
        truncated member or one whose CRC does not match.
    """
    path = regular_file(path, folder)
    budget = default_read_budget() if max_bytes is None else min(int(max_bytes), default_read_budget())
    try:
        return _read_npz(path, expected, budget)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, struct.error,
            NotImplementedError, RuntimeError, OverflowError, KeyError, IndexError, TypeError,
            MemoryError, RecursionError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None


def _read_npz(path: Path, expected: Mapping[str, tuple] | None, budget: int) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ValueError("not a readable .npz archive (no zip directory found: an .npy, or a truncated file?)")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ValueError(f"holds {len(infos)} members (at most {_MAX_MEMBERS})")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise ValueError("holds two members of the same name")
        bad = [n for n in names if not n.endswith(".npy")]
        if bad:
            raise ValueError(f"member {bad[0]!r} is not a .npy array")
        arrays_of = {n[: -len(".npy")]: info for n, info in zip(names, infos)}
        if expected is not None:
            missing = sorted(set(expected) - set(arrays_of))
            extra = sorted(set(arrays_of) - set(expected))
            if missing or extra:
                raise ValueError(f"arrays missing {missing} and unexpected {extra}")
        plans = []
        total = 0
        for name, info in arrays_of.items():
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(f"member {name!r} uses zip compression method {info.compress_type}; "
                                 "only stored and deflated members are read")
            if info.flag_bits & 0x1:
                raise ValueError(f"member {name!r} is encrypted")
            with archive.open(info) as fh:
                dtype, shape, fortran, header = _header(fh, name)
            nbytes = math.prod(shape) * dtype.itemsize
            if expected is not None:
                want_shape, want_dtype = expected[name]
                if list(shape) != list(want_shape) or dtype.str != want_dtype:
                    raise ValueError(f"array {name!r} has shape {list(shape)} dtype {dtype.str}, "
                                     f"expected shape {list(want_shape)} dtype {want_dtype}")
            if info.file_size != header + nbytes:
                raise ValueError(f"member {name!r} declares {info.file_size} bytes, but its header's shape "
                                 f"{list(shape)} and dtype {dtype.str} need {header + nbytes}")
            total += nbytes
            if total > budget:
                raise ValueError(f"its arrays take more than {budget} bytes (array {name!r}: {list(shape)} {dtype.str}), "
                                 "more than this read may allocate")
            plans.append((name, info, dtype, shape, fortran, header))
        arrays = {}
        for name, info, dtype, shape, fortran, header in plans:
            array = np.empty(math.prod(shape), dtype)
            with archive.open(info) as fh:
                fh.read(header)
                view = memoryview(array).cast("B") if array.nbytes else memoryview(b"")
                got = 0
                while got < array.nbytes:
                    n = fh.readinto(view[got : got + _READ_CHUNK])
                    if not n:
                        raise ValueError(f"member {name!r} is truncated ({got} of {array.nbytes} bytes)")
                    got += n
                if fh.read(1):
                    raise ValueError(f"member {name!r} holds more bytes than it declares")
            arrays[name] = array.reshape(shape, order="F" if fortran else "C")
        return arrays


# safetensors dtypes (https://github.com/huggingface/safetensors, "Format"); BF16 is widened to float32.
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_MAX_SAFETENSORS_HEADER = 100 << 20  # the format's own limit


def read_safetensors(path: str | os.PathLike, *, max_bytes: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors of a ``.safetensors`` file as NumPy arrays, and its ``__metadata__``, read without
    the safetensors library and without executing anything (the format is a JSON header and raw
    little-endian bytes).

    Every tensor's dtype, shape and byte range are checked against the header and the file's size
    before anything is read: ranges must lie in the file, not overlap and match their shape and
    dtype; the total must fit ``max_bytes`` (default and at most: half the available memory).
    BF16 tensors are returned as float32. Raises ``ValueError`` naming the file and the fault.
    """
    path = regular_file(path)
    budget = default_read_budget() if max_bytes is None else min(int(max_bytes), default_read_budget())
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", raw)
            if n > min(_MAX_SAFETENSORS_HEADER, size - 8):
                raise ValueError(f"declares a header of {n} bytes in a file of {size}")
            try:
                header = json.loads(fh.read(n).decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise ValueError(f"its header is not valid JSON ({type(exc).__name__})") from None
            if not isinstance(header, dict):
                raise ValueError("its header is not a JSON object")
            metadata = header.pop("__metadata__", None) or {}
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise ValueError("its __metadata__ is not a map of strings")
            plans, total, spans = [], 0, []
            for name, spec in header.items():
                if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
                    raise ValueError(f"tensor {name!r} has a malformed entry")
                dtype = _SAFETENSORS_DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
                shape, offsets = spec["shape"], spec["data_offsets"]
                if dtype is None:
                    raise ValueError(f"tensor {name!r} has dtype {spec['dtype']!r}, not one of {sorted(_SAFETENSORS_DTYPES)}")
                if (not isinstance(shape, list) or len(shape) > 32 or not all(type(v) is int and 0 <= v < 2**62 for v in shape)
                        or not isinstance(offsets, list) or len(offsets) != 2 or not all(type(v) is int for v in offsets)):
                    raise ValueError(f"tensor {name!r} has an invalid shape or data_offsets")
                begin, end = offsets
                nbytes = math.prod(shape) * np.dtype(dtype).itemsize
                if not 0 <= begin <= end <= size - 8 - n or end - begin != nbytes:
                    raise ValueError(f"tensor {name!r}: bytes {begin}..{end} do not hold {shape} {spec['dtype']} "
                                     f"within the file's {size - 8 - n} bytes of data")
                total += nbytes
                if total > budget:
                    raise ValueError(f"its tensors take more than {budget} bytes, more than this read may allocate")
                spans.append((begin, end))
                plans.append((name, spec["dtype"], dtype, shape, begin, nbytes))
            spans.sort()
            if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
                raise ValueError("two tensors share bytes")
            tensors = {}
            for name, kind, dtype, shape, begin, nbytes in plans:
                fh.seek(8 + n + begin)
                array = np.empty(math.prod(shape), np.dtype(dtype))
                if nbytes and fh.readinto(memoryview(array).cast("B")) != nbytes:
                    raise ValueError(f"tensor {name!r} is truncated")
                if kind == "BF16":
                    array = (array.astype(np.uint32) << 16).view(np.float32)
                tensors[name] = array.reshape(shape)
            return tensors, dict(metadata)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (OSError, OverflowError, MemoryError) as exc:
        raise ValueError(f"{path}: not a readable .safetensors file ({type(exc).__name__}: {exc})") from None


# What a PyTorch state dict's pickle may name: its dict type, the tensor rebuilders and the
# storage types (as NumPy dtypes). Anything else in the file is refused before it is built.
_TORCH_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
                   "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
                   "ByteStorage": "u1", "BoolStorage": "?"}


class _Storage(str):
    """A storage type named in a state dict: its dtype string (BF16 is widened when read)."""


def _rebuild_tensor(storage, offset, size, stride, *rest):
    array, dtype = storage
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if any(v < 0 for v in size + stride) or int(offset) < 0 or len(size) != len(stride) or len(size) > 32:
        raise ValueError("a tensor has a negative size, stride or offset")
    last = int(offset) + sum((n - 1) * st for n, st in zip(size, stride)) if all(size) else int(offset) - 1
    if last >= array.size:
        raise ValueError(f"a tensor of size {size} and stride {stride} reaches past its storage of {array.size}")
    if not all(size):
        return np.zeros(size, array.dtype)
    view = np.lib.stride_tricks.as_strided(array[int(offset):], shape=size,
                                           strides=tuple(st * array.itemsize for st in stride), writeable=False)
    out = view.copy()  # C order; np.ascontiguousarray would make a 0-d tensor 1-d
    return (out.astype(np.uint32) << 16).view(np.float32) if dtype == "BF16" else out


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data


_TORCH_GLOBALS = {("collections", "OrderedDict"): dict, ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                  ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
                  ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
                  **{("torch", name): _Storage(name) for name in _TORCH_STORAGES}}


_LITERALS = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BININT", "BININT1", "BININT2", "LONG1",
             "LONG4", "INT", "LONG", "BINFLOAT", "FLOAT", "SHORT_BINBYTES", "BINBYTES"}
_CONSTANTS = {"NEWFALSE": False, "NEWTRUE": True, "NONE": None}


def _read_pickle_opcodes(data: bytes, storage) -> Any:
    """The value a pickle of a state dict describes, built by interpreting its opcodes here
    (``pickletools.genops`` only decodes them): names resolve through ``_TORCH_GLOBALS`` alone, so
    the only calls made are to dict and the tensor rebuilders; ``storage(pid)`` gives a persistent
    id's storage. Any other name or opcode is a ValueError."""
    import pickletools

    stack: list[Any] = []
    memo: dict[int, Any] = {}
    marks: list[int] = []

    def named(module: str, name: str) -> Any:
        found = _TORCH_GLOBALS.get((module, name))
        if found is None:
            raise ValueError(f"refuses {module}.{name}: a state dict holds only tensors")
        return found

    def since_mark() -> list[Any]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            break
        if name in _LITERALS:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name == "GLOBAL":
            stack.append(named(*arg.split(" ", 1)))
        elif name == "STACK_GLOBAL":
            qualname, module = stack.pop(), stack.pop()
            stack.append(named(str(module), str(qualname)))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo[int(arg)])
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "TUPLE":
            stack.append(tuple(since_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name in ("EMPTY_DICT", "EMPTY_LIST"):
            stack.append({} if name == "EMPTY_DICT" else [])
        elif name == "APPEND":
            value = stack.pop()
            stack[-1].append(value)
        elif name == "APPENDS":
            items = since_mark()
            stack[-1].extend(items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif name == "SETITEMS":
            items = since_mark()
            stack[-1].update(zip(items[::2], items[1::2]))
        elif name == "BINPERSID":
            stack.append(storage(stack.pop()))
        elif name == "REDUCE":
            args, fn = stack.pop(), stack.pop()
            if not (callable(fn) and fn in _TORCH_GLOBALS.values() and isinstance(args, tuple)):
                raise ValueError("a call to something other than a dict or a tensor rebuilder")
            stack.append(fn(*args))
        elif name == "BUILD":
            stack.pop()  # the state of a dict (its _metadata): nothing a tensor needs
        else:
            raise ValueError(f"pickle opcode {name} is not read in a state dict")
    if len(stack) != 1:
        raise ValueError("its pickle does not describe one value")
    return stack[0]


def read_torch_state_dict(path: str | os.PathLike, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """A PyTorch state dict saved by ``torch.save`` (a zip of ``data.pkl`` and one file per
    storage) as NumPy arrays, without torch and without running anything from the file.

    ``data.pkl`` is not unpickled: ``_read_pickle_opcodes`` interprets the few opcodes a state
    dict is written with and can build nothing but tuples, lists, dicts and tensors; it knows
    ``collections.OrderedDict``, torch's tensor rebuilders and its storage types by name, and
    refuses any other name in the file, and any other opcode, before anything is built.
    Each tensor is rebuilt from its storage's bytes in the archive, read through ``read_npz``'s
    checks (stored or deflated members, declared sizes, a budget: ``max_bytes``, at most half the
    available memory). Raises ``ValueError`` naming the file and the fault.
    """
    path = regular_file(path)
    budget = default_read_budget() if max_bytes is None else min(int(max_bytes), default_read_budget())
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise ValueError("not a torch.save archive (no single data.pkl)")
            prefix = pkl[0][: -len("data.pkl")]
            if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() not in (b"little", b""):
                raise ValueError("written on a big-endian machine")
            for info in archive.infolist():
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                    raise ValueError(f"member {info.filename!r} is compressed in a way this reader refuses, or encrypted")
            info = archive.getinfo(pkl[0])
            if info.file_size > 64 << 20:
                raise ValueError(f"its data.pkl declares {info.file_size} bytes")
            spent = [0]

            def storage(pid):
                if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                        or not isinstance(pid[1], _Storage) or not isinstance(pid[2], str) or type(pid[4]) is not int):
                    raise ValueError("a storage reference is malformed")
                kind, key, numel = str(pid[1]), pid[2], pid[4]
                dtype = np.dtype(_TORCH_STORAGES[kind])
                member = archive.getinfo(f"{prefix}data/{key}")
                if numel < 0 or member.file_size != numel * dtype.itemsize:
                    raise ValueError(f"storage {key!r} holds {member.file_size} bytes, not {numel} x {dtype}")
                spent[0] += member.file_size
                if spent[0] > budget:
                    raise ValueError(f"its tensors take more than {budget} bytes, more than this read may allocate")
                with archive.open(member) as fh:
                    raw = fh.read(member.file_size + 1)
                if len(raw) != member.file_size:
                    raise ValueError(f"storage {key!r} is truncated")
                return np.frombuffer(raw, dtype), "BF16" if kind == "BFloat16Storage" else ""

            with archive.open(info) as fh:
                state = _read_pickle_opcodes(fh.read(info.file_size + 1), storage)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, TypeError, AttributeError,
            IndexError, struct.error, OverflowError, MemoryError, RecursionError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()):
        raise ValueError(f"{path}: holds {type(state).__name__}, not a state dict of named tensors")
    return dict(state)


__all__ = ["available_memory", "default_read_budget", "read_json", "read_npz", "read_safetensors",
           "read_torch_state_dict", "regular_file"]
