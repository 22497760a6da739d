"""The training state of an RBM: buffers of CD-k / PCD / PT-PCD updates,
each update a fixed sequence of GEMMs and fused kernels (used by
:meth:`heatbath.ebm.BernoulliRBM.fit` and ``partial_fit``)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _core
from ._units import TAG_TRAIN, bernoulli_units, gaussian_units, stream_of


class Trainer:
    """Buffers of CD-k / PCD / PT-PCD updates for one model and one batch
    size; one update is a fixed sequence of GEMMs and fused kernels, with no
    allocation.

    Layout: ``Wa`` is the augmented parameter matrix of shape
    ``(n_v + 1, n_h + 1)``: ``Wa[:n_v, :n_h] = W^T``, ``Wa[n_v, :n_h] = c``,
    ``Wa[:n_v, n_h] = b``. Visible states carry a trailing column of ones, so
    ``[v, 1] @ Wa[:, :n_h] = v W^T + c``; positive and negative statistics
    are stacked so one GEMM gives the gradient of W, b and c together.
    """

    def __init__(self, model: Any, xp, max_batch: int):
        self.m = model
        self.xp = xp
        dt = model._dtype
        nv, nh = model.n_features_in_, model.n_components
        self.nv, self.nh, self.B = nv, nh, max_batch
        self.persistent = bool(model.persistent)
        self.C = model.batch_size if self.persistent else max_batch
        C, B = self.C, max_batch
        self.gauss = model._gaussian
        Wa = xp.zeros((nv + 1, nh + 1), dtype=dt)
        W, c, b = model._params(xp)
        Wa[:nv, :nh] = W.T
        Wa[nv, :nh] = c
        Wa[:nv, nh] = b
        self.Wa = Wa
        self.G = xp.empty_like(Wa)
        vel = getattr(model, "_velocity", None)
        self.vel = xp.zeros_like(Wa) if vel is None or vel.shape != Wa.shape else xp.asarray(vel, dtype=dt)
        self.V2 = xp.ones((B + C, nv + 1), dtype=dt)
        self.P2 = xp.ones((B + C, nh + 1), dtype=dt)
        # hidden samples of the stacked rows; the chains' states are its last C rows
        self.H2 = xp.ones((B + C, nh + 1), dtype=dt)
        self.Hc = self.H2[B:]
        self.pre_h = xp.empty((B + C, nh), dtype=dt)
        self.pre_v = xp.empty((C, nv), dtype=dt)
        self.zero_h = xp.zeros(nh, dtype=dt)
        self.zero_v = xp.zeros(nv, dtype=dt)
        self.tmpW = xp.empty((nv, nh), dtype=dt)
        self.neg_scale: Optional[float] = None
        if self.gauss:
            self.sigma = xp.asarray(model._sigma_vec(), dtype=dt)
            self.inv_sigma = 1 / self.sigma
            self.b_over_sigma = xp.empty(nv, dtype=dt)
        if self.persistent:
            hs = getattr(model, "h_samples_", None)
            if hs is not None and tuple(hs.shape) == (C, nh):
                self.Hc[:, :nh] = xp.asarray(hs, dtype=dt)
            else:
                self.Hc[:, :nh] = 0
        self.pt = None
        self._views: dict = {}
        self.fast = xp is np and self.persistent and not self.gauss and model.n_temperatures == 1
        if self.persistent and model.n_temperatures > 1:
            from .tempering import ParallelTempering

            self.pt = ParallelTempering(model, n_chains=C, n_temperatures=model.n_temperatures, _params=self)

    # views of the parameters
    def W_T(self):
        return self.Wa[: self.nv, : self.nh]

    def c(self):
        return self.Wa[self.nv, : self.nh]

    def b(self):
        return self.Wa[: self.nv, self.nh]

    def _bern(self, x, bias, sample, prob) -> None:
        """The fused kernel without the public wrapper's checks (CPU) on
        arrays this trainer allocated."""
        m = self.m
        m._hb_counter += 1
        stream = stream_of(TAG_TRAIN, m._hb_counter)
        if self.xp is np:
            _core.rbm_bernoulli(x, bias, sample, prob, 1.0, None, m._hb_seed, stream, 0)
        else:
            bernoulli_units(x, bias, sample, prob, seed=m._hb_seed, stream=stream)

    def visible_half(self, H, out_v) -> None:
        """out_v[:, :nv] <- sample of v | H[:, :nh] (scaled by 1/sigma for
        Gaussian units, so it feeds the next GEMM directly)."""
        m, xp, nv, nh = self.m, self.xp, self.nv, self.nh
        rows = H.shape[0]
        pre = self.pre_v[:rows]
        if self.gauss:
            xp.matmul(H[:, :nh], self.Wa[:nv, :nh].T, out=pre)
            xp.multiply(self.b(), self.inv_sigma, out=self.b_over_sigma)
            gaussian_units(
                pre, self.b_over_sigma, 1.0, out_v[:, :nv], seed=m._hb_seed, stream=m._next_stream(TAG_TRAIN)
            )
        else:
            xp.matmul(H, self.Wa[:nv, :].T, out=pre)
            self._bern(pre, self.zero_v, out_v[:, :nv], None)

    def hidden_half(self, V, pre, H=None, P=None) -> None:
        """H[:, :nh] <- sample, P[:, :nh] <- probabilities of h | V."""
        self.xp.matmul(V, self.Wa[:, : self.nh], out=pre)
        self._bern(
            pre, self.zero_h, None if H is None else H[:, : self.nh], None if P is None else P[:, : self.nh]
        )

    def _fast_views(self, b: int):
        """Views of the buffers for PCD-k on CPU Bernoulli units and batch size b
        (built once per batch size: the update then only calls numpy and the kernel)."""
        v = self._views.get(b)
        if v is None:
            B, C, nv, nh = self.B, self.C, self.nv, self.nh
            v = (
                self.V2[B - b : B],  # positive visible rows
                self.V2[B : B + C, :nv],  # negative visible samples
                self.V2[B : B + C],  # negative rows with their ones column
                self.V2[B - b : B + C],  # stacked rows
                self.V2[B - b : B + C].T,
                self.pre_h[: b + C],
                self.pre_h[B : B + C],
                self.H2[B - b : B + C, :nh],
                self.P2[B - b : B + C, :nh],
                self.P2[B - b : B + C],
                self.P2[B : B + C, :nh],
                self.Wa[:, :nh],
                self.Wa[:nv, :].T,
                self.Hc[:, :nh],
            )
            self._views[b] = v
        return v

    def _fast_update(self, Xa_batch) -> None:
        m, np_ = self.m, np
        b = Xa_batch.shape[0]
        views = self._fast_views(b)
        pos_v, neg_s, neg_v, rows_v, rows_vT, pre, pre_neg, H, P, P_all, neg_p, Wh, WvT, Hc = views
        seed, rb = m._hb_seed, _core.rbm_bernoulli
        np_.copyto(pos_v, Xa_batch)
        for _ in range(m.k - 1):
            np_.matmul(self.Hc, WvT, out=self.pre_v)
            m._hb_counter += 1
            rb(self.pre_v, self.zero_v, neg_s, None, 1.0, None, seed, stream_of(TAG_TRAIN, m._hb_counter), 0)
            np_.matmul(neg_v, Wh, out=pre_neg)
            m._hb_counter += 1
            rb(pre_neg, self.zero_h, Hc, None, 1.0, None, seed, stream_of(TAG_TRAIN, m._hb_counter), 0)
        np_.matmul(self.Hc, WvT, out=self.pre_v)
        m._hb_counter += 1
        rb(self.pre_v, self.zero_v, neg_s, None, 1.0, None, seed, stream_of(TAG_TRAIN, m._hb_counter), 0)
        np_.matmul(rows_v, Wh, out=pre)
        m._hb_counter += 1
        rb(pre, self.zero_h, H, P, 1.0, None, seed, stream_of(TAG_TRAIN, m._hb_counter), 0)
        s = -(b / self.C)
        if self.neg_scale != s:
            self.P2[self.B :, self.nh] = s
            self.neg_scale = s
        np_.multiply(neg_p, s, out=neg_p)
        G = self.G
        np_.matmul(rows_vT, P_all, out=G)
        np_.multiply(G, float(m.learning_rate) / b, out=G)
        if m.weight_decay:
            np_.multiply(self.W_T(), float(m.learning_rate) * float(m.weight_decay), out=self.tmpW)
            np_.subtract(G[: self.nv, : self.nh], self.tmpW, out=G[: self.nv, : self.nh])
        if m.momentum:
            np_.multiply(self.vel, float(m.momentum), out=self.vel)
            np_.add(self.vel, G, out=self.vel)
            np_.add(self.Wa, self.vel, out=self.Wa)
        else:
            np_.add(self.Wa, G, out=self.Wa)

    def update(self, Xa_batch) -> None:
        """One CD-k / PCD update on a batch (rows of the augmented data)."""
        m, xp, nv, nh, B = self.m, self.xp, self.nv, self.nh, self.B
        if self.fast:
            self._fast_update(Xa_batch)
            return
        b = Xa_batch.shape[0]
        k = m.k
        pos_v = self.V2[B - b : B]
        pos_v[...] = Xa_batch
        C = self.C if self.persistent else b
        neg_v = self.V2[B : B + C]
        neg_p = self.P2[B : B + C]
        if self.persistent:
            # negative chains first, then one GEMM and one kernel give p(h | data)
            # and p(h | v_neg) of the stacked rows (the last also the chains' new h)
            if self.pt is not None:
                self.pt.run(k)
                self.pt.take_cold(neg_v[:, :nv])
            else:
                H = self.Hc
                for _ in range(k - 1):
                    self.visible_half(H, neg_v)
                    self.hidden_half(neg_v, self.pre_h[B : B + C], H=H)
                self.visible_half(H, neg_v)
            self.hidden_half(
                self.V2[B - b : B + C],
                self.pre_h[: b + C],
                H=self.H2[B - b : B + C],
                P=self.P2[B - b : B + C],
            )
        else:
            # CD-k: chains start from a sample of h | data
            self.hidden_half(pos_v, self.pre_h[:b], H=self.Hc[:b], P=self.P2[B - b : B])
            H = self.Hc[:C]
            for step in range(k):
                self.visible_half(H, neg_v)
                self.hidden_half(neg_v, self.pre_h[B : B + C], H=H, P=neg_p if step == k - 1 else None)
        # stacked gradient: [v_pos; v_neg]^T [p_pos; -(b/C) p_neg]
        s = -(b / C)
        if self.neg_scale != s:
            self.P2[B : B + C, nh] = s
            self.neg_scale = s
        xp.multiply(neg_p[:, :nh], s, out=neg_p[:, :nh])
        G = self.G
        xp.matmul(self.V2[B - b : B + C].T, self.P2[B - b : B + C], out=G)
        if self.gauss:  # d/db of (v - b)^2 / 2 sigma^2: the visible column is in units of v / sigma
            xp.multiply(G[:nv, nh], self.inv_sigma, out=G[:nv, nh])
        lr = float(m.learning_rate) / b
        xp.multiply(G, lr, out=G)
        decay = float(m.weight_decay)
        if decay:
            xp.multiply(self.W_T(), float(m.learning_rate) * decay, out=self.tmpW)
            xp.subtract(G[:nv, :nh], self.tmpW, out=G[:nv, :nh])
        mom = float(m.momentum)
        if mom:
            xp.multiply(self.vel, mom, out=self.vel)
            xp.add(self.vel, G, out=self.vel)
            xp.add(self.Wa, self.vel, out=self.Wa)
        else:
            xp.add(self.Wa, G, out=self.Wa)

    def write_back(self) -> None:
        m, xp, nv, nh = self.m, self.xp, self.nv, self.nh
        m.components_ = xp.ascontiguousarray(self.Wa[:nv, :nh].T)
        m.intercept_hidden_ = self.Wa[nv, :nh].copy()
        m.intercept_visible_ = self.Wa[:nv, nh].copy()
        if m.momentum:
            m._velocity = self.vel
        if self.persistent:
            m.h_samples_ = self.Hc[:, :nh].copy()
