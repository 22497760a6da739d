"""IsingLattice: bit-exact agreement with an independent numpy reference of the
documented update (thresholds, counter layout, bit-sliced comparison), the
exact 2D solution (Onsager), every CPU level alike, and clear errors."""

from __future__ import annotations

import heatbath
import numpy as np
import pytest
import reference as ref
from heatbath import _backend
from heatbath.ebm import IsingLattice
from heatbath.ebm.lattice import batch_means, onsager_energy, onsager_magnetization

TWO32 = 2.0**32


def _threshold_table(beta, J, h, z, method):
    """t[chain, class] = floor(p 2^32), written from the model, not the kernel."""
    k = np.arange(z + 1)
    local = J * (2 * k - z) + h
    rows = []
    for b in np.atleast_1d(beta):
        if method == "heatbath":
            p = 1.0 / (1.0 + np.exp(-2.0 * b * local))
        else:
            p = np.concatenate([np.minimum(1.0, np.exp(-b * 2.0 * s * local)) for s in (-1.0, 1.0)])
        rows.append(np.floor(p * TWO32).astype(np.int64))
    return np.array(rows)


def reference_sweeps(spins, beta, J, h, method, seed, sweep0, n, chain0=0):
    """Sweeps of int8 lattices (chains, [Lz,] Ly, Lx) by the documented rule:
    site x = 2k + p of row r in colour c has word w = ((chain*2 + c)*rows + r)*wpr + k//32
    (chain: the index in the run, chain0 + the index here),
    lane k % 32; its 32-bit uniform is bits 31..0 taken from lane of planes 0..31,
    plane j = word j % 4 of Philox block 8w + j//4 of stream = sweep."""
    s = spins.copy().astype(np.int64)
    C = s.shape[0]
    dims = s.shape[1:]
    d = len(dims)
    z = 2 * d
    lx = dims[-1]
    H = lx // 2
    wpr = (H + 31) // 32
    rows = int(np.prod(dims[:-1]))
    tab = _threshold_table(beta, J, h, z, method)
    grids = np.meshgrid(*[np.arange(L) for L in dims], indexing="ij")
    parity = sum(grids) % 2
    x = grids[-1]
    row = np.zeros(dims, dtype=np.int64)
    if d == 3:
        row = grids[0] * dims[1] + grids[1]
    else:
        row = grids[0]
    kidx = x // 2
    for t in range(sweep0, sweep0 + n):
        for c in (0, 1):
            sel = parity == c
            nb = sum(np.roll(s, sh, axis=ax) for ax in range(1, d + 1) for sh in (1, -1))
            kup = (nb + z) // 2  # number of up neighbours
            for ch in range(C):
                w = (((chain0 + ch) * 2 + c) * rows + row[sel]) * wpr + kidx[sel] // 32
                lane = (kidx[sel] % 32).astype(np.uint64)
                uw, inv = np.unique(w, return_inverse=True)
                blocks = (8 * uw[:, None] + np.arange(8)[None, :]).astype(np.uint64)
                words = ref.block_words(seed, t, blocks.reshape(-1)).reshape(len(uw), 32).astype(np.uint64)
                planes = words[inv]  # (sites, 32): plane j at column j (block j//4, word j%4)
                bits = (planes >> lane[:, None]) & np.uint64(1)
                u = (bits * (np.uint64(1) << np.arange(31, -1, -1, dtype=np.uint64))[None, :]).sum(axis=1)
                cur = s[ch][sel]
                cls = kup[ch][sel] if method == "heatbath" else kup[ch][sel] + (cur > 0) * (z + 1)
                below = u.astype(np.int64) < tab[ch][cls]
                if method == "heatbath":
                    new = np.where(below, 1, -1)
                else:
                    new = np.where(below, -cur, cur)
                sc = s[ch]
                sc[sel] = new
    return s.astype(np.int8)


CASES = [
    ((8, 8), "heatbath", [0.3, 0.9], 0.2),
    ((6, 128), "metropolis", [0.44], -0.1),
    ((4, 6, 8), "heatbath", [0.25], 0.0),
    ((4, 4, 10), "metropolis", [0.2, 0.5], 0.3),
    ((4, 1024), "heatbath", [0.44], 0.0),
    ((2, 2), "metropolis", [0.7], 0.0),
]


