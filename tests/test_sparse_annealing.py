"""AIS of log Z against exact enumeration (within 3 standard errors), and
parallel tempering's samples at the target temperature against the exact
distribution, for small spin and Potts graphs and a small lattice."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath.ebm import IsingLattice, LogZEstimate, SparseIsing, SparsePotts
from heatbath.ebm.graph_annealing import exact_log_z, graph_ais, graph_parallel_tempering
from test_sparse_gibbs import empirical_tv, random_couplings, tv_bound


@pytest.mark.parametrize("kind", ["ising", "ising-clamped", "potts"])
def test_ais_matches_exact(kind):
    J = random_couplings(12 if kind != "potts" else 8, 0.3, 0.8, seed=21)
    n = J.shape[0]
    if kind == "potts":
        m = SparsePotts(
            J, 3, np.random.default_rng(1).normal(0, 0.4, (n, 3)), beta=1.2, n_chains=2000, seed=3
        )
    else:
        m = SparseIsing(J, np.random.default_rng(1).normal(0, 0.4, n), beta=1.2, n_chains=2000, seed=3)
        if kind == "ising-clamped":
            m.clamp([0, 5], [1, -1])
    exact = exact_log_z(m)
    est = graph_ais(m, betas=300, sweeps_per_step=1)
    assert isinstance(est, LogZEstimate) and est.method == "ais"
    assert 0 < est.stderr < 0.05
    assert abs(est.log_z - exact.log_z) < 3 * est.stderr, (est, exact)
    np.testing.assert_allclose(m.beta, 1.2)  # restored


def test_ais_lattice_small():
    # 4 x 4 periodic lattice: exact Z by enumerating 2^16 states
    L = 4
    lat = IsingLattice((L, L), beta=0.4, J=1.0, h=0.1, n_chains=2000, seed=5)
    s = ((np.arange(2**16)[:, None] >> np.arange(16)) & 1) * 2 - 1
    g = s.reshape(-1, L, L)
    bonds = (g * np.roll(g, 1, 1)).sum(axis=(1, 2)) + (g * np.roll(g, 1, 2)).sum(axis=(1, 2))
    E = -bonds - 0.1 * g.sum(axis=(1, 2))
    lw = -0.4 * E
    log_z = lw.max() + np.log(np.exp(lw - lw.max()).sum())
    est = graph_ais(lat, betas=200)
    assert abs(est.log_z - log_z) < 3 * est.stderr, (est, log_z)


def test_parallel_tempering_samples_target():
    J = random_couplings(10, 0.3, 1.5, seed=31)  # strong couplings: slow plain Gibbs
    betas = np.array([0.2, 0.45, 0.7, 1.0])
    R = 3000
    m = SparseIsing(J, beta=1.0, n_chains=R * betas.size, seed=8)
    res = graph_parallel_tempering(m, betas, n_samples=1, warmup=40, keep_states=True)
    assert np.all(res.acceptance > 0.05)
    samples = res.states[0]  # (R, n): one state per replica set, at beta = 1
    target = SparseIsing(J, beta=1.0, n_chains=1, seed=0)
    states, logp, _ = target.enumerate_log_probs()
    tv, p = empirical_tv(target, states, logp, samples)
    assert tv < tv_bound(p, R), (tv, tv_bound(p, R))
    with pytest.raises(ValueError, match="'model'"):
        graph_parallel_tempering(SparseIsing(J, n_chains=5, seed=0), betas, 1)
    with pytest.raises(ValueError, match="'betas'"):
        graph_parallel_tempering(m, [1.0, 0.5], 1)
