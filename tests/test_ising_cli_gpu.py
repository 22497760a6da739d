"""The `heatbath ising` command, and CPU/GPU agreement to the bit of the
lattice and sparse-graph samplers (GPU tests skip without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath import cli
from heatbath.ebm import IsingLattice, SparseIsing, SparsePotts
from heatbath.ebm.graphs import dtm_grid_edges


def test_ising_command(capsys):
    assert cli.main(["ising", "-L", "64", "--beta", "0.6", "--sweeps", "200", "--warmup", "100"]) == 0
    out = capsys.readouterr().out
    assert "energy per spin" in out and "Onsager" in out and "updates/ns" in out
    line = [x for x in out.splitlines() if x.startswith("|magnetization|")][0]
    assert abs(float(line.split()[-2]) - 0.9736) < 0.01


def test_ising_command_errors(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ising", "-L", "7"])
    with pytest.raises(SystemExit):
        cli.main(["ising", "-L", "100"])  # > 64 and not a multiple of 64
    assert "multiple of 64" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.parametrize(
    "shape,method",
    [((128, 128), "heatbath"), ((6, 8, 64), "metropolis"), ((16, 1024), "heatbath"), ((4, 10), "metropolis")],
)
def test_lattice_cpu_gpu_identical(shape, method):
    kw = dict(beta=[0.3, 0.44, 0.7], h=0.1, method=method, seed=77)
    cpu = IsingLattice(shape, **kw)
    gpu = IsingLattice(shape, device="cuda", **kw)
    r_c = cpu.sample(5, warmup=3, thin=1)
    r_g = gpu.sample(5, warmup=3, thin=1)
    np.testing.assert_array_equal(gpu.spins, cpu.spins)
    np.testing.assert_array_equal(r_g.energy, r_c.energy)
    np.testing.assert_array_equal(r_g.magnetization, r_c.magnetization)


@pytest.mark.gpu
def test_lattice_chain_offset_on_gpu():
    """Chains [2, 5) of a run on the GPU (chain_offset=2) are rows 2..4 of the CPU run of all chains."""
    beta = np.linspace(0.3, 0.7, 6)
    cpu = IsingLattice((16, 128), beta=beta, h=0.1, seed=5)
    gpu = IsingLattice((16, 128), beta=beta[2:5], h=0.1, seed=5, device="cuda", chain_offset=2)
    r_c = cpu.sample(4, warmup=2)
    r_g = gpu.sample(4, warmup=2)
    np.testing.assert_array_equal(gpu.spins, cpu.spins[2:5])
    np.testing.assert_array_equal(r_g.energy, r_c.energy[:, 2:5])


@pytest.mark.gpu
def test_sparse_cpu_gpu_identical():
    i, j, w, c = dtm_grid_edges(side=20, seed=3)
    for chains in (1000, 37):
        kw = dict(n_chains=chains, colouring=c, seed=5, beta=np.linspace(0.5, 1.5, chains))
        cpu = SparseIsing.from_edges(400, list(zip(i, j)), w, **kw)
        gpu = SparseIsing.from_edges(400, list(zip(i, j)), w, device="cuda", **kw)
        cpu.clamp([0, 7], [1, -1])
        gpu.clamp([0, 7], [1, -1])
        np.testing.assert_array_equal(gpu.sweep(6).state, cpu.sweep(6).state)
        rc = cpu.sample(2, nodes="all", pairs="edges")
        rg = gpu.sample(2, nodes="all", pairs="edges")
        np.testing.assert_allclose(rg.energy, rc.energy, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(rg.pair_mean, rc.pair_mean, rtol=0, atol=1e-12)
    J = np.zeros((30, 30))
    J[np.arange(29), np.arange(1, 30)] = np.linspace(-1, 1, 29)
    J = J + J.T
    P1 = SparsePotts(J, 4, n_chains=300, seed=2).sweep(5).state
    P2 = SparsePotts(J, 4, n_chains=300, seed=2, device="cuda").sweep(5).state
    np.testing.assert_array_equal(P1, P2)


def test_ising_command_cuda_without_gpu(capsys):
    import heatbath

    if heatbath.has_cuda():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        cli.main(["ising", "-L", "64", "--cuda"])
    assert "'--cuda'" in capsys.readouterr().err
