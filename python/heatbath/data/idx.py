"""IDX files: the format of MNIST and Fashion-MNIST, read from files the user
already has (heatbath never downloads them).

Layout (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, a
type code, the number of dimensions ``ndim``, then ``ndim`` big-endian
unsigned 32-bit sizes, then the data in C order, big-endian:

====  ============================
code  type
====  ============================
0x08  unsigned byte (uint8)
0x09  signed byte (int8)
0x0B  short (int16, 2 bytes)
0x0C  int (int32, 4 bytes)
0x0D  float (float32, 4 bytes)
0x0E  double (float64, 8 bytes)
====  ============================

gzip-compressed files (``train-images-idx3-ubyte.gz`` as distributed) are
recognised by their magic bytes ``1f 8b``, whatever their name.

Only regular files are read (a FIFO or a device would block or never end).
The size the header declares is checked before the data are read: against
the file's size for plain files; for gzip files against ``max_bytes``
(default 1 GiB) and against what deflate can expand the compressed bytes to,
and the stream is read no further than the declared size (a small file
declaring gigabytes is refused, not decompressed until memory runs out).
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from typing import Any, NamedTuple, Union

import numpy as np

__all__ = ["IdxDataset", "load_idx_dataset", "load_idx_dir", "read_idx", "write_idx"]

PathLike = Union[str, "os.PathLike[str]"]

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES: dict[str, int] = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
#: Default cap on the data an IDX file may declare (bytes after decompression).
MAX_BYTES = 2**30
# deflate expands at most about 1032:1
_DEFLATE_RATIO = 1032


class IdxDataset(NamedTuple):
    """Images as rows and their labels.

    ``X``: (n, n_pixels) uint8 with values 0/1 when binarized (else the
    file's values, flattened); ``y``: (n,) int64 labels, or None.
    """

    X: np.ndarray
    y: np.ndarray | None


def _path(path: Any, name: str) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"'{name}': expected a path (str or os.PathLike), got {type(path).__name__}")
    return os.fspath(path)


def _read_bytes(path: str, name: str, max_bytes: int = MAX_BYTES) -> bytes:
    """The IDX bytes of a regular file (decompressed), header and data, read
    only after the declared data size was checked (see the module's notes)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"'{name}': no such file: {path}") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"'{name}': {path} is a directory, expected an IDX file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"'{name}': {path} is not a regular file (a FIFO, socket or device); expected an IDX file")
    with open(path, "rb") as f:
        magic = f.read(2)
        f.seek(0)
        if magic != _GZIP_MAGIC:
            return _read_checked(f, st.st_size, path, name, max_bytes)
        limit = min(max_bytes, _DEFLATE_RATIO * st.st_size + 2**16)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return _read_checked(g, None, path, name, limit)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"'{name}': {path} is a corrupt or truncated gzip file ({exc})") from None


def _read_checked(f: Any, size: Any, path: str, name: str, max_bytes: int) -> bytes:
    """Header, then the declared data if they fit: ``size`` is the plain
    file's size (None for a stream, whose length shows only at the end)."""
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
        return head + f.read(64)  # _parse explains what is wrong with it
    dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        return head + dims
    shape = np.frombuffer(dims, dtype=">u4").astype(object)
    expected = int(np.prod(shape)) * IDX_TYPES[head[2]].itemsize if shape.size else IDX_TYPES[head[2]].itemsize
    if expected > max_bytes:
        raise ValueError(
            f"'{name}': {path} declares shape {tuple(int(s) for s in shape)}, {expected} data bytes, more than "
            f"the {max_bytes} allowed here (max_bytes, or what the compressed size can hold)"
        )
    if size is not None and size != 4 + len(dims) + expected:
        # the exact message (truncated or extra bytes) comes from _parse, without reading a huge file
        if size > 4 + len(dims) + expected:
            raise ValueError(
                f"'{name}': {path} size mismatch: shape {tuple(int(s) for s in shape)} needs {expected} data "
                f"bytes, the file has {size - 4 - len(dims)} ({size - 4 - len(dims) - expected} extra)"
            )
    data = f.read(expected + 1)  # one more byte shows trailing data
    return head + dims + data


def _parse(raw: bytes, path: str, name: str) -> np.ndarray:
    if len(raw) < 4:
        raise ValueError(f"'{name}': {path} is truncated: {len(raw)} bytes, an IDX header needs at least 4")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"'{name}': {path} is not an IDX file: magic number starts with bytes "
            f"{raw[0]:#04x} {raw[1]:#04x}, expected 0x00 0x00"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"{c:#04x}" for c in IDX_TYPES)
        raise ValueError(f"'{name}': {path} has unknown IDX type code {code:#04x} (known: {known})")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(
            f"'{name}': {path} is truncated: the header of {ndim} dimensions needs {head} bytes, "
            f"the file has {len(raw)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    got = len(raw) - head
    if got < expected:
        raise ValueError(
            f"'{name}': {path} is truncated: shape {shape} of {dtype.newbyteorder('=').name} needs "
            f"{expected} data bytes, the file has {got}"
        )
    if got > expected:
        raise ValueError(
            f"'{name}': {path} size mismatch: shape {shape} of {dtype.newbyteorder('=').name} needs "
            f"{expected} data bytes, the file has {got} ({got - expected} extra)"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=head)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: PathLike, *, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed).

    Parameters
    ----------
    path : str or os.PathLike
        A regular file.
    max_bytes : int
        Largest data size (bytes, after decompression) the header may
        declare; checked before reading.

    Returns
    -------
    numpy.ndarray
        Of the file's shape, in native byte order, dtype uint8, int8, int16,
        int32, float32 or float64 per the type code; a fresh writable array.

    Raises
    ------
    FileNotFoundError
        The file does not exist (the message names the path).
    ValueError
        Wrong magic number, unknown type code, truncated header or data,
        trailing bytes, a corrupt gzip stream, a declared size above
        ``max_bytes``, or a path that is not a regular file.
    """
    p = _path(path, "path")
    return _parse(_read_bytes(p, "path", _max_bytes(max_bytes)), p, "path")


def _max_bytes(v: Any) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"'max_bytes': expected an int, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"'max_bytes': must be >= 1, got {v}")
    return int(v)


def write_idx(path: PathLike, array: Any, *, compress: bool | None = None) -> str:
    """Write an array as an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
    array : array_like of dtype uint8, int8, int16, int32, float32 or float64
        At most 255 dimensions, each below 2**32. Other dtypes raise
        TypeError (cast first, e.g. labels ``.astype(np.uint8)``).
    compress : bool, optional
        gzip the file; default: when the path ends with ``.gz``.

    Returns
    -------
    str
        The path written.
    """
    p = _path(path, "path")
    if isinstance(array, (str, bytes)) or array is None:
        raise TypeError(f"'array': expected an array of numbers, got {type(array).__name__}")
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str[1:] if arr.dtype.kind in "iuf" else None
    if key not in _CODES:
        raise TypeError(
            f"'array': IDX stores uint8, int8, int16, int32, float32 or float64, got dtype {arr.dtype}"
        )
    if arr.ndim > 255:
        raise ValueError(f"'array': IDX stores at most 255 dimensions, got {arr.ndim}")
    if any(s >= 2**32 for s in arr.shape):
        raise ValueError(f"'array': every IDX dimension must be below 2**32, got shape {arr.shape}")
    code = _CODES[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()
    if compress is None:
        compress = p.endswith(".gz")
    payload = header + data
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with open(p, "wb") as f:
        f.write(payload)
    return p


def load_idx_dataset(
    images_path: PathLike,
    labels_path: PathLike | None = None,
    binarize: float | None = 0.5,
    *,
    flatten: bool = True,
    limit: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> IdxDataset:
    """Images (and labels) from IDX files, binarized for the Bernoulli models.

    Parameters
    ----------
    images_path : str or os.PathLike
        An IDX file of shape (n, ...), e.g. ``train-images-idx3-ubyte[.gz]``
        (n, 28, 28) uint8.
    labels_path : str or os.PathLike, optional
        An IDX file of shape (n,), e.g. ``train-labels-idx1-ubyte[.gz]``.
    binarize : float in [0, 1] or None
        Threshold: a pixel becomes 1 where ``pixel / 255 > binarize`` for uint8
        images (``pixel > binarize`` for float images), else 0. None keeps the
        file's values.
    flatten : bool
        Rows of ``prod(shape[1:])`` pixels (default), else the file's shape.
    limit : int, optional
        Keep only the first ``limit`` images (and labels).
    max_bytes : int
        As in :func:`read_idx`, for each file.

    Returns
    -------
    IdxDataset
        ``X`` uint8 in {0, 1} of shape (n, n_pixels) when binarized; ``y``
        int64 of shape (n,) or None.
    """
    if binarize is not None:
        if isinstance(binarize, (bool, np.bool_)) or not isinstance(binarize, (int, float, np.number)):
            raise TypeError(f"'binarize': expected a number in [0, 1] or None, got {type(binarize).__name__}")
        binarize = float(binarize)
        if not 0.0 <= binarize <= 1.0:
            raise ValueError(f"'binarize': expected a threshold in [0, 1], got {binarize!r}")
    if limit is not None:
        if isinstance(limit, (bool, np.bool_)) or not isinstance(limit, (int, np.integer)):
            raise TypeError(f"'limit': expected an int, got {type(limit).__name__}")
        if limit < 1:
            raise ValueError(f"'limit': must be >= 1, got {limit}")
    max_bytes = _max_bytes(max_bytes)
    ip = _path(images_path, "images_path")
    images = _parse(_read_bytes(ip, "images_path", max_bytes), ip, "images_path")
    if images.ndim < 1 or images.shape[0] == 0:
        raise ValueError(f"'images_path': {ip} holds no images (shape {images.shape})")
    if limit is not None:
        images = images[:limit]
    labels = None
    if labels_path is not None:
        lp = _path(labels_path, "labels_path")
        labels = _parse(_read_bytes(lp, "labels_path", max_bytes), lp, "labels_path")
        if labels.ndim != 1:
            raise ValueError(
                f"'labels_path': {lp} should hold a 1-D array of labels, got shape {labels.shape}"
            )
        if limit is not None:
            labels = labels[:limit]
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"'labels_path': size mismatch: {lp} has {labels.shape[0]} labels, {ip} has "
                f"{images.shape[0]} images"
            )
        if labels.dtype.kind == "f" and (
            not np.all(np.isfinite(labels))
            or np.any(labels != np.round(labels))
            or np.any(np.abs(labels) >= 2**31)
        ):
            raise ValueError(f"'labels_path': {lp} holds labels that are not integers below 2**31 in magnitude")
        labels = labels.astype(np.int64)
    if binarize is not None:
        if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
            raise ValueError(f"'images_path': {ip} contains NaN or infinity")
        scaled = images / 255.0 if images.dtype == np.uint8 else images
        images = (scaled > binarize).astype(np.uint8)
    if flatten:
        images = images.reshape(images.shape[0], -1)
    return IdxDataset(images, labels)


_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_idx_dir(
    directory: PathLike, split: str = "train", binarize: float | None = 0.5, **kwargs: Any
) -> IdxDataset:
    """The MNIST / Fashion-MNIST split found in ``directory`` under its
    distributed names: ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
    (``split='train'``) or ``t10k-...`` (``split='test'``), each plain,
    or ``.gz``, also with ``-idx`` written ``.idx`` (``train-images.idx3-ubyte``).

    Other keyword arguments go to :func:`load_idx_dataset`.
    """
    d = _path(directory, "directory")
    if split not in _NAMES:
        raise ValueError(f"'split': expected 'train' or 'test', got {split!r}")
    if not os.path.isdir(d):
        raise FileNotFoundError(f"'directory': no such directory: {d}")

    def find(stem: str) -> str | None:
        for s in (stem, stem.replace("-idx", ".idx")):
            for ext in ("", ".gz"):
                p = os.path.join(d, s + ext)
                if os.path.isfile(p):
                    return p
        return None

    img_stem, lab_stem = _NAMES[split]
    images = find(img_stem)
    if images is None:
        raise FileNotFoundError(f"'directory': no {img_stem}[.gz] in {d}")
    return load_idx_dataset(images, find(lab_stem), binarize, **kwargs)
