"""Independent numpy references for heatbath's random streams: Philox4x32-10
written from the published round function, and the element-to-counter map
and transforms documented in csrc/heatbath/distributions.h."""

from __future__ import annotations

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF
TILE_BLOCKS = 32


def philox4x32_10(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 on uint32 arrays (..., 4) and (..., 2), in uint64 arithmetic."""
    c = [counter[..., i].astype(np.uint64) for i in range(4)]
    k0 = key[..., 0].astype(np.uint64)
    k1 = key[..., 1].astype(np.uint64)
    for r in range(10):
        if r:
            k0 = (k0 + W0) & MASK
            k1 = (k1 + W1) & MASK
        p0 = np.uint64(M0) * c[0]
        p1 = np.uint64(M1) * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return np.stack(c, axis=-1).astype(np.uint32)


def block_words(seed: int, stream: int, blocks: np.ndarray) -> np.ndarray:
    """The four words of each Philox block of stream (seed, stream)."""
    blocks = np.asarray(blocks, dtype=np.uint64)
    ctr = np.stack(
        [blocks & MASK, blocks >> np.uint64(32),
         np.full_like(blocks, stream & MASK), np.full_like(blocks, stream >> 32)], axis=-1
    ).astype(np.uint32)
    key = np.array([seed & MASK, seed >> 32], dtype=np.uint32)
    return philox4x32_10(ctr, np.broadcast_to(key, ctr.shape[:-1] + (2,)))


def element_slots(j: np.ndarray, words_per_value: int):
    per_tile = TILE_BLOCKS * (4 // words_per_value)
    j = np.asarray(j, dtype=np.uint64)
    tile, r = j // np.uint64(per_tile), j % np.uint64(per_tile)
    return tile * np.uint64(TILE_BLOCKS) + r % np.uint64(TILE_BLOCKS), (r // np.uint64(TILE_BLOCKS)).astype(np.int64)


def words_for(seed: int, stream: int, offset: int, n: int, words_per_value: int) -> np.ndarray:
    """(n, words_per_value) words used by elements offset .. offset + n - 1."""
    j = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    block, slot = element_slots(j, words_per_value)
    w = block_words(seed, stream, block)
    idx = slot[:, None] * words_per_value + np.arange(words_per_value)
    return np.take_along_axis(w, idx, axis=1)


def uniform_f32(seed, offset, n, stream=0):
    w = words_for(seed, stream, offset, n, 1)[:, 0]
    return ((w >> 9).astype(np.float64) + 0.5) * 2.0**-23


def uniform_f64(seed, offset, n, stream=0):
    w = words_for(seed, stream, offset, n, 2).astype(np.uint64)
    k = (w[:, 0] << np.uint64(20)) | (w[:, 1] >> np.uint64(12))
    return (k.astype(np.float64) + 0.5) * 2.0**-52


def normal_f32_f64ref(seed, offset, n, stream=0):
    """Box-Muller of heatbath's float32 normals, evaluated in float64 from the
    same words (the float32 result should agree to a few float32 ulp)."""
    j = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    block, slot = element_slots(j, 1)
    w = block_words(seed, stream, block)
    pair = slot // 2
    w0 = np.take_along_axis(w, (2 * pair)[:, None], axis=1)[:, 0]
    w1 = np.take_along_axis(w, (2 * pair + 1)[:, None], axis=1)[:, 0]
    u0 = (np.float32(w0 >> 1) * np.float32(2.0**-31) + np.float32(2.0**-32)).astype(np.float64)
    u1 = ((w1 >> 9).astype(np.float64) + 0.5) * 2.0**-23
    r = np.sqrt(-2.0 * np.log(u0))
    return np.where(slot % 2 == 0, r * np.cos(2 * np.pi * u1), r * np.sin(2 * np.pi * u1)), r


def normal_f64(seed, offset, n, stream=0):
    j = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    block, slot = element_slots(j, 2)
    w = block_words(seed, stream, block).astype(np.uint64)
    u = [(((w[:, 2 * i] << np.uint64(20)) | (w[:, 2 * i + 1] >> np.uint64(12))).astype(np.float64) + 0.5)
         * 2.0**-52 for i in range(2)]
    r = np.sqrt(-2.0 * np.log(u[0]))
    return np.where(slot == 0, r * np.cos(2 * np.pi * u[1]), r * np.sin(2 * np.pi * u[1]))


def bernoulli(p, seed, offset, stream=0):
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    w = words_for(seed, stream, offset, p.size, 1)[:, 0].astype(np.uint64)
    thr = np.floor(p * 2.0**32).astype(np.uint64)
    return w < thr


def integers(low, high, seed, offset, n, stream=0):
    w = words_for(seed, stream, offset, n, 2).astype(object)
    x = (w[:, 0] << 32) | w[:, 1]
    rng = high - low
    return np.array([low + ((int(v) * rng) >> 64) for v in x], dtype=np.int64)
