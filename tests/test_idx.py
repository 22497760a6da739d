"""IDX reader and writer: byte-level known answers from the published format,
round trips (plain and gzip) checked against numpy's own big-endian parsing,
and the errors of damaged files. Every file is written to tmp_path."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
from heatbath.data import idx, load_idx_dataset, load_idx_dir, read_idx, write_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def _numpy_parse(raw: bytes) -> np.ndarray:
    """An independent parse: struct for the header, numpy's big-endian dtypes for the data."""
    _, code, ndim = struct.unpack(">HBB", raw[:4])
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=dt).reshape(shape)


def test_known_answer_2x3_ubyte(tmp_path):
    # the published layout, written by hand: 00 00 | 08 (ubyte) | 02 (ndim) | 00000002 | 00000003 | data
    raw = bytes([0x00, 0x00, 0x08, 0x02, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 0, 255])
    p = tmp_path / "a.idx"
    p.write_bytes(raw)
    a = read_idx(p)
    assert a.dtype == np.uint8 and a.shape == (2, 3)
    np.testing.assert_array_equal(a, [[1, 2, 3], [250, 0, 255]])
    # and the writer produces exactly these bytes
    q = tmp_path / "b.idx"
    write_idx(q, np.array([[1, 2, 3], [250, 0, 255]], dtype=np.uint8))
    assert q.read_bytes() == raw


