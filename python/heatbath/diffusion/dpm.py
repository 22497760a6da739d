"""The diffusion probabilistic model of Sohl-Dickstein, Weiss,
Maheswaranathan and Ganguli (ICML 2015) for continuous data: Gaussian forward
diffusion, a Gaussian reverse kernel whose mean and diagonal covariance come
from a network, trained by maximizing the lower bound K on the
log-likelihood; and the DDPM-style epsilon-prediction variant with fixed
variances, evaluated by the same bound.

Conventions: steps t = 1..T (1-indexed as in the paper); arrays indexed by
t - 1. beta_t is the variance of forward step t, alpha_t = 1 - beta_t,
abar_t = prod_{s<=t} alpha_s.
"""

from __future__ import annotations

import math
import operator
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

from .. import checkpoint, nn
from .. import random as hr
from .._backend import array_namespace, is_cupy
from .._blas import in_blas_threads
from .._guard import as_float, as_mask, check_values
from .gaussian import sohl_dickstein_step

# rows per network call when sampling on the CPU (see GaussianDPM._reverse_rows)
_ROW_BLOCK = 128

LOG2 = math.log(2.0)
HALF_LOG_2PIE = 0.5 * (1.0 + math.log(2.0 * math.pi))  # entropy of N(0, 1), nats


def paper_betas(T: int, step1_beta: float = 1e-5) -> np.ndarray:
    """The forward schedule of the 2015 paper's released code: beta_t =
    min_beta_t + (1 / linspace(T, 2, T))_t (1 - min_beta_t - 1e-5), with
    min_beta = 1e-6 and ``step1_beta`` added to the first step. float64 (T,)."""
    base = 1.0 / np.linspace(T, 2.0, T)
    min_beta = np.full(T, 1e-6)
    min_beta[0] += step1_beta
    return min_beta + base * (1.0 - min_beta - 1e-5)


def geometric_betas(T: int, step1_beta: float = 1e-5, final_abar: float = 1e-3) -> np.ndarray:
    """Forward schedule whose noise variance 1 - abar_t grows geometrically
    from ``step1_beta`` at t = 1 to 1 - ``final_abar`` at t = T: equal
    log-steps in noise scale, which suits data concentrated near a
    low-dimensional manifold. float64 (T,)."""
    noise = np.exp(np.linspace(np.log(step1_beta), np.log1p(-final_abar), T))
    abar = 1.0 - noise
    alphas = abar / np.concatenate([[1.0], abar[:-1]])
    return 1.0 - alphas


@dataclass(frozen=True)
class Bound:
    """The lower bound K on the log-likelihood of held-out data.

    bits : mean K per sample in bits
    bits_per_dim : bits / dimension
    stderr : standard error of ``bits`` over the samples (and noise draws)
    per_sample : K of each sample in bits, (n,)
    gain_over_gaussian : K minus the log-likelihood of an isotropic unit
        Gaussian (the paper's "K - L_null"), bits
    ceiling : the largest expected K any model can reach on the data at this
        beta_1 (:mod:`heatbath.diffusion.ceiling`), bits, when the data's
        distribution was given; else None
    ceiling_error : the ceiling's numerical error, bits
    """

    bits: float
    bits_per_dim: float
    stderr: float
    per_sample: np.ndarray
    gain_over_gaussian: float
    ceiling: Optional[float] = None
    ceiling_error: float = 0.0

    @property
    def gap(self) -> Optional[float]:
        """``ceiling - bits``: how far K is from the best any model can do
        (None without a ceiling)."""
        return None if self.ceiling is None else self.ceiling - self.bits

    def __str__(self) -> str:
        s = f"K = {self.bits:.3f} +- {self.stderr:.3f} bits"
        if self.ceiling is not None:
            s += f", ceiling {self.ceiling:.3f} bits, gap {self.gap:.3f} +- {self.stderr:.3f}"
        return s


