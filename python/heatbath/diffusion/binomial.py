"""Binomial diffusion for binary data (Sohl-Dickstein et al. 2015, section
2.2 and Table App.1): each forward step keeps a bit with probability
1 - beta_t and replaces it by a fair coin otherwise,
q(x_t | x_{t-1}) = B(x_t; x_{t-1} (1 - beta_t) + beta_t / 2), with the paper's
schedule beta_t = 1 / (T - t + 1), so that x_T is uniform. The reverse kernel
is a product of Bernoullis whose rates come from a network.

With that schedule a bit survives t steps with probability
rho_t = prod_{s<=t} (1 - beta_s) = 1 - t / T, so q(x_t = 1 | x_0) =
rho_t x_0 + (1 - rho_t) / 2.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional

import numpy as np

from .. import checkpoint, nn
from .. import random as hr
from .._backend import array_namespace, is_cupy
from .._blas import in_blas_threads
from ..ebm.rbm import bernoulli_units
from .._guard import check_values
from .dpm import (MAX_BASIS, MAX_DIM, MAX_HIDDEN, MAX_T, Bound, _positive, _to_numpy, check_steps,
                  load_training_state, mask_and_known, probe_sample, train_loop, training_state)

LOG2 = math.log(2.0)
_EPS = 1e-12


def _sigmoid(xp, u):
    return 0.5 * (1.0 + xp.tanh(0.5 * u))


def _logit(xp, p):
    p = xp.clip(p, _EPS, 1 - _EPS)
    return xp.log(p) - xp.log1p(-p)


class BinomialDPM:
    """Binomial diffusion probabilistic model for binary vectors.

    Parameters
    ----------
    dim : int
        Number of bits.
    T : int
        Trajectory length (the paper uses 2000 for the heartbeat data).
    hidden : int
        Width of the two hidden layers of the MLP on (x_t, embedding(t)).
    seed : int
        Seeds initialization and all training and sampling noise (Philox).

    The network outputs a correction to the logit of the reverse rate that a
    model with independent bits (the training data's marginals) would give,
    so an untrained model is already that independent-bit model.
    """

    kind = "BinomialDPM"

    def __init__(self, dim: int, T: int = 2000, *, hidden: int = 128, n_basis: int = 10, seed: int = 0,
                 xp=np) -> None:
        self.dim = _positive(dim, "dim", maximum=MAX_DIM)
        self.T = _positive(T, "T", minimum=2, maximum=MAX_T)
        self.hidden = _positive(hidden, "hidden", maximum=MAX_HIDDEN)
        self.n_basis = _positive(n_basis, "n_basis", maximum=MAX_BASIS)
        self.seed, self.xp = hr.as_seed(seed), xp
        t = np.arange(1, self.T + 1, dtype=np.float64)
        self.betas = 1.0 / (self.T - t + 1.0)
        self.rho = 1.0 - t / self.T  # survival probability after t steps
        self.net = nn.TimeMLP(self.dim, self.dim, self.T, hidden=(self.hidden, self.hidden), n_basis=self.n_basis,
                              rng=np.random.default_rng(self.seed), xp=xp)
        self.marginal = xp.full(self.dim, 0.5)
        self.steps_trained = 0
        self._draws = 0

    # ---- forward process ----------------------------------------------------------
    def _p1(self, x0: Any, t: Any) -> Any:
        """q(x_t = 1 | x_0) for steps t (0 = the data itself)."""
        xp = array_namespace(x0)
        rho = xp.asarray(np.concatenate([[1.0], self.rho]))[t][:, None]
        return rho * x0 + 0.5 * (1.0 - rho)

    def _posterior(self, x0: Any, x_t: Any, t: Any) -> Any:
        """q(x_{t-1} = 1 | x_t, x_0), t >= 2."""
        xp = array_namespace(x0)
        beta = xp.asarray(self.betas)[t - 1][:, None]
        prior1 = self._p1(x0, t - 1)
        like1 = xp.where(x_t > 0.5, 1.0 - beta / 2, beta / 2)  # q(x_t | x_{t-1} = 1)
        like0 = xp.where(x_t > 0.5, beta / 2, 1.0 - beta / 2)  # q(x_t | x_{t-1} = 0)
        num = like1 * prior1
        return num / (num + like0 * (1.0 - prior1))

    def _baseline_logit(self, x_t: Any, t: Any) -> Any:
        """Logit of q(x_{t-1} = 1 | x_t) when x_0 has independent bits with
        the data's marginals (t >= 1)."""
        xp = array_namespace(x_t)
        beta = xp.asarray(self.betas)[t - 1][:, None]
        prior1 = self._p1(self.marginal[None, :], t - 1)
        like1 = xp.where(x_t > 0.5, 1.0 - beta / 2, beta / 2)
        like0 = xp.where(x_t > 0.5, beta / 2, 1.0 - beta / 2)
        return _logit(xp, like1 * prior1 / (like1 * prior1 + like0 * (1.0 - prior1)))

    def reverse_logit(self, x_t: Any, t: Any) -> Any:
        """logit p(x_{t-1} = 1 | x_t) for steps t (1..T): x_t (n, d) 0/1 floats."""
        x_t = self._check_x(x_t, "x_t")
        return self._reverse_logit(x_t, check_steps(t, x_t, self.T, "t"))

    def _reverse_logit(self, x_t: Any, t: Any) -> Any:
        return self._baseline_logit(x_t, t) + self.net.forward(2.0 * x_t - 1.0, t - 1)

    def reverse_rate(self, x_t: Any, t: Any) -> Any:
        """p(x_{t-1} = 1 | x_t) for steps t (1..T): x_t (n, d) 0/1 floats."""
        x_t = self._check_x(x_t, "x_t")
        return self._reverse_rate(x_t, check_steps(t, x_t, self.T, "t"))

    def _reverse_rate(self, x_t: Any, t: Any) -> Any:
        return _sigmoid(array_namespace(x_t), self._reverse_logit(x_t, t))

    def _bernoulli(self, p: Any, seed: int, offset: int, stream: int) -> Any:
        xp = array_namespace(p)
        bits = hr.bernoulli(xp.ascontiguousarray(p), seed, offset, stream=stream)
        return bits.astype(p.dtype)

    def _terms(self, x0: Any, t: Any, x_t: Any) -> tuple[Any, Any]:
        """Per-sample bound terms in nats: KL(q(x_{t-1}|x_t,x_0) || p) for
        t >= 2 and -log p(x_0 | x_1) for t = 1; and dTerm/dlogit."""
        xp = array_namespace(x0)
        p = xp.clip(self._reverse_rate(x_t, t), _EPS, 1 - _EPS)
        q = xp.where((t == 1)[:, None], x0, self._posterior(x0, x_t, xp.maximum(t, 2)))
        qc = xp.clip(q, _EPS, 1 - _EPS)
        kl = q * (xp.log(qc) - xp.log(p)) + (1 - q) * (xp.log1p(-qc) - xp.log1p(-p))
        return kl.sum(axis=1), p - q

    # ---- the bound ------------------------------------------------------------------
    @in_blas_threads
    def bound(self, x: Any, *, n_draws: int = 1, seed: int = 12345, batch: int = 8192,
              progress: bool = False, data: Any = None) -> Bound:
        """The lower bound on log p(x) in bits per sequence:
        K = E_q log p(x_0 | x_1) - sum_{t=2}^T E_q KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
        (the last term KL(q(x_T|x_0) || p(x_T)) vanishes: beta_T = 1 makes
        x_T uniform). Each term is exact given x_t; x_t ~ q(x_t | x_0) is
        drawn ``n_draws`` times. ``progress``: a progress bar over the steps t.

        ``data``: a :class:`~heatbath.diffusion.ceiling.DiscreteData` (the
        entropy of the distribution x was drawn from), optional: the result
        then carries the ceiling ``-H(X^0)`` and the gap to it.
        """
        from tqdm.auto import tqdm

        xp = array_namespace(x)
        x = self._check_x(x, "x")
        n = x.shape[0]
        total = xp.zeros(n, dtype=np.float64)
        off = 0
        n_draws = _positive(n_draws, "n_draws")
        bar = tqdm(total=n_draws * self.T, disable=not progress, desc="bound K", unit="step", leave=False)
        for _ in range(n_draws):
            for t in range(1, self.T + 1):
                bar.update(1)
                for a in range(0, n, batch):
                    xb = x[a:a + batch]
                    m = xb.shape[0]
                    tt = xp.full(m, t, dtype=np.int64)
                    x_t = self._bernoulli(self._p1(xb, tt), seed, off, stream=1 << 33)
                    off += m * self.dim
                    terms, _ = self._terms(xb, tt, x_t)
                    total[a:a + m] += terms
        bar.close()
        per_sample = -_to_numpy(total) / n_draws / LOG2
        bits = float(per_sample.mean())
        stderr = float(per_sample.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        if data is None:
            return Bound(bits, bits / self.dim, stderr, per_sample, bits + self.dim)
        from .ceiling import DiscreteData, step1_ceiling

        if not isinstance(data, DiscreteData):
            raise TypeError(f"'data': expected a DiscreteData for binary data, got {type(data).__name__}")
        c = step1_ceiling(data, 0.5)
        return Bound(bits, bits / self.dim, stderr, per_sample, bits + self.dim, c.bits, c.error)

    # ---- training ---------------------------------------------------------------------
    @in_blas_threads
    def fit(self, x: Any, *, steps: int = 20000, batch_size: int = 256, lr: float = 2e-3, lr_final: float = 5e-5,
            progress: bool = True, callback: Optional[Callable] = None,
            time_limit: Optional[float] = None, start: int = 0) -> "BinomialDPM":
        """Maximize K: Adam on T x (the bound term of one random t per sample).
        ``start``, ``callback`` and ``time_limit`` as in
        :meth:`GaussianDPM.fit <heatbath.diffusion.GaussianDPM.fit>`."""
        x = self._check_x(x, "x")
        xp = array_namespace(x)
        n = x.shape[0]
        batch_size = _positive(batch_size, "batch_size")
        check_values(batch_size * self.dim, "batch_size", f"a minibatch of {batch_size} rows")
        self.marginal = xp.clip(x.mean(axis=0), 1e-3, 1 - 1e-3)

        def step() -> float:
            idx = hr.integers(0, n, shape=batch_size, seed=self.seed, offset=self._draws, stream=2)
            tt = hr.integers(1, self.T + 1, shape=batch_size, seed=self.seed, offset=self._draws, stream=3)
            if xp is not np:
                idx, tt = xp.asarray(idx), xp.asarray(tt)
            xb = x[idx]
            x_t = self._bernoulli(self._p1(xb, tt), self.seed, self._draws * self.dim, stream=4)
            self._draws += batch_size
            terms, dlogit = self._terms(xb, tt, x_t)
            self.net.backward(dlogit * (self.T / batch_size))
            return float(terms.mean()) * self.T / LOG2

        train_loop(self, step, steps=steps, lr=lr, lr_final=lr_final, progress=progress, callback=callback,
                   time_limit=time_limit, label="neg_K_bits", start=start)
        return self

    # ---- sampling -------------------------------------------------------------------
    @in_blas_threads
    def sample(self, n: int, *, seed: int = 0, mask: Any = None, known: Any = None,
               progress: bool = False) -> Any:
        """Ancestral samples: x_T uniform bits, then x_{t-1} ~ B(p(x_{t-1}|x_t))
        for t = T..1. With ``mask``/``known``, the known bits follow one
        forward trajectory of ``known``, a draw of q(x_{1:T} | x_0 = known)
        generated backwards through the posterior, and equal ``known`` at t = 0.
        Returns (n, d) uint8."""
        from tqdm.auto import tqdm

        xp = self.xp
        n = _positive(n, "n")
        d = self.dim
        check_values(n * d, "n", f"{n} samples of {d} bits")
        off = 0

        def bern(p, stream):
            nonlocal off
            b = self._bernoulli(p, seed, off, stream)
            off += n * d
            return b

        if mask is not None:
            mask, known = mask_and_known(xp, mask, known, n, d, self._check_x)
        x = bern(xp.full((n, d), 0.5), 1)
        if mask is not None:
            k = x.copy()  # x_T is uniform whatever x_0: the known part's x_T too
        zero_bias = xp.zeros(d, dtype=np.float32)
        step = xp.empty((n, d), dtype=np.float32)
        for t in tqdm(range(self.T, 0, -1), disable=not progress, desc="sample", unit="step"):
            tt = xp.full(n, t, dtype=np.int64)
            # one fused pass: sigmoid of the logits and the Bernoulli draw (Philox)
            logit = xp.ascontiguousarray(self._reverse_logit(x, tt), dtype=np.float32)
            bernoulli_units(logit, zero_bias, sample=step, seed=seed, stream=1, offset=off)
            off += n * d
            x = step.astype(np.float64)
            if mask is not None:
                # the known part's x_{t-1} ~ q(x_{t-1} | x_t, x_0 = known); x_0 = known
                k = known if t == 1 else bern(self._posterior(known, k, tt), 2)
                x = xp.where(mask, k, x)
        return x.astype(np.uint8)

    # ---- checkpoints -------------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        return {"dim": self.dim, "T": self.T, "hidden": self.hidden, "n_basis": self.n_basis, "seed": self.seed,
                "steps_trained": self.steps_trained}

    def save(self, path: str) -> str:
        arrays = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        arrays["marginal"] = self.marginal
        cfg, state = training_state(self)
        arrays.update(state)
        return checkpoint.save(path, self.kind, {**self.config(), **cfg}, arrays)

    @classmethod
    def load(cls, path: str, xp=np) -> "BinomialDPM":
        """Read a model written by :meth:`save`. CheckpointError for a
        missing, corrupt or foreign file, or one whose contents are
        inconsistent or out of range (non-finite parameters, marginals
        outside (0, 1))."""
        cfg, arrays = checkpoint.load(path, cls.kind)
        C = checkpoint
        try:
            T = C.integer(cfg, "T", path, 2, MAX_T)
            dim = C.integer(cfg, "dim", path, 1, MAX_DIM)
            C.integer(cfg, "hidden", path, 1, MAX_HIDDEN)
            C.integer(cfg, "n_basis", path, 1, MAX_BASIS)
            if "steps_trained" in cfg:
                C.integer(cfg, "steps_trained", path, 0, 2**62)
            marginal = C.array(arrays, "marginal", path, (dim,), kind="f")
            C.need(bool(np.all((marginal > 0) & (marginal < 1))), path, "marginals must lie in (0, 1)")
            model = cls(dim, T, hidden=cfg["hidden"], n_basis=cfg["n_basis"], seed=cfg["seed"], xp=xp)
            model.marginal = xp.asarray(marginal)
            model.net.load_state_dict({k[4:]: v for k, v in arrays.items() if k.startswith("net.")})
            load_training_state(model, cfg, arrays)
        except checkpoint.CheckpointError:
            raise
        except Exception as exc:
            raise checkpoint.CheckpointError(
                f"'path': {path} is missing or has malformed model data ({type(exc).__name__}: {exc})"
            ) from None
        probe_sample(path, model)
        model.steps_trained = int(cfg.get("steps_trained", 0))
        return model

    def _check_x(self, x: Any, name: str) -> Any:
        if not (isinstance(x, np.ndarray) or is_cupy(x)):
            x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"'{name}': expected 0/1 numbers, got dtype {x.dtype}")
        xp = array_namespace(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"'{name}': expected shape (n, {self.dim}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"'{name}': no samples")
        xf = x.astype(np.float64)
        if not bool(xp.all((xf == 0) | (xf == 1))):
            raise ValueError(f"'{name}': binary diffusion needs 0/1 data")
        return xf
