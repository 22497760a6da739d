"""Periodic Ising lattices in 2D and 3D, sampled by multi-spin-coded
checkerboard heat-bath (Gibbs) or Metropolis sweeps on CPU (``heatbath._core``)
or GPU (``heatbath._cuda``).

The spins are stored packed, 32 sites of one colour of one chain per 32-bit
word. Acceptance probabilities depend only on the number of up neighbours
(and, for Metropolis, the spin itself), so they are precomputed as 33-bit
integer thresholds ``t = floor(p 2^32)`` and compared with 32-bit uniform
Philox words: ``P(u < t) = t / 2^32`` exactly, no transcendental function per
site, and the CPU and the GPU give the same spins to the bit for the same
seed. The comparison is bit-sliced (see ``csrc/heatbath/ising.h``), drawing on
average about 8 random bits per site instead of 32.

Every update is a pure function of ``(seed, sweep, site, chain)``, with the
chain's index in the whole run: a lattice object holding chains ``[a, b)`` of
a run (``chain_offset=a``) evolves, bit for bit, as rows ``a .. b - 1`` of the
object holding all chains, so a run can be split across processes or machines
(:func:`heatbath.distributed.gibbs_lattice`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import _backend, _core
from .._guard import MAX_STEPS, Guarded, as_float_array, as_int, locked
from ..random import as_seed

__all__ = [
    "IsingLattice",
    "LatticeSamples",
    "ising_thresholds",
    "batch_means",
    "onsager_energy",
    "onsager_magnetization",
    "BETA_C_2D",
]

BETA_C_2D = 0.5 * np.log(1.0 + np.sqrt(2.0))
_TWO32 = 4294967296.0


def _expit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def ising_thresholds(beta: np.ndarray, J: float, h: float, z: int, method: str) -> np.ndarray:
    """Integer thresholds of the local updates, packed as the kernels read them.

    Parameters
    ----------
    beta : ndarray of shape (n_chains,), float64
        Inverse temperature of each chain.
    J, h : float
        Coupling and field: ``E = -J sum_<ij> s_i s_j - h sum_i s_i``.
    z : int
        Coordination number (4 in 2D, 6 in 3D).
    method : {"heatbath", "metropolis"}

    Returns
    -------
    ndarray of shape (n_chains, 33), uint32
        Word b < 32: bit mask of the classes whose threshold has bit b set;
        word 32: classes whose threshold is 2^32 (always accepted). Classes:
        k = number of up neighbours (heat-bath: P(new spin up)), or
        s (z + 1) + k with s the current spin bit (Metropolis: P(flip)).
    """
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    k = np.arange(z + 1, dtype=np.float64)
    local = J * (2.0 * k - z) + h  # local field for each k
    if method == "heatbath":
        p = _expit(2.0 * beta[:, None] * local[None, :])
    else:
        sigma = np.array([-1.0, 1.0])
        d_e = 2.0 * sigma[None, :, None] * local[None, None, :]  # (1, 2, z + 1)
        with np.errstate(over="ignore"):
            p = np.minimum(1.0, np.exp(-beta[:, None, None] * d_e)).reshape(beta.size, -1)
    t = np.floor(p * _TWO32).astype(np.uint64)  # exact: p * 2^32 is a power-of-two scaling
    ncls = t.shape[1]
    full = t >= np.uint64(1 << 32)  # (chains, classes)
    bits = ((t[:, :, None] >> np.arange(32, dtype=np.uint64)) & np.uint64(1)).astype(bool) & ~full[:, :, None]
    weight = np.uint64(1) << np.arange(ncls, dtype=np.uint64)  # class c -> bit c
    out = np.empty((beta.size, 33), dtype=np.uint64)
    out[:, :32] = (bits * weight[None, :, None]).sum(axis=1)
    out[:, 32] = (full * weight[None, :]).sum(axis=1)
    return out.astype(np.uint32)


def batch_means(x: np.ndarray, n_batches: int = 16) -> tuple[float, float]:
    """Mean and standard error of a correlated series by batch means.

    Parameters
    ----------
    x : array_like of shape (n,) or (n, n_chains)
        Time series (axis 0 is time); chains, when given, are averaged per
        time step first (they are independent, so this only lowers the noise).
    n_batches : int
        Number of contiguous batches; the error is ``std(batch means) /
        sqrt(n_batches)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    n = (x.size // n_batches) * n_batches
    if n == 0:
        raise ValueError(f"'x': need at least {n_batches} samples, got {x.size}")
    b = x[x.size - n :].reshape(n_batches, -1).mean(axis=1)
    return float(b.mean()), float(b.std(ddof=1) / np.sqrt(n_batches))


def onsager_energy(beta: float, J: float = 1.0) -> float:
    """Exact energy per spin of the infinite 2D Ising model (zero field), with
    the complete elliptic integral of the first kind (scipy)."""
    from scipy.special import ellipk

    K = beta * J
    k = 2.0 * np.sinh(2 * K) / np.cosh(2 * K) ** 2
    # scipy's ellipk takes the parameter m = k^2
    return float(-J / np.tanh(2 * K) * (1 + 2 / np.pi * (2 * np.tanh(2 * K) ** 2 - 1) * ellipk(k * k)))


def onsager_magnetization(beta: float, J: float = 1.0) -> float:
    """Spontaneous magnetization per spin of the infinite 2D Ising model:
    ``(1 - sinh(2 beta J)^-4)^(1/8)`` above the critical beta, else 0."""
    s = np.sinh(2 * beta * J)
    return float((1 - s**-4) ** 0.125) if beta * J > BETA_C_2D else 0.0


@dataclass
class LatticeSamples:
    """Observables recorded by :meth:`IsingLattice.sample`.

    Attributes
    ----------
    energy : ndarray of shape (n_records, n_chains), float64
        Energy per spin.
    magnetization : ndarray of shape (n_records, n_chains), float64
        Magnetization per spin (signed).
    sweeps : int
        Sweeps run (warm-up excluded).
    seconds : float
        Wall time of the sampling sweeps (warm-up excluded).
    n_sites : int
        Sites per chain.
    """

    energy: np.ndarray
    magnetization: np.ndarray
    sweeps: int
    seconds: float
    n_sites: int

    def summary(self, n_batches: int = 16) -> dict:
        """Means and batch-means errors of the energy per spin and of |m|."""
        e, de = batch_means(self.energy, n_batches)
        m, dm = batch_means(np.abs(self.magnetization), n_batches)
        return {"energy": e, "energy_err": de, "abs_magnetization": m, "abs_magnetization_err": dm}

    @property
    def updates_per_ns(self) -> float:
        n_chains = self.energy.shape[1] if self.energy.ndim == 2 else 1
        return self.sweeps * self.n_sites * n_chains / max(self.seconds, 1e-12) / 1e9


def per_chain_beta(value: Any, n_chains: int) -> np.ndarray:
    """``beta`` as a float64 array of one finite value per chain (a scalar is
    repeated); ValueError naming 'beta' otherwise."""
    b = as_float_array(value, "beta")
    if b.ndim == 0:
        b = np.full(n_chains, float(b))
    if b.shape != (n_chains,):
        raise ValueError(f"'beta': expected a float or shape ({n_chains},), got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("'beta': must be finite")
    return b


def _as_positive_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an int, got bool")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an int, got {type(v).__name__}") from None
    if i < 1:
        raise ValueError(f"'{name}': must be >= 1, got {i}")
    return i


def _as_offset(v: Any) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("'chain_offset': expected an int, got bool")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"'chain_offset': expected an int, got {type(v).__name__}") from None
    if not 0 <= i < 1 << 48:
        raise ValueError(f"'chain_offset': must lie in [0, 2**48), got {i}")
    return i


