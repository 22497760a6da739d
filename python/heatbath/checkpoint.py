"""Checkpoints: a model's arrays as ``.npz`` plus a JSON config, no pickle,
written atomically (a crash mid-write leaves the old file intact)."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

FORMAT = "heatbath-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as the model asked for."""


def save(path: str, kind: str, config: Dict[str, Any], arrays: Dict[str, Any]) -> str:
    """Write ``arrays`` (numpy or cupy) and ``config`` (JSON-able) to ``path``
    (``.npz`` appended if missing) atomically; returns the path written."""
    if not path.endswith(".npz"):
        path = path + ".npz"
    meta = {"format": FORMAT, "version": VERSION, "kind": kind, "config": config}
    host = {k: (v.get() if hasattr(v, "get") and not isinstance(v, np.ndarray) else np.asarray(v))
            for k, v in arrays.items()}
    if "__meta__" in host:
        raise ValueError("'arrays': the name __meta__ is reserved")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
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


def _resolve(path: str) -> str:
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path = path + ".npz"
    if not os.path.isfile(path):
        raise CheckpointError(f"'path': no checkpoint file at {path}")
    return path


def _read(path: str, with_arrays: bool) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(metadata, arrays) of a heatbath checkpoint; CheckpointError otherwise."""
    if not zipfile.is_zipfile(path):
        # np.load would try other formats (and suggest unsafe pickle loading): refuse here
        raise CheckpointError(f"'path': {path} is not a heatbath checkpoint (not an .npz archive; "
                              "corrupt or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__meta__" not in z.files:
                raise CheckpointError(f"'path': {path} is not a heatbath checkpoint (no metadata)")
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"} if with_arrays else {}
    except CheckpointError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, EOFError) as exc:
        raise CheckpointError(f"'path': {path} is corrupt or not an .npz checkpoint ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"'path': {path} is not a heatbath checkpoint")
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
