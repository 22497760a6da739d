"""Denoising thermodynamic models (DTMs) and their monolithic baseline (MEBM).

A DTM (Jelincic et al., "An efficient probabilistic hardware architecture for
diffusion-like models", 2025) reverses the bit-flip forward process of
:mod:`heatbath.dtm.forward` in T steps. Reverse step t is a sparse Boltzmann
machine over the nodes of a :class:`~heatbath.dtm.graphs.DTMGraph` (visible
nodes = the bits of x^{t-1}, plus latent nodes) and one input node per data bit
holding x^t, clamped per chain and coupled to its partner visible node by the
fixed forward coupling ``w_t = -1/2 ln tanh(lambda dt_t / 2)``::

    p_t(x^{t-1}, z | x^t) ~ exp( sum_{(i,j)} J_ij s_i s_j + sum_i b_i s_i
                                 + w_t sum_k s^{t-1}_k s^t_k )

with spins ``s = 2x - 1``. Each step is trained on its own by the contrastive
gradient of log p_t(x^{t-1} | x^t) on pairs (x^{t-1}, x^t) drawn from the
forward process: ``dJ_ij = <s_i s_j>_+ - <s_i s_j>_-``, ``db_i = <s_i>_+ -
<s_i>_-``, where the positive phase clamps x^{t-1} (data) and x^t and samples
the latents, and the negative phase clamps only x^t; moments are estimated by
the block Gibbs engine :class:`heatbath.ebm.SparseIsing` on all chains of a
batch at once. Updates use Adam. The adaptive correlation penalty (ACP) adds
``cp (<s_i>_- <s_j>_- - <s_i s_j>_-)`` to the coupling gradient, which pulls
couplings towards weaker model correlations; ``cp`` is tuned each epoch from
the measured autocorrelation of the negative-phase chains at lag
``acp_lag`` sweeps (doubled, from at least ``cp_min``, while it exceeds
``acp_threshold``; halved while it is below half of it). DTM chains are
centred on their own means (they run under different x^t; the bias of that
over a short window is corrected to first order), MEBM chains on the mean of
all chains (see :mod:`heatbath.dtm.mixing`).

Sampling starts from uniform bits x^T and runs each step for K sweeps (the
visible nodes start at x^t, the latents at random), optionally annealing beta
across the K sweeps of a step. The MEBM is one Boltzmann machine over the same
graph, trained with the same gradient (persistent negative chains) and sampled
with ``K_total`` sweeps from random spins.
"""

from __future__ import annotations

import abc
import inspect
import math
import time
from typing import Any, Callable, Optional

import numpy as np

from .. import checkpoint
from .. import random as hr
from .._blas import in_blas_threads
from .._guard import check_values
from ..ebm.sparse import _as_int
from . import _kernels as kern
from ._step import Draws, StepEBM, StepEngine, pack_bits, random_words, unpack_bits
from .forward import BitFlipForward
from .graphs import DTMGraph, make_graph, torus_graph
from .mixing import MixingReport, chain_statistic, mixing_report

__all__ = ["DTM", "MEBM"]

_STREAM_NOISE, _STREAM_SPINS, _STREAM_PERM, _STREAM_INIT = 11, 12, 13, 14


def _subseed(seed: int, *keys: int) -> int:
    ss = np.random.SeedSequence([int(seed) % (1 << 64)] + [int(k) for k in keys])
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def _check_float(v: Any, name: str, lo: float = 0.0, strict: bool = False) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"'{name}': expected a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f) or f < lo or (strict and f == lo):
        raise ValueError(f"'{name}': must be {'>' if strict else '>='} {lo} and finite, got {v}")
    return f


def _check_beta(beta: Any, name: str = "beta") -> Optional[tuple]:
    """None (beta = 1), a number, or (beta_start, beta_end) annealed linearly."""
    if beta is None:
        return None
    if isinstance(beta, (int, float, np.integer, np.floating)) and not isinstance(beta, (bool, np.bool_)):
        b = _check_float(beta, name, 0.0, strict=True)
        return (b, b)
    try:
        b0, b1 = beta
    except (TypeError, ValueError):
        raise TypeError(
            f"'{name}': expected None, a number or (beta_start, beta_end), got {beta!r}"
        ) from None
    return (_check_float(b0, name, 0.0, strict=True), _check_float(b1, name, 0.0, strict=True))


