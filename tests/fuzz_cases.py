"""Bad-input cases over the public entry points, run by tests/test_fuzz.py in
a child process: ``python tests/fuzz_cases.py [--only SUBSTRING]``.

Each case calls one entry point with every argument valid but one, which
takes a bad value (wrong type, NaN or infinity, an out-of-range or wrapping
integer, a wrong shape, dtype or layout, a read-only or aliased output, a
path that is not a regular file). A case passes when the call raises TypeError, ValueError (CheckpointError
included), OverflowError or FloatingPointError whose message names the
argument (``'name'``). The few values in the table that are in fact valid
(an optional argument left None, an array of another length where any length
is accepted; listed in ``MAY_RETURN``) may also return, with every
floating-point value they returned finite; any other case that returns has
accepted a bad value silently (a wrapped integer, a NaN mask taken as true).

Anything else fails: another exception type, an error that does not name the
argument, a non-finite result. A crash kills the child (its last "start"
line names the case) and a case running past its time limit is stopped by
faulthandler, which prints where it was.

Output: one JSON line per case, {"case": ..., "ok": bool, "what": ...}.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import tempfile
import warnings
from typing import Any, Callable, Iterable, List, Tuple

import numpy as np

CASE_SECONDS = 30.0
ALLOWED = (TypeError, ValueError, OverflowError, FloatingPointError, OSError)

# ---- bad values ---------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

# counts and sizes (non-negative ints whose huge values are refused, not run)
BAD_COUNTS = [-1, 2**63, 2**64, -(2**63) - 1, 1.5, "3", None, True, NAN, np.float64(2.0), [3]]
# indices / seeds / offsets (wrapping values)
BAD_U64 = [-1, 2**64, 2**65, 1.5, "7", None, NAN]
BAD_FLOATS = [NAN, INF, -INF, "x", None, [1.0, 2.0], 1j]
BAD_POSITIVE_FLOATS = BAD_FLOATS + [-1.0, 0.0]

# Values of the table that are valid for the argument they are given to: an
# optional argument left None, a shape any length of which is accepted. Every
# other case must raise.
MAY_RETURN = frozenset(
    [f"random.{fn} seed=None" for fn in ("uniform", "normal")]
    + [f"random.bernoulli p={lab}" for lab in ("ndim+1", "scalar", "empty", "short")]
    + [f"q_sample x0={lab}" for lab in ("ndim+1", "scalar", "empty", "short", "ndim-1", "wide")]
    + ["q_sample noise=none", "diffusion.sample steps=None"]
    + [f"{s}.add_noise noise=none" for s in ("DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler")]
    + ["GaussianDPM.bound x=short", "GaussianDPM.fit x=short", "BinomialDPM.bound x=short"]
    + ["BernoulliRBM.fit X=short", "BernoulliRBM.fit X=wide", "BernoulliRBM.transform X=short",
       "BernoulliRBM.score_samples X=short", "BernoulliRBM.gibbs v=short", "BernoulliRBM.free_energy v=short",
       "GaussianBernoulliRBM.transform X=short"]
    + ["ParallelTempering n_temperatures=None", "ParallelTempering n_temperatures=1"]
    + ["IsingLattice n_chains=None", "IsingLattice beta=[1.0, 2.0]", "IsingLattice seed=None"]
    + [f"{c} {rest}" for c in ("SparseIsing", "SparsePotts")
       for rest in ("colouring=[[0, 2, 4], [1, 3, 3, 5]]", "n_chains=None", "beta=[1.0, 2.0]")]
    + [f"{c}.set_parameters {a}=none" for c in ("SparseIsing", "SparsePotts")
       for a in ("bias", "edge_weights")]
    + [f"BitFlipForward.noise x0={lab}" for lab in ("ndim+1", "scalar", "empty", "short", "ndim-1", "wide")]
    + [f"{fn} x={lab}" for fn in ("autocorrelation", "integrated_time")
       for lab in ("short", "ndim-1", "wide")]
    + ["autocorrelation max_lag=None"]
    + [f"{fn} {a}=short" for fn in ("mmd", "energy_distance") for a in ("x", "y")]
    + ["Dense.forward x=empty", "Dense.forward x=short", "sinusoidal_embedding t=empty",
       "sinusoidal_embedding t=short"]
)


def bad_arrays(shape: Tuple[int, ...], dtype: Any = np.float64) -> List[Tuple[str, Any]]:
    """(label, value) pairs of bad arrays for an argument of ``shape``."""
    good = np.ones(shape, dtype=dtype)
    out = []
    if np.dtype(dtype).kind == "f":
        a = good.copy()
        a.flat[0] = np.nan
        out.append(("nan", a))
        a = good.copy()
        a.flat[-1] = np.inf
        out.append(("inf", a))
    out += [
        ("strings", np.full(shape, "a")),
        ("complex", good.astype(complex)),
        ("object", np.array([None] * good.size, dtype=object).reshape(shape) if good.size else np.empty(0, object)),
        ("ndim+1", good[None]),
        ("scalar", np.float64(1.0)),
        ("none", None),
        ("string", "abc"),
    ]
    if len(shape) >= 1 and shape[0] > 0:
        out.append(("empty", np.ones((0,) + shape[1:], dtype=dtype)))
        out.append(("short", good[:-1]))
    if len(shape) >= 2:
        out.append(("ndim-1", good.reshape(-1)))
        out.append(("wide", np.ones(shape[:-1] + (shape[-1] + 1,), dtype=dtype)))
    return out


# ---- fixtures -----------------------------------------------------------------


def ring(n: int = 6) -> np.ndarray:
    J = np.zeros((n, n))
    for i in range(n):
        J[i, (i + 1) % n] = J[(i + 1) % n, i] = 0.5
    return J


class Fixtures:
    def __init__(self) -> None:
        from heatbath.data import heartbeat, swiss_roll
        from heatbath.diffusion import BinomialDPM, GaussianDPM
        from heatbath.ebm import BernoulliRBM, GaussianBernoulliRBM

        rng = np.random.default_rng(0)
        self.X = (rng.random((64, 12)) < 0.4).astype(np.float64)
        self.rbm = BernoulliRBM(n_components=6, n_iter=2, batch_size=16, random_state=0).fit(self.X)
        self.grbm = GaussianBernoulliRBM(n_components=6, n_iter=2, batch_size=16, random_state=0).fit(
            rng.standard_normal((64, 12))
        )
        self.roll = swiss_roll(128, seed=0)
        self.gdpm = GaussianDPM(dim=2, T=6, net="rbf", hidden=8, grid=4, n_basis=3)
        self.bdpm = BinomialDPM(20, T=6, hidden=8, n_basis=3)
        self.beats = heartbeat(64, seed=0)
        from heatbath.dtm import DTM

        self.dtm = DTM(T=2, K=2, n_epochs=1, batch_size=32, side=6, progress=False).fit(
            (rng.random((64, 16)) < 0.4).astype(np.uint8))
        self.tmp = tempfile.mkdtemp(prefix="heatbath-fuzz-")
        self.gdpm_path = self.gdpm.save(os.path.join(self.tmp, "g.npz"))


# ---- the cases ----------------------------------------------------------------

Case = Tuple[str, Tuple[str, ...], Callable[[], Any]]


def _arg_cases(entry: str, names: Iterable[str], values: Iterable[Any], call: Callable[[Any], Any],
               labels: Iterable[str] = None) -> List[Case]:
    """One case per value: ``call(value)``, expected to name one of ``names``."""
    vals = list(values)
    labs = list(labels) if labels is not None else [repr(v)[:40] for v in vals]
    names = tuple(names)
    return [(f"{entry} {names[0]}={lab}", names, (lambda v=v: call(v))) for v, lab in zip(vals, labs)]


# bad shapes may be reported by the argument whose shape they fail to match
_SHAPE_LABELS = ("ndim+1", "ndim-1", "scalar", "empty", "short", "wide")


def _array_cases(entry: str, names: Iterable[str], shape: Tuple[int, ...], call: Callable[[Any], Any],
                 dtype: Any = np.float64, partners: Iterable[str] = ()) -> List[Case]:
    names, partners = tuple(names), tuple(partners)
    out: List[Case] = []
    for lab, v in bad_arrays(shape, dtype):
        ok_names = names + partners if lab in _SHAPE_LABELS else names
        out += [(f"{entry} {names[0]}={lab}", ok_names, (lambda v=v: call(v)))]
    return out


def build_cases(f: Fixtures) -> List[Case]:
    import heatbath
    from heatbath import random as hr
    from heatbath.checkpoint import load as ck_load
    from heatbath.data import heartbeat, swiss_roll
    from heatbath.data.idx import load_idx_dataset, read_idx, write_idx
    from heatbath.diffusion import (
        BinomialDPM,
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        GaussianDPM,
        posterior_mean_variance,
        q_sample,
        sample,
        sohl_dickstein_step,
    )
    from heatbath.dtm import DTM, BitFlipForward
    from heatbath.dtm.mixing import autocorrelation, integrated_time
    from heatbath.ebm import BernoulliRBM, IsingLattice, SparseIsing, SparsePotts
    from heatbath.ebm._units import bernoulli_units, gaussian_units
    from heatbath.ebm.graphs import (
        CSRGraph,
        blocks_from_colouring,
        couplings_to_graph,
        dtm_grid_edges,
        graph_from_edges,
    )
    from heatbath.ebm.tempering import ParallelTempering
    from heatbath.evaluation import energy_distance, mmd
    from heatbath.nn import Dense, TemporalReadout, sinusoidal_embedding
    from heatbath.schedules import NoiseSchedule, rescale_zero_terminal_snr

    C: List[Case] = []
    J = ring()
    g = couplings_to_graph(J)

    # -- threads and random numbers
    C += _arg_cases("set_num_threads", ["n"], [0, -1, 2**31 - 1, 2**31, 2**64, 1.5, "2", None, True],
                    heatbath.set_num_threads)
    C += _arg_cases("set_blas_threads", ["n"], [0, -1, 1025, 2**31, 2**64, 1.5, "2", True],
                    heatbath.set_blas_threads)
    for fn in ("uniform", "normal"):
        C += _arg_cases(f"random.{fn}", ["shape"], [-1, (2.5, 3), (-2, 3), "a", None, 2**63, (2**40, 2**40)],
                        lambda v, fn=fn: getattr(hr, fn)(v, 0))
        C += _arg_cases(f"random.{fn}", ["seed"], BAD_U64, lambda v, fn=fn: getattr(hr, fn)(4, v))
        C += _arg_cases(f"random.{fn}", ["offset"], BAD_U64 + [2**64 - 2], lambda v, fn=fn: getattr(hr, fn)(4, 0, v))
    C += _array_cases("random.bernoulli", ["p"], (4,), lambda v: hr.bernoulli(v, 0))
    C += _arg_cases("random.integers", ["high", "low"], [NAN, 1.5, 2**64 + 5, -1, None],
                    lambda v: hr.integers(0, v, 4, 0))

    # -- schedules and diffusion steps
    C += _array_cases("rescale_zero_terminal_snr", ["betas"], (10,), rescale_zero_terminal_snr)
    C += _arg_cases("rescale_zero_terminal_snr", ["betas"], [np.full(10, 0.0), np.full(10, 1.0), np.array([0.5])],
                    rescale_zero_terminal_snr)
    C += _arg_cases("NoiseSchedule", ["schedule", "num_train_timesteps"], ["nope", np.array([np.nan]), [2.0]],
                    lambda v: NoiseSchedule(v))
    C += _arg_cases("NoiseSchedule", ["num_train_timesteps"], BAD_COUNTS,
                    lambda v: NoiseSchedule("linear", num_train_timesteps=v))
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    C += _array_cases("q_sample", ["x0"], (4, 3), lambda v: q_sample(v, 5, "linear", 0), np.float32)
    C += _arg_cases("q_sample", ["t"], [-1, 1000, 2**63, 1.5, "3", None, NAN, np.array([1, 2])],
                    lambda v: q_sample(x, v, "linear", 0))
    C += _array_cases("q_sample", ["noise"], (4, 3), lambda v: q_sample(x, 5, "linear", noise=v), np.float32)
    C += _array_cases("posterior_mean_variance", ["x0"], (4, 3), lambda v: posterior_mean_variance(v, x, 5),
                      np.float32, partners=["x_t"])
    C += _array_cases("posterior_mean_variance", ["x_t"], (4, 3), lambda v: posterior_mean_variance(x, v, 5),
                      np.float32, partners=["x0"])
    C += _array_cases("sohl_dickstein_step", ["mu"], (4, 3), lambda v: sohl_dickstein_step(v, np.abs(x), 0),
                      np.float32, partners=["sigma2"])
    C += _array_cases("sohl_dickstein_step", ["sigma2"], (4, 3), lambda v: sohl_dickstein_step(x, v, 0),
                      np.float32, partners=["mu"])
    for S in (DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler):
        def stepper(kind: str, v: Any, S: Any = S) -> Any:
            s = S()
            s.set_timesteps(10)
            t = int(s.timesteps[0])
            args = {"model_output": x, "timestep": t, "sample": x}
            args[kind] = v
            return s.step(args["model_output"], args["timestep"], args["sample"]).prev_sample

        C += _array_cases(f"{S.__name__}.step", ["sample"], (4, 3), lambda v, st=stepper: st("sample", v),
                          np.float32, partners=["model_output"])
        C += _array_cases(f"{S.__name__}.step", ["model_output"], (4, 3),
                          lambda v, st=stepper: st("model_output", v), np.float32, partners=["sample"])
        C += _arg_cases(f"{S.__name__}.step", ["timestep"], [-1, 10**6, 2**64, 1.5, "3", None, NAN],
                        lambda v, st=stepper: st("timestep", v))
        C += _arg_cases(f"{S.__name__}.set_timesteps", ["num_inference_steps"], BAD_COUNTS + [0, 10**9],
                        lambda v, S=S: S().set_timesteps(v))
        C += _array_cases(f"{S.__name__}.add_noise", ["original_samples"], (4, 3),
                          lambda v, S=S: S().add_noise(v, x, 5), np.float32, partners=["noise"])
        C += _array_cases(f"{S.__name__}.add_noise", ["noise"], (4, 3), lambda v, S=S: S().add_noise(x, v, 5),
                          np.float32, partners=["original_samples"])

    def model(xt: Any, t: Any) -> Any:
        return np.zeros_like(xt)

    sched = DDPMScheduler()
    C += _arg_cases("diffusion.sample", ["shape"], [(2.5, 3), (-1, 3), "ab", None, (2**40, 2**40), 1.5, (True, 2)],
                    lambda v: sample(model, v, sched, steps=2, progress=False))
    C += _arg_cases("diffusion.sample", ["steps", "num_inference_steps"], BAD_COUNTS + [0],
                    lambda v: sample(model, (2, 3), sched, steps=v, progress=False))
    bad_masks = [np.full((2, 3), "a"), np.full((2, 3), np.nan), np.full((2, 3), 2.0), "yes"]
    C += _arg_cases("diffusion.sample", ["mask"], bad_masks,
                    lambda v: sample(model, (2, 3), sched, steps=2, progress=False, mask=v,
                                     known=np.zeros((2, 3))))
    C += _arg_cases("diffusion.sample", ["known"], [np.full((2, 3), np.nan), np.full((2, 3), "a")],
                    lambda v: sample(model, (2, 3), sched, steps=2, progress=False,
                                     mask=np.ones((2, 3), bool), known=v))
    C += _arg_cases("diffusion.sample", ["x_T"], [np.full((2, 3), np.inf), np.full((2, 3), "a")],
                    lambda v: sample(model, None, sched, steps=2, progress=False, x_T=v))

    # -- the 2015 models
    d = f.gdpm
    t = np.full(4, 3)
    xr = f.roll[:4]
    C += _array_cases("GaussianDPM.q_sample", ["x0"], (4, 2), lambda v: d.q_sample(v, t, xr),
                      partners=["noise", "t"])
    C += _arg_cases("GaussianDPM.q_sample", ["t"], [np.full(4, 0), np.full(4, -1), np.full(4, 7), np.full(4, 2.5),
                                                    np.full(3, 2), None, "a"], lambda v: d.q_sample(xr, v, xr))
    C += _arg_cases("GaussianDPM.reverse_kernel", ["t"], [np.full(4, 0), np.full(4, -1), np.full(4, 99)],
                    lambda v: d.reverse_kernel(xr, v))
    C += _array_cases("GaussianDPM.reverse_kernel", ["x_t"], (4, 2), lambda v: d.reverse_kernel(v, t),
                      partners=["t"])
    C += _array_cases("GaussianDPM.bound", ["x"], (4, 2), lambda v: d.bound(v))
    C += _arg_cases("GaussianDPM.sample", ["n"], BAD_COUNTS + [0], lambda v: d.sample(v))
    C += _arg_cases("GaussianDPM.sample", ["mask"], [np.full((3, 2), "a"), np.full((3, 2), np.nan), "yes"],
                    lambda v: d.sample(3, mask=v, known=np.zeros((3, 2))))
    C += _arg_cases("GaussianDPM.fit", ["steps"], BAD_COUNTS, lambda v: d.fit(f.roll, steps=v, progress=False))
    C += _arg_cases("GaussianDPM.fit", ["batch_size"], BAD_COUNTS + [0],
                    lambda v: GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).fit(f.roll, steps=1, batch_size=v,
                                                                                  progress=False))
    C += _array_cases("GaussianDPM.fit", ["x"], (32, 2),
                      lambda v: GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).fit(v, steps=1, progress=False))
    for name in ("dim", "T", "hidden", "grid", "n_basis"):
        C += _arg_cases("GaussianDPM()", [name], [0, -1, 1.5, "3", None, 2**63],
                        lambda v, name=name: GaussianDPM(**{"dim": 2, "T": 6, "hidden": 4, "grid": 3, "n_basis": 2,
                                                            name: v}))
    for name, vals in (("T", [2**21]), ("dim", [2**17]), ("hidden", [2**15]), ("grid", [1, 2**11]),
                       ("seed", [v for v in BAD_U64 if v is not None])):
        C += _arg_cases("GaussianDPM()", [name], vals,
                        lambda v, name=name: GaussianDPM(**{"dim": 2, "T": 6, "hidden": 4, "grid": 3,
                                                            "n_basis": 2, name: v}))
    C += _arg_cases("GaussianDPM()", ["grid", "dim"], [12], lambda v: GaussianDPM(v, 6))  # 16**12 centres
    for name, vals in (("dim", [0, 2**17, 1.5]), ("T", [1, 2**21]), ("hidden", [0, 2**15]),
                       ("seed", [v for v in BAD_U64 if v is not None])):
        C += _arg_cases("BinomialDPM()", [name], vals,
                        lambda v, name=name: BinomialDPM(**{"dim": 4, "T": 6, "hidden": 4, "n_basis": 2,
                                                            name: v}))
    C += _arg_cases("BinomialDPM.sample", ["n"], BAD_COUNTS + [0, 2**41], lambda v: f.bdpm.sample(v))
    C += _arg_cases("BinomialDPM.sample", ["mask"], [np.full((3, 20), np.nan), np.full((3, 20), "a")],
                    lambda v: f.bdpm.sample(3, mask=v, known=np.zeros((3, 20))))
    C += _arg_cases("GaussianDPM.sample", ["n"], [2**41], lambda v: d.sample(v))
    C += _arg_cases("GaussianDPM.fit", ["batch_size"], [2**41],
                    lambda v: GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).fit(
                        f.roll, steps=1, batch_size=v, progress=False))
    C += _arg_cases("GaussianDPM()", ["step1_beta"], BAD_FLOATS + [0.0, 1.0, -0.1],
                    lambda v: GaussianDPM(2, 6, step1_beta=v, hidden=4, grid=3, n_basis=2))
    b = f.bdpm
    xb = f.beats[:4].astype(float)
    C += _arg_cases("BinomialDPM.reverse_rate", ["t"], [np.full(4, 0), np.full(4, -1), np.full(4, 7)],
                    lambda v: b.reverse_rate(xb, v))
    C += _array_cases("BinomialDPM.reverse_rate", ["x_t"], (4, 20), lambda v: b.reverse_rate(v, np.full(4, 2)),
                      partners=["t"])
    C += _array_cases("BinomialDPM.bound", ["x"], (4, 20), lambda v: b.bound(v))

    # -- RBMs
    r = f.rbm
    X = f.X
    for name, vals in (("n_components", BAD_COUNTS + [0]), ("batch_size", BAD_COUNTS + [0]),
                       ("n_iter", BAD_COUNTS + [0]), ("k", BAD_COUNTS + [0]),
                       ("learning_rate", BAD_POSITIVE_FLOATS + [1e308]), ("momentum", BAD_FLOATS + [1.0, -0.5]),
                       ("weight_decay", BAD_FLOATS + [-1.0]), ("n_temperatures", BAD_COUNTS + [0])):
        C += _arg_cases("BernoulliRBM.fit", [name], vals,
                        lambda v, name=name: BernoulliRBM(**{"n_components": 4, "n_iter": 1, "batch_size": 16,
                                                             "random_state": 0, name: v}).fit(X))
    C += _array_cases("BernoulliRBM.fit", ["X"], (64, 12), lambda v: BernoulliRBM(n_components=4, n_iter=1).fit(v))
    C += _array_cases("BernoulliRBM.transform", ["X"], (4, 12), r.transform)
    C += _array_cases("BernoulliRBM.score_samples", ["X"], (4, 12), r.score_samples)
    C += _array_cases("BernoulliRBM.gibbs", ["v"], (4, 12), r.gibbs)
    C += _array_cases("BernoulliRBM.free_energy", ["v"], (4, 12), r.free_energy)
    C += _arg_cases("BernoulliRBM.gibbs", ["k"], BAD_COUNTS + [0], lambda v: r.gibbs(X[:2], k=v))
    C += _arg_cases("BernoulliRBM.sample", ["k"], BAD_COUNTS + [0], lambda v: r.sample(2, k=v))
    C += _arg_cases("BernoulliRBM.sample", ["n_samples"], BAD_COUNTS + [0], lambda v: r.sample(v, k=1))
    C += _array_cases("GaussianBernoulliRBM.transform", ["X"], (4, 12), f.grbm.transform)
    C += _arg_cases("ParallelTempering", ["n_temperatures"], BAD_COUNTS + [0, 1],
                    lambda v: ParallelTempering(r, n_chains=8, n_temperatures=v))
    C += _arg_cases("ParallelTempering", ["n_chains"], BAD_COUNTS + [0],
                    lambda v: ParallelTempering(r, n_chains=v, n_temperatures=3))
    C += _arg_cases("BernoulliRBM.sample", ["n_samples"], [2**41], lambda v: r.sample(v, k=1))
    for name in ("n_components", "batch_size", "n_temperatures"):
        C += _arg_cases("BernoulliRBM.fit", [name], [2**41],
                        lambda v, name=name: BernoulliRBM(**{"n_components": 4, "n_iter": 1, "batch_size": 16,
                                                             name: v}).fit(X))
    C += _arg_cases("BernoulliRBM.log_partition", ["n_runs"], [2**41],
                    lambda v: r.log_partition("ais", n_runs=v, betas=20))
    C += _arg_cases("ParallelTempering", ["n_chains"], [2**41], lambda v: ParallelTempering(r, n_chains=v))
    C += _arg_cases("ParallelTempering", ["n_temperatures"], [2**41],
                    lambda v: ParallelTempering(r, n_chains=2, n_temperatures=v))
    C += _arg_cases("ParallelTempering.run", ["n_sweeps"], BAD_COUNTS,
                    lambda v: ParallelTempering(r, n_chains=8, n_temperatures=3).run(v))
    C += _arg_cases("BernoulliRBM.log_partition", ["n_runs"], BAD_COUNTS + [0],
                    lambda v: r.log_partition("ais", n_runs=v, betas=20))
    C += _arg_cases("BernoulliRBM.log_partition", ["betas"], [-1, 0, 1.5, "x", np.array([0.0, np.nan, 1.0]),
                                                              np.array([0.5, 0.2, 1.0])],
                    lambda v: r.log_partition("ais", n_runs=4, betas=v))
    xx = np.zeros((3, 4))
    bb = np.zeros(4)
    C += _array_cases("bernoulli_units", ["x"], (3, 4), lambda v: bernoulli_units(v, bb, np.zeros((3, 4)), seed=0,
                                                                                 stream=0),
                      partners=["sample", "bias"])
    C += _array_cases("bernoulli_units", ["bias"], (4,), lambda v: bernoulli_units(xx, v, np.zeros((3, 4)), seed=0,
                                                                                  stream=0))
    C += _arg_cases("bernoulli_units", ["sample"], [[[0.0] * 4] * 3, np.zeros((3, 4), np.float32), np.zeros((4, 3)),
                                                    np.zeros((3, 4))[::-1], _readonly(np.zeros((3, 4))), xx],
                    lambda v: bernoulli_units(xx, bb, v, seed=0, stream=0))
    buf = np.zeros((3, 5))
    C += _arg_cases("bernoulli_units", ["prob"], [buf[:, 1:]], lambda v: bernoulli_units(buf[:, :4], bb, None, v,
                                                                                          seed=0, stream=0))
    C += _arg_cases("bernoulli_units", ["seed"], BAD_U64, lambda v: bernoulli_units(xx, bb, np.zeros((3, 4)), seed=v,
                                                                                     stream=0))
    C += _arg_cases("bernoulli_units", ["offset"], BAD_U64 + [2**64 - 2],
                    lambda v: bernoulli_units(xx, bb, np.zeros((3, 4)), seed=0, stream=0, offset=v))
    C += _arg_cases("bernoulli_units", ["scale"], BAD_FLOATS + [np.array([1.0, np.nan, 1.0])],
                    lambda v: bernoulli_units(xx, bb, np.zeros((3, 4)), seed=0, stream=0, scale=v))
    C += _arg_cases("gaussian_units", ["sample"], [[[0.0] * 4] * 3, _readonly(np.zeros((3, 4)))],
                    lambda v: gaussian_units(xx, bb, 1.0, v, seed=0, stream=0))
    C += _arg_cases("gaussian_units", ["sigma"], BAD_FLOATS + [np.array([1.0, np.nan, 1.0, 1.0])],
                    lambda v: gaussian_units(xx, bb, v, np.zeros((3, 4)), seed=0, stream=0))
    C += _array_cases("gaussian_units", ["x"], (3, 4), lambda v: gaussian_units(v, bb, 1.0, np.zeros((3, 4)),
                                                                               seed=0, stream=0),
                      partners=["sample", "bias"])

    # -- Ising lattices
    C += _arg_cases("IsingLattice", ["shape"], [(3, 4), (0, 4), (4, 66), (2**21, 2), (2**63, 2), "a", None, (4.0, 4),
                                                (4,), (2, 2, 2, 2)], lambda v: IsingLattice(v, n_chains=2))
    C += _arg_cases("IsingLattice", ["n_chains"], BAD_COUNTS + [0, 2**41], lambda v: IsingLattice((4, 4), n_chains=v))
    C += _arg_cases("IsingLattice", ["beta"], BAD_FLOATS + [np.array([0.4, np.nan])],
                    lambda v: IsingLattice((4, 4), beta=v, n_chains=2))
    for name in ("J", "h"):
        C += _arg_cases("IsingLattice", [name], BAD_FLOATS,
                        lambda v, name=name: IsingLattice((4, 4), n_chains=2, **{name: v}))
    C += _arg_cases("IsingLattice", ["chain_offset"], BAD_COUNTS + [2**48],
                    lambda v: IsingLattice((4, 4), n_chains=2, chain_offset=v))
    C += _arg_cases("IsingLattice", ["seed"], BAD_U64, lambda v: IsingLattice((4, 4), n_chains=2, seed=v))
    lat = IsingLattice((4, 4), n_chains=2, seed=0)
    C += _arg_cases("IsingLattice.sweep", ["n"], BAD_COUNTS, lat.sweep)
    C += _arg_cases("IsingLattice.sample", ["n_sweeps"], BAD_COUNTS + [0], lambda v: lat.sample(v))
    C += _arg_cases("IsingLattice.sample", ["thin"], BAD_COUNTS + [0], lambda v: lat.sample(4, thin=v))
    C += _arg_cases("IsingLattice.sample", ["warmup"], BAD_COUNTS, lambda v: lat.sample(4, warmup=v))

    def set_spins(v: Any) -> None:
        lat.spins = v

    C += _arg_cases("IsingLattice.spins", ["spins"], [np.zeros((2, 4, 4), int), np.full((2, 4, 4), 2),
                                                      np.ones((2, 4, 4)), np.ones((1, 4, 4), int), "a", None],
                    set_spins)

    # -- sparse graphs
    col_neg = g.col.copy()
    col_neg[col_neg == 1] = -5
    col_big = g.col.copy()
    col_big[0] = 6
    row_bad = g.row.copy()
    row_bad[2] = row_bad[4]
    w_nan = g.weights.copy()
    w_nan[0] = np.nan
    w_asym = g.weights.copy()
    w_asym[0] = 3.0
    graphs = [CSRGraph(g.row, col_neg, g.weights, 6), CSRGraph(g.row, col_big, g.weights, 6),
              CSRGraph(row_bad, g.col, g.weights, 6), CSRGraph(g.row, g.col, w_nan, 6),
              CSRGraph(g.row, g.col, w_asym, 6), CSRGraph(g.row, g.col, g.weights, 7),
              CSRGraph(g.row, g.col, g.weights, -1), CSRGraph(g.row, g.col.astype(float), g.weights, 6),
              CSRGraph(g.row, g.col, g.weights[:-1], 6), CSRGraph(g.row[:-1], g.col, g.weights, 6)]
    labels = ["col<0", "col>=n", "row decreasing", "w nan", "asymmetric", "n+1", "n=-1", "float col", "short w",
              "short row"]
    for cls, extra in ((SparseIsing, {}), (SparsePotts, {"K": 3})):
        C += _arg_cases(f"{cls.__name__}", ["couplings"], graphs,
                        lambda v, cls=cls, extra=extra: cls(v, n_chains=64, colouring=[0, 1, 0, 1, 0, 1],
                                                            **extra).sweep(2), labels)
        C += _arg_cases(f"{cls.__name__}", ["couplings"], [J * 1e39, J * np.nan, J + np.eye(6), np.triu(J), J[:5],
                                                           np.full((6, 6), "a"), None],
                        lambda v, cls=cls, extra=extra: cls(v, n_chains=4, **extra))
        C += _arg_cases(f"{cls.__name__}", ["colouring"],
                        [[0, 1, 0, 1, 0, 0], [0, -1, 0, 1, 0, 1], [0, 1.5, 0, 1, 0, 1], [0, 1], "bad",
                         [[0, 2, 4], [1, 3, 9]], [[0, 2, 4], [1, 3, 3, 5]], [[0, 2], [1, 3, 5]], np.ones(6, bool),
                         [0, 2**63, 0, 1, 0, 1], 3],
                        lambda v, cls=cls, extra=extra: cls(J, n_chains=4, colouring=v, **extra))
        C += _arg_cases(f"{cls.__name__}", ["n_chains"], BAD_COUNTS + [0, 2**41],
                        lambda v, cls=cls, extra=extra: cls(J, n_chains=v, **extra))
        C += _arg_cases(f"{cls.__name__}", ["beta"], BAD_FLOATS + [np.array([0.4, np.nan]), 1e39],
                        lambda v, cls=cls, extra=extra: cls(J, beta=v, n_chains=2, **extra))
        C += _arg_cases(f"{cls.__name__}", ["chain_offset"], BAD_COUNTS + [255, 2**49],
                        lambda v, cls=cls, extra=extra: cls(J, n_chains=2, chain_offset=v, **extra))
        C += _arg_cases(f"{cls.__name__}", ["storage", "device"], ["csc", None, 3],
                        lambda v, cls=cls, extra=extra: cls(J, n_chains=2, storage=v, **extra))
        m = cls(J, n_chains=40, seed=0, **extra)
        bshape = (6, 3) if extra else (6,)
        C += _arg_cases(f"{cls.__name__}.sweep", ["n"], BAD_COUNTS, m.sweep)
        C += _arg_cases(f"{cls.__name__}.sample", ["n_samples"], BAD_COUNTS + [0], lambda v, m=m: m.sample(v))
        C += _arg_cases(f"{cls.__name__}.sample", ["nodes"], [[-1], [6], [1.5], "bad", [[2**40]]],
                        lambda v, m=m: m.sample(2, nodes=v))
        C += _arg_cases(f"{cls.__name__}.sample", ["pairs"], [[[0, 6]], [[-1, 0]], [0, 1], [[0.5, 1]], "bad"],
                        lambda v, m=m: m.sample(2, pairs=v))
        C += _arg_cases(f"{cls.__name__}.clamp", ["nodes"], [[-1], [6], [2**63], [1.5]],
                        lambda v, m=m: m.clamp(v, [1]))
        C += _arg_cases(f"{cls.__name__}.clamp", ["values"], [[7], [np.nan], ["a"], [[1, 1]]],
                        lambda v, m=m: m.clamp([0], v))
        C += _arg_cases(f"{cls.__name__}.unclamp", ["nodes"], [[-1], [6], [2**64], [1.5], "x"], m.unclamp)
        C += _array_cases(f"{cls.__name__}.set_parameters", ["bias"], bshape,
                          lambda v, m=m: m.set_parameters(bias=v))
        C += _arg_cases(f"{cls.__name__}.set_parameters", ["bias"], [np.full(bshape, 1e39)],
                        lambda v, m=m: m.set_parameters(bias=v))
        C += _array_cases(f"{cls.__name__}.set_parameters", ["edge_weights"], (6,),
                          lambda v, m=m: m.set_parameters(edge_weights=v))

        def set_state(v: Any, m: Any = m) -> None:
            m.state = v

        C += _arg_cases(f"{cls.__name__}.state", ["state"], [np.full((40, 6), 7), np.full((40, 6), -3),
                                                             np.ones((40, 5), int), np.full((40, 6), np.nan), "a"],
                        set_state)
    C += _arg_cases("SparseIsing", ["n_chains"], [2**39], lambda v: SparseIsing(J, n_chains=v))
    C += _arg_cases("SparseIsing.sample", ["n_samples"], [2**41],
                    lambda v: SparseIsing(J, n_chains=64).sample(v, keep_states=True))
    si = SparseIsing(J, n_chains=8, seed=0)
    C += _arg_cases("SparseIsing.fit", ["data"], [np.full((4, 6), 2), np.full((4, 6), np.nan), np.ones((4, 5)),
                                                  np.ones((0, 6)), "a"], lambda v: si.fit(v, n_iter=1))
    C += _arg_cases("SparseIsing.fit", ["lr"], BAD_FLOATS + [-1.0, 1e308],
                    lambda v: SparseIsing(J, n_chains=8, seed=0).fit(np.ones((4, 6)), n_iter=2, lr=v))
    C += _arg_cases("SparseIsing.fit", ["visible"], [[-1], [7], [0, 0], [1.5]],
                    lambda v: si.fit(np.ones((4, len(v) if isinstance(v, list) else 1)), visible=v, n_iter=1))
    C += _arg_cases("blocks_from_colouring", ["colours"], [[0, -1], [0.5, 1], "ab", [[0, 1]]],
                    blocks_from_colouring)
    C += _arg_cases("blocks_from_colouring", ["skip"], [np.array(["a", "b"]), np.array([np.nan, 1.0]), [True]],
                    lambda v: blocks_from_colouring([0, 1], v))
    C += _arg_cases("graph_from_edges", ["edges"], [([0], [6], [1.0]), ([0], [0], [1.0]), ([-1], [2], [1.0]),
                                                    ([0, 0], [1, 1], [1.0, 1.0]), ([0], [1], [np.nan]),
                                                    ([0], [1], [1e39]), ([0], [1], [1.0, 2.0])],
                    lambda v: graph_from_edges(6, *v))
    C += _arg_cases("dtm_grid_edges", ["side"], [2**63, -(2**63), 0, 3, 1.5, "a", None, 2**20],
                    lambda v: dtm_grid_edges(v))
    C += _arg_cases("dtm_grid_edges", ["offsets"], [[(1, 1)], [("a", 1)], [(1,)], 5],
                    lambda v: dtm_grid_edges(6, v))

    # -- distributed wrappers, run here without a cluster
    from heatbath import distributed as dist

    C += _arg_cases("distributed.shards", ["n_chains"], [0, 2**41, 1.5, None], lambda v: dist.shards(v, 4))
    C += _arg_cases("distributed.shards", ["chunk"], [0, 1.5], lambda v: dist.shards(10, v))
    C += _arg_cases("distributed.shards", ["chunk"], [2**21], lambda v: dist.shards(v, 1))
    C += _arg_cases("distributed.gibbs_sparse", ["n_chains"], [0, 2**41, "a"],
                    lambda v: dist.gibbs_sparse(None, SparseIsing(J, n_chains=4), v, 2))
    C += _arg_cases("distributed.gibbs_lattice", ["n_chains"], [0, 2**41],
                    lambda v: dist.gibbs_lattice(None, IsingLattice((4, 4), n_chains=2), v, 2))
    C += _arg_cases("distributed.rbm_ais", ["n_runs"], [0, 2**41], lambda v: dist.rbm_ais(None, r, v, seed=0))
    C += _arg_cases("distributed.sparse_ais", ["n_chains"], [0, 2**41],
                    lambda v: dist.sparse_ais(None, SparseIsing(J, n_chains=4), v, betas=4))
    C += _arg_cases("distributed.sparse_ais", ["betas"], [np.array([0.0, np.nan, 1.0]), 1.5, "x"],
                    lambda v: dist.sparse_ais(None, SparseIsing(J, n_chains=4), 4, betas=v))
    C += _arg_cases("distributed.sparse_ais", ["beta"], [v for v in BAD_FLOATS if v is not None] + [1e39],
                    lambda v: dist.sparse_ais(None, SparseIsing(J, n_chains=4), 4, betas=4, beta=v))
    C += _arg_cases("distributed.sparse_ais", ["stream"], BAD_U64 + [[1]],
                    lambda v: dist.sparse_ais(None, SparseIsing(J, n_chains=4), 4, betas=4, stream=v))
    C += _arg_cases("distributed.parallel_tempering", ["betas"],
                    [[0.5, np.nan], [0.5, 1e39], [1.0, 0.5], "x"],
                    lambda v: dist.parallel_tempering(None, SparseIsing(J, n_chains=4), 4, v, 2))
    C += _arg_cases("distributed.parallel_tempering", ["stream"], BAD_U64,
                    lambda v: dist.parallel_tempering(None, SparseIsing(J, n_chains=4), 4, [0.5, 1.0], 2,
                                                      stream=v))
    C += _arg_cases("distributed.sample_dpm", ["n"], [0, 2**41], lambda v: dist.sample_dpm(None, d, v))
    lat4 = IsingLattice((4, 4), n_chains=2)
    for name, vals in (("n_sweeps", BAD_COUNTS + [0, 2**40]), ("warmup", BAD_COUNTS), ("thin", BAD_COUNTS + [0]),
                       ("chunk", [0, -1, 1.5, "2"]), ("retries", [-1, 1.5, 2**63]), ("reduce", ["x", None])):
        C += _arg_cases("distributed.gibbs_lattice", [name], vals,
                        lambda v, name=name: dist.gibbs_lattice(None, lat4, 4, **{"n_sweeps": 2, name: v}))
    si4 = SparseIsing(J, n_chains=4)
    for name, vals in (("n_samples", BAD_COUNTS + [0, 2**41]), ("nodes", [[-1], [6], "x"]),
                       ("pairs", [[[0, 6]], [0, 1]]), ("observers", ["x", [1]])):
        C += _arg_cases("distributed.gibbs_sparse", [name], vals,
                        lambda v, name=name: dist.gibbs_sparse(None, si4, 4, **{"n_samples": 2, name: v}))
    C += _arg_cases("distributed.rbm_ais", ["seed"], [v for v in BAD_U64 if v is not None],  # None: entropy
                    lambda v: dist.rbm_ais(None, r, 4, seed=v))
    C += _arg_cases("distributed.rbm_ais", ["betas"], [1.5, "x", np.array([0.0, np.nan, 1.0])],
                    lambda v: dist.rbm_ais(None, r, 4, seed=0, betas=v))
    C += _arg_cases("distributed.rbm_ais", ["block"], [0, -1, 1.5], lambda v: dist.rbm_ais(None, r, 4, seed=0,
                                                                                          block=v))
    from heatbath.ebm.graph_annealing import graph_ais, graph_parallel_tempering

    C += _arg_cases("graph_ais", ["betas"], [np.array([0.0, np.nan, 1.0]), 1.5, "x", 1],
                    lambda v: graph_ais(SparseIsing(J, n_chains=4), v))
    C += _arg_cases("graph_ais", ["sweeps_per_step"], BAD_COUNTS + [0],
                    lambda v: graph_ais(SparseIsing(J, n_chains=4), 4, sweeps_per_step=v))
    C += _arg_cases("graph_ais", ["beta"], [v for v in BAD_FLOATS if v is not None] + [1e39],
                    lambda v: graph_ais(SparseIsing(J, n_chains=4), 4, beta=v))
    C += _arg_cases("graph_ais", ["stream"], [v for v in BAD_U64 if v is not None],
                    lambda v: graph_ais(SparseIsing(J, n_chains=4), 4, stream=v))
    C += _arg_cases("graph_parallel_tempering", ["betas"], [[0.5, np.nan], [0.5, 1e39], [1.0, 0.5], "x"],
                    lambda v: graph_parallel_tempering(SparseIsing(J, n_chains=4), v, 2))
    C += _arg_cases("graph_parallel_tempering", ["n_samples"], BAD_COUNTS + [0],
                    lambda v: graph_parallel_tempering(SparseIsing(J, n_chains=4), [0.5, 1.0], v))
    C += _arg_cases("graph_parallel_tempering", ["stream"], [v for v in BAD_U64 if v is not None],
                    lambda v: graph_parallel_tempering(SparseIsing(J, n_chains=4), [0.5, 1.0], 2, stream=v))
    C += _arg_cases("distributed.sample_dpm", ["mask"], [np.full((3, 2), np.nan), np.full((3, 2), "a")],
                    lambda v: dist.sample_dpm(None, d, 3, mask=v, known=np.zeros((3, 2))))

    # -- DTM pieces
    dtm = f.dtm
    C += _arg_cases("DTM.sample", ["n_samples"], BAD_COUNTS + [0, 2**41], lambda v: dtm.sample(v))
    C += _arg_cases("DTM.sample", ["K"], [v for v in BAD_COUNTS if v is not None] + [0],
                    lambda v: dtm.sample(2, K=v))
    C += _arg_cases("DTM.sample_step", ["t"], [0, 3, -1, 2**63, 1.5, None],
                    lambda v: dtm.sample_step(v, np.zeros((2, 16), np.uint8)))
    C += _arg_cases("DTM.sample_step", ["x_t"], [np.full((2, 16), 2), np.full((2, 16), np.nan),
                                                 np.ones((2, 15)), "a"], lambda v: dtm.sample_step(1, v))
    C += _arg_cases("DTM.mixing", ["n_chains"], BAD_COUNTS + [0, 2**41], lambda v: dtm.mixing(n_chains=v))
    C += _arg_cases("DTM.mixing", ["n_sweeps"], [1, 2**41, -1, 1.5],
                    lambda v: dtm.mixing(n_chains=4, n_sweeps=v))
    C += _arg_cases("DTM", ["T"], [0, 2**21, 1.5, None], lambda v: DTM(T=v))
    C += _arg_cases("BitFlipForward", ["T"], [2**21], lambda v: BitFlipForward(v))
    fw = BitFlipForward(4)
    C += _array_cases("BitFlipForward.noise", ["x0"], (3, 5), lambda v: fw.noise(v, 2, 0))
    C += _arg_cases("BitFlipForward.noise", ["x0"], [np.full((3, 5), 2.0), np.full((3, 5), 0.5)],
                    lambda v: fw.noise(v, 2, 0))
    C += _arg_cases("BitFlipForward.noise", ["t"], [-1, 5, 2**63, 1.5, None], lambda v: fw.noise(np.ones(3), v, 0))
    C += _arg_cases("BitFlipForward", ["T"], BAD_COUNTS + [0], lambda v: BitFlipForward(v))
    C += _arg_cases("BitFlipForward", ["rate"], BAD_POSITIVE_FLOATS, lambda v: BitFlipForward(4, rate=v))
    series = np.random.default_rng(0).standard_normal((50, 3))
    C += _array_cases("autocorrelation", ["x"], (50, 3), autocorrelation)
    C += _arg_cases("autocorrelation", ["max_lag"], BAD_COUNTS + [50], lambda v: autocorrelation(series, v))
    C += _array_cases("integrated_time", ["x"], (50, 3), integrated_time)
    C += _arg_cases("integrated_time", ["c"], BAD_POSITIVE_FLOATS, lambda v: integrated_time(series, v))
    C += _arg_cases("integrated_time", ["rho"], [np.array([1.0, np.nan, 0.2]), np.ones((2, 2)), "a"],
                    lambda v: integrated_time(None, rho=v))

    # -- evaluation
    a = np.random.default_rng(0).standard_normal((20, 3))
    for fn in (mmd, energy_distance):
        C += _array_cases(f"{fn.__name__}", ["x", "samples"], (20, 3), lambda v, fn=fn: fn(v, a),
                          partners=["y", "reference"])
        C += _array_cases(f"{fn.__name__}", ["y", "reference"], (20, 3), lambda v, fn=fn: fn(a, v),
                          partners=["x", "samples"])

    # -- data
    C += _arg_cases("swiss_roll", ["n"], BAD_COUNTS + [2**41], lambda v: swiss_roll(v))
    C += _arg_cases("swiss_roll", ["noise"], BAD_FLOATS + [-1.0], lambda v: swiss_roll(4, noise=v))
    C += _arg_cases("swiss_roll", ["seed"], [-1, 1.5, "a", NAN], lambda v: swiss_roll(4, seed=v))
    C += _arg_cases("heartbeat", ["length"], BAD_COUNTS + [0, 2**63], lambda v: heartbeat(4, length=v))
    C += _arg_cases("heartbeat", ["n"], BAD_COUNTS + [2**63], lambda v: heartbeat(v))
    C += _arg_cases("heartbeat", ["period"], BAD_COUNTS + [0, 21], lambda v: heartbeat(4, period=v))
    fifo = os.path.join(f.tmp, "fifo")
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    bomb = os.path.join(f.tmp, "bomb.gz")
    _write_bomb(bomb)
    bad_labels = os.path.join(f.tmp, "labels.idx")
    write_idx(bad_labels, np.array([1e300, 2.0, 1.0]))
    images = os.path.join(f.tmp, "images.idx")
    write_idx(images, np.zeros((3, 2, 2), np.uint8))
    junk = os.path.join(f.tmp, "junk.idx")
    with open(junk, "wb") as fh:
        fh.write(b"\0\0\x08\x03" + np.array([10**9, 10**9, 10**9], ">u4").tobytes())
    C += _arg_cases("read_idx", ["path"], [fifo, bomb, f.tmp, os.path.join(f.tmp, "missing"), junk, b"x", 3, None],
                    read_idx)
    C += _arg_cases("load_idx_dataset", ["labels_path"], [bad_labels, fifo],
                    lambda v: load_idx_dataset(images, v))
    C += _arg_cases("write_idx", ["array"], [np.array(["a"]), None, np.zeros(3, complex)],
                    lambda v: write_idx(os.path.join(f.tmp, "out.idx"), v))

    # -- checkpoints
    C += _arg_cases("GaussianDPM.load", ["path"], [fifo, f.tmp, bomb, junk, os.path.join(f.tmp, "missing"), 3, None],
                    lambda v: GaussianDPM.load(v))
    C += _arg_cases("checkpoint.load", ["path"], [f.gdpm_path], lambda v: ck_load(v, "BinomialDPM"))

    # -- nn
    dense = Dense(3, 2, np.random.default_rng(0))
    C += _array_cases("Dense.forward", ["x"], (4, 3), dense.forward)
    C += _arg_cases("sinusoidal_embedding", ["dim"], [-1, 0, 2**63, 1.5, "a", None],
                    lambda v: sinusoidal_embedding(np.arange(3), v))
    C += _array_cases("sinusoidal_embedding", ["t"], (3,), lambda v: sinusoidal_embedding(v, 4))
    from heatbath import nn
    from heatbath.data import split
    from heatbath.dtm import make_graph
    from heatbath.dtm.mixing import chain_statistic
    from heatbath.ebm import ais as ais_mod
    from heatbath.schedules import make_betas

    for name, vals in (("beta_start", [NAN, -1.0, 2.0, "x", None]), ("beta_end", [NAN, INF, 1.5]),
                       ("max_beta", [NAN, 2.0, -0.5])):
        kind = "squaredcos_cap_v2" if name == "max_beta" else "linear"
        C += _arg_cases("make_betas", [name], vals,
                        lambda v, name=name, kind=kind: make_betas(kind, 10, **{name: v}))
    C += _arg_cases("split", ["seed"], [-1, 1.5, "a", NAN], lambda v: split(np.arange(10.0), 0.2, v))
    C += _arg_cases("base_rate_biases", ["data"],
                    [np.full((3, 2), NAN), np.full((3, 2), 2.0), np.ones((0, 2))], ais_mod.base_rate_biases)
    C += _arg_cases("base_rate_biases", ["pseudocount"], BAD_POSITIVE_FLOATS,
                    lambda v: ais_mod.base_rate_biases(np.ones((3, 2)), v))
    ident = lambda x, b: x  # noqa: E731
    C += _arg_cases("ais", ["betas"], [np.array([0.0, NAN, 1.0]), "x", [0.5]],
                    lambda v: ais_mod.ais(np.zeros(4), v, ident, 0.0, log_f=lambda x, b: x * b))
    C += _arg_cases("ais", ["log_z0"], BAD_FLOATS,
                    lambda v: ais_mod.ais(np.zeros(4), np.linspace(0, 1, 3), ident, v,
                                          log_f=lambda x, b: x * b))
    C += _arg_cases("ais", ["log_f"], [lambda x, b: x + NAN, lambda x, b: x + b * INF],
                    lambda v: ais_mod.ais(np.zeros(4), np.linspace(0, 1, 3), ident, 0.0, log_f=v))
    C += _arg_cases("reverse_ais", ["log_ratio"], [lambda x, b0, b1: x + NAN],
                    lambda v: ais_mod.reverse_ais(np.zeros(4), np.linspace(0, 1, 3), ident, 0.0, log_ratio=v))
    C += _arg_cases("linear_betas", ["n"], BAD_COUNTS + [1, 2**41], ais_mod.linear_betas)
    C += _arg_cases("chain_statistic", ["states"], [np.full((2, 3, 4), NAN), np.full((2, 3, 4), "a"),
                                                    np.ones((3, 4))], chain_statistic)
    C += _arg_cases("chain_statistic", ["nodes"], [[-1], [4], [1.5], "x"],
                    lambda v: chain_statistic(np.ones((2, 3, 4), np.int8), nodes=v))
    C += _arg_cases("bump_basis", ["n_steps"], [0, -1, 1.5, 2**41, None], lambda v: nn.bump_basis(v, 3))
    C += _arg_cases("Dense", ["n_in"], [0, -1, 1.5, 2**41, None],
                    lambda v: Dense(v, 2, np.random.default_rng(0)))
    C += _arg_cases("Adam", ["lr"], BAD_POSITIVE_FLOATS, lambda v: nn.Adam(dense, lr=v))
    C += _arg_cases("Adam", ["betas"], [(1.0, 0.9), (NAN, 0.9), (0.9,), "ab", None],
                    lambda v: nn.Adam(dense, betas=v))
    C += _arg_cases("make_graph", ["edges"], [[2**64], [1.5], [2**32 + 1], [-1], ["a"]],
                    lambda v: make_graph(6, [0], v, [0]))
    C += _arg_cases("make_graph", ["n_nodes"], [0, 2**40, 1.5, None], lambda v: make_graph(v, [0], [1], [0]))
    readout = TemporalReadout(3, 2, 5, 2, np.random.default_rng(0))
    C += _array_cases("TemporalReadout.forward", ["z"], (4, 3), lambda v: readout.forward(v, np.arange(4)),
                      partners=["t"])
    C += _arg_cases("NoiseSchedule", ["num_train_timesteps"], [2**25],
                    lambda v: NoiseSchedule("linear", num_train_timesteps=v))
    return C


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _write_bomb(path: str) -> None:
    """A small gzip whose IDX header declares 3 GB."""
    import gzip

    with gzip.open(path, "wb") as g:
        g.write(b"\0\0\x08\x01" + np.array([3_000_000_000], ">u4").tobytes())
        g.write(b"\0" * (1 << 20))


# ---- running --------------------------------------------------------------------


def _floats(obj: Any, depth: int = 0) -> Iterable[np.ndarray]:
    """The floating-point arrays (and floats) in a result."""
    if depth > 4 or obj is None:
        return
    if isinstance(obj, (float, np.floating)):
        yield np.asarray(obj)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _floats(o, depth + 1)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _floats(o, depth + 1)
    elif hasattr(obj, "__dataclass_fields__") or hasattr(obj, "_fields"):
        for k in getattr(obj, "__dataclass_fields__", None) or obj._fields:
            yield from _floats(getattr(obj, k), depth + 1)
    elif hasattr(obj, "prev_sample"):
        yield from _floats(obj.prev_sample, depth + 1)


def run_case(names: Tuple[str, ...], fn: Callable[[], Any], may_return: bool = True) -> Tuple[bool, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                res = fn()
    except ALLOWED as exc:
        msg = str(exc)
        if any(f"'{n}'" in msg for n in names):
            return True, f"{type(exc).__name__}: {msg[:160]}"
        return False, f"{type(exc).__name__} not naming {names}: {msg[:300]}"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - any other type is what this test looks for
        return False, f"{type(exc).__name__}: {str(exc)[:300]}"
    for a in _floats(res):
        if not np.all(np.isfinite(a)):
            return False, "returned non-finite values"
    if not may_return:
        return False, f"returned: a bad value accepted without an error naming {names}"
    return True, "returned"


def main(argv: List[str]) -> int:
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    faulthandler.enable()
    import heatbath

    threads, blas = heatbath.get_num_threads(), heatbath.get_blas_threads()
    f = Fixtures()
    cases = build_cases(f)
    failed = 0
    for label, names, fn in cases:
        if only and only not in label:
            continue
        print(json.dumps({"start": label}), flush=True)
        faulthandler.dump_traceback_later(CASE_SECONDS, exit=True)
        ok, what = run_case(names, fn, label in MAY_RETURN)
        faulthandler.cancel_dump_traceback_later()
        heatbath.set_num_threads(threads)
        heatbath.set_blas_threads(blas)
        failed += not ok
        print(json.dumps({"case": label, "ok": ok, "what": what}), flush=True)
    done = len(cases)
    unknown = sorted(MAY_RETURN - {label for label, _, _ in cases})
    if unknown:  # a stale entry: a renamed case, or one removed
        print(json.dumps({"case": "MAY_RETURN", "ok": False, "what": f"labels of no case: {unknown[:5]}"}))
        failed, done = failed + 1, done + 1
    print(json.dumps({"done": done, "failed": failed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