@pytest.mark.parametrize("shape,method,beta,h", CASES)
def test_bit_exact_against_reference(shape, method, beta, h):
    lat = IsingLattice(shape, beta=np.array(beta), J=0.8, h=h, method=method, seed=12345, init="random")
    lat.sweep(1)  # sweep 0
    s0 = lat.spins
    lat.sweep(2)  # sweeps 1, 2
    want = reference_sweeps(s0, beta, 0.8, h, method, 12345, 1, 2)
    np.testing.assert_array_equal(lat.spins, want)


def test_chain_offset_against_reference():
    beta = [0.35, 0.8]
    lat = IsingLattice((6, 128), beta=beta, J=0.8, h=0.1, method="metropolis", seed=77, chain_offset=5)
    s0 = lat.spins
    want = reference_sweeps(s0, beta, 0.8, 0.1, "metropolis", 77, 0, 2, chain0=5)
    np.testing.assert_array_equal(lat.sweep(2).spins, want)


@pytest.mark.parametrize("level", heatbath.cpu_levels())
@pytest.mark.parametrize(
    "shape,method",
    [((8, 8), "heatbath"), ((4, 6, 8), "metropolis"), ((6, 128), "heatbath"), ((256, 256), "heatbath")],
)
def test_chain_offset_shards_equal_the_whole_run(level, shape, method):
    """Chains [a, b) with chain_offset=a are rows a..b-1 of the one-object run:
    initial state, every sweep and the recorded observables (the 256x256 case
    runs the kernels' threaded paths: chains per thread, and batches shared)."""
    n = 3 if shape == (256, 256) else 7
    sweeps = 2 if shape == (256, 256) else 5
    beta = np.linspace(0.25, 0.7, n)
    with _backend.cpu_level_as(level):
        whole = IsingLattice(shape, beta=beta, h=0.05, method=method, seed=9)
        s0 = whole.spins
        rec = whole.sample(sweeps, warmup=1)
        for a, b in ((0, 1), (1, n), (n // 2, n - 1)):
            part = IsingLattice(shape, beta=beta[a:b], h=0.05, method=method, seed=9, chain_offset=a)
            np.testing.assert_array_equal(part.spins, s0[a:b])
            got = part.sample(sweeps, warmup=1)
            np.testing.assert_array_equal(got.energy, rec.energy[:, a:b])
            np.testing.assert_array_equal(got.magnetization, rec.magnetization[:, a:b])
            np.testing.assert_array_equal(part.spins, whole.spins[a:b])


@pytest.mark.parametrize("level", heatbath.cpu_levels())
def test_levels_and_threads_agree(level):
    def run(threads):
        with _backend.cpu_level_as(level), heatbath.threads(threads):
            lat = IsingLattice((16, 128), beta=[0.3, 0.44, 0.6], method="heatbath", seed=5)
            lat.sweep(7)
            return lat.spins

    base = run(1)
    np.testing.assert_array_equal(run(2), base)
    with _backend.cpu_level_as("base"):
        lat = IsingLattice((16, 128), beta=[0.3, 0.44, 0.6], method="heatbath", seed=5)
        np.testing.assert_array_equal(lat.sweep(7).spins, base)


def test_observables_match_spins():
    lat = IsingLattice((6, 8, 64), beta=0.3, J=0.7, h=0.2, n_chains=2, seed=3)
    lat.sweep(3)
    s = lat.spins.astype(np.float64)
    bonds = sum((s * np.roll(s, 1, axis=a)).sum(axis=(1, 2, 3)) for a in (1, 2, 3))
    e = (-0.7 * bonds - 0.2 * s.sum(axis=(1, 2, 3))) / s[0].size
    np.testing.assert_allclose(lat.energy(), e, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lat.magnetization(), s.mean(axis=(1, 2, 3)), rtol=0, atol=1e-12)


def test_spins_roundtrip_and_per_chain_beta():
    rng = np.random.default_rng(0)
    s = rng.choice(np.array([-1, 1], dtype=np.int8), size=(3, 10, 64))
    lat = IsingLattice((10, 64), beta=[0.1, 0.2, 0.3], seed=1)
    lat.spins = s
    np.testing.assert_array_equal(lat.spins, s)
    # chains are independent: a chain's trajectory does not depend on the others' beta
    a = IsingLattice((10, 64), beta=[0.1, 0.2, 0.3], seed=1)
    b = IsingLattice((10, 64), beta=[0.9, 0.2, 0.0], seed=1)
    a.spins = s
    b.spins = s
    np.testing.assert_array_equal(a.sweep(4).spins[1], b.sweep(4).spins[1])


# Onsager: L = 128, 3 independent chains, 200 warm-up + 400 recorded sweeps.
# The finite-size corrections to e and |m| at these betas are below 1e-4
# (correlation length < 2 sites at 0.3, 0.5, 0.6), far below the errors.
@pytest.mark.parametrize("beta", [0.3, 0.5, 0.6])
def test_onsager(beta):
    lat = IsingLattice((128, 128), beta=beta, n_chains=3, seed=2015, init="up" if beta > 0.45 else "random")
    res = lat.sample(400, warmup=200)
    e, de = batch_means(res.energy)
    assert abs(e - onsager_energy(beta)) < 4 * de + 1e-4, (e, de, onsager_energy(beta))
    if beta > 0.45:
        m, dm = batch_means(np.abs(res.magnetization))
        assert abs(m - onsager_magnetization(beta)) < 4 * dm + 1e-4, (m, dm, onsager_magnetization(beta))
    else:
        # paramagnet: the signed magnetization averages to 0, |m| is O(N^-1/2)
        m, dm = batch_means(res.magnetization)
        assert abs(m) < 4 * dm
        assert np.abs(res.magnetization).mean() < 0.05


def test_3d_metropolis_and_heatbath_agree_statistically():
    # the two samplers target the same distribution: 3D, beta = 0.2 (paramagnet)
    out = []
    for method in ("heatbath", "metropolis"):
        lat = IsingLattice((16, 16, 64), beta=0.2, n_chains=2, method=method, seed=9)
        res = lat.sample(200, warmup=100)
        out.append(batch_means(res.energy))
    (e1, d1), (e2, d2) = out
    assert abs(e1 - e2) < 4 * np.hypot(d1, d2)


def test_errors():
    with pytest.raises(ValueError, match="'shape'"):
        IsingLattice((7, 8))
    with pytest.raises(ValueError, match="'shape'"):
        IsingLattice((8, 96))
    with pytest.raises(ValueError, match="'method'"):
        IsingLattice((8, 8), method="wolff")
    with pytest.raises(ValueError, match="'beta'"):
        IsingLattice((8, 8), beta=[0.1, 0.2], n_chains=3)
    with pytest.raises(ValueError, match="'beta'"):
        IsingLattice((8, 8), beta=np.nan)
    lat = IsingLattice((8, 8), seed=0)
    with pytest.raises(TypeError, match="'spins'"):
        lat.spins = np.ones((1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="'spins'"):
        lat.spins = np.ones((2, 8, 8), dtype=np.int8)
    with pytest.raises(ValueError, match="'spins'"):
        lat.spins = np.zeros((1, 8, 8), dtype=np.int8)
    with pytest.raises(ValueError, match="'n_sweeps'"):
        lat.sample(0)
    with pytest.raises(ValueError, match="'chain_offset'"):
        IsingLattice((8, 8), chain_offset=-1)
    with pytest.raises(TypeError, match="'chain_offset'"):
        IsingLattice((8, 8), chain_offset=1.5)
    with pytest.raises(ValueError, match="'chain0'"):
        heatbath._core.ising_sweep(lat.packed, 8, 8, 1, 2, 1, np.zeros(33, np.uint32), False, 0, 0, 1, 0,
                                   np.zeros(0, np.int64), np.zeros(0, np.int64), 1 << 62)