def _check_bits(X: Any, name: str, n_features: Optional[int] = None) -> np.ndarray:
    """0/1 data (bool, int or float) of shape (n, n_features) as uint8."""
    if hasattr(X, "get") and not isinstance(X, np.ndarray):  # cupy
        X = X.get()
    a = np.asarray(X)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"'{name}': expected binary numbers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"'{name}': expected a 2-D array (n_samples, n_features), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"'{name}': no samples")
    if n_features is not None and a.shape[1] != n_features:
        raise ValueError(f"'{name}': expected {n_features} features (visible nodes), got {a.shape[1]}")
    if not np.all((a == 0) | (a == 1)):
        raise ValueError(f"'{name}': values must be binary, 0 or 1")
    return a.astype(np.uint8)


class _Base(abc.ABC):
    """Shared parameters, checks, training loop and checkpointing.

    A subclass's ``__init__`` takes ``graph`` and its own parameters, sets the
    latter and passes the rest on; its signature (for introspection) and
    ``_param_names`` are its own parameters followed by the shared ones."""

    kind = ""
    _center = "chain"  # DTM chains run under different inputs x^t
    _sweeps_param = ""  # the parameter with the default number of sampling sweeps
    _param_names: tuple = ()

    def __init__(
        self,
        graph: Optional[DTMGraph] = None,
        learning_rate: float = 0.02,
        batch_size: int = 250,
        n_epochs: int = 20,
        warmup: int = 10,
        n_records: int = 24,
        pos_sweeps: int = 4,
        acp: bool = True,
        acp_threshold: float = 0.05,
        acp_lag: int = 8,
        cp_init: float = 0.0,
        cp_min: float = 0.01,
        cp_max: float = 2.0,
        init_scale: float = 0.01,
        weight_decay: float = 0.0,
        beta: Any = None,
        decorrelation_threshold: float = math.exp(-1),
        side: Optional[int] = None,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = True,
        verbose: bool = False,
    ) -> None:
        self.graph = graph
        self.learning_rate, self.batch_size, self.n_epochs = learning_rate, batch_size, n_epochs
        self.warmup, self.n_records, self.pos_sweeps = warmup, n_records, pos_sweeps
        self.acp, self.acp_threshold, self.acp_lag = acp, acp_threshold, acp_lag
        self.cp_init, self.cp_min, self.cp_max = cp_init, cp_min, cp_max
        self.init_scale, self.weight_decay, self.beta = init_scale, weight_decay, beta
        self.decorrelation_threshold, self.side = decorrelation_threshold, side
        self.seed, self.device, self.progress, self.verbose = seed, device, progress, verbose
        self._check_params()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = list(inspect.signature(cls.__init__).parameters.values())
        shared = list(inspect.signature(_Base.__init__).parameters.values())
        params = [p for p in own if p.kind is p.POSITIONAL_OR_KEYWORD] + shared[2:]  # shared[:2]: self, graph
        cls.__init__.__signature__ = inspect.Signature(params, return_annotation=None)
        cls._param_names = tuple(p.name for p in params[1:])

    @abc.abstractmethod
    def _check_params(self) -> None:
        """The subclass's own parameter checks."""

    def _check_common(self) -> None:
        if self.graph is not None and not isinstance(self.graph, DTMGraph):
            raise TypeError(f"'graph': expected a DTMGraph (heatbath.dtm.torus_graph, ...), got "
                            f"{type(self.graph).__name__}")
        if self.side is not None:
            _as_int(self.side, "side", 2)
        _check_float(self.learning_rate, "learning_rate", 0.0, strict=True)
        _as_int(self.batch_size, "batch_size", 1)
        _as_int(self.n_epochs, "n_epochs", 1)
        _as_int(self.warmup, "warmup", 0)
        _as_int(self.n_records, "n_records", 2)
        _as_int(self.pos_sweeps, "pos_sweeps", 1)
        if not isinstance(self.acp, (bool, np.bool_)):
            raise TypeError(f"'acp': expected a bool, got {type(self.acp).__name__}")
        _check_float(self.acp_threshold, "acp_threshold", 0.0, strict=True)
        lag = _as_int(self.acp_lag, "acp_lag", 1)
        if lag >= self.n_records:
            raise ValueError(f"'acp_lag': must be < n_records ({self.n_records}), got {lag}")
        _check_float(self.cp_init, "cp_init", 0.0)
        if _check_float(self.cp_max, "cp_max", 0.0) < _check_float(self.cp_min, "cp_min", 0.0, strict=True):
            raise ValueError(f"'cp_max': must be >= cp_min ({self.cp_min}), got {self.cp_max}")
        _check_float(self.decorrelation_threshold, "decorrelation_threshold", 0.0, strict=True)
        _check_float(self.init_scale, "init_scale", 0.0)
        _check_float(self.weight_decay, "weight_decay", 0.0)
        _check_beta(self.beta)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"'device': expected 'cpu' or 'cuda', got {self.device!r}")
        hr.as_seed(self.seed)

    def _build_graph(self, n_features: int) -> DTMGraph:
        if self.graph is not None:
            if self.graph.n_visible != n_features:
                raise ValueError(f"'X': the graph has {self.graph.n_visible} visible nodes, the data "
                                 f"{n_features} features")
            return self.graph
        side = self.side
        if side is None:
            side = 2 * math.ceil(0.75 * math.sqrt(n_features))  # about 2.25 nodes per data bit
        return torus_graph(int(side), n_features)

    def _check_fitted(self) -> None:
        if not getattr(self, "steps_", None):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(X) first")

    def _progress(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="epoch", disable=not self.progress, leave=False)

    def _init_weights(self, step: StepEBM, k: int) -> None:
        if self.init_scale > 0:
            n = self.graph_.n_edges
            step.set_parameters(weights=self.init_scale * hr.normal(n, self._seed, stream=_STREAM_INIT,
                                                                    offset=k * (1 << 32), dtype="float64"))

    def _mixing_of_batch(self, step: StepEBM) -> Optional[MixingReport]:
        if step.last_stat is None:
            return None
        return mixing_report(step.last_stat, threshold=self.decorrelation_threshold, center=self._center,
                             debias=self._center == "chain")

    def _acp_update(self, step: StepEBM, r: float) -> None:
        if not self.acp:
            return
        if r > self.acp_threshold:
            step.cp = min(max(2.0 * step.cp, self.cp_min), self.cp_max)
        elif r < 0.5 * self.acp_threshold:
            step.cp = 0.5 * step.cp if step.cp >= 2 * self.cp_min else 0.0

    def _after_epoch(self, epoch: int, bar) -> None:
        rows = []
        reports = []
        for k, step in enumerate(self.steps_):
            rep = self._mixing_of_batch(step)
            r = rep.rho_at(self.acp_lag) if rep is not None else float("nan")
            self._acp_update(step, r)
            row = {
                "epoch": epoch,
                "step": k + 1 if self.kind == "dtm" else 0,
                "rho_lag": r,
                "tau": rep.tau if rep else float("nan"),
                "decorrelation_sweeps": rep.decorrelation_sweeps if rep else None,
                "cp": step.cp,
            }
            rows.append(row)
            reports.append(rep)
        self.history_.extend(rows)
        self.mixing_ = reports
        taus = [r["tau"] for r in rows]
        post = {
            "tau_max": f"{max(taus):.2f}",
            f"rho{self.acp_lag}_max": f"{max(r['rho_lag'] for r in rows):.3f}",
            "cp_max": f"{max(r['cp'] for r in rows):.3g}",
        }
        if bar is not None:
            bar.set_postfix(post)
            bar.update(1)
        if self.verbose:
            for r in rows:
                ds = r["decorrelation_sweeps"]
                print(f"epoch {epoch} step {r['step']}: rho({self.acp_lag}) = {r['rho_lag']:.3f}, "
                      f"tau = {r['tau']:.2f} sweeps, decorrelated after "
                      f"{ds if ds is not None else '>' + str(self.n_records - 1)} sweeps, cp = {r['cp']:.3g}")

    def _setup(self, graph: DTMGraph) -> None:
        self._seed = hr.as_seed(self.seed)
        self.graph_ = graph
        self.steps_ = [StepEBM(graph, c, self.device) for c in self._couplings()]
        for k, step in enumerate(self.steps_):
            self._init_weights(step, k)
            step.cp = float(self.cp_init)
        self.epochs_trained_ = 0
        self.history_: list = []
        self.mixing_: list = []
        self._draw_spins = Draws(self._seed, _STREAM_SPINS)

    @abc.abstractmethod
    def _couplings(self) -> list:
        """Per step: the fixed input coupling, or None for a step without inputs."""

    # ---- training phases ------------------------------------------------------
    def _chain_init(self, step: StepEBM, out: Any, x_vis: Any, x_in: Any = None) -> None:
        """Packed chains into ``out`` (N, words): visible nodes = x_vis, inputs
        = x_in (when given) (0/1 rows (C, n_visible) on the model's device),
        the rest random spins."""
        bits = self._draw_spins.below((x_vis.shape[0], step.N), 0.5, step.device)
        bits[:, step.index["visible"]] = x_vis
        if x_in is not None:
            bits[:, step.index["inputs"]] = x_in
        kern.pack_rows(bits, out)

    def _positive_phase(self, step: StepEBM, key: tuple, seed: int, x_vis: Any, x_in: Any = None) -> list:
        """Moment counters of the chains with the visible nodes = x_vis and the
        inputs = x_in clamped and the latents after ``pos_sweeps`` sweeps of
        the cached engine ``key`` (built under ``seed``); no sweeps without
        latents."""
        g = self.graph_
        C = x_vis.shape[0]
        c = step.counts("pos", C)
        if not g.latent.size:
            s = step.scratch(C)
            self._chain_init(step, s, x_vis, x_in)
            step.count(s, C, c)
            return c
        eng = step.engine(key, C, seed)
        self._chain_init(step, eng._s, x_vis, x_in)
        eng.set_clamped(np.concatenate([g.visible, step.inputs]))
        eng.set_beta_value(1.0)
        eng.sweep(self.pos_sweeps)
        step.count(eng._s, C, c)
        return c

    def _negative_phase(self, step: StepEBM, eng: StepEngine, clamp: np.ndarray, keep_rows: bool) -> list:
        """Moment counters of ``n_records`` sweeps of ``eng`` after ``warmup``,
        ``clamp`` nodes clamped."""
        eng.set_clamped(clamp)
        return step.record(eng, self.warmup, self.n_records, keep_rows)

    def _learn(self, step: StepEBM, pos: list, neg: list) -> None:
        """One Adam step on the contrastive gradient."""
        step.adam(pos, neg, self.learning_rate, self.weight_decay)

    # ---- argument defaults ------------------------------------------------------
    def _sweeps(self, v: Any, name: str, minimum: int) -> int:
        """``v`` checked, or the model's number of sampling sweeps (K, K_total)
        when None."""
        return getattr(self, self._sweeps_param) if v is None else _as_int(v, name, minimum)

    def _sampling_args(self, k: Any, name: str, beta: Any, seed: Any, key: int) -> tuple:
        """(sweeps, beta schedule, seed): ``k`` as :meth:`_sweeps`, ``beta``
        defaulting to the model's, ``seed`` to the model's seed's subseed ``key``."""
        k = self._sweeps(k, name, 1)
        b = _check_beta(self.beta if beta is None else beta)
        s = hr.as_seed(seed) if seed is not None else _subseed(self._seed, key)
        return k, b, s

    def _mixing_args(self, n_chains: Any, n_sweeps: Any, warmup: Any) -> tuple:
        """(n_chains, n_sweeps, warmup) of :meth:`mixing`, checked, on a fitted
        model; ``warmup`` as :meth:`_sweeps`."""
        self._check_fitted()
        nc = _as_int(n_chains, "n_chains", 1)
        ns = _as_int(n_sweeps, "n_sweeps", 2)
        N = self.graph_.n_nodes
        check_values(nc * N, "n_chains", f"{nc} chains of {N} nodes")
        check_values(ns * nc * N, "n_sweeps", f"the states of {ns} sweeps of {nc} chains of {N} nodes")
        return nc, ns, self._sweeps(warmup, "warmup", 0)

    def _n_samples(self, v: Any, name: str) -> int:
        """A number of samples (chains) of a fitted model whose states memory can hold."""
        n = _as_int(v, name, 1)
        N = self.graph_.n_nodes
        check_values(n * N, name, f"{n} chains of {N} nodes")
        return n

    # ---- checkpoints --------------------------------------------------------
    def _config(self) -> dict:
        params = {k: getattr(self, k) for k in self._param_names if k not in ("graph", "device")}
        if params.get("beta") is not None:
            params["beta"] = list(_check_beta(params["beta"]))
        return {
            "params": params,
            "graph": self.graph_.config(),
            "epochs_trained": self.epochs_trained_,
            "history": self.history_,
        }

    def save(self, path: str) -> str:
        """Write the model (parameters, graph, Adam state, ACP strengths and
        training history) to ``path`` (.npz + JSON, atomic). Returns the path."""
        self._check_fitted()
        g = self.graph_
        arrays = {"edges_i": g.edges_i, "edges_j": g.edges_j, "visible": g.visible, "colours": g.colours,
                  "cp": np.array([s.cp for s in self.steps_]),
                  "adam_t": np.array([s.adam_t for s in self.steps_])}
        for name in ("w", "b", "mw", "vw", "mb", "vb"):
            arrays[name] = np.stack([s.state_arrays()[name] for s in self.steps_])
        return checkpoint.save(path, self.kind, self._config(), arrays)

    @classmethod
    def load(cls, path: str, device: str = "cpu"):
        """Read a model written by :meth:`save` (CheckpointError for a missing,
        corrupt or foreign file, or one holding another kind of model)."""
        cfg, arrays = checkpoint.load(path, cls.kind)
        C = checkpoint
        try:
            params = dict(cfg["params"])
            if params.get("beta") is not None:
                params["beta"] = tuple(params["beta"])
            gcfg = cfg["graph"]
            # sizes from the arrays, checked against the configuration before anything is built
            w = C.array(arrays, "w", path, (None, None), kind="f")
            n_steps = w.shape[0]
            if "T" in params:
                C.need(params["T"] == n_steps, path, f"T = {params['T']!r} but the file holds {n_steps} steps")
            n_nodes = C.integer(gcfg, "n_nodes", path, 1, 2**31 - 1)
            for name in ("edges_i", "edges_j", "visible", "colours"):
                a = C.array(arrays, name, path, (None,), kind="iu")
                C.need(a.size == 0 or (int(a.min()) >= 0 and int(a.max()) < max(n_nodes, 2)), path,
                       f"array {name!r} holds values outside [0, {n_nodes})")
            for name in ("b", "mw", "vw", "mb", "vb"):
                C.array(arrays, name, path, (n_steps, None), kind="f")
            for name in ("w", "b"):  # the samplers hold them in float32
                C.need(bool(np.all(np.abs(arrays[name]) <= np.finfo(np.float32).max)), path,
                       f"array {name!r} holds values beyond float32 (|v| > 3.4e38)")
            for name in ("vw", "vb"):
                C.need(bool(np.all(arrays[name] >= 0)), path, f"array {name!r} (Adam second moments) is negative")
            C.array(arrays, "cp", path, (n_steps,), kind="f")
            adam_t = C.array(arrays, "adam_t", path, (n_steps,), kind="iu")
            C.need(bool(np.all(adam_t >= 0)), path, "array 'adam_t' is negative")
            graph = make_graph(gcfg["n_nodes"], arrays["edges_i"], arrays["edges_j"], arrays["visible"],
                               arrays["colours"], gcfg["shape"])
            model = cls(graph=graph, device=device, **params)
            model._setup(graph)
            C.need(len(model.steps_) == n_steps, path,
                   f"the configuration makes {len(model.steps_)} steps, the file holds {n_steps}")
            for k, step in enumerate(model.steps_):
                step.load_state_arrays({name: arrays[name][k] for name in StepEBM._PARAMS})
                step.cp = float(arrays["cp"][k])
                step.adam_t = int(arrays["adam_t"][k])
            model.epochs_trained_ = int(cfg["epochs_trained"])
            model.history_ = list(cfg["history"])
        except checkpoint.CheckpointError:
            raise
        except Exception as exc:
            raise checkpoint.CheckpointError(
                f"'path': {path} is missing or has malformed model data ({type(exc).__name__}: {exc})"
            ) from None
        return model

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params: Any):
        for k, v in params.items():
            if k not in self._param_names:
                raise ValueError(f"'{k}': not a parameter of {type(self).__name__}")
            setattr(self, k, v)
        return self

    @in_blas_threads
    def fit(self, X: Any, y: Any = None, callback: Optional[Callable] = None):
        """Train on binary data X of shape (n_samples, n_visible) (0/1 values)
        for ``n_epochs`` epochs (continuing when already fitted). Mixing
        diagnostics of every step are computed each epoch from the
        negative-phase chains, stored in ``history_`` (a list of dicts) and
        ``mixing_`` (the last epoch's :class:`MixingReport` per step), shown in
        the progress bar and, with ``verbose``, printed. ``callback(model,
        epoch)`` runs after each epoch; when it returns True, training stops
        there (the model is then as after that epoch)."""
        self._check_params()
        Xb = _check_bits(X, "X", self.graph_.n_visible if getattr(self, "steps_", None) else None)
        if not getattr(self, "steps_", None):
            self._setup(self._build_graph(Xb.shape[1]))
        n = Xb.shape[0]
        bs = min(self.batch_size, n)
        xp = self.steps_[0].xp
        Xd = xp.asarray(Xb)  # the data on the steps' device, once
        bar = self._progress(self.n_epochs, type(self).__name__)
        t0 = time.perf_counter()
        try:
            for _ in range(self.n_epochs):
                epoch = self.epochs_trained_
                perm = xp.asarray(np.argsort(hr.uniform(n, self._seed, offset=epoch * n, stream=_STREAM_PERM,
                                                        dtype="float64"), kind="stable"))
                for start in range(0, n, bs):
                    # the last batch keeps its negative chains' rows for the mixing report
                    self._train_batch(Xd[perm[start:start + bs]], epoch, start // bs, start + bs >= n)
                self.epochs_trained_ += 1
                self._after_epoch(epoch, bar)
                if callback is not None and callback(self, epoch) is True:
                    break
        finally:
            bar.close()
        self.fit_seconds_ = time.perf_counter() - t0
        return self


class DTM(_Base):
    """Denoising thermodynamic model.

    Parameters
    ----------
    graph : DTMGraph, optional
        Nodes, edges, colouring and visible nodes, shared by all steps
        (default: :func:`~heatbath.dtm.torus_graph` with ``side`` or an even
        side of about 1.5 sqrt(n_features), built at ``fit``).
    T : int
        Number of reverse steps.
    K : int
        Gibbs sweeps per step when sampling.
    rate, t_end, schedule, offset
        The forward process (:class:`~heatbath.dtm.BitFlipForward`).
    learning_rate : float
        Adam step size.
    batch_size, n_epochs : int
    warmup : int
        Negative phase: sweeps before recording (visible nodes start at x^t,
        latents at random).
    n_records : int
        Negative phase: consecutive sweeps recorded for the moments (and for the
        mixing diagnostics).
    pos_sweeps : int
        Positive phase: sweeps of the latents (one record) per batch.
    acp : bool
        Adaptive correlation penalty on or off.
    acp_threshold, acp_lag : float, int
        ACP target: autocorrelation at ``acp_lag`` sweeps.
    cp_init, cp_min, cp_max : float
        Initial penalty strength and its range under the controller.
    init_scale : float
        Initial couplings ~ init_scale * N(0, 1).
    weight_decay : float
        L2 penalty on the couplings.
    beta : None, float or (float, float)
        Inverse temperature when sampling; a pair is annealed linearly over the
        K sweeps of each step.
    decorrelation_threshold : float
        Autocorrelation level that counts as decorrelated.
    side : int, optional
        Side of the default torus.
    seed : int
    device : {"cpu", "cuda"}
        Where the Gibbs engine runs.
    progress, verbose : bool

    Attributes
    ----------
    graph_ : DTMGraph
    forward_ : BitFlipForward
    steps_ : list of per-step models (``weights`` (n_edges,), ``bias``
        (n_nodes,), ``coupling``, ``cp``)
    history_ : list of dict
        Per epoch and step: ``rho_lag``, ``tau``, ``decorrelation_sweeps``, ``cp``.
    mixing_ : list of MixingReport
    """

    kind = "dtm"
    _sweeps_param = "K"

    def __init__(
        self,
        graph: Optional[DTMGraph] = None,
        T: int = 6,
        K: int = 20,
        rate: float = 1.0,
        t_end: float = 3.0,
        schedule: str = "log",
        offset: float = 0.15,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.T, self.K = T, K
        self.rate, self.t_end, self.schedule, self.offset = rate, t_end, schedule, offset
        super().__init__(graph, *args, **kwargs)

    def _check_params(self) -> None:
        _as_int(self.T, "T", 1)
        _as_int(self.K, "K", 1)
        self._check_common()
        BitFlipForward(self.T, self.rate, self.t_end, self.schedule, self.offset)

    def _setup(self, graph: DTMGraph) -> None:
        self.forward_ = BitFlipForward(self.T, self.rate, self.t_end, self.schedule, self.offset)
        super()._setup(graph)
        self._draw_noise = Draws(self._seed, _STREAM_NOISE)

    def _couplings(self) -> list:
        return [float(c) for c in self.forward_.coupling]

    def _train_batch(self, x0: Any, epoch: int, batch: int, keep_rows: bool = False) -> None:
        """One update of every step from the batch x0 (C, n_visible) uint8 on
        the model's device."""
        C = x0.shape[0]
        fw = self.forward_
        for t in range(1, self.T + 1):
            step = self.steps_[t - 1]
            d = self._draw_noise
            x_prev = fw.noise(x0, t - 1, d.seed, offset=d.offset, stream=d.stream)
            d.offset += x0.size
            x_t = fw.step(x_prev, t, d.seed, offset=d.offset, stream=d.stream)
            d.offset += x0.size
            key, seed = ("train", C), _subseed(self._seed, 1, t, C)
            # positive phase: x^{t-1} and x^t clamped, latents sampled
            pos = self._positive_phase(step, key, seed, x_prev, x_t)
            # negative phase: x^t clamped; visible nodes start at x^t
            eng = step.engine(key, C, seed)
            self._chain_init(step, eng._s, x_t, x_t)
            neg = self._negative_phase(step, eng, step.inputs, keep_rows)
            self._learn(step, pos, neg)

    # ---- sampling -------------------------------------------------------------
    def sample_step(self, t: int, x_t: Any, n_sweeps: Optional[int] = None, beta: Any = None,
                    seed: Any = None) -> np.ndarray:
        """Draw x^{t-1} ~ p_t( . | x^t) for each row of ``x_t`` (n, n_visible)
        with ``n_sweeps`` (default K) sweeps from visible = x^t, latents
        random; ``beta`` as in the constructor (default: the model's). Returns
        uint8 (n, n_visible)."""
        self._check_fitted()
        t = self.forward_._check_t(t, 1)
        xt = _check_bits(x_t, "x_t", self.graph_.n_visible)
        k, b, s = self._sampling_args(n_sweeps, "n_sweeps", beta, seed, 7)
        x = self._reverse(t, pack_bits(xt, self.device), xt.shape[0], k, b, s)
        return unpack_bits(x, xt.shape[0])

    def _reverse(self, t: int, x: Any, n: int, k: int, beta: Optional[tuple], seed: int,
                 keep: int = 0) -> Any:
        """Reverse step t on ``n`` chains from x^t given as packed visible rows
        (n_visible, ceil(n / 32)) on the model's device: visible and input rows
        = x^t, latent rows fair random bits (Philox (seed, 100 + t)), ``k``
        sweeps of the step's engine under seed ``_subseed(seed, 2, t)``.
        Returns x^{t-1} as packed visible rows, or with ``keep`` the states of
        ``keep`` further consecutive sweeps (keep, n, N) int8."""
        step = self.steps_[t - 1]
        g = self.graph_
        rows = [("visible", x), ("inputs", x)]
        if g.latent.size:
            rows.insert(0, ("latent", random_words(g.latent.size, n, seed, 100 + t, self.device)))
        return step.draw(n, _subseed(seed, 2, t), rows, k, keep, beta, "visible")

    @in_blas_threads
    def sample(self, n_samples: int = 100, K: Optional[int] = None, beta: Any = None, seed: Any = None,
               return_steps: bool = False, progress: bool = False) -> Any:
        """Generate ``n_samples`` binary samples: x^T uniform, then each step
        for K sweeps. Returns uint8 (n_samples, n_visible), or with
        ``return_steps`` a list [x^T, x^{T-1}, ..., x^0]. The same seed gives
        the same samples. ``progress``: a progress bar over the steps."""
        from tqdm.auto import tqdm

        self._check_fitted()
        n = self._n_samples(n_samples, "n_samples")
        k, b, s = self._sampling_args(K, "K", beta, seed, 8)
        x = random_words(self.graph_.n_visible, n, s, 99, self.device)  # x^T, packed
        out = [x]
        for t in tqdm(range(self.T, 0, -1), disable=not progress, desc="sample", unit="step", leave=False):
            x = self._reverse(t, x, n, k, b, s)
            out.append(x)
        if return_steps:
            return [unpack_bits(w, n) for w in out]
        return unpack_bits(x, n)

    @in_blas_threads
    def mixing(self, X: Any = None, n_chains: int = 256, n_sweeps: int = 200, warmup: Optional[int] = None,
               seed: Any = 0, progress: bool = False) -> list:
        """Autocorrelation of each step's chains (statistic: a random projection
        of the visible spins) over ``n_sweeps`` consecutive sweeps after
        ``warmup`` (default K) sweeps, with x^t clamped: x^t from the forward
        process applied to rows of X when given, else from the model's own
        sampler. Returns a list of :class:`MixingReport`, step 1 first.
        ``progress``: a progress bar over the steps."""
        from tqdm.auto import tqdm

        nc, ns, w = self._mixing_args(n_chains, n_sweeps, warmup)
        s = hr.as_seed(seed)
        if X is not None:
            Xb = _check_bits(X, "X", self.graph_.n_visible)
            x0 = Xb[np.arange(nc) % Xb.shape[0]]
            xs = [self.forward_.noise(x0, t, s, stream=200 + t) for t in range(self.T + 1)]
        else:
            traj = self.sample(nc, seed=s, return_steps=True)
            xs = traj[::-1]
        reports = []
        for t in tqdm(range(1, self.T + 1), disable=not progress, desc="mixing", unit="step", leave=False):
            S = self._reverse(t, pack_bits(xs[t], self.device), nc, w, None, _subseed(s, 3, t), keep=ns)
            stat = chain_statistic(S, self.graph_.visible)
            reports.append(mixing_report(stat, threshold=self.decorrelation_threshold, debias=True))
        return reports


class MEBM(_Base):
    """Monolithic energy-based model: one sparse Boltzmann machine over the
    graph (visible + latent nodes), trained with the DTM's gradient (positive
    phase: visible nodes clamped to data; negative phase: persistent chains),
    Adam and ACP, and sampled with ``K_total`` sweeps from random spins.
    Parameters as :class:`DTM` (``K_total`` replaces T and K)."""

    kind = "mebm"
    _center = "global"  # all chains sample one distribution
    _sweeps_param = "K_total"

    def __init__(self, graph: Optional[DTMGraph] = None, K_total: int = 120, *args: Any, **kwargs: Any
                 ) -> None:
        self.K_total = K_total
        super().__init__(graph, *args, **kwargs)

    def _check_params(self) -> None:
        _as_int(self.K_total, "K_total", 1)
        self._check_common()

    def _couplings(self) -> list:
        return [None]

    def _train_batch(self, x0: Any, epoch: int, batch: int, keep_rows: bool = False) -> None:
        step = self.steps_[0]
        C = x0.shape[0]
        pos = self._positive_phase(step, ("pos", C), _subseed(self._seed, 1, C), x0)
        P = self.batch_size
        eng = step.engine(("neg", P), P, _subseed(self._seed, 2, P))  # persistent chains
        neg = self._negative_phase(step, eng, np.zeros(0, np.int64), keep_rows)
        self._learn(step, pos, neg)

    @in_blas_threads
    def sample(self, n_samples: int = 100, K_total: Optional[int] = None, beta: Any = None, seed: Any = None
               ) -> np.ndarray:
        """``n_samples`` binary samples after ``K_total`` sweeps from random
        spins (``beta`` a pair: annealed over the sweeps). uint8 (n, n_visible)."""
        self._check_fitted()
        n = self._n_samples(n_samples, "n_samples")
        k, b, s = self._sampling_args(K_total, "K_total", beta, seed, 8)
        return unpack_bits(self._run(n, k, 0, b, s, 2, 100), n)

    def _run(self, n: int, k: int, keep: int, beta: Optional[tuple], seed: int, key: int, stream: int) -> Any:
        """``n`` chains from fair random spins (Philox (seed, stream)), ``k``
        sweeps under seed ``_subseed(seed, key)``; returns the packed visible
        rows, or with ``keep`` the states of ``keep`` further sweeps."""
        step = self.steps_[0]
        rows = [("all", random_words(step.N, n, seed, stream, self.device))]
        return step.draw(n, _subseed(seed, key), rows, k, keep, beta, "visible")

    @in_blas_threads
    def mixing(self, n_chains: int = 256, n_sweeps: int = 200, warmup: Optional[int] = None,
               seed: Any = 0) -> list:
        """Autocorrelation of the visible-spin projection over ``n_sweeps``
        consecutive sweeps after ``warmup`` (default K_total) sweeps from random
        spins; a one-element list of :class:`MixingReport`."""
        nc, ns, w = self._mixing_args(n_chains, n_sweeps, warmup)
        S = self._run(nc, w, ns, None, hr.as_seed(seed), 3, 101)
        return [mixing_report(chain_statistic(S, self.graph_.visible), threshold=self.decorrelation_threshold,
                              center="global")]
