"""Bad-input audit: every concrete bad call of the hardening requirements, each
run in a fresh child process with a time limit, and classified.

    python bench/audit_hardening.py [--only SUBSTRING] [--timeout S] [--json FILE]

Outcomes of a case:

* ``error``        a clear exception (TypeError, ValueError, OverflowError,
                   FloatingPointError, CheckpointError) whose message names the
                   expected argument in quotes;
* ``unclear``      one of those types, but not naming the argument (or quoting
                   pybind11's "incompatible function arguments" or a bare
                   numpy message);
* ``other-exc``    another exception type (IndexError, MemoryError, ...);
* ``correct``      the call returned and the result passed the case's check;
* ``wrong``        the call returned a result that fails the check (NaN, a
                   wrong shape, a wrapped integer, a lost output);
* ``crash``        the child died on a signal (or without reporting);
* ``hang``         the child ran past the time limit and was killed;
* ``interrupted``  (Ctrl-C cases) SIGINT sent 1 s after the long call began
                   raised KeyboardInterrupt within 2 s, and the object was
                   usable afterwards; ``slow-interrupt`` / ``unusable`` /
                   ``not-interrupted`` otherwise.

A case passes when its outcome is one it allows (most allow ``error`` only;
some allow ``correct``). Exit status 1 when any case fails.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

OK_TYPES = ("TypeError", "ValueError", "OverflowError", "FloatingPointError")
INTERRUPT_AFTER = 1.0  # seconds after the long call began
INTERRUPT_WITHIN = 2.0  # seconds for KeyboardInterrupt to arrive

PRELUDE = r'''
import gc, io, json, os, signal, sys, tempfile, threading, time, warnings
import numpy as np
signal.signal(signal.SIGINT, signal.default_int_handler)
warnings.simplefilter("ignore")
np.seterr(all="ignore")

def _emit(**kw):
    sys.stdout.write("AUDIT " + json.dumps(kw) + "\n")
    sys.stdout.flush()

def returned(ok, what=""):
    _emit(kind="returned", ok=bool(ok), what=str(what)[:300])

def ready():
    _emit(kind="ready")

def finite(*arrays):
    return all(bool(np.all(np.isfinite(np.asarray(a, dtype=float)))) for a in arrays)

def ring(n=6, w=0.5):
    J = np.zeros((n, n))
    for i in range(n):
        J[i, (i + 1) % n] = J[(i + 1) % n, i] = w
    return J

def bits(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float64)

def fitted_rbm(nv=12, nh=6):
    from heatbath.ebm import BernoulliRBM
    return BernoulliRBM(n_components=nh, n_iter=2, batch_size=16, random_state=0).fit(bits(64, nv))

def fitted_dtm():
    from heatbath.dtm import DTM
    X = bits(64, 16).astype(np.uint8)
    return DTM(T=2, K=2, n_epochs=1, batch_size=32, progress=False, side=6).fit(X), X

def interrupted_at():
    _emit(kind="interrupted")

def rewrite_npz(src, dst, config=None, arrays=None, meta_raw=None, drop=()):
    with np.load(src) as z:
        arrs = {k: z[k] for k in z.files}
    meta = json.loads(arrs["__meta__"].tobytes())
    if config:
        meta["config"].update(config)
    if arrays:
        arrs.update(arrays(arrs))
    for k in drop:
        arrs.pop(k)
    raw = meta_raw if meta_raw is not None else json.dumps(meta)
    arrs["__meta__"] = np.frombuffer(raw.encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrs)
    with open(dst, "wb") as f:
        f.write(buf.getvalue())
    return dst

TMP = tempfile.mkdtemp(prefix="hb-audit-")
'''

EPILOGUE = r'''
try:
    _case()
except KeyboardInterrupt:
    _emit(kind="raised", type="KeyboardInterrupt", mro=["KeyboardInterrupt"], msg="")
except BaseException as exc:
    _emit(kind="raised", type=type(exc).__name__, mro=[c.__name__ for c in type(exc).__mro__],
          msg=str(exc)[:500])
'''


@dataclass
class Case:
    name: str  # short label
    group: str  # where the issue lists it
    body: str  # defines nothing; run as the body of _case()
    names: Tuple[str, ...] = ()  # argument names an error may name
    allow: Tuple[str, ...] = ("error",)
    interrupt: bool = False
    require: Optional[str] = None  # an exception class that must be in the MRO (CheckpointError)
    timeout: Optional[float] = None


@dataclass
class Result:
    case: Case
    outcome: str
    detail: str
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome in self.case.allow


def C(name, group, body, names=(), allow=("error",), **kw) -> Case:
    return Case(name, group, textwrap.dedent(body).strip("\n"), tuple(names), tuple(allow), **kw)


# ---- the cases --------------------------------------------------------------------------------------


def interrupt_body(setup: str, call: str, after: str) -> str:
    """A long call interrupted by the parent's SIGINT; ``after`` checks the
    object and calls returned(ok, what)."""
    return (
        textwrap.dedent(setup).strip("\n")
        + "\nready()\ntry:\n    "
        + call
        + '\n    returned(False, "finished: not interrupted")\n'
        + "except KeyboardInterrupt:\n    interrupted_at()\n"
        + textwrap.dedent(after).strip("\n")
    )


def cases() -> List[Case]:
    L: List[Case] = []
    A = L.append

    # ---- crashes and aborts
    A(C("negative col in a user CSRGraph (SparsePotts)", "crash", """
        from heatbath.ebm import SparsePotts
        from heatbath.ebm.graphs import CSRGraph, couplings_to_graph
        g = couplings_to_graph(ring())
        col = g.col.copy(); col[col == 1] = -5
        m = SparsePotts(CSRGraph(g.row, col, g.weights, 6), K=3, n_chains=4096, colouring=[0, 1, 0, 1, 0, 1])
        m.sweep(5)
        returned(False, "accepted a graph with negative neighbours")
    """, ["couplings"]))
    A(C("negative col in a user CSRGraph (SparseIsing)", "crash", """
        from heatbath.ebm import SparseIsing
        from heatbath.ebm.graphs import CSRGraph, couplings_to_graph
        g = couplings_to_graph(ring())
        col = g.col.copy(); col[col == 1] = -5
        SparseIsing(CSRGraph(g.row, col, g.weights, 6), n_chains=4096, colouring=[0, 1, 0, 1, 0, 1]).sweep(5)
        returned(False, "accepted a graph with negative neighbours")
    """, ["couplings"]))
    A(C("negative col straight into the binding (_core.sparse_potts_sweeps)", "crash", """
        from heatbath import _core
        from heatbath.ebm import SparsePotts
        m = SparsePotts(ring(), K=3, n_chains=4096, seed=0)
        k = m._k
        col = k["col"].copy(); col[0] = -5
        _core.sparse_potts_sweeps(m._s.reshape(-1), 4096, 3, k["row"], col, k["w"], k["bias"], m._beta_dev,
                                  k["order"], k["block_ptr"], 0, 0, 5)
        returned(False, "binding accepted a negative neighbour")
    """, ["col"]))
    for n in ("2**31 - 1", "2**31"):
        A(C(f"set_num_threads({n}) then a kernel", "crash", f"""
            import heatbath
            from heatbath.ebm import SparseIsing
            heatbath.set_num_threads({n})
            SparseIsing(ring(), n_chains=4096, seed=0).sweep(2)
            returned(False, "accepted; threads now %d" % heatbath.get_num_threads())
        """, ["n"]))
    for n in ("2**31", "2**64"):
        A(C(f"set_blas_threads({n}) then a BLAS loop", "crash", f"""
            import heatbath
            heatbath.set_blas_threads({n})
            fitted_rbm()
            returned(False, "accepted; BLAS threads now %d" % heatbath.get_blas_threads())
        """, ["n"]))
    A(C("bernoulli_units: NaN pre-activation (base level)", "crash", """
        from heatbath import _backend
        from heatbath.ebm.rbm import bernoulli_units
        x = np.zeros((4, 300)); x[1, 7] = np.nan
        s, p = np.empty_like(x), np.empty_like(x)
        with _backend.cpu_level_as(_backend.cpu_levels()[0]):
            bernoulli_units(x, np.zeros(300), s, p, seed=0, stream=0)
        returned(finite(p), "prob finite: %s" % finite(p))
    """, ["x"]))

    # ---- hangs: Ctrl-C
    A(C("IsingLattice.sweep(10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import IsingLattice
        m = IsingLattice((64, 64), n_chains=64, seed=5)
    """, "m.sweep(10**12)", """
        done = m.sweeps_done
        m.sweep(1)
        ref = IsingLattice((64, 64), n_chains=64, seed=5).sweep(done + 1)
        returned(done > 0 and np.array_equal(m.spins, ref.spins),
                 "sweeps_done=%d, continues like a fresh run" % done)
    """), interrupt=True, allow=("interrupted",)))
    A(C("SparseIsing.sweep(10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import SparseIsing
        m = SparseIsing(ring(32), n_chains=4096, seed=5)
    """, "m.sweep(10**12)", """
        done = m.sweeps_done
        m.sweep(1)
        ref = SparseIsing(ring(32), n_chains=4096, seed=5).sweep(done + 1)
        returned(done > 0 and np.array_equal(m.state, ref.state), "sweeps_done=%d" % done)
    """), interrupt=True, allow=("interrupted",)))
    A(C("SparsePotts.sweep(10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import SparsePotts
        m = SparsePotts(ring(32), K=4, n_chains=4096, seed=5)
    """, "m.sweep(10**12)", """
        done = m.sweeps_done
        m.sweep(1)
        ref = SparsePotts(ring(32), K=4, n_chains=4096, seed=5).sweep(done + 1)
        returned(done > 0 and np.array_equal(m.state, ref.state), "sweeps_done=%d" % done)
    """), interrupt=True, allow=("interrupted",)))
    A(C("BernoulliRBM(n_iter=2**63).fit", "interrupt", """
        from heatbath.ebm import BernoulliRBM
        BernoulliRBM(n_components=8, n_iter=2**63, batch_size=16, random_state=0).fit(bits(256, 32))
        returned(False, "finished")
    """, ["n_iter"]))
    A(C("BernoulliRBM(n_iter=10**12).fit under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import BernoulliRBM
        r = BernoulliRBM(n_components=8, n_iter=10**12, batch_size=16, random_state=0)
        X = bits(256, 32)
    """, "r.fit(X)", """
        h = r.transform(X[:4])
        returned(hasattr(r, "components_") and finite(r.components_, h), "components finite, transform works")
    """), interrupt=True, allow=("interrupted",)))
    for call in ("r.gibbs(bits(4, 12), k=2**64)", "r.sample(4, k=2**64)"):
        A(C(call.replace("bits(4, 12)", "v"), "interrupt", f"""
            r = fitted_rbm()
            {call}
            returned(False, "finished")
        """, ["k"]))
    for call in ("r.gibbs(bits(64, 12), k=10**12)", "r.sample(64, k=10**12)"):
        A(C(call.replace("bits(64, 12)", "v") + " under Ctrl-C", "interrupt", interrupt_body("""
            r = fitted_rbm()
        """, call, """
            returned(finite(r.gibbs(bits(4, 12), k=2)), "gibbs afterwards finite")
        """), interrupt=True, allow=("interrupted",)))
    A(C("ParallelTempering.run(10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import ParallelTempering
        r = fitted_rbm()
        pt = ParallelTempering(r, n_chains=256, n_temperatures=8)
    """, "pt.run(10**12)", """
        pt.run(1)
        s = pt.samples()
        returned(finite(s) and s.shape[0] == 256, "samples shape %s" % (s.shape,))
    """), interrupt=True, allow=("interrupted",)))
    A(C("ParallelTempering.run(2**63)", "interrupt", """
        from heatbath.ebm import ParallelTempering
        ParallelTempering(fitted_rbm(), n_chains=8, n_temperatures=4).run(2**63)
        returned(False, "finished")
    """, ["n_sweeps"]))
    A(C("SparseIsing.sample(10**12) (records no memory holds)", "interrupt", """
        from heatbath.ebm import SparseIsing
        SparseIsing(ring(32), n_chains=4096, seed=5).sample(10**12)
        returned(False, "finished")
    """, ["n_samples"]))
    A(C("SparseIsing.sample(10**9) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import SparseIsing
        m = SparseIsing(ring(32), n_chains=64, seed=5)
    """, "m.sample(10**9)", """
        r = m.sample(3)
        returned(finite(r.energy), "sample(3) afterwards finite")
    """), interrupt=True, allow=("interrupted",)))
    A(C("SparseIsing.sample(10, thin=10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import SparseIsing
        m = SparseIsing(ring(32), n_chains=4096, seed=5)
    """, "m.sample(10, thin=10**12)", """
        returned(finite(m.sample(3).energy), "sample(3) afterwards finite")
    """), interrupt=True, allow=("interrupted",)))
    A(C("SparseIsing.fit(n_iter=10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.ebm import SparseIsing
        m = SparseIsing(ring(16), n_chains=512, seed=5)
        data = (bits(64, 16) > 0).astype(float)
    """, "m.fit(data, n_iter=10**12)", """
        returned(finite(m.couplings, m.bias) and finite(m.sample(2).energy), "parameters finite")
    """), interrupt=True, allow=("interrupted",)))
    A(C("SparseIsing.fit(n_iter=2**63)", "interrupt", """
        from heatbath.ebm import SparseIsing
        SparseIsing(ring(16), n_chains=64, seed=5).fit(bits(8, 16), n_iter=2**63)
        returned(False, "finished")
    """, ["n_iter"]))
    A(C("GaussianDPM.fit(steps=10**12) under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.diffusion import GaussianDPM
        from heatbath.data import swiss_roll
        d = GaussianDPM(2, 10, hidden=16, grid=4, n_basis=3)
        x = swiss_roll(512, seed=0)
    """, "d.fit(x, steps=10**12, progress=False)", """
        s = d.sample(8)
        returned(finite(s) and s.shape == (8, 2), "sample afterwards %s" % (s.shape,))
    """), interrupt=True, allow=("interrupted",)))
    A(C("DTM.sample(K=10**12) under Ctrl-C", "interrupt", interrupt_body("""
        m, X = fitted_dtm()
    """, "m.sample(64, K=10**12)", """
        s = m.sample(4)
        returned(s.shape == (4, 16) and set(np.unique(s)) <= {0, 1}, "sample afterwards %s" % (s.shape,))
    """), interrupt=True, allow=("interrupted",)))
    A(C("DTM.sample_step(n_sweeps=10**12) under Ctrl-C", "interrupt", interrupt_body("""
        m, X = fitted_dtm()
    """, "m.sample_step(1, X[:64], n_sweeps=10**12)", """
        s = m.sample_step(1, X[:4])
        returned(s.shape == (4, 16), "sample_step afterwards %s" % (s.shape,))
    """), interrupt=True, allow=("interrupted",)))
    A(C("DTM(n_epochs=10**12).fit under Ctrl-C", "interrupt", interrupt_body("""
        from heatbath.dtm import DTM
        X = bits(256, 16).astype(np.uint8)
        m = DTM(T=2, K=2, n_epochs=10**12, batch_size=32, progress=False, side=6)
    """, "m.fit(X)", """
        ok = True
        try:
            s = m.sample(4); what = "sample afterwards %s" % (s.shape,)
        except Exception as e:  # an unfitted model may refuse clearly
            what = "after interrupt: %s: %s" % (type(e).__name__, e); ok = "fit" in str(e)
        returned(ok, what)
    """), interrupt=True, allow=("interrupted",)))

    # ---- hangs: work nobody asked for
    A(C("SparseIsing(J, colouring=[0, 2**30, 0, 1, 0, 1])", "hang", """
        from heatbath.ebm import SparseIsing
        t0 = time.time()
        m = SparseIsing(ring(), n_chains=64, colouring=[0, 2**30, 0, 1, 0, 1], seed=1).sweep(3)
        ref = SparseIsing(ring(), n_chains=64, colouring=[0, 2, 0, 1, 0, 1], seed=1).sweep(3)
        returned(np.array_equal(m.state, ref.state) and time.time() - t0 < 5,
                 "equals colouring [0,2,0,1,0,1]; %.2f s" % (time.time() - t0))
    """, ["colouring"], allow=("correct", "error")))
    A(C("blocks_from_colouring([0, 2**40, 0])", "hang", """
        from heatbath.ebm.graphs import blocks_from_colouring
        order, ptr = blocks_from_colouring([0, 2**40, 0])
        returned(order.tolist() == [0, 2, 1] and ptr.tolist() == [0, 2, 3], "%s %s" % (order, ptr))
    """, ["colours"], allow=("correct", "error")))
    A(C("read_idx on a FIFO with no writer", "hang", """
        from heatbath.data import read_idx
        p = os.path.join(TMP, "fifo"); os.mkfifo(p)
        read_idx(p)
        returned(False, "read something")
    """, ["path"]))
    A(C("load_idx_dataset with a FIFO as labels", "hang", """
        from heatbath.data import load_idx_dataset, write_idx
        p = os.path.join(TMP, "fifo"); os.mkfifo(p)
        im = write_idx(os.path.join(TMP, "i.idx"), np.zeros((3, 2, 2), np.uint8))
        load_idx_dataset(im, p)
        returned(False, "read something")
    """, ["labels_path", "path"]))
    A(C("read_idx: small gzip declaring 3 GB", "hang", """
        import gzip, resource
        from heatbath.data import read_idx
        p = os.path.join(TMP, "bomb.gz")
        with gzip.open(p, "wb") as g:
            g.write(b"\\0\\0\\x08\\x01" + np.array([3_000_000_000], ">u4").tobytes())
            g.write(b"\\0" * (1 << 26))
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        t0 = time.time()
        try:
            read_idx(p)
        finally:
            sys.stderr.write("read_idx took %.2f s\\n" % (time.time() - t0))
        returned(False, "read 3 GB")
    """, ["path"]))
    A(C("read_idx: plain file declaring more than it holds", "hang", """
        from heatbath.data import read_idx
        p = os.path.join(TMP, "junk.idx")
        with open(p, "wb") as fh:
            fh.write(b"\\0\\0\\x08\\x03" + np.array([10**9, 10**9, 10**9], ">u4").tobytes())
        read_idx(p)
        returned(False, "read")
    """, ["path"]))

    # ---- silent: NaN / inf
    nan_calls = [
        ("DDPMScheduler.step NaN sample", "sample", """
            from heatbath.diffusion import DDPMScheduler
            s = DDPMScheduler(); s.set_timesteps(10)
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[1, 2] = np.nan
            out = s.step(x, int(s.timesteps[0]), bad).prev_sample
        """),
        ("DDPMScheduler.step inf model_output", "model_output", """
            from heatbath.diffusion import DDPMScheduler
            s = DDPMScheduler(); s.set_timesteps(10)
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[0, 0] = np.inf
            out = s.step(bad, int(s.timesteps[0]), x).prev_sample
        """),
        ("DDIMScheduler.step NaN sample", "sample", """
            from heatbath.diffusion import DDIMScheduler
            s = DDIMScheduler(); s.set_timesteps(10)
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[1, 2] = np.nan
            out = s.step(x, int(s.timesteps[0]), bad).prev_sample
        """),
        ("DPMSolverMultistepScheduler.step NaN sample", "sample", """
            from heatbath.diffusion import DPMSolverMultistepScheduler
            s = DPMSolverMultistepScheduler(); s.set_timesteps(10)
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[1, 2] = np.nan
            out = s.step(x, int(s.timesteps[0]), bad).prev_sample
        """),
        ("q_sample NaN x0", "x0", """
            from heatbath.diffusion import q_sample
            x = np.zeros((2, 3), np.float32); x[0, 1] = np.nan
            out = q_sample(x, 5, "linear", 0)
        """),
        ("q_sample inf noise", "noise", """
            from heatbath.diffusion import q_sample
            x = np.zeros((2, 3), np.float32); n = x.copy(); n[0, 1] = -np.inf
            out = q_sample(x, 5, "linear", noise=n)
        """),
        ("posterior_mean_variance NaN x0", "x0", """
            from heatbath.diffusion import posterior_mean_variance
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[0, 0] = np.nan
            out = posterior_mean_variance(bad, x, 5)
        """),
        ("posterior_mean_variance inf x_t", "x_t", """
            from heatbath.diffusion import posterior_mean_variance
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[0, 0] = np.inf
            out = posterior_mean_variance(x, bad, 5)
        """),
        ("DDPMScheduler.add_noise NaN original_samples", "original_samples", """
            from heatbath.diffusion import DDPMScheduler
            x = np.zeros((2, 3), np.float32); bad = x.copy(); bad[0, 0] = np.nan
            out = DDPMScheduler().add_noise(bad, x, 5)
        """),
        ("sohl_dickstein_step NaN mu", "mu", """
            from heatbath.diffusion import sohl_dickstein_step
            x = np.ones((2, 3), np.float32); bad = x.copy(); bad[0, 0] = np.nan
            out = sohl_dickstein_step(bad, x, 0)
        """),
        ("rescale_zero_terminal_snr NaN", "betas", """
            from heatbath.schedules import rescale_zero_terminal_snr
            b = np.linspace(1e-4, 0.02, 10); b[3] = np.nan
            out = rescale_zero_terminal_snr(b)
        """),
        ("rescale_zero_terminal_snr inf", "betas", """
            from heatbath.schedules import rescale_zero_terminal_snr
            b = np.linspace(1e-4, 0.02, 10); b[3] = np.inf
            out = rescale_zero_terminal_snr(b)
        """),
        ("bernoulli_units NaN x", "x", """
            from heatbath.ebm.rbm import bernoulli_units
            x = np.zeros((3, 4)); x[0, 0] = np.nan
            s, p = np.empty_like(x), np.empty_like(x)
            bernoulli_units(x, np.zeros(4), s, p, seed=0, stream=0); out = p
        """),
        ("bernoulli_units float32 inf x", "x", """
            from heatbath.ebm.rbm import bernoulli_units
            x = np.zeros((3, 40), np.float32); x[2, 39] = np.inf
            s, p = np.empty_like(x), np.empty_like(x)
            bernoulli_units(x, np.zeros(40, np.float32), s, p, seed=0, stream=0); out = p
        """),
        ("bernoulli_units NaN bias", "bias", """
            from heatbath.ebm.rbm import bernoulli_units
            x = np.zeros((3, 4)); b = np.zeros(4); b[1] = np.nan
            s, p = np.empty_like(x), np.empty_like(x)
            bernoulli_units(x, b, s, p, seed=0, stream=0); out = p
        """),
        ("gaussian_units NaN x", "x", """
            from heatbath.ebm.rbm import gaussian_units
            x = np.zeros((3, 4)); x[0, 0] = np.nan
            s, m = np.empty_like(x), np.empty_like(x)
            gaussian_units(x, np.zeros(4), 1.0, s, m, seed=0, stream=0); out = (s, m)
        """),
        ("gaussian_units NaN sigma", "sigma", """
            from heatbath.ebm.rbm import gaussian_units
            x = np.zeros((3, 4))
            s = np.empty_like(x)
            gaussian_units(x, np.zeros(4), float("nan"), s, seed=0, stream=0); out = s
        """),
    ]
    for layer, make in [
        ("Dense", "nn.Dense(3, 2, rng)"), ("Tanh", "nn.Tanh()"), ("Sigmoid", "nn.Sigmoid()"),
        ("ReLU", "nn.ReLU()"), ("LeakyReLU", "nn.LeakyReLU()"), ("Softplus", "nn.Softplus()"),
        ("NormalizedRBF", "nn.NormalizedRBF(np.zeros((4, 3)), 1.0)"),
        ("Sequential", "nn.Sequential(nn.Dense(3, 2, rng), nn.Tanh())"),
        ("MLP", "nn.MLP([3, 4, 2], rng=rng)"),
    ]:
        nan_calls.append((f"nn.{layer}.forward NaN", "x", f"""
            from heatbath import nn
            rng = np.random.default_rng(0)
            x = np.zeros((4, 3)); x[2, 1] = np.nan
            out = {make}.forward(x)
        """))
    nan_calls += [
        ("nn.TemporalReadout.forward NaN z", "z", """
            from heatbath import nn
            x = np.zeros((4, 3)); x[2, 1] = np.nan
            out = nn.TemporalReadout(3, 2, 5, 2, np.random.default_rng(0)).forward(x, np.arange(4))
        """),
        ("nn.RBFNet.forward NaN", "x", """
            from heatbath import nn
            x = np.zeros((4, 2)); x[2, 1] = np.inf
            out = nn.RBFNet(2, 2, 5, grid=3, n_hidden=4, n_basis=2, rng=np.random.default_rng(0)).forward(
                x, np.arange(4))
        """),
        ("nn.TimeMLP.forward NaN", "x", """
            from heatbath import nn
            x = np.zeros((4, 2)); x[2, 1] = np.nan
            out = nn.TimeMLP(2, 2, 5, hidden=(4,), rng=np.random.default_rng(0)).forward(x, np.arange(4))
        """),
        ("nn.sinusoidal_embedding NaN t", "t", """
            from heatbath.nn import sinusoidal_embedding
            out = sinusoidal_embedding(np.array([1.0, np.nan]), 4)
        """),
        ("BitFlipForward.noise NaN x0", "x0", """
            from heatbath.dtm import BitFlipForward
            x = np.ones((3, 5)); x[0, 0] = np.nan
            out = BitFlipForward(4).noise(x, 2, 0)
            out = out.astype(float) if set(np.unique(out)) <= {0, 1} else np.full(1, np.nan)
        """),
        ("mixing.integrated_time NaN", "x", """
            from heatbath.dtm.mixing import integrated_time
            x = np.random.default_rng(0).standard_normal((50, 3)); x[4, 1] = np.nan
            out = integrated_time(x)
        """),
        ("mixing.autocorrelation NaN", "x", """
            from heatbath.dtm.mixing import autocorrelation
            x = np.random.default_rng(0).standard_normal((50, 3)); x[4, 1] = np.nan
            out = autocorrelation(x)
        """),
        ("evaluation.mmd NaN", "x", """
            from heatbath.evaluation import mmd
            a = np.random.default_rng(0).standard_normal((20, 3)); b = a.copy(); b[0, 0] = np.nan
            out = mmd(b, a)
        """),
        ("GaussianDPM.q_sample NaN x0", "x0", """
            from heatbath.diffusion import GaussianDPM
            d = GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2)
            x = np.zeros((4, 2)); x[0, 0] = np.nan
            out = d.q_sample(x, np.full(4, 3), np.zeros((4, 2)))
        """),
        ("GaussianDPM.fit NaN data", "x", """
            from heatbath.diffusion import GaussianDPM
            x = np.zeros((32, 2)); x[3, 1] = np.nan
            d = GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).fit(x, steps=2, progress=False)
            out = d.sample(4)
        """),
        ("BernoulliRBM.transform NaN X", "X", """
            r = fitted_rbm(); X = bits(4, 12); X[0, 0] = np.nan
            out = r.transform(X)
        """),
    ]
    for label, name, body in nan_calls:
        A(C(label, "nan", textwrap.dedent(body) + "\nouts = out if isinstance(out, tuple) else (out,)\n"
            "returned(finite(*outs), 'result finite: %s' % finite(*outs))", [name]))

    for cls, extra, shape in (("SparseIsing", "", "6"), ("SparsePotts", ", K=3", "(6, 3)")):
        for v in ("np.nan", "np.inf", "1e39"):
            A(C(f"{cls}.set_parameters(bias={v})", "nan", f"""
                from heatbath.ebm import {cls}
                m = {cls}(ring(), n_chains=64, seed=0{extra})
                m.set_parameters(bias=np.full({shape}, {v}))
                m.sweep(2)
                returned(finite(m.bias), "bias finite: %s" % finite(m.bias))
            """, ["bias"]))
        A(C(f"{cls}.set_parameters(edge_weights=nan)", "nan", f"""
            from heatbath.ebm import {cls}
            m = {cls}(ring(), n_chains=64, seed=0{extra})
            w = np.full(6, 0.5); w[2] = np.nan
            m.set_parameters(edge_weights=w)
            returned(finite(m.couplings), "couplings finite: %s" % finite(m.couplings))
        """, ["edge_weights"]))
        A(C(f"{cls}(J * 1e39) float64 couplings beyond float32", "nan", f"""
            from heatbath.ebm import {cls}
            m = {cls}(ring() * 1e39, n_chains=64, seed=0{extra})
            returned(finite(m.couplings), "couplings finite")
        """, ["couplings"]))
        A(C(f"{cls}(bias=1e39) float64 bias beyond float32", "nan", f"""
            from heatbath.ebm import {cls}
            m = {cls}(ring(), bias=np.full({shape}, 1e39), n_chains=64, seed=0{extra})
            returned(finite(m.bias), "bias finite")
        """, ["bias"]))
        A(C(f"{cls}(beta=1e39)", "nan", f"""
            from heatbath.ebm import {cls}
            m = {cls}(ring(), beta=1e39, n_chains=64, seed=0{extra})
            returned(finite(m.beta), "beta finite")
        """, ["beta"]))
    A(C("IsingLattice(J=1e39)", "nan", """
        from heatbath.ebm import IsingLattice
        m = IsingLattice((8, 8), J=1e39, n_chains=2, seed=0).sweep(2)
        returned(finite(m.energy()), "energy finite")
    """, ["J"], allow=("error", "correct")))
    A(C("IsingLattice(beta=1e39)", "nan", """
        from heatbath.ebm import IsingLattice
        m = IsingLattice((8, 8), beta=1e39, n_chains=2, seed=0).sweep(2)
        returned(finite(m.energy()), "energy finite")
    """, ["beta"], allow=("error", "correct")))
    A(C("graph_from_edges(w=1e39)", "nan", """
        from heatbath.ebm.graphs import graph_from_edges
        g = graph_from_edges(6, [0], [1], [1e39])
        returned(finite(g.weights.astype(np.float32)), "weights finite in float32")
    """, ["edges", "w"]))
    A(C("BernoulliRBM(learning_rate=1e308).fit", "nan", """
        from heatbath.ebm import BernoulliRBM
        r = BernoulliRBM(n_components=4, learning_rate=1e308, n_iter=3, random_state=0).fit(bits(64, 10))
        returned(finite(r.components_), "components finite: %s" % finite(r.components_))
    """, ["learning_rate"]))
    A(C("SparseIsing.fit(lr=1e308)", "nan", """
        from heatbath.ebm import SparseIsing
        m = SparseIsing(ring(), n_chains=8, seed=0).fit(np.ones((4, 6)), n_iter=3, lr=1e308)
        returned(finite(m.couplings, m.bias), "parameters finite")
    """, ["lr"]))

    # ---- silent: integers wrap
    for cls, extra in (("SparseIsing", ""), ("SparsePotts", ", K=3")):
        A(C(f"{cls} colours 2**31 / 2**32", "wrap", f"""
            from heatbath.ebm import {cls}
            big = {cls}(ring(), n_chains=64, colouring=[0, 2**31, 0, 2**32, 0, 2**32], seed=3{extra}).sweep(7)
            small = {cls}(ring(), n_chains=64, colouring=[0, 1, 0, 2, 0, 2], seed=3{extra}).sweep(7)
            returned(np.array_equal(big.state, small.state), "equals the compressed colouring")
        """, ["colouring"], allow=("correct", "error")))
        A(C(f"{cls} colours [2**32, 0, 2**32, 1, 2**32, 1] (0 if wrapped)", "wrap", f"""
            from heatbath.ebm import {cls}
            big = {cls}(ring(), n_chains=64, colouring=[2**32, 0, 2**32, 1, 2**32, 1], seed=3{extra}).sweep(7)
            small = {cls}(ring(), n_chains=64, colouring=[2, 0, 2, 1, 2, 1], seed=3{extra}).sweep(7)
            returned(np.array_equal(big.state, small.state), "equals colouring [2, 0, 2, 1, 2, 1]")
        """, ["colouring"], allow=("correct",)))
        A(C(f"{cls} colours [2**32, 2**32, 0, 1, 0, 1] (adjacent, same colour)", "wrap", f"""
            from heatbath.ebm import {cls}
            {cls}(ring(), n_chains=4, colouring=[2**32, 2**32, 0, 1, 0, 1]{extra})
            returned(False, "accepted adjacent nodes 0 and 1 in one block")
        """, ["colouring"]))
        for nodes in ("[-1]", "[6]", "[2**63]", "[2**64]"):
            A(C(f"{cls}.unclamp({nodes})", "wrap", f"""
                from heatbath.ebm import {cls}
                m = {cls}(ring(), n_chains=4, seed=0{extra})
                m.clamp([5], [1])
                m.unclamp({nodes})
                returned(m.clamped.tolist() == [False] * 5 + [True], "clamped: %s" % m.clamped.tolist())
            """, ["nodes"]))
        A(C(f"{cls}.clamp([-1], [1])", "wrap", f"""
            from heatbath.ebm import {cls}
            m = {cls}(ring(), n_chains=4, seed=0{extra})
            m.clamp([-1], [1])
            returned(False, "clamped %s" % m.clamped.tolist())
        """, ["nodes"]))
    for meth, t in (("reverse_kernel", "0"), ("reverse_kernel", "-1"), ("q_sample", "0"), ("q_sample", "-1")):
        args = "x, np.full(3, %s)" % t if meth == "reverse_kernel" else "x, np.full(3, %s), x" % t
        A(C(f"GaussianDPM.{meth}(t={t})", "wrap", f"""
            from heatbath.diffusion import GaussianDPM
            d = GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2)
            x = np.zeros((3, 2))
            out = d.{meth}({args})
            returned(False, "returned (step T used?)")
        """, ["t"]))
    A(C("BinomialDPM.reverse_rate(t=0)", "wrap", """
        from heatbath.diffusion import BinomialDPM
        b = BinomialDPM(20, T=6, hidden=8, n_basis=3)
        b.reverse_rate(np.zeros((4, 20)), np.full(4, 0))
        returned(False, "returned")
    """, ["t"]))
    A(C("IDX float labels 1e300", "wrap", """
        from heatbath.data import load_idx_dataset, write_idx
        l = write_idx(os.path.join(TMP, "l.idx"), np.array([1e300, 2.0, 1.0]))
        i = write_idx(os.path.join(TMP, "i.idx"), np.zeros((3, 2, 2), np.uint8))
        ds = load_idx_dataset(i, l)
        returned(False, "labels %s" % (ds.labels.tolist(),))
    """, ["labels_path"]))
    A(C("IDX float labels 2.5 (not integers)", "wrap", """
        from heatbath.data import load_idx_dataset, write_idx
        l = write_idx(os.path.join(TMP, "l.idx"), np.array([2.5, 2.0, 1.0]))
        i = write_idx(os.path.join(TMP, "i.idx"), np.zeros((3, 2, 2), np.uint8))
        ds = load_idx_dataset(i, l)
        returned(False, "labels %s" % (ds.labels.tolist(),))
    """, ["labels_path"]))
    A(C("random.uniform(4, seed=-1)", "wrap", """
        from heatbath import random as hr
        out = hr.uniform(4, -1)
        returned(False, "accepted seed -1")
    """, ["seed"]))
    A(C("IsingLattice(seed=2**64)", "wrap", """
        from heatbath.ebm import IsingLattice
        IsingLattice((4, 4), n_chains=2, seed=2**64)
        returned(False, "accepted")
    """, ["seed"]))

    # ---- silent: outputs
    A(C("gaussian_units(sample=<list>)", "output", """
        from heatbath.ebm.rbm import gaussian_units
        s = [[0.0] * 4 for _ in range(3)]
        gaussian_units(np.ones((3, 4)), np.zeros(4), 1.0, sample=s, seed=0, stream=0)
        returned(any(v != 0 for row in s for v in row), "list written: %s" % (s[0],))
    """, ["sample"]))
    A(C("bernoulli_units(sample=<list>)", "output", """
        from heatbath.ebm.rbm import bernoulli_units
        s = [[0.0] * 4 for _ in range(3)]
        bernoulli_units(np.ones((3, 4)) * 5, np.zeros(4), s, seed=0, stream=0)
        returned(any(v != 0 for row in s for v in row), "list written")
    """, ["sample"]))
    A(C("bernoulli_units: prob partly overlapping x", "output", """
        from heatbath.ebm.rbm import bernoulli_units
        buf = np.random.default_rng(0).standard_normal((3, 5))
        x = buf[:, :4]; ref = 1 / (1 + np.exp(-x.copy()))
        bernoulli_units(x, np.zeros(4), None, buf[:, 1:], seed=0, stream=0)
        returned(np.allclose(buf[:, 1:], ref), "prob correct: %s" % np.allclose(buf[:, 1:], ref))
    """, ["prob", "x"], allow=("error", "correct")))
    A(C("bernoulli_units: sample overlapping x", "output", """
        from heatbath.ebm.rbm import bernoulli_units
        buf = np.zeros((3, 5))
        bernoulli_units(buf[:, :4], np.zeros(4), buf[:, 1:], None, seed=0, stream=0)
        returned(False, "accepted")
    """, ["sample", "x"]))
    A(C("bernoulli_units: read-only output", "output", """
        from heatbath.ebm.rbm import bernoulli_units
        s = np.zeros((3, 4)); s.setflags(write=False)
        bernoulli_units(np.ones((3, 4)), np.zeros(4), s, seed=0, stream=0)
        returned(False, "wrote a read-only array: %s" % s[0])
    """, ["sample"]))

    # ---- silent: odd shapes
    A(C("heartbeat(length=2**63)", "shape", """
        from heatbath.data import heartbeat
        out = heartbeat(10, length=2**63)
        returned(False, "shape %s" % (out.shape,))
    """, ["length"]))
    for side in ("2**63", "-(2**63)"):
        A(C(f"dtm_grid_edges(side={side})", "shape", f"""
            from heatbath.ebm.graphs import dtm_grid_edges
            out = dtm_grid_edges({side})
            returned(False, "returned %r" % (type(out),))
        """, ["side"]))
    A(C("sinusoidal_embedding(t, dim=-1)", "shape", """
        from heatbath.nn import sinusoidal_embedding
        out = sinusoidal_embedding(np.arange(3), dim=-1)
        returned(False, "shape %s" % (out.shape,))
    """, ["dim"]))
    A(C("diffusion.sample(shape=(2.5, 3))", "shape", """
        from heatbath.diffusion import DDPMScheduler, sample
        out = sample(lambda x, t: np.zeros_like(x), (2.5, 3), DDPMScheduler(), steps=2, progress=False)
        returned(False, "shape %s" % (np.shape(out),))
    """, ["shape"]))
    A(C("random.uniform(shape=(2.5, 3))", "shape", """
        from heatbath import random as hr
        out = hr.uniform((2.5, 3), 0)
        returned(False, "shape %s" % (out.shape,))
    """, ["shape"]))
    A(C("swiss_roll(n=2.5)", "shape", """
        from heatbath.data import swiss_roll
        out = swiss_roll(2.5)
        returned(False, "shape %s" % (out.shape,))
    """, ["n"]))

    # ---- silent: masks
    for lab, mask in (("strings", 'np.array([["yes", ""]] * 3)'), ("NaN", "np.full((3, 2), np.nan)"),
                      ("2.0", "np.full((3, 2), 2.0)")):
        A(C(f"GaussianDPM.sample mask={lab}", "mask", f"""
            from heatbath.diffusion import GaussianDPM
            d = GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2)
            out = d.sample(3, mask={mask}, known=np.zeros((3, 2)))
            returned(False, "accepted a mask of {lab}")
        """, ["mask"]))
        A(C(f"BinomialDPM.sample mask={lab}", "mask", f"""
            from heatbath.diffusion import BinomialDPM
            b = BinomialDPM(2, T=6, hidden=8, n_basis=3)
            out = b.sample(3, mask={mask}, known=np.zeros((3, 2)))
            returned(False, "accepted a mask of {lab}")
        """, ["mask"]))
        A(C(f"diffusion.sample mask={lab}", "mask", f"""
            from heatbath.diffusion import DDPMScheduler, sample
            out = sample(lambda x, t: np.zeros_like(x), (3, 2), DDPMScheduler(), steps=2, progress=False,
                         mask={mask}, known=np.zeros((3, 2)), seed=0)
            returned(False, "accepted a mask of {lab}")
        """, ["mask"]))
        A(C(f"distributed.sample_dpm mask={lab}", "mask", f"""
            from heatbath.diffusion import GaussianDPM
            from heatbath.distributed import sample_dpm
            d = GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2)
            out = sample_dpm(None, d, 3, mask={mask}, known=np.zeros((3, 2)))
            returned(False, "accepted a mask of {lab}")
        """, ["mask"]))
    A(C("blocks_from_colouring skip=strings", "mask", """
        from heatbath.ebm.graphs import blocks_from_colouring
        blocks_from_colouring([0, 1], np.array(["a", ""]))
        returned(False, "accepted")
    """, ["skip"]))
    A(C("blocks_from_colouring skip=NaN", "mask", """
        from heatbath.ebm.graphs import blocks_from_colouring
        blocks_from_colouring([0, 1], np.array([np.nan, 0.0]))
        returned(False, "accepted")
    """, ["skip"]))

    # ---- sizes no memory holds: refused before allocating, naming the argument
    big = "2**41"
    sizes = [
        ("BernoulliRBM.sample(n_samples=2**41)", "n_samples", f"fitted_rbm().sample({big}, k=1)"),
        ("BernoulliRBM(batch_size=2**40, persistent).fit", "batch_size",
         "BernoulliRBM(n_components=4, batch_size=2**40, n_iter=1).fit(bits(8, 12))"),
        ("BernoulliRBM(n_temperatures=2**40).fit", "n_temperatures",
         "BernoulliRBM(n_components=4, n_iter=1, n_temperatures=2**40).fit(bits(8, 12))"),
        ("BernoulliRBM.log_partition(n_runs=2**41)", "n_runs",
         f"fitted_rbm().log_partition('ais', n_runs={big}, betas=20)"),
        ("ParallelTempering(n_chains=2**41)", "n_chains", f"ParallelTempering(fitted_rbm(), n_chains={big})"),
        ("ParallelTempering(n_temperatures=2**41)", "n_temperatures",
         f"ParallelTempering(fitted_rbm(), n_chains=2, n_temperatures={big})"),
        ("BinomialDPM.sample(2**41)", "n", f"BinomialDPM(4, 6, hidden=4, n_basis=2).sample({big})"),
        ("GaussianDPM(T=2**40)", "T", "GaussianDPM(2, 2**40, hidden=4)"),
        ("GaussianDPM(hidden=2**40)", "hidden", "GaussianDPM(2, 6, hidden=2**40)"),
        ("GaussianDPM(grid=2**20)", "grid", "GaussianDPM(2, 6, grid=2**20)"),
        ("GaussianDPM(dim=12) rbf: 16**12 centres", "grid", "GaussianDPM(12, 6)"),
        ("GaussianDPM(grid=1) rbf", "grid", "GaussianDPM(2, 6, grid=1)"),
        ("GaussianDPM(seed=-1)", "seed", "GaussianDPM(2, 6, hidden=4, grid=3, seed=-1)"),
        ("GaussianDPM(seed=1.5)", "seed", "GaussianDPM(2, 6, hidden=4, grid=3, seed=1.5)"),
        ("BinomialDPM(dim=2**40)", "dim", "BinomialDPM(2**40, 6, hidden=4)"),
        ("BinomialDPM(T=2**40)", "T", "BinomialDPM(4, 2**40, hidden=4)"),
        ("GaussianDPM.fit(batch_size=2**40)", "batch_size",
         "GaussianDPM(2, 6, hidden=4, grid=3).fit(np.zeros((8, 2)), steps=1, batch_size=2**40,\n"
         "    progress=False)"),
        ("DTM.sample(2**41)", "n_samples", f"fitted_dtm()[0].sample({big})"),
        ("DTM.mixing(n_chains=2**41)", "n_chains", f"fitted_dtm()[0].mixing(n_chains={big})"),
        ("DTM.mixing(n_sweeps=2**41)", "n_sweeps", f"fitted_dtm()[0].mixing(n_chains=4, n_sweeps={big})"),
        ("DTM(T=2**40)", "T", "DTM(T=2**40)"),
        ("BitFlipForward(T=2**40)", "T", "BitFlipForward(2**40)"),
        ("SparseIsing.sample(2**41)", "n_samples", f"SparseIsing(ring(), n_chains=64).sample({big})"),
        ("SparseIsing.sample(2**41, keep_states=True)", "n_samples",
         f"SparseIsing(ring(), n_chains=64).sample({big}, keep_states=True)"),
        ("SparseIsing(n_chains=2**40)", "n_chains", "SparseIsing(ring(), n_chains=2**40)"),
        ("DDPMScheduler(num_train_timesteps=2**40)", "num_train_timesteps",
         "DDPMScheduler(num_train_timesteps=2**40)"),
        ("distributed.gibbs_sparse(n_chains=2**41)", "n_chains",
         "distributed.gibbs_sparse(None, SparseIsing(ring(), n_chains=4), 2**41, 2)"),
        ("distributed.rbm_ais(n_runs=2**41) (looped for ever)", "n_runs",
         "distributed.rbm_ais(None, fitted_rbm(), 2**41, seed=0, betas=10)"),
        ("distributed.shards(2**63, 1)", "n_chains", "distributed.shards(2**63, 1)"),
        ("distributed.shards(2**30, 1): 2**30 shards", "chunk", "distributed.shards(2**30, 1)"),
    ]
    size_prelude = ("import resource\n"
                    "resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # an allocation fails fast\n"
                    "from heatbath.ebm import BernoulliRBM, ParallelTempering, SparseIsing\n"
                    "from heatbath.diffusion import BinomialDPM, DDPMScheduler, GaussianDPM\n"
                    "from heatbath.dtm import DTM, BitFlipForward\n"
                    "from heatbath import distributed\n")
    for label, name, body in sizes:
        A(C(label, "size", size_prelude + body + "\nreturned(False, 'returned')", [name]))
    A(C("diffusion.sample x_T NaN", "nan", """
        from heatbath.diffusion import DDPMScheduler, sample
        sample(lambda x, t: np.zeros_like(x), None, DDPMScheduler(), steps=2, progress=False,
               x_T=np.full((3, 2), np.nan))
        returned(False, "returned")
    """, ["x_T"]))
    A(C("diffusion.sample known NaN", "nan", """
        from heatbath.diffusion import DDPMScheduler, sample
        sample(lambda x, t: np.zeros_like(x), (3, 2), DDPMScheduler(), steps=2, progress=False, seed=0,
               mask=np.ones((3, 2), bool), known=np.full((3, 2), np.nan))
        returned(False, "returned")
    """, ["known"]))

    # ---- unclear errors
    unclear = [
        ("IsingLattice.sweep(2**63)", "n", """
            from heatbath.ebm import IsingLattice
            IsingLattice((4, 4), n_chains=2, seed=0).sweep(2**63)
        """),
        ("IsingLattice.sweep(2**64)", "n", """
            from heatbath.ebm import IsingLattice
            IsingLattice((4, 4), n_chains=2, seed=0).sweep(2**64)
        """),
        ("SparseIsing.sweep(2**63)", "n", """
            from heatbath.ebm import SparseIsing
            SparseIsing(ring(), n_chains=2, seed=0).sweep(2**63)
        """),
        ("set_num_threads(2**31)", "n", """
            import heatbath
            heatbath.set_num_threads(2**31)
        """),
        ("set_num_threads(2**64)", "n", """
            import heatbath
            heatbath.set_num_threads(2**64)
        """),
        ("set_num_threads('2')", "n", """
            import heatbath
            heatbath.set_num_threads("2")
        """),
        ("random.uniform((2**40, 2**40))", "shape", """
            from heatbath import random as hr
            hr.uniform((2**40, 2**40), 0)
        """),
        ("random.normal(2**63)", "shape", """
            from heatbath import random as hr
            hr.normal(2**63, 0)
        """),
        ("IsingLattice(n_chains=2**41)", "n_chains", """
            from heatbath.ebm import IsingLattice
            IsingLattice((4, 4), n_chains=2**41)
        """),
        ("SparseIsing(n_chains=2**41)", "n_chains", """
            from heatbath.ebm import SparseIsing
            SparseIsing(ring(), n_chains=2**41)
        """),
        ("swiss_roll(2**41)", "n", """
            from heatbath.data import swiss_roll
            swiss_roll(2**41)
        """),
        ("heartbeat(2**63)", "n", """
            from heatbath.data import heartbeat
            heartbeat(2**63)
        """),
        ("GaussianDPM.sample(2**41)", "n", """
            from heatbath.diffusion import GaussianDPM
            GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).sample(2**41)
        """),
        ("BernoulliRBM.sample(2**41)", "n_samples", """
            fitted_rbm().sample(2**41, k=1)
        """),
        ("BernoulliRBM.transform wrong width (matmul)", "X", """
            fitted_rbm().transform(np.ones((4, 13)))
        """),
        ("BernoulliRBM.gibbs wrong width (matmul)", "v", """
            fitted_rbm().gibbs(np.ones((4, 11)))
        """),
        ("BernoulliRBM.free_energy wrong width", "v", """
            fitted_rbm().free_energy(np.ones((4, 11)))
        """),
        ("nn.Dense.forward wrong width (matmul)", "x", """
            from heatbath import nn
            nn.Dense(3, 2, np.random.default_rng(0)).forward(np.ones((4, 5)))
        """),
        ("nn.TemporalReadout.forward wrong width (matmul)", "z", """
            from heatbath import nn
            nn.TemporalReadout(3, 2, 5, 2, np.random.default_rng(0)).forward(np.ones((4, 5)), np.arange(4))
        """),
        ("nn.TemporalReadout.forward 1-D z", "z", """
            from heatbath import nn
            nn.TemporalReadout(3, 2, 5, 2, np.random.default_rng(0)).forward(np.ones(3), np.arange(3))
        """),
        ("nn.RBFNet.forward wrong width", "x", """
            from heatbath import nn
            nn.RBFNet(2, 2, 5, grid=3, n_hidden=4, n_basis=2, rng=np.random.default_rng(0)).forward(
                np.ones((4, 3)), np.arange(4))
        """),
        ("nn.TimeMLP.forward wrong width", "x", """
            from heatbath import nn
            net = nn.TimeMLP(2, 2, 5, hidden=(4,), rng=np.random.default_rng(0))
            net.forward(np.ones((4, 3)), np.arange(4))
        """),
        ("nn.MLP.forward wrong width", "x", """
            from heatbath import nn
            nn.MLP([3, 4, 2], rng=np.random.default_rng(0)).forward(np.ones((4, 5)))
        """),
        ("GaussianDPM.bound wrong width", "x", """
            from heatbath.diffusion import GaussianDPM
            GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).bound(np.ones((4, 3)))
        """),
        ("GaussianDPM.reverse_kernel wrong width", "x_t", """
            from heatbath.diffusion import GaussianDPM
            GaussianDPM(2, 6, hidden=4, grid=3, n_basis=2).reverse_kernel(np.ones((4, 3)), np.full(4, 2))
        """),
        ("SparseIsing.energy_of wrong width", "states", """
            from heatbath.ebm import SparseIsing
            SparseIsing(ring(), n_chains=2).energy_of(np.ones((4, 5)))
        """),
        ("mmd wrong width", "y", """
            from heatbath.evaluation import mmd
            mmd(np.ones((5, 3)), np.ones((5, 4)))
        """),
        ("energy_distance wrong width", "y", """
            from heatbath.evaluation import energy_distance
            energy_distance(np.ones((5, 3)), np.ones((5, 4)))
        """),
        ("DTM.sample_step wrong width", "x_t", """
            m, X = fitted_dtm()
            m.sample_step(1, np.ones((4, 15), np.uint8))
        """),
        ("BernoulliRBM(n_components=2**40).fit", "n_components", """
            from heatbath.ebm import BernoulliRBM
            BernoulliRBM(n_components=2**40, n_iter=1).fit(bits(16, 12))
        """),
    ]
    for label, name, body in unclear:
        A(C(label, "unclear", textwrap.dedent(body) + "\nreturned(False, 'returned')", [name]))

    # ---- checkpoints
    ck = [
        ("GaussianDPM.load junk file", "GaussianDPM", """
            p = os.path.join(TMP, "junk.npz"); open(p, "wb").write(os.urandom(5000))
        """),
        ("GaussianDPM.load empty file", "GaussianDPM", """
            p = os.path.join(TMP, "empty.npz"); open(p, "wb").close()
        """),
        ("GaussianDPM.load truncated", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            raw = open(src, "rb").read()
            p = os.path.join(TMP, "t.npz"); open(p, "wb").write(raw[: len(raw) // 2])
        """),
        ("GaussianDPM.load wrong shapes", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"),
                            arrays=lambda a: {"net.hidden.W": np.zeros((17, 8))})
        """),
        ("GaussianDPM.load missing array", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), drop=["betas"])
        """),
        ("GaussianDPM.load NaN params", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"),
                            arrays=lambda a: {"net.hidden.W": np.full_like(a["net.hidden.W"], np.nan)})
        """),
        ("GaussianDPM.load betas out of (0, 1)", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), arrays=lambda a: {"betas": np.full(5, 1.5)})
        """),
        ("GaussianDPM.load T = 10**7 with 5 betas", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), config={"T": 10**7})
        """),
        ("GaussianDPM.load nested JSON", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), meta_raw="[" * 100000 + "]" * 100000)
        """),
        ("GaussianDPM.load config dim='2'", "GaussianDPM", """
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), config={"dim": "2"})
        """),
        ("GaussianDPM.load array declaring 10**12 values", "GaussianDPM", """
            import zipfile
            src = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3).save(os.path.join(TMP, "g.npz"))
            p = os.path.join(TMP, "huge.npz")
            with np.load(src) as z, zipfile.ZipFile(p, "w") as out:
                for name in z.files:
                    buf = io.BytesIO()
                    if name == "betas":
                        np.lib.format.write_array_header_1_0(
                            buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
                        buf.write(bytes(40))
                    else:
                        np.save(buf, z[name])
                    out.writestr(name + ".npy", buf.getvalue())
        """),
        ("GaussianDPM.load a BinomialDPM file", "GaussianDPM", """
            p = BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))
        """),
        ("GaussianDPM.load an object-array npz (pickle)", "GaussianDPM", """
            p = os.path.join(TMP, "o.npz"); np.savez(p, a=np.array([None, 1], dtype=object))
        """),
        ("BinomialDPM.load hidden=0", "BinomialDPM", """
            src = BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), config={"hidden": 0})
        """),
        ("BinomialDPM.load marginals = 1", "BinomialDPM", """
            src = BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), arrays=lambda a: {"marginal": np.ones(4)})
        """),
        ("BinomialDPM.load marginals NaN", "BinomialDPM", """
            src = BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"),
                            arrays=lambda a: {"marginal": np.full(4, np.nan)})
        """),
        ("BinomialDPM.load wrong marginal shape", "BinomialDPM", """
            src = BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), arrays=lambda a: {"marginal": np.full(5, 0.5)})
        """),
        ("BinomialDPM.load truncated", "BinomialDPM", """
            src = BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))
            raw = open(src, "rb").read(); p = os.path.join(TMP, "t.npz"); open(p, "wb").write(raw[:-30])
        """),
        ("DTM.load junk file", "DTM", """
            p = os.path.join(TMP, "junk.npz"); open(p, "wb").write(b"PK\\x03\\x04" + os.urandom(3000))
        """),
        ("DTM.load truncated", "DTM", """
            m, X = fitted_dtm(); src = m.save(os.path.join(TMP, "d.npz"))
            raw = open(src, "rb").read()
            p = os.path.join(TMP, "t.npz"); open(p, "wb").write(raw[: len(raw) * 2 // 3])
        """),
        ("DTM.load NaN weights", "DTM", """
            m, X = fitted_dtm(); src = m.save(os.path.join(TMP, "d.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"),
                            arrays=lambda a: {"w": np.full_like(a["w"], np.nan)})
        """),
        ("DTM.load wrong weight shape", "DTM", """
            m, X = fitted_dtm(); src = m.save(os.path.join(TMP, "d.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), arrays=lambda a: {"w": a["w"][:, :-1]})
        """),
        ("DTM.load edges outside the graph", "DTM", """
            m, X = fitted_dtm(); src = m.save(os.path.join(TMP, "d.npz"))
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"),
                            arrays=lambda a: {"edges_j": np.where(np.arange(a["edges_j"].size) == 0, 10**6,
                                                                    a["edges_j"])})
        """),
        ("DTM.load T = 10**7", "DTM", """
            m, X = fitted_dtm(); src = m.save(os.path.join(TMP, "d.npz"))
            with np.load(src) as z:
                meta = json.loads(z["__meta__"].tobytes())
            meta["config"]["params"]["T"] = 10**7
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), meta_raw=json.dumps(meta))
        """),
        ("DTM.load learning_rate NaN", "DTM", """
            m, X = fitted_dtm(); src = m.save(os.path.join(TMP, "d.npz"))
            with np.load(src) as z:
                meta = json.loads(z["__meta__"].tobytes())
            meta["config"]["params"]["learning_rate"] = float("nan")
            p = rewrite_npz(src, os.path.join(TMP, "x.npz"), meta_raw=json.dumps(meta))
        """),
    ]
    for label, cls, body in ck:
        load = {"GaussianDPM": "GaussianDPM.load(p)", "BinomialDPM": "BinomialDPM.load(p)",
                "DTM": "DTM.load(p)"}[cls]
        A(C(label, "checkpoint", "from heatbath.diffusion import GaussianDPM, BinomialDPM\n"
            "from heatbath.dtm import DTM\n" + textwrap.dedent(body).strip("\n") + f"\nm = {load}\n"
            "returned(False, 'loaded')", ["path"], require="CheckpointError"))
    A(C("checkpoints: 300 random corruptions per model kind", "checkpoint", """
        from heatbath import checkpoint
        from heatbath.diffusion import BinomialDPM, GaussianDPM
        m, X = fitted_dtm()
        g = GaussianDPM(2, 5, hidden=8, grid=4, n_basis=3)
        srcs = [(GaussianDPM, g.save(os.path.join(TMP, "g.npz"))),
                (BinomialDPM, BinomialDPM(4, 5, hidden=8, n_basis=3).save(os.path.join(TMP, "b.npz"))),
                (type(m), m.save(os.path.join(TMP, "d.npz")))]
        rng = np.random.default_rng(1)
        bad_values = [None, -1, 0, 2**63, 1e308, float("nan"), "x", [], {}, 10**7, 0.5, True]
        counts = {"refused": 0, "loaded": 0, "other error at load": [], "error at first sample": [],
                  "silent non-finite sample": 0}
        for cls, src in srcs:
            raw = open(src, "rb").read()
            with np.load(src) as z:
                arrays = {k: z[k] for k in z.files}
            for i in range(300):
                data, mode = bytearray(raw), i % 4
                k = int(rng.integers(0, len(data)))
                if mode == 0:
                    data = data[:k]
                elif mode == 1:
                    for j in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                        data[int(j)] = int(rng.integers(0, 256))
                elif mode == 2:
                    data[k:k] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 40))).astype(np.uint8))
                else:  # one array or one config entry replaced
                    arrs = dict(arrays)
                    name = list(arrs)[int(rng.integers(0, len(arrs)))]
                    a = arrs[name]
                    if name == "__meta__":
                        meta = json.loads(a.tobytes())
                        tgt = meta["config"].get("params", meta["config"])
                        tgt[list(tgt)[int(rng.integers(0, len(tgt)))]] = bad_values[int(rng.integers(0, 12))]
                        arrs[name] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
                    else:
                        arrs[name] = [np.full(a.shape, np.nan), a.reshape(-1)[:-1], a.astype(np.complex128),
                                      np.zeros((a.size + 3,) + a.shape[1:], a.dtype), a * 1e300 + 1e300,
                                      a.astype(object), a.astype(np.int64) - 2**40][int(rng.integers(0, 7))]
                    buf = io.BytesIO()
                    np.savez(buf, **arrs)
                    data = bytearray(buf.getvalue())
                p = os.path.join(TMP, "x.npz")
                open(p, "wb").write(bytes(data))
                try:
                    model = cls.load(p)
                except checkpoint.CheckpointError:
                    counts["refused"] += 1
                    continue
                except Exception as e:
                    counts["other error at load"].append("%s: %s" % (type(e).__name__, str(e)[:80]))
                    continue
                counts["loaded"] += 1
                try:
                    smp = np.asarray(model.sample(3), dtype=float)
                    counts["silent non-finite sample"] += int(not np.all(np.isfinite(smp)))
                except Exception as e:
                    counts["error at first sample"].append("%s %s: %s" % (cls.__name__, type(e).__name__,
                                                                            str(e)[:60]))
        ok = not counts["other error at load"] and not counts["silent non-finite sample"]
        summary = {k: (len(v) if isinstance(v, list) else v) for k, v in counts.items()}
        examples = (counts["other error at load"] + counts["error at first sample"])[:2]
        returned(ok, "%s; e.g. %s" % (summary, examples))
    """, allow=("correct",), timeout=120))
    A(C("checkpoint save cleans stale temporaries (kill -9 during saves)", "checkpoint", """
        import subprocess
        target = os.path.join(TMP, "big.npz")
        code = ("import numpy as np, sys\\nfrom heatbath import checkpoint\\n"
                "a = np.random.default_rng(0).random(6_000_000)\\nprint('go', flush=True)\\n"
                "while True:\\n    checkpoint.save(sys.argv[1], 'x', {}, {'a': a})\\n")
        left = 0
        rng = np.random.default_rng(1)
        for trial in range(6):
            p = subprocess.Popen([sys.executable, "-c", code, target], stdout=subprocess.PIPE)
            p.stdout.readline()
            time.sleep(0.05 + 0.4 * rng.random())
            p.kill(); p.wait()
            left += len([f for f in os.listdir(TMP) if f.startswith(".tmp-")])
        from heatbath.diffusion import GaussianDPM
        m = GaussianDPM(2, 5, hidden=4, grid=3, n_basis=2)
        m.save(target)  # another model, same target
        after = [f for f in os.listdir(TMP) if f.startswith(".tmp-")]
        ok = GaussianDPM.load(target).T == 5 and not after
        returned(ok, "temporaries seen after kills (cumulative): %d; after a save: %d" % (left, len(after)))
    """, allow=("correct",), timeout=60))
    A(C("checkpoint load of a file killed mid-save is old or new", "checkpoint", """
        import subprocess
        from heatbath import checkpoint
        target = os.path.join(TMP, "big.npz")
        checkpoint.save(target, "x", {"v": -1}, {"a": np.zeros(10)})
        code = ("import numpy as np, sys\\nfrom heatbath import checkpoint\\n"
                "a = np.random.default_rng(0).random(4_000_000)\\nprint('go', flush=True)\\n"
                "i = 0\\nwhile True:\\n    checkpoint.save(sys.argv[1], 'x', {'v': i}, {'a': a}); i += 1\\n")
        bad = 0
        rng = np.random.default_rng(2)
        for trial in range(6):
            p = subprocess.Popen([sys.executable, "-c", code, target], stdout=subprocess.PIPE)
            p.stdout.readline()
            time.sleep(0.05 + 0.4 * rng.random())
            p.kill(); p.wait()
            try:
                cfg, arrs = checkpoint.load(target, "x")
            except checkpoint.CheckpointError:
                bad += 1
        returned(bad == 0, "unloadable after kill: %d of 6" % bad)
    """, allow=("correct",), timeout=60))

    # ---- concurrency
    for cls, make, get in (
        ("SparseIsing", "SparseIsing(ring(32), n_chains=2048, seed=9)", "m.state"),
        ("SparsePotts", "SparsePotts(ring(32), K=3, n_chains=2048, seed=9)", "m.state"),
        ("IsingLattice", "IsingLattice((32, 32), n_chains=64, seed=9)", "m.spins"),
    ):
        A(C(f"one {cls} swept from 4 threads (x5 runs)", "threads", f"""
            from heatbath.ebm import IsingLattice, SparseIsing, SparsePotts
            ref = {make}.sweep(20)
            ref_state = {get.replace("m.", "ref.")}
            equal = 0; errors = []
            for run in range(5):
                m = {make}
                barrier = threading.Barrier(4)
                def work():
                    try:
                        barrier.wait()
                        for _ in range(5):
                            m.sweep(1)
                    except Exception as e:
                        errors.append(repr(e))
                ts = [threading.Thread(target=work) for _ in range(4)]
                [t.start() for t in ts]; [t.join() for t in ts]
                equal += bool(np.array_equal({get}, ref_state)) and m.sweeps_done == 20
            returned(equal == 5 and not errors,
                     "%d/5 runs equal 20 sequential sweeps; errors %s" % (equal, errors[:2]))
        """, allow=("correct",)))
    A(C("one SparseIsing: sample() from 4 threads", "threads", """
        from heatbath.ebm import SparseIsing
        m = SparseIsing(ring(32), n_chains=1024, seed=9)
        res, errors = [], []
        def work():
            try:
                res.append(m.sample(5).energy.copy())
            except Exception as e:
                errors.append(repr(e))
        ts = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        ref = SparseIsing(ring(32), n_chains=1024, seed=9)
        refs = [ref.sample(5).energy.copy() for _ in range(4)]
        # each call equals the call of the same rank in a sequential run (some order)
        import itertools
        ok = any(all(np.array_equal(a, b) for a, b in zip(perm, refs))
                 for perm in itertools.permutations(res))
        returned(ok and not errors, "some sequential order: %s; errors %s" % (ok, errors[:2]))
    """, allow=("correct",)))
    for label, make, call in (
        ("BernoulliRBM.sample", "fitted_rbm()", "r.sample(256, k=50)"),
        ("BernoulliRBM.gibbs", "fitted_rbm()", "r.gibbs(bits(256, 12), k=20)"),
        ("DTM.sample", "fitted_dtm()[0]", "r.sample(512)"),
        ("GaussianDPM.sample", "__import__('heatbath.diffusion').diffusion.GaussianDPM(2, 8, hidden=8, "
         "grid=4, n_basis=3)", "r.sample(256)"),
    ):
        A(C(f"one {label} called from 4 threads (x3 runs)", "threads", f"""
            import itertools
            def make():
                return {make}
            def call(r):
                return np.asarray({call})
            equal, errors = 0, []
            for run in range(3):
                ref = make()
                refs = [call(ref) for _ in range(4)]
                shared = make()
                res = [None] * 4
                barrier = threading.Barrier(4)
                def work(i):
                    try:
                        barrier.wait()
                        res[i] = call(shared)
                    except Exception as e:
                        errors.append(repr(e))
                ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
                [t.start() for t in ts]; [t.join() for t in ts]
                equal += any(all(a is not None and np.array_equal(a, b) for a, b in zip(p, refs))
                             for p in itertools.permutations(res))
            returned(equal == 3 and not errors,
                     "%d/3 runs equal some sequential order; errors %s" % (equal, errors[:2]))
        """, allow=("correct",)))
    A(C("one ParallelTempering run from 4 threads", "threads", """
        from heatbath.ebm import ParallelTempering
        r = fitted_rbm()
        pt = ParallelTempering(r, n_chains=64, n_temperatures=4)
        errors = []
        def work():
            try:
                for _ in range(5):
                    pt.run(1)
            except Exception as e:
                errors.append(repr(e))
        ts = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        ref = ParallelTempering(fitted_rbm(), n_chains=64, n_temperatures=4).run(20)  # keys: a fresh model's
        same = np.array_equal(pt.samples(), ref.samples())
        clear = errors and all("thread" in e.lower() for e in errors)
        returned(same and not errors or clear,
                 "equal to 20 sequential sweeps: %s; errors %s" % (same, errors[:2]))
    """, allow=("correct",)))
    return L


# ---- running ----------------------------------------------------------------------------------------


def _reader(stream, q):
    for line in iter(stream.readline, ""):
        q.put(line)
    q.put(None)


def run_case(case: Case, timeout: float) -> Result:
    timeout = case.timeout or timeout
    code = PRELUDE + "\ndef _case():\n" + textwrap.indent(case.body, "    ") + "\n" + EPILOGUE
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    q: "queue.Queue" = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    err_chunks: List[str] = []
    threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True).start()
    events, t_sig, t_int, hung = [], None, None, False
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if t_sig is None and any(e.get("kind") == "ready" for e in events):
            # the long call began: interrupt it INTERRUPT_AFTER s later
            time.sleep(INTERRUPT_AFTER)
            t_sig = time.monotonic()
            proc.send_signal(signal.SIGINT)
            deadline = min(deadline, t_sig + max(10.0, INTERRUPT_WITHIN * 5))
            continue
        if left <= 0:
            hung = True
            break
        try:
            line = q.get(timeout=min(left, 0.05))
        except queue.Empty:
            continue
        if line is None:
            break
        if line.startswith("AUDIT "):
            ev = json.loads(line[6:])
            ev["t"] = time.monotonic()
            if ev["kind"] == "interrupted":
                t_int = ev["t"]
            events.append(ev)
    if hung:
        os.killpg(proc.pid, signal.SIGKILL)
    rc = proc.wait()
    secs = time.monotonic() - t0
    time.sleep(0.05)
    stderr = "".join(err_chunks)
    last = events[-1] if events else {}
    extra = {"rc": rc}
    if case.interrupt and t_sig is not None and t_int is not None:
        extra["latency_s"] = round(t_int - t_sig, 3)
    if hung:
        if case.interrupt and t_sig is not None and t_int is None:
            return Result(case, "not-interrupted", f"no KeyboardInterrupt {timeout:.0f} s after SIGINT", secs,
                          extra)
        return Result(case, "hang", f"killed after {timeout:.0f} s" + (" (SIGINT sent)" if t_sig else ""),
                      secs, extra)
    if rc > 0 and not events:
        tail = stderr.strip().splitlines()[-3:]
        return Result(case, "harness-error", f"exit {rc}; " + " | ".join(tail)[:300], secs, extra)
    if rc < 0 or last.get("kind") not in ("returned", "raised"):
        tail = stderr.strip().splitlines()[-3:]
        return Result(case, "crash", f"exit {rc}; " + " | ".join(tail)[:300], secs, extra)
    if case.interrupt:
        if t_int is None:
            if last.get("kind") == "raised":
                return _classify_raise(case, last, secs, extra)
            return Result(case, "not-interrupted", last.get("what", ""), secs, extra)
        lat = t_int - t_sig
        if last["kind"] == "raised":
            return Result(case, "unusable",
                          f"after interrupt ({lat:.2f} s): {last['type']}: {last['msg'][:200]}", secs, extra)
        if not last["ok"]:
            return Result(case, "unusable", f"after interrupt ({lat:.2f} s): {last['what']}", secs, extra)
        if lat > INTERRUPT_WITHIN:
            return Result(case, "slow-interrupt", f"KeyboardInterrupt {lat:.2f} s after SIGINT", secs, extra)
        return Result(case, "interrupted", f"in {lat:.2f} s; {last['what']}", secs, extra)
    if last["kind"] == "returned":
        return Result(case, "correct" if last["ok"] else "wrong", last["what"], secs, extra)
    return _classify_raise(case, last, secs, extra)


def _classify_raise(case: Case, ev: dict, secs: float, extra: dict) -> Result:
    typ, msg, mro = ev["type"], ev["msg"], ev["mro"]
    text = f"{typ}: {msg[:220]}"
    if case.require and case.require not in mro:
        return Result(case, "other-exc", f"not a {case.require}: {text}", secs, extra)
    if not any(t in mro for t in OK_TYPES):
        return Result(case, "other-exc", text, secs, extra)
    leaks = ("incompatible function arguments", "Maximum allowed dimension exceeded", "matmul:")
    if any(s in msg for s in leaks):
        return Result(case, "unclear", text, secs, extra)
    if case.names and not any(f"'{n}'" in msg for n in case.names):
        return Result(case, "unclear", f"does not name {case.names}: {text}", secs, extra)
    return Result(case, "error", text, secs, extra)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None, help="run the cases whose label contains this")
    ap.add_argument("--group", default=None, help="run one group (crash, interrupt, hang, nan, ...)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case (default 20)")
    ap.add_argument("--json", default=None, help="write the results to this file")
    args = ap.parse_args(argv)
    results = []
    for case in cases():
        if args.only and args.only not in case.name:
            continue
        if args.group and args.group != case.group:
            continue
        r = run_case(case, args.timeout)
        results.append(r)
        mark = "ok  " if r.ok else "FAIL"
        print(f"{mark} [{case.group:10s}] {case.name:58s} {r.outcome:15s} {r.detail[:150]}", flush=True)
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results)} cases, {len(failed)} failed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"case": r.case.name, "group": r.case.group, "outcome": r.outcome, "ok": r.ok,
                        "detail": r.detail, "seconds": round(r.seconds, 2), **r.extra} for r in results], f,
                      indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
