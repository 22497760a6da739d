"""GPU steps never wait for the host: they can be captured in a CUDA graph
and replayed with the eager results, and they take their timesteps as
device arrays (cupy or CUDA torch) without reading them, giving exactly the
results of host timesteps; bad device timesteps are reported by
check_errors."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath import random as hr
from heatbath.diffusion import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    check_errors,
    q_sample,
)

pytestmark = pytest.mark.gpu

SHAPE = (4, 3, 16, 24)
N = int(np.prod(SHAPE))


def _model_output():
    import cupy as cp

    return cp.asarray(hr.normal(SHAPE, 7, dtype="float32") * 0.5)


SCHEDULERS = [
    ("ddpm", lambda: DDPMScheduler(), {}),
    ("ddim-eta0", lambda: DDIMScheduler(), {"eta": 0.0}),
    ("ddim-eta1", lambda: DDIMScheduler(), {"eta": 1.0}),
    ("dpm++2m", lambda: DPMSolverMultistepScheduler(), {}),
]


def _loop(sched, m, x, kw, steps=10):
    for i, t in enumerate(sched.timesteps[:steps]):
        x = sched.step(m, int(t), x, seed=11, offset=(i + 1) * N, **kw).prev_sample
    return x


@pytest.mark.parametrize("name,make,kw", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_cuda_graph_replays_ten_steps(name, make, kw):
    import cupy as cp

    m = _model_output()
    x_T = cp.asarray(hr.normal(SHAPE, 3, dtype="float32"))
    ref = make()
    ref.set_timesteps(20)
    eager = cp.array(_loop(ref, m, x_T.copy(), kw))  # a copy outside the scheduler's buffers

    s = make()
    s.set_timesteps(20)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        warm = _loop(s, m, x_T.copy(), kw)  # fills the buffer pool and the error counter
        del warm
        s.set_timesteps(20)
        x = x_T.copy()
        stream.synchronize()
        stream.begin_capture()
        try:
            out = _loop(s, m, x, kw)
        finally:
            graph = stream.end_capture()
        out.fill(np.nan)  # nothing ran yet: the replay must write every element
        graph.launch(stream)
        stream.synchronize()
        first = out.get()
        out.fill(np.nan)
        graph.launch(stream)  # a second replay gives the same
        stream.synchronize()
    np.testing.assert_array_equal(first, eager.get())
    np.testing.assert_array_equal(out.get(), eager.get())
    check_errors()


def _device_t(t, kind):
    import cupy as cp

    if kind == "cupy":
        return cp.asarray(t)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    return torch.as_tensor(np.asarray(t)).cuda()


def _checked(where):
    """check_errors, saying which call left something in the counters."""
    try:
        check_errors()
    except ValueError as exc:
        raise AssertionError(f"{where}: {exc}") from None


@pytest.mark.parametrize("kind", ["cupy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_device_timesteps_equal_host_timesteps(kind, dtype):
    import cupy as cp

    x = hr.normal(SHAPE, 1, dtype=dtype)
    m = hr.normal(SHAPE, 2, dtype=dtype) * 0.5
    xg, mg = cp.asarray(x), cp.asarray(m)
    per_sample = np.array([999, 500, 20, 0])
    for name, make, kw in (
        ("DDPM", lambda: DDPMScheduler(), {}),
        ("DDPM thresholding", lambda: DDPMScheduler(thresholding=True, prediction_type="v_prediction"), {}),
        ("DDIM eta 1", lambda: DDIMScheduler(), {"eta": 1.0}),
        ("DDIM clipped output", lambda: DDIMScheduler(clip_sample=False), {"use_clipped_model_output": True}),
    ):
        a, b = make(), make()
        a.set_timesteps(1000)
        b.set_timesteps(1000)
        for t in (int(a.timesteps[3]), per_sample):
            where = f"{name}, timestep {t}"
            check_errors()
            host = a.step(mg, t, xg, seed=4, offset=0, **kw)
            _checked(f"{where}: host timesteps")
            dev = b.step(mg, _device_t(t, kind), xg, seed=4, offset=0, **kw)
            _checked(f"{where}: device timesteps")
            pd = dev.prev_sample
            pd = cp.asarray(pd) if kind == "cupy" else cp.from_dlpack(pd)
            np.testing.assert_array_equal(pd.get(), host.prev_sample.get(), err_msg=where)
            x0d = dev.pred_original_sample
            _checked(f"{where}: device data prediction")
            x0d = cp.asarray(x0d) if kind == "cupy" else cp.from_dlpack(x0d)
            np.testing.assert_array_equal(x0d.get(), host.pred_original_sample.get(), err_msg=where)
            _checked(f"{where}: host data prediction")
    # the forward process and the velocity target
    s = DDPMScheduler()
    z = cp.asarray(hr.normal(SHAPE, 5, dtype=dtype))
    for t in (17, per_sample):
        for f in (s.add_noise, s.get_velocity):
            h = f(xg, z, t)
            d = f(xg, z, _device_t(t, kind))
            d = d if kind == "cupy" else cp.from_dlpack(d)
            np.testing.assert_array_equal(d.get(), h.get())
    g = q_sample(xg, cp.asarray(per_sample), seed=9, offset=3)
    np.testing.assert_array_equal(g.get(), q_sample(x, per_sample, seed=9, offset=3))
    # DPM-Solver++ takes its steps in order; device timesteps are checked
    p, q = DPMSolverMultistepScheduler(), DPMSolverMultistepScheduler()
    p.set_timesteps(10)
    q.set_timesteps(10)
    xa, xb = xg, xg
    for t in p.timesteps:
        xa = p.step(mg, int(t), xa).prev_sample
        xb = q.step(mg, _device_t(np.full(SHAPE[0], t), kind), xb).prev_sample
        xb = xb if kind == "cupy" else cp.from_dlpack(xb)
    np.testing.assert_array_equal(xb.get(), xa.get())
    check_errors()


def test_bad_device_timesteps_are_reported():
    import cupy as cp

    x = cp.asarray(hr.normal(SHAPE, 1, dtype="float32"))
    m = cp.asarray(hr.normal(SHAPE, 2, dtype="float32"))
    check_errors()
    s = DDPMScheduler()
    s.set_timesteps(10)
    out = s.step(m, cp.asarray(5), x, seed=0).prev_sample  # 5 is not among the 10 timesteps
    with pytest.raises(ValueError, match="'timestep'"):
        check_errors()
    assert bool(cp.isnan(out).all())  # and the result says so
    s.add_noise(x, m, cp.asarray([0, 1, 1000, 3]))  # 1000 is out of range
    with pytest.raises(ValueError, match="'timestep'"):
        check_errors()
    p = DPMSolverMultistepScheduler()
    p.set_timesteps(10)
    p.step(m, cp.asarray(int(p.timesteps[1])), x)  # not the first step
    with pytest.raises(ValueError, match="'timestep'"):
        check_errors()
    with pytest.raises(TypeError, match="'timestep'"):
        s.step(m, cp.asarray(5.0), x)
    with pytest.raises(ValueError, match="'timestep'"):
        s.step(m.get(), cp.asarray(5), x.get())
