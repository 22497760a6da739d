"""Restricted Boltzmann machines: heatbath against scikit-learn's
BernoulliRBM, side by side in one process run (interleaved medians).

rbm_gibbs: k = 10 Gibbs sweeps of a 784x500 RBM over 1000 chains in float32:
    scikit-learn's ``BernoulliRBM.gibbs`` called 10 times, heatbath's
    ``gibbs(v, k=10)``, and the floor of this design: the two float32 GEMMs of
    a sweep alone (numpy matmul into preallocated buffers), 10 times each.
rbm_train: training throughput on the binarized digits (1,497 x 64), 100
    hidden units, batch size 10, PCD-1, 10 passes (1,500 updates) for both.

BLAS and OpenMP thread counts are printed. On machines where
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set to tame OpenBLAS, unset them for
the benchmark command only:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py --only rbm_gibbs``.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heatbath  # noqa: E402
from heatbath.ebm import BernoulliRBM  # noqa: E402
from timing import cuda_median_ms, interleaved  # noqa: E402


def _blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    rows = [
        f"{i.get('internal_api')} {i.get('version', '')} {i.get('architecture', '')} "
        f"threads={i.get('num_threads')}"
        for i in threadpool_info()
    ]
    return "; ".join(rows)


def _limits(n: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _env_note() -> str:
    keys = (
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "OMP_WAIT_POLICY",
    )
    return (
        ", ".join(f"{k}={os.environ[k]}" for k in keys if k in os.environ)
        or "none of the OpenBLAS/OMP variables set"
    )


@contextlib.contextmanager
def _blas_env_hidden():
    """The BLAS thread variables hidden from heatbath's choice of BLAS threads
    (BLAS itself read them at start-up; threadpoolctl sets its threads)."""
    from heatbath import _blas

    saved = {k: os.environ.pop(k) for k in _blas._ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def section_rbm_gibbs(repeat: int) -> None:
    from sklearn.neural_network import BernoulliRBM as SkRBM

    nv, nh, n, k = 784, 500, 1000, 10
    rng = np.random.default_rng(0)
    W = (rng.normal(0, 0.05, (nh, nv))).astype(np.float32)
    c = rng.normal(0, 0.5, nh).astype(np.float32)
    b = rng.normal(0, 0.5, nv).astype(np.float32)
    v0 = (rng.random((n, nv)) < 0.3).astype(np.float32)
    sk = SkRBM(n_components=nh, random_state=0)
    sk.components_, sk.intercept_hidden_, sk.intercept_visible_ = W, c, b
    sk.n_features_in_ = nv
    hb = BernoulliRBM(n_components=nh, random_state=0)
    hb.components_, hb.intercept_hidden_, hb.intercept_visible_ = W, c, b
    hb.n_features_in_ = nv
    pre_h = np.empty((n, nh), np.float32)
    pre_v = np.empty((n, nv), np.float32)
    H = (rng.random((n, nh)) < 0.5).astype(np.float32)
    V = v0.copy()

    def sk_gibbs():
        v = v0
        for _ in range(k):
            v = sk.gibbs(v)
        return v

    def hb_gibbs():
        return hb.gibbs(v0, k=k)

    def gemms():
        for _ in range(k):
            np.matmul(V, W.T, out=pre_h)
            np.matmul(H, W, out=pre_v)

    print(
        f"\n== rbm_gibbs: k={k} sweeps, {nv}x{nh} RBM, {n} chains, float32 "
        f"(median of {repeat} interleaved) =="
    )
    print(f"environment: {_env_note()}")
    print(
        f"{'threads':>7s} {'sklearn ms':>11s} {'heatbath ms':>12s} {'2 GEMMs ms':>11s} "
        f"{'sklearn/heatbath':>17s} {'heatbath/GEMMs':>15s} {'sklearn/GEMMs':>14s}   BLAS"
    )
    # sklearn/GEMMs is the ceiling of sklearn/heatbath: both run the same two GEMMs per sweep.
    # heatbath chooses its BLAS threads by its default rule (a product this large runs on
    # heatbath's thread count), not from an OPENBLAS_NUM_THREADS the command line may set
    # to keep the other sections' numpy single-threaded.
    for threads in (1, 2):
        with _limits(threads), heatbath.threads(threads), _blas_env_hidden():
            t = interleaved({"sk": sk_gibbs, "hb": hb_gibbs, "gemm": gemms}, repeat)
            info = f"{_blas_info()}; heatbath OpenMP threads={heatbath.get_num_threads()}"
        print(
            f"{threads:7d} {t['sk'] * 1e3:11.1f} {t['hb'] * 1e3:12.1f} {t['gemm'] * 1e3:11.1f} "
            f"{t['sk'] / t['hb']:16.2f}x {t['hb'] / t['gemm']:14.3f}x {t['sk'] / t['gemm']:13.2f}x   {info}"
        )


def section_rbm_train(repeat: int) -> None:
    from heatbath.data import binarized_digits
    from sklearn.neural_network import BernoulliRBM as SkRBM

    d = binarized_digits()
    X32 = d.X_train
    X64 = X32.astype(np.float64)
    nh, bs, epochs = 100, 10, 10
    n_updates = epochs * -(-X32.shape[0] // bs)

    def sk64():
        SkRBM(n_components=nh, batch_size=bs, n_iter=epochs, random_state=0).fit(X64)

    def sk32():
        SkRBM(n_components=nh, batch_size=bs, n_iter=epochs, random_state=0).fit(X32)

    def hb32():
        BernoulliRBM(n_components=nh, batch_size=bs, n_iter=epochs, random_state=0).fit(X32)

    print(
        f"\n== rbm_train: binarized digits {X32.shape}, {nh} hidden, batch {bs}, PCD-1, {epochs} passes = "
        f"{n_updates} updates (median of {repeat} interleaved) =="
    )
    print(
        f"{'threads':>7s} {'sklearn f64 ms':>15s} {'sklearn f32 ms':>15s} {'heatbath f32 ms':>16s} "
        f"{'updates/s hb':>13s} {'vs sklearn (faster one)':>24s}"
    )
    for threads in (1, 2):
        with _limits(threads), heatbath.threads(threads):
            t = interleaved({"sk64": sk64, "sk32": sk32, "hb": hb32}, repeat)
        best_sk = min(t["sk64"], t["sk32"])
        print(
            f"{threads:7d} {t['sk64'] * 1e3:15.1f} {t['sk32'] * 1e3:15.1f} {t['hb'] * 1e3:16.1f} "
            f"{n_updates / t['hb']:13,.0f} {best_sk / t['hb']:23.2f}x"
        )


def section_rbm_gibbs_gpu(repeat: int) -> None:
    """The rbm_gibbs workload on the GPU (cupy arrays): heatbath's gibbs(v, k=10)
    against the 20 cuBLAS GEMMs alone, timed with CUDA events."""
    print("\n== rbm_gibbs_gpu: k=10 sweeps, 784x500 RBM, 1000 chains, float32, cupy ==")
    if not heatbath.has_cuda():
        print("skipped: no usable GPU (heatbath._cuda, cupy and a CUDA device are needed)")
        return
    import cupy as cp


    def median_ms(fn):
        return cuda_median_ms(fn, repeat)

    nv, nh, n, k = 784, 500, 1000, 10
    rng = np.random.default_rng(0)
    W = cp.asarray(rng.normal(0, 0.05, (nh, nv)).astype(np.float32))
    hb = BernoulliRBM(n_components=nh, random_state=0)
    hb.components_, hb.intercept_hidden_ = W, cp.zeros(nh, cp.float32)
    hb.intercept_visible_, hb.n_features_in_ = cp.zeros(nv, cp.float32), nv
    v0 = cp.asarray((rng.random((n, nv)) < 0.3).astype(np.float32))
    H = cp.asarray((rng.random((n, nh)) < 0.5).astype(np.float32))
    pre_h, pre_v = cp.empty((n, nh), cp.float32), cp.empty((n, nv), cp.float32)

    def gemms():
        for _ in range(k):
            cp.matmul(v0, W.T, out=pre_h)
            cp.matmul(H, W, out=pre_v)

    t_hb = median_ms(lambda: hb.gibbs(v0, k=k))
    t_gemm = median_ms(gemms)
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"{name}: heatbath {t_hb:.2f} ms, 2 GEMMs x {k} {t_gemm:.2f} ms, "
          f"heatbath/GEMMs {t_hb / t_gemm:.3f}x")  # fmt: skip


SECTIONS = {
    "rbm_gibbs": section_rbm_gibbs,
    "rbm_train": section_rbm_train,
    "rbm_gibbs_gpu": section_rbm_gibbs_gpu,
}