class IsingLattice(Guarded):
    """Periodic 2D or 3D Ising lattice(s), ``E = -J sum_<ij> s_i s_j - h sum_i s_i``,
    s = +/-1, sampled at inverse temperature ``beta`` (one per chain).

    Parameters
    ----------
    shape : tuple of int, (Ly, Lx) or (Lz, Ly, Lx)
        Lattice sides, all even; ``Lx`` at most 64 or a multiple of 64
        (the packed rows). An int L means (L, L).
    beta : float or array_like of shape (n_chains,)
        Inverse temperature; an array gives each chain its own.
    J, h : float
        Coupling and field.
    n_chains : int
        Independent chains (lattices); inferred from ``beta`` when it is an
        array.
    method : {"heatbath", "metropolis"}
        Checkerboard heat-bath (Gibbs) or Metropolis updates.
    seed : int, numpy.random.Generator or None
        Philox key. The initial state and every update are pure functions of
        (seed, sweep, site, chain).
    init : {"random", "up", "down"}
        Initial spins (``"random"``: fair coin per site from the same seed).
    device : {"cpu", "cuda"}
        Where the spins live: numpy on the CPU, cupy on the GPU.
    chain_offset : int
        Index in the whole run of this object's first chain (>= 0): chain
        ``c`` here draws the initial state and every update of chain
        ``chain_offset + c`` of the run, so objects holding chains ``[a, b)``
        (``chain_offset=a``) reproduce rows ``a .. b - 1`` of one object
        holding all chains. Any value is allowed (the packed words never mix
        chains); ``beta`` is that of the chains held here.

    One object may be used from several threads: its methods take the
    object's lock, so concurrent calls run one after another. Long calls
    (``sweep``, ``sample``) can be interrupted by Ctrl-C (KeyboardInterrupt);
    the spins then hold the sweeps done, counted by ``sweeps_done``.

    Examples
    --------
    >>> from heatbath.ebm import IsingLattice
    >>> lat = IsingLattice((64, 64), beta=0.6, seed=1, init="up")
    >>> res = lat.sample(200, warmup=100)
    >>> abs(res.summary()["abs_magnetization"] - 0.9746) < 0.01
    True
    """

    def __init__(
        self,
        shape: Union[int, Sequence[int]],
        beta: Any = 0.44,
        J: float = 1.0,
        h: float = 0.0,
        n_chains: Optional[int] = None,
        method: str = "heatbath",
        seed: Any = None,
        init: str = "random",
        device: str = "cpu",
        chain_offset: int = 0,
    ) -> None:
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (int(shape), int(shape))
        try:
            dims = tuple(operator.index(d) for d in shape)  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(f"'shape': expected an int or a tuple of ints, got {shape!r}") from None
        if len(dims) not in (2, 3):
            raise ValueError(f"'shape': expected (Ly, Lx) or (Lz, Ly, Lx), got {dims}")
        if any(d > 2**20 for d in dims):
            raise ValueError(f"'shape': every side must be <= 2**20, got {dims}")
        if any(d < 2 or d % 2 for d in dims):
            raise ValueError(f"'shape': every side must be even and >= 2 (checkerboard), got {dims}")
        if dims[-1] > 64 and dims[-1] % 64:
            raise ValueError(f"'shape': Lx (the last side) must be <= 64 or a multiple of 64, got {dims[-1]}")
        if method not in ("heatbath", "metropolis"):
            raise ValueError(f"'method': expected 'heatbath' or 'metropolis', got {method!r}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"'device': expected 'cpu' or 'cuda', got {device!r}")
        if init not in ("random", "up", "down"):
            raise ValueError(f"'init': expected 'random', 'up' or 'down', got {init!r}")
        for name, v in (("J", J), ("h", h)):
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"'{name}': expected a number, got {type(v).__name__}") from None
            if not np.isfinite(fv):
                raise ValueError(f"'{name}': must be finite, got {v}")
        self.shape = dims
        self.dim = len(dims)
        self.J = float(J)
        self.h = float(h)
        self.method = method
        self.init = init
        self.device = device
        self.seed = as_seed(seed)
        b = as_float_array(beta, "beta")
        if b.ndim > 1:
            raise ValueError(f"'beta': expected a float or a 1-D array, got shape {b.shape}")
        if n_chains is None:
            n_chains = b.size if b.ndim == 1 else 1
        self.n_chains = _as_positive_int(n_chains, "n_chains")
        if self.n_chains * int(np.prod(dims)) > 2**40:
            raise ValueError(f"'n_chains': {self.n_chains} chains of {dims} sites are too many (over 2**40 sites)")
        self.chain_offset = _as_offset(chain_offset)
        self._sweep = 0
        self.beta = beta  # property: checks and builds the thresholds
        self.n_sites = int(np.prod(dims))
        lx, ly = dims[-1], dims[-2]
        lz = dims[0] if self.dim == 3 else 1
        self._geom = (lx, ly, lz, self.dim)
        self._words = self.n_chains * 2 * ly * lz * ((lx // 2 + 31) // 32)
        self._packed = np.zeros(self._words, dtype=np.uint32)
        if init == "random":
            from ..random import bernoulli

            bits = bernoulli(0.5, self.seed, self.chain_offset * self.n_sites, shape=(self.n_chains,) + dims,
                             stream=(1 << 63) + 1)
            s8 = bits.view(np.int8)  # 1 = up, 0 = down: the packing reads "> 0" as up
        else:
            s8 = np.full((self.n_chains,) + dims, 1 if init == "up" else -1, dtype=np.int8)
        self._set_packed_from(s8)

    # ---- state ------------------------------------------------------------
    @property
    def beta(self) -> np.ndarray:
        """Inverse temperature of each chain, shape (n_chains,), float64."""
        return self._beta.copy()

    @beta.setter
    def beta(self, value: Any) -> None:
        b = per_chain_beta(value, self.n_chains)
        th = ising_thresholds(b, self.J, self.h, 2 * self.dim, self.method)
        th = _backend.cupy_module().asarray(th) if self.device == "cuda" else th
        with self._lock:
            self._beta = b
            self._th = th

    def _set_packed_from(self, s8: np.ndarray) -> None:
        packed = np.empty(self._words, dtype=np.uint32)
        _core.ising_pack(np.ascontiguousarray(s8.reshape(-1)), *self._geom, self.n_chains, packed)
        self._packed = _backend.cupy_module().asarray(packed) if self.device == "cuda" else packed

    @property
    def spins(self) -> np.ndarray:
        """The spins, int8 +/-1 of shape (n_chains, *shape) (a numpy copy)."""
        with self._lock:
            packed = self._packed.get() if self.device == "cuda" else self._packed
            out = np.empty((self.n_chains,) + self.shape, dtype=np.int8)
            _core.ising_unpack(packed, *self._geom, self.n_chains, out.reshape(-1))
            return out

    @spins.setter
    def spins(self, value: Any) -> None:
        if _backend.is_cupy(value):
            value = value.get()
        s = np.asarray(value)
        if s.dtype.kind not in "iub" or s.dtype.kind == "f":
            raise TypeError(f"'spins': expected an integer array of +/-1, got dtype {s.dtype}")
        want = (self.n_chains,) + self.shape
        if s.shape != want:
            raise ValueError(f"'spins': expected shape {want}, got {s.shape}")
        if s.dtype.kind == "b":
            s8 = np.where(s, 1, -1).astype(np.int8)
        else:
            if not np.all((s == 1) | (s == -1)):
                raise ValueError("'spins': values must be +1 or -1")
            s8 = s.astype(np.int8)
        with self._lock:
            self._set_packed_from(s8)

    @property
    def packed(self):
        """The packed words (numpy or cupy uint32), layout of csrc/heatbath/ising.h."""
        return self._packed

    @property
    def sweeps_done(self) -> int:
        """Sweeps run so far: the Philox stream of the next sweep."""
        return self._sweep

    # ---- sweeps -----------------------------------------------------------
    def _run(self, n: int, rec_every: int):
        nrec = n // rec_every if rec_every > 0 else 0
        if self.device == "cuda":
            cp = _backend.cupy_module()
            cu = _backend.cuda_module()
            up = cp.zeros((max(nrec, 0), self.n_chains), dtype=cp.int64)
            agree = cp.zeros((max(nrec, 0), self.n_chains), dtype=cp.int64)
            with _backend.on_device(self._packed):
                cu.ising_sweep(
                    _backend.device_pointer(self._packed),
                    *self._geom,
                    self.n_chains,
                    _backend.device_pointer(self._th),
                    self.method == "metropolis",
                    self.seed,
                    self._sweep,
                    n,
                    rec_every,
                    _backend.device_pointer(up),
                    _backend.device_pointer(agree),
                    _backend.current_stream(),
                    self.chain_offset,
                )
        else:
            up = np.zeros((nrec, self.n_chains), dtype=np.int64)
            agree = np.zeros((nrec, self.n_chains), dtype=np.int64)
            done = np.zeros(1, dtype=np.int64)
            try:
                _core.ising_sweep(
                    self._packed,
                    *self._geom,
                    self.n_chains,
                    self._th,
                    self.method == "metropolis",
                    self.seed,
                    self._sweep,
                    n,
                    rec_every,
                    up.reshape(-1),
                    agree.reshape(-1),
                    self.chain_offset,
                    done,
                )
            finally:
                self._sweep += int(done[0])
            return up, agree
        self._sweep += n
        return up, agree

    @locked
    def sweep(self, n: int = 1) -> "IsingLattice":
        """Run ``n`` checkerboard sweeps (each updates every site once).

        On the CPU the sweeps run in slices between which Ctrl-C raises
        KeyboardInterrupt; the spins then hold the sweeps done, counted by
        ``sweeps_done``."""
        n = as_int(n, "n", 0, MAX_STEPS)
        if n:
            self._run(n, 0)
        return self

    def _observables(self, up: Any, agree: Any) -> tuple[np.ndarray, np.ndarray]:
        if _backend.is_cupy(up):
            up, agree = up.get(), agree.get()
        n = self.n_sites
        z = 2 * self.dim
        m = (2.0 * up - n) / n
        ss = 2.0 * agree - z * n / 2
        e = (-self.J * ss - self.h * (2.0 * up - n)) / n
        return e, m

    @locked
    def energy(self) -> np.ndarray:
        """Energy per spin of each chain, shape (n_chains,), float64."""
        return self._observables(*self._observe())[0]

    @locked
    def magnetization(self) -> np.ndarray:
        """Magnetization per spin of each chain, shape (n_chains,), float64."""
        return self._observables(*self._observe())[1]

    def _observe(self):
        if self.device == "cuda":
            cp = _backend.cupy_module()
            cu = _backend.cuda_module()
            up = cp.zeros(self.n_chains, dtype=cp.int64)
            agree = cp.zeros(self.n_chains, dtype=cp.int64)
            with _backend.on_device(self._packed):
                cu.ising_observe(
                    _backend.device_pointer(self._packed),
                    *self._geom,
                    self.n_chains,
                    _backend.device_pointer(up),
                    _backend.device_pointer(agree),
                    _backend.current_stream(),
                )
            return up, agree
        up = np.zeros(self.n_chains, dtype=np.int64)
        agree = np.zeros(self.n_chains, dtype=np.int64)
        _core.ising_observe(self._packed, *self._geom, self.n_chains, up, agree)
        return up, agree

    @locked
    def sample(self, n_sweeps: int, warmup: int = 0, thin: int = 1) -> LatticeSamples:
        """Warm up, then run ``n_sweeps`` sweeps recording the energy and
        magnetization per spin of every chain after every ``thin``-th sweep.
        The observables are computed in the kernels (popcounts of the packed
        words); the spins are not copied back.

        Returns
        -------
        LatticeSamples with arrays of shape (n_sweeps // thin, n_chains).
        """
        import time

        n_sweeps = as_int(n_sweeps, "n_sweeps", 1, MAX_STEPS)
        thin = as_int(thin, "thin", 1, MAX_STEPS)
        warmup = as_int(warmup, "warmup", 0, MAX_STEPS)
        if (n_sweeps // thin) * self.n_chains > 2**31:
            raise ValueError(
                f"'n_sweeps': {n_sweeps // thin} records of {self.n_chains} chains are too many to keep; "
                "raise 'thin'"
            )
        self.sweep(warmup)
        if self.device == "cuda":
            _backend.cupy_module().cuda.get_current_stream().synchronize()
        t0 = time.perf_counter()
        up, agree = self._run(n_sweeps, thin)
        if self.device == "cuda":
            _backend.cupy_module().cuda.get_current_stream().synchronize()
        dt = time.perf_counter() - t0
        e, m = self._observables(up, agree)
        return LatticeSamples(e, m, n_sweeps, dt, self.n_sites)
