"""Checkpoints: a model's arrays as ``.npz`` plus a JSON config, no pickle,
written atomically (a crash mid-write leaves the old file intact).

Every failure to read one is a :class:`CheckpointError` saying what is wrong
(missing, not a zip, truncated, foreign, wrong kind, an array larger than the
file can hold, metadata too large or too deeply nested); the models'
``load`` methods then validate what they read (shapes consistent with the
configuration, parameters finite, probabilities in range) before returning.

A save writes a temporary file next to the target, named after it, the host
and the process, and renames it over the target. A save killed before the
rename leaves its temporary file behind; the next save of the same target
removes those of processes that no longer run (on this host), and any older
than a day.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
import time
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

FORMAT = "heatbath-checkpoint"
VERSION = 1

# The JSON metadata: at most this many bytes, and this deep.
_MAX_META_BYTES = 16 * 2**20
_MAX_META_DEPTH = 32
_STALE_SECONDS = 24 * 3600


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as the model asked for."""


def _tmp_prefix(path: str) -> str:
    return f".tmp-{os.path.basename(path)}-"


def _host() -> str:
    return socket.gethostname().replace("-", "_").replace(os.sep, "_") or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temporaries(path: str) -> list:
    """Remove the temporary files that interrupted saves of ``path`` left
    behind: those of processes of this host that no longer run, and any
    older than a day. Returns the paths removed."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _tmp_prefix(path)
    removed = []
    now = time.time()
    for tmp in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*.npz")):
        rest = os.path.basename(tmp)[len(prefix):].split("-")
        stale = False
        if len(rest) >= 3 and rest[0] == _host() and rest[1].isdigit():
            stale = int(rest[1]) != os.getpid() and not _pid_alive(int(rest[1]))
        try:
            stale = stale or now - os.stat(tmp).st_mtime > _STALE_SECONDS
            if stale:
                os.unlink(tmp)
                removed.append(tmp)
        except OSError:
            pass  # gone meanwhile, or not ours to remove
    return removed


def save(path: str, kind: str, config: Dict[str, Any], arrays: Dict[str, Any]) -> str:
    """Write ``arrays`` (numpy or cupy) and ``config`` (JSON-able) to ``path``
    (``.npz`` appended if missing) atomically; returns the path written.
    Temporary files of earlier interrupted saves of ``path`` are removed
    (:func:`clean_stale_temporaries`)."""
    if not path.endswith(".npz"):
        path = path + ".npz"
    meta = {"format": FORMAT, "version": VERSION, "kind": kind, "config": config}
    host = {k: (v.get() if hasattr(v, "get") and not isinstance(v, np.ndarray) else np.asarray(v))
            for k, v in arrays.items()}
    if "__meta__" in host:
        raise ValueError("'arrays': the name __meta__ is reserved")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    clean_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{_host()}-{os.getpid()}-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **host)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _resolve(path: Any) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"'path': expected a path (str or os.PathLike), got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path = path + ".npz"
    if not os.path.isfile(path):
        raise CheckpointError(f"'path': no checkpoint file at {path}")
    return path


def _depth(x: Any, limit: int) -> int:
    """Nesting depth of JSON data, stopping past ``limit``."""
    stack = [(x, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((w, d + 1) for w in v.values())
        elif isinstance(v, list):
            stack.extend((w, d + 1) for w in v)
    return deepest


def _member_check(zf: zipfile.ZipFile, name: str, path: str, file_size: int) -> None:
    """The .npy member ``name`` declares no more data than it holds (and than
    the file can expand to), so reading it cannot exhaust memory."""
    info = zf.getinfo(name + ".npy")
    if info.file_size > max(1032 * file_size, 2**20):
        raise CheckpointError(f"'path': {path}: array {name!r} declares {info.file_size} bytes, more than the "
                              f"{file_size}-byte file can hold")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        header = f.tell()
    if dtype.hasobject:
        raise CheckpointError(f"'path': {path}: array {name!r} holds Python objects (not allowed)")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes != info.file_size - header:
        raise CheckpointError(f"'path': {path}: array {name!r} of shape {shape} needs {nbytes} bytes, the file "
                              f"holds {info.file_size - header}")


def _read(path: str, with_arrays: bool) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(metadata, arrays) of a heatbath checkpoint; CheckpointError otherwise."""
    if not zipfile.is_zipfile(path):
        # np.load would try other formats (and suggest unsafe pickle loading): refuse here
        raise CheckpointError(f"'path': {path} is not a heatbath checkpoint (not an .npz archive; "
                              "corrupt or another kind of file)")
    try:
        file_size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise CheckpointError(f"'path': {path} is not an .npz checkpoint (not a zip file)")
            fh.seek(0)
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise CheckpointError(f"'path': {path} is not a heatbath checkpoint")
            meta, arrays = _read_npz(z, path, file_size, with_arrays)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"'path': {path} has metadata nested too deeply") from None
    except MemoryError:
        raise CheckpointError(f"'path': {path} declares more data than fits in memory") from None
    except Exception as exc:  # zip, npy and JSON parsers raise many types on corrupt input
        raise CheckpointError(
            f"'path': {path} is corrupt or not an .npz checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"'path': {path} is not a heatbath checkpoint")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"'path': {path} has no model configuration")
    return meta, arrays


def _read_npz(z: Any, path: str, file_size: int, with_arrays: bool) -> Tuple[Any, Dict[str, np.ndarray]]:
    """(metadata, arrays) of an open NpzFile, every member's size checked first."""
    with z:
        if "__meta__" not in z.files:
            raise CheckpointError(f"'path': {path} is not a heatbath checkpoint (no metadata)")
        for name in z.files:
            _member_check(z.zip, name, path, file_size)
        raw = z["__meta__"]
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_META_BYTES:
            raise CheckpointError(f"'path': {path} has malformed metadata (dtype {raw.dtype}, shape {raw.shape})")
        meta = json.loads(raw.tobytes().decode())
        if _depth(meta, _MAX_META_DEPTH) > _MAX_META_DEPTH:
            raise CheckpointError(f"'path': {path} has metadata nested deeper than {_MAX_META_DEPTH} levels")
        arrays = {k: z[k] for k in z.files if k != "__meta__"} if with_arrays else {}
    return meta, arrays


def read_kind(path: str) -> str:
    """The model kind stored in a checkpoint (CheckpointError if unreadable)."""
    path = _resolve(path)
    meta, _ = _read(path, with_arrays=False)
    return str(meta.get("kind"))


def load(path: str, kind: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Read a checkpoint of model kind ``kind``: (config, arrays). Raises
    CheckpointError naming the problem for a missing, corrupt, foreign or
    wrong-kind file."""
    path = _resolve(path)
    meta, arrays = _read(path, with_arrays=True)
    if meta.get("version") != VERSION:
        raise CheckpointError(f"'path': {path} has checkpoint version {meta.get('version')}, "
                              f"this heatbath reads version {VERSION}")
    if meta.get("kind") != kind:
        raise CheckpointError(f"'path': {path} holds a {meta.get('kind')!r} model, not a {kind!r}")
    return meta["config"], arrays


# ---- validation helpers for the models' load methods ---------------------------


def need(cond: Any, path: str, what: str) -> None:
    """CheckpointError ``path: what`` unless ``cond``."""
    if not cond:
        raise CheckpointError(f"'path': {path}: {what}")


def array(arrays: Dict[str, np.ndarray], name: str, path: str, shape: Any = None, finite: bool = True,
          kind: str = "biuf") -> np.ndarray:
    """Array ``name`` of a checkpoint, checked: present, of a numeric dtype
    kind in ``kind``, of ``shape`` when given (None entries match any size),
    finite when asked."""
    need(name in arrays, path, f"array {name!r} is missing")
    a = arrays[name]
    need(a.dtype.kind in kind, path, f"array {name!r} has dtype {a.dtype}")
    if shape is not None:
        ok = a.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, a.shape))
        need(ok, path, f"array {name!r} has shape {a.shape}, expected {tuple(shape)}")
    if finite and a.dtype.kind == "f":
        need(bool(np.isfinite(a).all()), path, f"array {name!r} holds NaN or infinite values")
    return a


def integer(cfg: Dict[str, Any], name: str, path: str, lo: int, hi: int) -> int:
    """Config entry ``name``: an int in [lo, hi]."""
    v = cfg.get(name)
    need(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi, path,
         f"config {name!r} must be an int in [{lo}, {hi}], got {v!r}")
    return v
