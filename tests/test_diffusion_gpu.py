"""The diffusion steps on the GPU (cupy arrays) agree with the CPU kernels:
float32 to the bit where the formula uses only IEEE-exact operations (the
same Philox normals, contraction off on both sides, clipped steps in float64
on both), within 1e-6 relative where a libm function enters (learned-range
variances), float64 to 1e-12; and the samplers, the forward process and the
errors behave as on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath import random as hr
from heatbath.diffusion import (
    check_errors,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    q_sample,
    sample,
    sohl_dickstein_step,
)

pytestmark = pytest.mark.gpu

SHAPE = (6, 3, 17, 19)


def _inputs(dtype, channels=3):
    x = hr.normal(SHAPE, 1, dtype=dtype)
    m = hr.normal((SHAPE[0], channels) + SHAPE[2:], 2, dtype=dtype) * 0.5
    return x, m


def _close(g, c, dtype, exact):
    g = g.get() if hasattr(g, "get") else np.asarray(g)
    if exact and dtype == "float32":
        np.testing.assert_array_equal(g, c)
    else:
        tol = 1e-6 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(g, c, rtol=0, atol=tol * max(np.abs(c).max(), 1e-30))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(clip_sample=False),
        dict(variance_type="fixed_large"),
        dict(prediction_type="v_prediction", thresholding=True, sample_max_value=2.0),
        dict(variance_type="learned_range"),
    ],
)
def test_ddpm_step_matches_cpu(dtype, kw):
    import cupy as cp

    learned = kw.get("variance_type") == "learned_range"
    x, m = _inputs(dtype, 6 if learned else 3)
    if learned:
        m[:, 3:] = np.tanh(m[:, 3:])
    s = DDPMScheduler(**kw)
    s.set_timesteps(100)
    t = np.array([990, 500, 10, 0, 300, 700])
    c = s.step(m, t, x, seed=5, offset=11)
    g = s.step(cp.asarray(m), t, cp.asarray(x), seed=5, offset=11)
    _close(g.prev_sample, c.prev_sample, dtype, exact=not learned and not kw.get("thresholding"))
    _close(g.pred_original_sample, c.pred_original_sample, dtype, exact=not kw.get("thresholding"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_and_dpm_match_cpu(dtype, eta):
    import cupy as cp

    x, m = _inputs(dtype)
    d = DDIMScheduler()
    d.set_timesteps(50)
    t = np.array([980, 500, 0, 20, 300, 700])
    _close(
        d.step(cp.asarray(m), t, cp.asarray(x), eta=eta, seed=3, offset=0).prev_sample,
        d.step(m, t, x, eta=eta, seed=3, offset=0).prev_sample,
        dtype,
        exact=True,
    )
    # offset=None continues the stream on both sides alike
    d1, d2 = DDIMScheduler(), DDIMScheduler()
    d1.set_timesteps(50)
    d2.set_timesteps(50)
    for _ in range(2):
        _close(
            d1.step(cp.asarray(m), t, cp.asarray(x), eta=eta, seed=3).prev_sample,
            d2.step(m, t, x, eta=eta, seed=3).prev_sample,
            dtype,
            exact=True,
        )
    p1, p2 = DPMSolverMultistepScheduler(), DPMSolverMultistepScheduler()
    p1.set_timesteps(10)
    p2.set_timesteps(10)
    xc, xg = x, cp.asarray(x)
    for t in p1.timesteps:
        xc = p1.step(m, t, xc).prev_sample
        xg = p2.step(cp.asarray(m), t, xg).prev_sample
    _close(xg, xc, dtype, exact=False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_and_sohl_dickstein_match_cpu(dtype):
    import cupy as cp

    x, m = _inputs(dtype)
    t = np.array([0, 999, 5, 400, 17, 250])
    g, zg = q_sample(cp.asarray(x), t, seed=9, offset=3, return_noise=True)
    c, zc = q_sample(x, t, seed=9, offset=3, return_noise=True)
    _close(zg, zc, dtype, exact=True)
    _close(g, c, dtype, exact=True)
    var = np.abs(m) + 0.01
    _close(
        sohl_dickstein_step(cp.asarray(x), cp.asarray(var), seed=4),
        sohl_dickstein_step(x, var, seed=4),
        dtype,
        exact=True,
    )


def test_gpu_errors_and_sampler():
    import cupy as cp

    x, m = _inputs("float32")
    s = DDPMScheduler()
    s.set_timesteps(10)
    bad = m.copy()
    bad[1, 2, 3, 4] = np.nan
    check_errors()  # nothing pending
    # a GPU step does not wait for the device: the NaN is counted there and
    # reported by the next check
    out = s.step(cp.asarray(bad), int(s.timesteps[0]), cp.asarray(x))
    assert isinstance(out.prev_sample, cp.ndarray)
    with pytest.raises(ValueError, match="'model_output': contains NaN or infinite values \\(1 elements"):
        check_errors()
    check_errors()  # the counters were reset
    with pytest.raises(ValueError, match="'model_output'"):
        s.step(m, int(s.timesteps[0]), cp.asarray(x))  # CPU model output, GPU sample
    with pytest.raises(ValueError, match="'model_output'"):
        sample(lambda a, t: a * np.float32(np.nan), SHAPE, DDIMScheduler(), steps=3, seed=1, device="cuda",
               progress=False)
    out = sample(
        lambda a, t: 0.1 * a,
        SHAPE,
        DDIMScheduler(clip_sample=False),
        steps=5,
        seed=2,
        device="cuda",
        progress=False,
    )
    ref = sample(
        lambda a, t: 0.1 * a, SHAPE, DDIMScheduler(clip_sample=False), steps=5, seed=2, progress=False
    )
    assert isinstance(out, cp.ndarray)
    np.testing.assert_array_equal(out.get(), ref)


def test_gpu_torch_interop():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    x, m = _inputs("float32")
    s = DDPMScheduler(clip_sample=False)
    s.set_timesteps(10)
    out = s.step(
        torch.from_numpy(m).cuda(), int(s.timesteps[1]), torch.from_numpy(x).cuda(), seed=1, offset=0
    )
    assert out.prev_sample.is_cuda
    np.testing.assert_array_equal(
        out.prev_sample.cpu().numpy(), s.step(m, int(s.timesteps[1]), x, seed=1, offset=0).prev_sample
    )