class GaussianDPM:
    """Gaussian diffusion probabilistic model (Sohl-Dickstein et al. 2015).

    Parameters
    ----------
    dim : int
        Data dimension.
    T : int
        Trajectory length.
    mode : {"paper", "epsilon"}
        "paper": the network outputs (mu_coeff, beta_coeff) per dimension and
        the reverse kernel is N(x_t sqrt(1 - beta_t) + mu_coeff sqrt(beta_t),
        sigmoid(beta_coeff / sqrt(T) + logit(beta_t))), trained by maximizing
        K. "epsilon": the network predicts the noise, the mean follows DDPM
        and the variance is fixed to the posterior variance (``fixed_small``);
        trained with the simple noise-matching loss.
    net : {"rbf", "mlp"} or an nn.Module with forward(x, t_index)
        "rbf": the paper's normalized radial-basis-function network (2-D
        data); "mlp": an MLP on x and a sinusoidal embedding of t.
    schedule : {"geometric", "paper"} or array of T betas
    step1_beta : float
        Variance of the first forward step (the smallest; sets the
        resolution of the model).
    learn_schedule : bool
        Paper mode: learn beta_2..T by gradient ascent on K, as the paper
        does (beta_1 stays fixed); the logits of the betas move by a
        combination of bump functions of t from the initial schedule.
    seed : int
        Seeds the initialization and all training/sampling noise (Philox).
    """

    kind = "GaussianDPM"

    def __init__(self, dim: int = 2, T: int = 40, *, mode: str = "paper", net: Any = "rbf",
                 schedule: Any = "geometric", step1_beta: float = 1e-5, learn_schedule: bool = False,
                 hidden: int = 128, grid: int = 16, n_basis: int = 10, seed: int = 0, xp=np) -> None:
        self.dim = _positive(dim, "dim", maximum=MAX_DIM)
        self.T = _positive(T, "T", minimum=2, maximum=MAX_T)
        if mode not in ("paper", "epsilon"):
            raise ValueError(f"'mode': expected 'paper' or 'epsilon', got {mode!r}")
        self.mode = mode
        self.step1_beta = as_float(step1_beta, "step1_beta")
        if not 0 < self.step1_beta < 1:
            raise ValueError(f"'step1_beta': must lie in (0, 1), got {step1_beta}")
        if isinstance(schedule, str):
            if schedule == "geometric":
                betas = geometric_betas(self.T, self.step1_beta)
            elif schedule == "paper":
                betas = paper_betas(self.T, self.step1_beta)
            else:
                raise ValueError(f"'schedule': expected 'geometric', 'paper' or an array of betas, got {schedule!r}")
            self.schedule_name = schedule
        else:
            betas = np.asarray(schedule, dtype=np.float64)
            if betas.shape != (self.T,) or not np.all((betas > 0) & (betas < 1)):
                raise ValueError(f"'schedule': need {self.T} betas in (0, 1), got shape {betas.shape}")
            self.schedule_name = "custom"
        self.xp = xp
        self.seed = hr.as_seed(seed)
        self.hidden = _positive(hidden, "hidden", maximum=MAX_HIDDEN)
        rbf = isinstance(net, str) and net == "rbf"
        self.grid = _positive(grid, "grid", minimum=2 if rbf else 1, maximum=MAX_GRID)
        self.n_basis = _positive(n_basis, "n_basis", maximum=MAX_BASIS)
        if rbf:  # grid**dim centres, each with a row of weights
            per_centre = self.dim + self.hidden + self.n_basis * 2 * self.dim
            check_values(self.grid**self.dim * per_centre, ("grid", "dim"),
                         f"the RBF network of {self.grid}**{self.dim} centres")
        self._set_schedule(betas)
        n_out = 2 * self.dim if mode == "paper" else self.dim
        rng = np.random.default_rng(self.seed)
        if isinstance(net, str):
            self.net_name = net
            if net == "rbf":
                self.net = nn.RBFNet(self.dim, n_out, self.T, grid=self.grid, n_hidden=self.hidden,
                                     n_basis=self.n_basis, rng=rng, xp=xp)
            elif net == "mlp":
                self.net = nn.TimeMLP(self.dim, n_out, self.T, hidden=(self.hidden, self.hidden),
                                      n_basis=self.n_basis, rng=rng, xp=xp)
            else:
                raise ValueError(f"'net': expected 'rbf', 'mlp' or an nn.Module, got {net!r}")
        else:
            self.net_name = "custom"
            self.net = net
        self.learn_schedule = bool(learn_schedule)
        if self.learn_schedule and mode != "paper":
            raise ValueError("'learn_schedule': the schedule is learned on K, in mode='paper' only")
        self._beta0_logit = np.log(self.betas[1:]) - np.log1p(-self.betas[1:])
        self._beta_basis = nn.bump_basis(self.T - 1, self.n_basis)
        self.schedule_coef = nn.Module()
        self.schedule_coef._param("c", np.zeros(self.n_basis))
        self.trainable = nn.Module()
        self.trainable.add("net", self.net)
        if self.learn_schedule:
            self.trainable.add("schedule", self.schedule_coef)
        self.steps_trained = 0
        self._draws = 0  # Philox offset of the training noise stream

    # ---- schedule ----------------------------------------------------------
    def _set_schedule(self, betas: np.ndarray) -> None:
        self.betas = betas.astype(np.float64)
        self.alphas = 1.0 - self.betas
        self.abar = np.cumprod(self.alphas)
        abar_prev = np.concatenate([[1.0], self.abar[:-1]])
        # posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, post_var), t >= 2
        self.post_var = self.betas * (1.0 - abar_prev) / (1.0 - self.abar)
        self.post_c0 = np.sqrt(abar_prev) * self.betas / (1.0 - self.abar)
        self.post_ct = np.sqrt(self.alphas) * (1.0 - abar_prev) / (1.0 - self.abar)

    def _refresh_schedule(self) -> None:
        """betas_2..T from the learned coefficients (beta_1 stays fixed)."""
        theta = self._beta0_logit + self._beta_basis @ np.asarray(self.schedule_coef.params["c"])
        betas = self.betas.copy()
        betas[1:] = 1.0 / (1.0 + np.exp(-theta))
        self._set_schedule(betas)

    def entropy_bounds(self, t: Any) -> tuple[np.ndarray, np.ndarray]:
        """The paper's bounds on the reverse conditional entropy per dimension
        (nats), for t = 2..T (arrays allowed):
        H_q(X^t|X^{t-1}) + H_q(X^{t-1}|X^0) - H_q(X^t|X^0) <= H_q(X^{t-1}|X^t)
        <= H_q(X^t|X^{t-1}). The upper bound assumes the forward process does
        not lower the entropy (data variance at most 1 per dimension).

        Returns (lower, upper), float64 arrays of t's shape.
        """
        t = np.asarray(t)
        if t.dtype.kind not in "iu" or np.any((t < 2) | (t > self.T)):
            raise ValueError(f"'t': steps must be integers in [2, {self.T}]")
        i = t - 1
        h_step = 0.5 * np.log(2 * np.pi * np.e * self.betas[i])
        h_prev0 = 0.5 * np.log(2 * np.pi * np.e * (1.0 - self.abar[i - 1]))
        h_t0 = 0.5 * np.log(2 * np.pi * np.e * (1.0 - self.abar[i]))
        return h_step + h_prev0 - h_t0, h_step

    # ---- reverse kernel ------------------------------------------------------
    def _coef(self, arr: np.ndarray, i: Any, dtype) -> Any:
        return self.xp.asarray(arr, dtype=dtype)[i][:, None]

    def reverse_kernel(self, x_t: Any, t: Any, *, cache: bool = False) -> tuple[Any, Any]:
        """Mean and variance of p(x_{t-1} | x_t) for steps t (1..T): x_t (n,
        d), t (n,) int -> (mu (n, d), var (n, d))."""
        x_t = self._check_x(x_t, "x_t")
        return self._reverse_kernel(x_t, self._check_steps(t, x_t, "t"), cache=cache)

    def _check_steps(self, t: Any, x: Any, name: str) -> Any:
        return check_steps(t, x, self.T, name)

    def _reverse_kernel(self, x_t: Any, t: Any, *, cache: bool = False) -> tuple[Any, Any]:
        xp = array_namespace(x_t)
        i = t - 1
        out = self.net.forward(x_t, i)
        beta = self._coef(self.betas, i, x_t.dtype)
        if self.mode == "paper":
            d = self.dim
            mu_coeff, beta_coeff = out[:, :d], out[:, d:]
            u = beta_coeff / math.sqrt(self.T) + xp.log(beta / (1.0 - beta))
            var = 0.5 * (1.0 + xp.tanh(0.5 * u))
            mu = x_t * xp.sqrt(1.0 - beta) + mu_coeff * xp.sqrt(beta)
        else:
            abar = self._coef(self.abar, i, x_t.dtype)
            mu = (x_t - beta / xp.sqrt(1.0 - abar) * out) / xp.sqrt(1.0 - beta)
            var = xp.broadcast_to(self._coef(np.maximum(self.post_var, 1e-20), i, x_t.dtype), mu.shape)
        if cache:
            self._cache = (out, beta, var)
        return mu, var

    def _reverse_rows(self, x: Any, t: int, start: int) -> tuple[Any, Any]:
        """The reverse kernel at step ``t`` for rows ``start .. start + n - 1``
        of a run, on the CPU evaluated in blocks of ``_ROW_BLOCK`` rows
        aligned on the run's row index: each network call has the same
        shape and holds row r at position r % _ROW_BLOCK (the rows of other
        shards replaced by a copy of one of its own), so a row's result does
        not depend on how the run is split. A BLAS matrix product is not
        independent of the number of rows it is given (OpenBLAS picks
        kernels by size and position), hence the fixed blocks."""
        xp = array_namespace(x)
        n = x.shape[0]
        B = _ROW_BLOCK
        if xp is not np:
            return self._reverse_kernel(x, xp.full(n, t, dtype=np.int64))
        tt = np.full(B, t, dtype=np.int64)
        mu = np.empty_like(x)
        var = np.empty_like(x)
        r = start
        while r < start + n:
            b0 = r - r % B  # the block's first row in the run
            lo, hi = r - b0, min(b0 + B, start + n) - b0  # this shard's rows in the block
            i, j = r - start, r - start + hi - lo
            xb = np.empty((B, x.shape[1]), dtype=x.dtype)
            xb[:] = x[i]
            xb[lo:hi] = x[i:j]
            m, v = self._reverse_kernel(xb, tt)
            mu[i:j], var[i:j] = m[lo:hi], v[lo:hi]
            r = b0 + hi
        return mu, var

    def _kernel_backward(self, dmu: Any, dvar: Any) -> Any:
        """Backpropagate dL/dmu, dL/dvar (paper mode) into the network;
        returns dL/dx_t through the network's input."""
        xp = array_namespace(dmu)
        out, beta, var = self._cache
        d = self.dim
        dout = xp.empty_like(out)
        dout[:, :d] = dmu * xp.sqrt(beta)
        dout[:, d:] = dvar * var * (1.0 - var) / math.sqrt(self.T)
        return self.net.backward(dout)

    # ---- forward process -----------------------------------------------------
    def _normal(self, shape, dtype, offset: int, stream: int) -> Any:
        device = "cuda" if self.xp is not np else "cpu"
        return hr.normal(shape, self.seed, offset, dtype=np.dtype(dtype).name, stream=stream, device=device)

    def q_sample(self, x0: Any, t: Any, noise: Any) -> Any:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, per-sample t (1..T)."""
        x0 = self._check_x(x0, "x0")
        noise = self._check_x(noise, "noise")
        if noise.shape != x0.shape:
            raise ValueError(f"'noise': expected shape {tuple(x0.shape)} (that of x0), got {tuple(noise.shape)}")
        return self._q_sample(x0, self._check_steps(t, x0, "t"), noise)

    def _q_sample(self, x0: Any, t: Any, noise: Any) -> Any:
        i = t - 1
        return self._coef(np.sqrt(self.abar), i, x0.dtype) * x0 + self._coef(np.sqrt(1 - self.abar), i, x0.dtype) * noise

    def _kl_terms(self, x0: Any, t: Any, noise: Any, grad: bool):
        """Per-sample KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) summed over
        dimensions (nats), for t >= 2; with grad, backpropagates d(mean KL)."""
        xp = array_namespace(x0)
        x_t = self._q_sample(x0, t, noise)
        if grad:
            self._last_x_t = x_t
        i = t - 1
        mu_q = self._coef(self.post_c0, i, x0.dtype) * x0 + self._coef(self.post_ct, i, x0.dtype) * x_t
        var_q = self._coef(self.post_var, i, x0.dtype)
        mu_p, var_p = self._reverse_kernel(x_t, t, cache=grad)
        diff = mu_q - mu_p
        kl = 0.5 * (xp.log(var_p) - xp.log(var_q) + (var_q + diff * diff) / var_p - 1.0)
        return kl.sum(axis=1), (diff, var_p, var_q)

    def _paper_loss(self, x0: Any, t: Any, noise: Any) -> float:
        """The minibatch estimate of -K (up to constants): mean over samples of
        (T - 1) KL_t, minus d H_q(X^T | X^0) when the schedule is learned.
        Fills the gradients of the network and, with ``learn_schedule``, of
        the schedule coefficients (reparameterized through x_t)."""
        xp = array_namespace(x0)
        n = x0.shape[0]
        kl, (diff, var_p, var_q) = self._kl_terms(x0, t, noise, grad=True)
        scale = (self.T - 1) / n
        g_muq = diff / var_p * scale  # dL/dmu_q; dL/dmu_p = -g_muq
        g_vp = 0.5 * (1.0 / var_p - (var_q + diff * diff) / (var_p * var_p)) * scale
        dx_net = self._kernel_backward(-g_muq, g_vp)
        loss = float(kl.mean()) * (self.T - 1)
        if not self.learn_schedule:
            return loss
        # reparameterized gradient with respect to a = abar_t, ap = abar_{t-1}, b = beta_t
        i = t - 1
        dt = x0.dtype
        a, ap, b = (self._coef(v, i, dt) for v in (self.abar, np.concatenate([[1.0], self.abar[:-1]]), self.betas))
        out, _, var = self._cache
        mu_coeff = out[:, : self.dim]
        x_t = self._last_x_t
        ct = self._coef(self.post_ct, i, dt)
        g_pv = 0.5 * (1.0 / var_p - 1.0 / var_q) * scale
        g_x = g_muq * ct - g_muq * xp.sqrt(1.0 - b) + dx_net
        om = 1.0 - a
        g_a = (g_x * (x0 / (2 * xp.sqrt(a)) - noise / (2 * xp.sqrt(om)))
               + g_muq * (xp.sqrt(ap) * b / om**2 * x0 + xp.sqrt(1 - b) * (1 - ap) / om**2 * x_t)
               + g_pv * b * (1 - ap) / om**2).sum(axis=1)
        g_ap = (g_muq * (b / (2 * xp.sqrt(ap) * om) * x0 - xp.sqrt(1 - b) / om * x_t) - g_pv * b / om).sum(axis=1)
        g_b = (g_muq * (xp.sqrt(ap) / om * x0 - (1 - ap) / (2 * xp.sqrt(1 - b) * om) * x_t)
               + g_pv * (1 - ap) / om
               - g_muq * (-x_t / (2 * xp.sqrt(1 - b)) + mu_coeff / (2 * xp.sqrt(b)))
               + g_vp * var * (1 - var) / (b * (1 - b))).sum(axis=1)
        T = self.T
        idx = _to_numpy(i)
        A = np.bincount(idx, weights=_to_numpy(g_a * a[:, 0]), minlength=T)
        P = np.bincount(idx, weights=_to_numpy(g_ap * ap[:, 0]), minlength=T)
        B = np.bincount(idx, weights=_to_numpy(g_b), minlength=T)
        tail_a = np.cumsum(A[::-1])[::-1]  # sum over i >= s
        tail_p = np.concatenate([np.cumsum(P[::-1])[::-1][1:], [0.0]])  # sum over i >= s + 1
        g_beta = -(tail_a + tail_p) / (1.0 - self.betas) + B
        # - d H_q(X^T | X^0) = - d/2 log(1 - abar_T)
        g_beta += -self.dim * 0.5 * self.abar[-1] / ((1.0 - self.abar[-1]) * (1.0 - self.betas))
        bb = self.betas[1:]
        self.schedule_coef.grads["c"] += self._beta_basis.T @ (g_beta[1:] * bb * (1.0 - bb))
        return loss - self.dim * 0.5 * math.log(1.0 - self.abar[-1])

    # ---- the bound K ----------------------------------------------------------
    def _entropy_terms(self) -> float:
        """d * (H_q(X^T|X^0) - H_q(X^1|X^0) - H_p(X^T)) in nats."""
        h_T = HALF_LOG_2PIE + 0.5 * math.log(1.0 - self.abar[-1])
        h_1 = HALF_LOG_2PIE + 0.5 * math.log(self.betas[0])
        return self.dim * (h_T - h_1 - HALF_LOG_2PIE)

    @in_blas_threads
    def bound(self, x: Any, *, n_draws: int = 1, quadrature: Optional[int] = None, seed: int = 12345,
              batch: int = 4096, progress: bool = False, data: Any = None) -> Bound:
        """The paper's lower bound K on log p(x) (eq. 14), in bits:
        K = -sum_{t=2}^T E_q KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
            + H_q(X^T|X^0) - H_q(X^1|X^0) - H_p(X^T),
        with analytic Gaussian KL terms and entropies; the expectation over
        x_t given x_0 is a Monte Carlo average of ``n_draws`` draws, or, with
        ``quadrature=k``, a k-point-per-dimension Gauss-Hermite rule (exact for
        kernels polynomial in x_t; practical for d <= 3).

        x : (n, d) held-out data. ``progress``: a progress bar over the steps t.
        data : the distribution x was drawn from, optional
            A :class:`~heatbath.diffusion.ceiling.GaussianData` or
            :class:`~heatbath.diffusion.ceiling.CurveData` (e.g.
            ``swiss_roll_data(noise)``): the result then carries the ceiling,
            the largest expected K of any model at this model's beta_1
            (``-H(X^1)``), and the gap to it.
        """
        from tqdm.auto import tqdm

        xp = array_namespace(x)
        x = self._check_x(x, "x")
        n, d = x.shape
        if quadrature is not None:
            nodes, weights = np.polynomial.hermite_e.hermegauss(int(quadrature))
            weights = weights / weights.sum()
            grids = np.stack(np.meshgrid(*([nodes] * d), indexing="ij"), axis=-1).reshape(-1, d)
            wgrid = np.prod(np.stack(np.meshgrid(*([weights] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1)
            draws = [(xp.asarray(g, dtype=x.dtype), float(w)) for g, w in zip(grids, wgrid)]
        else:
            draws = [(None, 1.0 / n_draws)] * _positive(n_draws, "n_draws")
        kl_sum = xp.zeros(n, dtype=np.float64)
        kl_sq = xp.zeros(n, dtype=np.float64)  # for the Monte Carlo error across draws
        offset = 0
        for t in tqdm(range(2, self.T + 1), disable=not progress, desc="bound K", unit="step", leave=False):
            for k, (node, w) in enumerate(draws):
                for a in range(0, n, batch):
                    xb = x[a:a + batch]
                    m = xb.shape[0]
                    if node is None:
                        noise = self._normal((m, d), x.dtype, offset + a * d, stream=(1 << 32) + seed)
                    else:
                        noise = xp.broadcast_to(node, (m, d))
                    tt = xp.full(m, t, dtype=np.int64)
                    kl, _ = self._kl_terms(xb, tt, noise, grad=False)
                    kl_sum[a:a + m] += w * kl
                    if node is None:
                        kl_sq[a:a + m] += kl
                offset += n * d
        per_sample_nats = -kl_sum + self._entropy_terms()
        per_sample = _to_numpy(per_sample_nats) / LOG2
        bits = float(per_sample.mean())
        stderr = float(per_sample.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        gauss = -self.dim * HALF_LOG_2PIE / LOG2
        if data is None:
            return Bound(bits, bits / d, stderr, per_sample, bits - gauss)
        from .ceiling import step1_ceiling

        if getattr(data, "dim", d) != d:
            raise ValueError(f"'data': a distribution of dimension {data.dim}, the model's is {d}")
        c = step1_ceiling(data, float(self.betas[0]), abar_T=float(self.abar[-1]))
        return Bound(bits, bits / d, stderr, per_sample, bits - gauss, c.bits, c.error)

    # ---- training --------------------------------------------------------------
    @in_blas_threads
    def fit(self, x: Any, *, steps: int = 5000, batch_size: int = 512, lr: float = 3e-3,
            lr_final: float = 1e-4, progress: bool = True, callback: Optional[Callable] = None,
            time_limit: Optional[float] = None, start: int = 0) -> "GaussianDPM":
        """Train on data x (n, d): Adam with a cosine-decayed learning rate,
        one t in 2..T per sample, stratified so that every step appears
        equally often in a minibatch. Paper mode maximizes K (the
        minibatch estimate (T - 1) KL_t); epsilon mode minimizes the
        noise-matching loss.

        Steps ``start .. steps - 1`` of the schedule are run: a run resumed
        from a checkpoint (which keeps the optimizer state and the noise
        offset) passes ``start=model.steps_trained`` and ends where the
        uninterrupted run ends, to the bit. ``callback(model, k, loss)``
        runs after each step; when it returns True, training stops there.
        ``time_limit`` (seconds) stops training after the step that passes it."""
        x = self._check_x(x, "x")
        xp = array_namespace(x)
        batch_size = _positive(batch_size, "batch_size")
        n, d = x.shape
        check_values(batch_size * d, "batch_size", f"a minibatch of {batch_size} rows")

        def step() -> float:
            idx = hr.integers(0, n, shape=batch_size, seed=self.seed, offset=self._draws, stream=2)
            # stratified steps: t = 2..T equally often in each minibatch (a random
            # rotation), which removes most of the variance of sampling t
            shift = int(hr.integers(0, self.T - 1, shape=1, seed=self.seed, offset=self._draws, stream=3)[0])
            tt = (np.arange(batch_size) + shift) % (self.T - 1) + 2
            noise = self._normal((batch_size, d), x.dtype, self._draws * d, stream=4)
            self._draws += batch_size
            if xp is not np:
                idx, tt = xp.asarray(idx), xp.asarray(tt)
            xb = x[idx]
            if self.mode == "paper":
                return self._paper_loss(xb, tt, noise)
            x_t = self._q_sample(xb, tt, noise)
            r = self.net.forward(x_t, tt - 1) - noise
            self.net.backward(2.0 * r / (batch_size * d))
            return float((r * r).mean())

        train_loop(self, step, steps=steps, lr=lr, lr_final=lr_final, progress=progress, callback=callback,
                   time_limit=time_limit, label="loss", start=start)
        return self

    # ---- sampling ----------------------------------------------------------------
    @in_blas_threads
    def sample(self, n: int, *, seed: int = 0, x_T: Any = None, return_trajectory: bool = False,
               mask: Any = None, known: Any = None, progress: bool = False,
               shard: Optional[tuple] = None) -> Any:
        """Ancestral samples: x_T ~ N(0, I), then
        x_{t-1} = mu(x_t, t) + sqrt(var(x_t, t)) z for t = T..2. As in the
        paper's reference sampler, x_1 is returned: it differs from a draw of
        x_0 by the first forward step, noise of variance beta_1 (the model's
        resolution, ``step1_beta``).

        With ``mask`` (d,) or (n, d) bool and ``known`` (n, d): the paper's
        "multiplying distributions" for a known part: the known coordinates
        follow one forward-noised trajectory of ``known``, a draw of
        q(x_{1:T} | x_0 = known) generated backwards (x_T | x_0, then
        x_{t-1} | x_t, x_0 from the posterior), and are kept exactly at the end.

        With ``shard=(start, total)``: the ``n`` samples are rows
        ``start .. start + n - 1`` of the ``total`` samples that
        ``sample(total, seed=seed)`` draws, equal to them to the bit (each
        row's noise comes from its own Philox counters); ``x_T``, ``mask`` and
        ``known`` then hold those ``n`` rows. ``heatbath.distributed`` splits
        a run this way.

        Returns (n, d), or (T, n, d) with the trajectory x_T .. x_1.
        """
        from tqdm.auto import tqdm

        xp = self.xp
        n = _positive(n, "n")
        d = self.dim
        check_values(n * d * (self.T if return_trajectory else 1), "n", f"{n} samples of {d} values")
        dtype = np.float64
        off = 0
        start, total = 0, n
        if shard is not None:
            if not isinstance(shard, (tuple, list)) or len(shard) != 2:
                raise TypeError(f"'shard': expected (start, total), got {shard!r}")
            start = _positive(shard[0], "shard[0]", 0)
            total = _positive(shard[1], "shard[1]")
            if start + n > total:
                raise ValueError(
                    f"'shard': rows [{start}, {start + n}) do not fit in a run of {total} samples"
                )

        def normal(stream):
            nonlocal off
            z = hr.normal((n, d), seed, off + start * d, dtype="float64", stream=stream,
                          device="cuda" if xp is not np else "cpu")
            off += total * d
            return z

        if mask is not None:
            mask, known = mask_and_known(xp, mask, known, n, d, self._check_x)
        if x_T is None:
            x = normal(1)
        else:
            x = self._check_x(xp.asarray(x_T, dtype=dtype), "x_T").copy()
        if mask is not None:
            k = self._q_sample(known, xp.full(n, self.T, dtype=np.int64), normal(2))  # known part of x_T
            x = xp.where(mask, k, x)
        traj = [x.copy()] if return_trajectory else None
        for t in tqdm(range(self.T, 1, -1), disable=not progress, desc="sample", unit="step"):
            if mask is not None:
                i = t - 1  # the known part's x_{t-1} ~ q(x_{t-1} | x_t, x_0 = known)
                k = (self.post_c0[i] * known + self.post_ct[i] * k) + math.sqrt(self.post_var[i]) * normal(2)
            mu, var = self._reverse_rows(x, t, start)
            # the fused reverse-step kernel: x_{t-1} = mu + sqrt(var) z, z from Philox
            x = sohl_dickstein_step(mu, var, seed=seed, offset=off + start * d, stream=1)
            off += total * d
            if mask is not None:
                x = xp.where(mask, k, x)
            if traj is not None:
                traj.append(x.copy())
        if mask is not None:
            x = xp.where(mask, known, x)
        if traj is not None:
            traj.append(x.copy())
            return xp.stack(traj)
        return x

    # ---- checkpoints ---------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        if self.net_name == "custom":
            raise ValueError("'net': a model with a custom network cannot be saved")
        return {"dim": self.dim, "T": self.T, "mode": self.mode, "net": self.net_name,
                "schedule": self.schedule_name, "step1_beta": self.step1_beta,
                "learn_schedule": self.learn_schedule, "hidden": self.hidden,
                "grid": self.grid, "n_basis": self.n_basis, "seed": self.seed,
                "steps_trained": self.steps_trained}

    def save(self, path: str) -> str:
        """Write the model and its training state (optimizer moments, noise
        offset) to ``path`` (.npz + JSON, atomic); returns the path."""
        arrays = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        arrays["betas"] = self.betas
        arrays["schedule_coef"] = self.schedule_coef.params["c"]
        cfg, state = training_state(self)
        arrays.update(state)
        return checkpoint.save(path, self.kind, {**self.config(), **cfg}, arrays)

    @classmethod
    def load(cls, path: str, xp=np) -> "GaussianDPM":
        """Read a model written by :meth:`save`. CheckpointError for a
        missing, corrupt or foreign file, or one whose contents are
        inconsistent (sizes, shapes) or out of range (non-finite parameters,
        betas outside (0, 1))."""
        cfg, arrays = checkpoint.load(path, cls.kind)
        C = checkpoint
        try:
            T = C.integer(cfg, "T", path, 2, MAX_T)
            C.integer(cfg, "dim", path, 1, MAX_DIM)
            C.integer(cfg, "hidden", path, 1, MAX_HIDDEN)
            C.integer(cfg, "grid", path, 1, MAX_GRID)
            C.integer(cfg, "n_basis", path, 1, MAX_BASIS)
            if "steps_trained" in cfg:
                C.integer(cfg, "steps_trained", path, 0, 2**62)
            betas = C.array(arrays, "betas", path, (T,), kind="f")
            C.need(bool(np.all((betas > 0) & (betas < 1))), path, "betas must lie in (0, 1)")
            C.array(arrays, "schedule_coef", path, (cfg["n_basis"],), kind="f")
            model = cls(cfg["dim"], cfg["T"], mode=cfg["mode"], net=cfg["net"],
                        schedule=arrays["betas"] if cfg["schedule"] == "custom" else cfg["schedule"],
                        step1_beta=cfg["step1_beta"], learn_schedule=cfg.get("learn_schedule", False),
                        hidden=cfg["hidden"], grid=cfg["grid"],
                        n_basis=cfg["n_basis"], seed=cfg["seed"], xp=xp)
            model.schedule_name = cfg["schedule"]
            model.schedule_coef.params["c"][...] = arrays["schedule_coef"]
            model._set_schedule(np.asarray(arrays["betas"], dtype=np.float64))
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

    # ---- helpers -------------------------------------------------------------------
    def _check_x(self, x: Any, name: str) -> Any:
        xp = array_namespace(x)
        if not (isinstance(x, np.ndarray) or is_cupy(x)):
            x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"'{name}': expected real numbers, got dtype {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"'{name}': expected shape (n, {self.dim}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"'{name}': no samples")
        if x.dtype != np.float64:
            x = x.astype(np.float64)
        if not bool(xp.isfinite(x).all()):
            raise ValueError(f"'{name}': contains NaN or infinite values")
        return x


def probe_sample(path: str, model: Any) -> None:
    """CheckpointError unless 4 samples drawn from a loaded model (seed 0) are
    finite: finite parameters can still be out of scale (weights of 1e300
    overflow the network, or the chain runs away after a few steps)."""
    try:
        with np.errstate(all="ignore"):
            x = model.sample(4, seed=0, progress=False)
        ok = bool(array_namespace(x).isfinite(x).all())
    except (ValueError, FloatingPointError, OverflowError, ZeroDivisionError):
        ok = False
    checkpoint.need(
        ok, path, "drawing 4 samples from the model fails or gives non-finite values (parameters out of scale)"
    )


def train_loop(model: Any, step: Callable[[], float], *, steps: int, lr: float, lr_final: float, progress: bool,
               callback: Optional[Callable], time_limit: Optional[float], label: str, start: int = 0) -> None:
    """Adam over ``model.trainable`` (or ``model.net``) with a cosine-decayed learning rate from ``lr``
    to ``lr_final`` over ``steps`` steps, run from step ``start``; ``step()`` fills the gradients and
    returns the loss. Stops early after a step whose ``callback(model, k, loss)`` returns True, or
    once ``time_limit`` seconds have passed."""
    from tqdm.auto import tqdm

    steps = _positive(steps, "steps")
    start = _positive(start, "start", 0)
    if start > steps:
        raise ValueError(f"'start': step {start} is past the end of a {steps}-step schedule")
    if not lr > 0:
        raise ValueError(f"'lr': must be > 0, got {lr}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"'time_limit': must be > 0 seconds, got {time_limit}")
    params = getattr(model, "trainable", model.net)
    if not hasattr(model, "_opt"):
        model._opt = nn.Adam(params, lr=lr)
    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), disable=not progress, desc=f"train {model.kind}", unit="step",
               initial=start, total=steps)
    ema = None
    try:
        for k in bar:
            frac = k / max(steps - 1, 1)
            model._opt.lr = lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * frac))
            params.zero_grad()
            loss = step()
            model._opt.step()
            if getattr(model, "learn_schedule", False):
                model._refresh_schedule()
            model.steps_trained += 1
            ema = loss if ema is None else 0.98 * ema + 0.02 * loss
            if progress and k % 50 == 0:
                bar.set_postfix({label: f"{ema:.4f}"})
            if callback is not None and callback(model, k, loss) is True:
                break
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
    finally:
        bar.close()


def training_state(model: Any) -> tuple:
    """(config entries, arrays) that let a checkpoint resume training exactly:
    the noise offset and the Adam moments (empty before any training)."""
    opt = getattr(model, "_opt", None)
    cfg = {"draws": int(model._draws)}
    if opt is None:
        return cfg, {}
    cfg["adam_t"] = int(opt.t)
    arrays = {f"adam.m.{k}": v for k, v in opt.m.items()}
    arrays.update({f"adam.v.{k}": v for k, v in opt.v.items()})
    return cfg, arrays


def load_training_state(model: Any, cfg: Dict[str, Any], arrays: Dict[str, Any]) -> None:
    """The inverse of :func:`training_state` on a freshly loaded model."""
    model._draws = int(cfg.get("draws", 0))
    if "adam_t" not in cfg:
        return
    params = getattr(model, "trainable", model.net)
    opt = nn.Adam(params, lr=1e-3)
    xp = model.xp
    for k in opt.m:
        opt.m[k][...] = xp.asarray(arrays[f"adam.m.{k}"])
        opt.v[k][...] = xp.asarray(arrays[f"adam.v.{k}"])
    opt.t = int(cfg["adam_t"])
    model._opt = opt


def mask_and_known(xp, mask: Any, known: Any, n: int, d: int, check: Callable[[Any, str], Any]):
    """Validated (mask (n, d) bool, known (n, d)) for conditional sampling."""
    if known is None:
        raise ValueError("'known': give the known values with 'mask'")
    try:
        mask = xp.broadcast_to(as_mask(mask, "mask", xp), (n, d))
    except ValueError as exc:
        if "mask holds" in str(exc):
            raise
        raise ValueError(f"'mask': shape {np.shape(mask)} does not broadcast to {(n, d)}") from None
    known = check(known, "known")
    if known.shape != (n, d):
        raise ValueError(f"'known': expected shape {(n, d)}, got {tuple(known.shape)}")
    return mask, known


def check_steps(t: Any, x: Any, T: int, name: str) -> Any:
    """Steps t as int64 of shape (n,) (n = len(x)), every one in [1, T], on
    x's device; errors name ``name``."""
    xp = array_namespace(x)
    tt = t.get() if is_cupy(t) else np.asarray(t)
    if tt.dtype.kind not in "iu":
        raise TypeError(f"'{name}': expected integer steps, got dtype {tt.dtype}")
    if tt.shape != (x.shape[0],):
        raise ValueError(f"'{name}': expected shape ({x.shape[0]},) (one step per row), got {tt.shape}")
    if tt.size and (int(tt.min()) < 1 or int(tt.max()) > T):
        bad = int(tt.min()) if int(tt.min()) < 1 else int(tt.max())
        raise ValueError(f"'{name}': steps must lie in [1, {T}], got {bad}")
    return xp.asarray(tt.astype(np.int64))


def _positive(v: Any, name: str, minimum: int = 1, maximum: int = 2**62) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"'{name}': expected an integer, got bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"'{name}': expected an integer, got {type(v).__name__}") from None
    if v < minimum:
        raise ValueError(f"'{name}': must be >= {minimum}, got {v}")
    if v > maximum:
        raise ValueError(f"'{name}': must be <= {maximum}, got {v}")
    return v


# Sizes of a model, the ranges a checkpoint may hold (load refuses others).
MAX_DIM, MAX_T, MAX_HIDDEN, MAX_GRID, MAX_BASIS = 2**16, 2**20, 2**14, 2**10, 2**14


def _to_numpy(a: Any) -> np.ndarray:
    return a.get() if is_cupy(a) else np.asarray(a)