def test_known_answer_int16_and_labels(tmp_path):
    # 1-D int16 [-2, 258]: 00 00 0B 01 | 00000002 | FF FE | 01 02 (big-endian)
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x02])
    p = tmp_path / "s.idx"
    p.write_bytes(raw)
    a = read_idx(p)
    assert a.dtype == np.int16 and a.dtype.isnative
    np.testing.assert_array_equal(a, [-2, 258])
    # MNIST's label header: magic 2049 = 0x00000801, then the count
    p = tmp_path / "labels-idx1-ubyte"
    write_idx(p, np.array([7, 2, 1], dtype=np.uint8))
    assert p.read_bytes() == struct.pack(">II", 2049, 3) + bytes([7, 2, 1])
    # and the images' magic 2051 = 0x00000803
    p = tmp_path / "images-idx3-ubyte"
    write_idx(p, np.zeros((4, 28, 28), np.uint8))
    assert p.read_bytes()[:16] == struct.pack(">IIII", 2051, 4, 28, 28)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_against_numpy(tmp_path, dtype, compress):
    rng = np.random.default_rng(7)
    shape = (5, 3, 4)
    if np.dtype(dtype).kind == "f":
        a = rng.normal(size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    p = tmp_path / ("x.idx.gz" if compress else "x.idx")
    write_idx(p, a)
    raw = p.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == compress
    if compress:
        raw = gzip.decompress(raw)
    assert raw[2] == CODES[dtype] and raw[3] == 3
    ref = _numpy_parse(raw)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.flags.writeable
    np.testing.assert_array_equal(b, ref)
    np.testing.assert_array_equal(b, a)


def test_gzip_by_magic_not_name(tmp_path):
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    p = tmp_path / "plain-name"
    write_idx(p, a, compress=True)
    np.testing.assert_array_equal(read_idx(str(p)), a)
    q = tmp_path / "x.gz"
    write_idx(q, a, compress=False)
    np.testing.assert_array_equal(read_idx(q), a)


def test_big_endian_input_array(tmp_path):
    a = np.arange(6, dtype=">f8").reshape(2, 3)
    p = tmp_path / "be.idx"
    write_idx(p, a)
    b = read_idx(p)
    assert b.dtype == np.float64 and b.dtype.isnative
    np.testing.assert_array_equal(b, a)


def _write(tmp_path, name, raw):
    p = tmp_path / name
    p.write_bytes(raw)
    return p


def test_errors(tmp_path):
    missing = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match="nope-idx3-ubyte"):
        read_idx(missing)
    with pytest.raises(ValueError, match="magic"):
        read_idx(_write(tmp_path, "m", bytes([0, 1, 8, 1, 0, 0, 0, 1, 5])))
    with pytest.raises(ValueError, match="type code 0x0a"):
        read_idx(_write(tmp_path, "c", bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5])))
    with pytest.raises(ValueError, match="truncated.*4"):
        read_idx(_write(tmp_path, "t0", bytes([0, 0])))
    with pytest.raises(ValueError, match="truncated.*header"):
        read_idx(_write(tmp_path, "t1", bytes([0, 0, 8, 2, 0, 0, 0, 2])))
    with pytest.raises(ValueError, match=r"truncated.*needs 6 data bytes.*has 5"):
        read_idx(_write(tmp_path, "t2", bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5])))
    with pytest.raises(ValueError, match="size mismatch.*1 extra"):
        read_idx(_write(tmp_path, "t3", bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3])))
    # a truncated gzip stream
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(range(200)))
    with pytest.raises(ValueError, match="gzip"):
        read_idx(_write(tmp_path, "g.gz", good[: len(good) // 2]))
    with pytest.raises(IsADirectoryError, match="directory"):
        read_idx(tmp_path)
    with pytest.raises(TypeError, match="'path'"):
        read_idx(3)
    with pytest.raises(TypeError, match="'array'.*int64"):
        write_idx(tmp_path / "w", np.arange(3))
    with pytest.raises(TypeError, match="'array'.*bool"):
        write_idx(tmp_path / "w", np.ones(3, bool))
    with pytest.raises(TypeError, match="'array'"):
        write_idx(tmp_path / "w", "abc")


def _mnist_like(tmp_path, n=20, gz=True, prefix="train"):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    ext = ".gz" if gz else ""
    ip = write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", images)
    lp = write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels, ip, lp


def test_load_idx_dataset(tmp_path):
    images, labels, ip, lp = _mnist_like(tmp_path)
    d = load_idx_dataset(ip, lp)
    assert d.X.dtype == np.uint8 and d.X.shape == (20, 784)
    assert set(np.unique(d.X)) <= {0, 1}
    np.testing.assert_array_equal(d.X, (images.reshape(20, -1) >= 128).astype(np.uint8))
    assert d.y.dtype == np.int64
    np.testing.assert_array_equal(d.y, labels)
    # the threshold is on pixel / 255, strict
    d = load_idx_dataset(ip, binarize=0.0)
    np.testing.assert_array_equal(d.X, (images.reshape(20, -1) > 0).astype(np.uint8))
    assert d.y is None
    d = load_idx_dataset(ip, lp, binarize=None, flatten=False, limit=5)
    np.testing.assert_array_equal(d.X, images[:5])
    np.testing.assert_array_equal(d.y, labels[:5])
    # float images are thresholded as they are
    fp = write_idx(tmp_path / "f.idx", np.array([[0.2, 0.7], [0.5, 0.9]], dtype=np.float32))
    np.testing.assert_array_equal(load_idx_dataset(fp).X, [[0, 1], [0, 1]])


def test_load_idx_dir(tmp_path):
    _images, labels, _, _ = _mnist_like(tmp_path, n=6, gz=True, prefix="t10k")
    _mnist_like(tmp_path, n=9, gz=False, prefix="train")
    d = load_idx_dir(tmp_path, "test")
    assert d.X.shape == (6, 784)
    np.testing.assert_array_equal(d.y, labels)
    assert load_idx_dir(tmp_path).X.shape == (9, 784)
    os.rename(tmp_path / "train-images-idx3-ubyte", tmp_path / "train-images.idx3-ubyte")
    assert load_idx_dir(tmp_path, "train").X.shape == (9, 784)
    with pytest.raises(ValueError, match="'split'"):
        load_idx_dir(tmp_path, "valid")
    with pytest.raises(FileNotFoundError, match="no train-images"):
        load_idx_dir(_empty(tmp_path), "train")
    with pytest.raises(FileNotFoundError, match="'directory'"):
        load_idx_dir(tmp_path / "absent")


def _empty(tmp_path):
    p = tmp_path / "empty"
    p.mkdir()
    return p


def test_load_idx_dataset_errors(tmp_path):
    _, labels, ip, lp = _mnist_like(tmp_path, n=10)
    short = write_idx(tmp_path / "short-labels", labels[:7])
    with pytest.raises(ValueError, match="size mismatch.*7 labels.*10 images"):
        load_idx_dataset(ip, short)
    with pytest.raises(FileNotFoundError, match="'labels_path'.*missing-labels"):
        load_idx_dataset(ip, tmp_path / "missing-labels")
    with pytest.raises(FileNotFoundError, match="'images_path'.*missing-images"):
        load_idx_dataset(tmp_path / "missing-images", lp)
    two_d = write_idx(tmp_path / "2d-labels", np.zeros((10, 2), np.uint8))
    with pytest.raises(ValueError, match="'labels_path'.*1-D"):
        load_idx_dataset(ip, two_d)
    with pytest.raises(ValueError, match="'binarize'"):
        load_idx_dataset(ip, binarize=1.5)
    with pytest.raises(TypeError, match="'binarize'"):
        load_idx_dataset(ip, binarize="0.5")
    with pytest.raises(ValueError, match="'limit'"):
        load_idx_dataset(ip, limit=0)
    nan = write_idx(tmp_path / "nan", np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="'images_path'.*NaN"):
        load_idx_dataset(nan)
    assert idx.IDX_TYPES[0x08] == np.uint8
