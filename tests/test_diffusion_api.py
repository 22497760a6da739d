"""The diffusion API around the kernels: errors that name the argument, the
sampling loop (callback, progress bar, inpainting by a known mask), output
objects, buffer recycling and DLPack interop with torch."""

from __future__ import annotations

import numpy as np
import pytest
from heatbath import random as hr
from heatbath.diffusion import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    q_sample,
    sample,
    sohl_dickstein_step,
)

SHAPE = (4, 2, 8, 8)
SCHEDULERS = [DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler]


def _xm(dtype=np.float32):
    return hr.normal(SHAPE, 1, dtype=np.dtype(dtype).name), hr.normal(SHAPE, 2, dtype=np.dtype(dtype).name)


@pytest.mark.parametrize("cls", SCHEDULERS)
def test_errors_name_the_argument(cls):
    x, m = _xm()
    s = cls()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        s.step(m, 999, x)
    s.set_timesteps(10)
    t = int(s.timesteps[0])
    with pytest.raises(ValueError, match="'model_output'.*shape"):
        s.step(m[:, :1], t, x)
    with pytest.raises(TypeError, match="'model_output'.*dtype"):
        s.step(m.astype(np.float64), t, x)
    with pytest.raises(ValueError, match="'timestep'"):
        s.step(m, 1000, x)
    with pytest.raises(ValueError, match="'timestep'"):
        s.step(m, -1, x)
    with pytest.raises(ValueError, match="'timestep'"):
        s.step(m, np.array([t, t]), x)  # 2 timesteps for a batch of 4
    with pytest.raises(TypeError, match="'timestep'"):
        s.step(m, 3.5, x)
    bad = m.copy()
    bad[2, 1, 3, 4] = np.nan
    with pytest.raises(ValueError, match="'model_output'.*NaN"):
        s.step(bad, t, x)
    bad[2, 1, 3, 4] = np.inf
    with pytest.raises(ValueError, match="'model_output'.*NaN or infinite"):
        s.step(bad, t, x)
    with pytest.raises(TypeError, match="'sample'"):
        s.step(m.astype(np.int32), t, x.astype(np.int32))


def test_more_errors():
    x, m = _xm()
    s = DDPMScheduler()
    s.set_timesteps(10)
    with pytest.raises(ValueError, match="'timestep'.*not among"):
        s.step(m, 5, x)  # 5 is not one of the 10 timesteps
    with pytest.raises(ValueError, match="'noise'"):
        s.step(m, int(s.timesteps[0]), x, noise=m[:2])
    with pytest.raises(ValueError, match="'num_inference_steps'"):
        s.set_timesteps(0)
    with pytest.raises(ValueError, match="'timestep_spacing'"):
        s.set_timesteps(10, timestep_spacing="uniform")
    with pytest.raises(ValueError, match="'prediction_type'"):
        DDPMScheduler(prediction_type="x0")
    with pytest.raises(ValueError, match="'variance_type'"):
        DDPMScheduler(variance_type="fixed_large_log")
    d = DDIMScheduler()
    d.set_timesteps(10)
    with pytest.raises(ValueError, match="'eta'"):
        d.step(m, 900, x, eta=-1.0)
    lr = DDPMScheduler(variance_type="learned_range")
    lr.set_timesteps(10)
    m2 = np.concatenate([m, m], axis=1)
    m2[0, 3, 0, 0] = np.nan  # in the variance half
    with pytest.raises(ValueError, match="'model_output'"):
        lr.step(m2, int(lr.timesteps[0]), x)
    with pytest.raises(ValueError, match="'t'"):
        q_sample(x, 1000)
    with pytest.raises(ValueError, match="'sigma2'"):
        sohl_dickstein_step(x, -np.abs(m))
    with pytest.raises(ValueError, match="'offset'"):
        q_sample(x, 5, seed=1, offset=2**64 - 5)
    with pytest.raises(RuntimeError, match="'scheduler'"):
        sample(lambda x, t: x, SHAPE, DDIMScheduler(), progress=False)
    with pytest.raises(ValueError, match="'mask'"):
        sample(lambda x, t: x, SHAPE, d, known=x, progress=False)


def test_output_object_and_tuple():
    x, m = _xm()
    s = DDIMScheduler()
    s.set_timesteps(10)
    o = s.step(m, 900, x)
    assert o[0] is o.prev_sample and o["pred_original_sample"] is o.pred_original_sample
    prev, x0 = s.step(m, 900, x, return_dict=False)
    np.testing.assert_array_equal(prev, o.prev_sample)
    np.testing.assert_array_equal(x0, o.pred_original_sample)
    assert s.scale_model_input(x, 900) is x
    assert s.init_noise_sigma == 1.0 and s.config.num_train_timesteps == 1000


def test_buffers_recycled_only_when_unreferenced():
    x, m = _xm()
    s = DDIMScheduler(clip_sample=False)
    s.set_timesteps(10)
    kept = []
    for t in s.timesteps[:4]:
        x = s.step(m, t, x).prev_sample
        kept.append(x)
    assert len({id(k.base) for k in kept}) == 4  # every kept array is its own buffer
    snapshot = [k.copy() for k in kept]
    for t in s.timesteps[4:]:
        s.step(m, t, x)
    for a, b in zip(kept, snapshot):
        np.testing.assert_array_equal(a, b)


def test_sample_loop_callback_progress_and_determinism(capsys):
    s = DDIMScheduler(clip_sample=False)
    seen = []

    def model(x, t):
        return 0.1 * x

    a = sample(model, SHAPE, s, steps=5, seed=3, callback=lambda i, t, x: seen.append((i, t)), progress=True)
    assert [i for i, _ in seen] == list(range(5)) and [t for _, t in seen] == list(s.timesteps)
    assert "sampling" in capsys.readouterr().err  # tqdm bar
    b = sample(model, SHAPE, s, steps=5, seed=3, progress=False)
    np.testing.assert_array_equal(a, b)
    x_T = hr.normal(SHAPE, 3)
    np.testing.assert_array_equal(sample(model, None, s, steps=5, x_T=x_T, progress=False), a)
    p = DDPMScheduler(clip_sample=False)
    c = sample(model, SHAPE, p, steps=20, seed=4, progress=False)
    d = sample(model, SHAPE, p, steps=20, seed=4, progress=False)
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(c, sample(model, SHAPE, p, steps=20, seed=5, progress=False))


def test_inpainting_holds_known_pixels_at_forward_noised_values():
    s = DDPMScheduler(clip_sample=False)
    known = hr.normal(SHAPE, 8) * np.float32(0.3)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:, :, :4] = True
    n = int(np.prod(SHAPE))
    checked = []

    def cb(i, t, x):
        ts = list(s.timesteps)
        if i + 1 < len(ts):
            want = q_sample(known, ts[i + 1], s.schedule, 11, (i + 1) * n, stream=1)
            np.testing.assert_array_equal(x[mask], want[mask])
            checked.append(i)

    out = sample(
        lambda x, t: 0.05 * x,
        SHAPE,
        s,
        steps=10,
        seed=11,
        callback=cb,
        progress=False,
        known=known,
        mask=mask,
    )
    np.testing.assert_array_equal(out[mask], known[mask])
    assert np.all(np.isfinite(out)) and not np.allclose(out[~mask], 0)
    assert checked == list(range(9))


def test_dpm_history_resets_with_set_timesteps():
    x, m = _xm(np.float64)
    s = DPMSolverMultistepScheduler()
    s.set_timesteps(5)
    ts = list(s.timesteps)
    a1 = s.step(m, ts[0], x).prev_sample
    a2 = s.step(m, ts[1], a1).prev_sample
    s.set_timesteps(5)
    b1 = s.step(m, ts[0], x).prev_sample
    np.testing.assert_array_equal(a1, b1)
    b2 = s.step(m, ts[1], b1).prev_sample
    np.testing.assert_array_equal(a2, b2)


def test_torch_tensors_in_torch_out():
    torch = pytest.importorskip("torch")
    x, m = _xm()
    s = DDPMScheduler(clip_sample=False)
    s.set_timesteps(10)
    t = int(s.timesteps[2])
    out = s.step(torch.from_numpy(m), t, torch.from_numpy(x), seed=1, offset=0)
    assert isinstance(out.prev_sample, torch.Tensor) and out.prev_sample.dtype == torch.float32
    ref = s.step(m, t, x, seed=1, offset=0).prev_sample
    np.testing.assert_array_equal(out.prev_sample.numpy(), ref)
    # sample(): x_T a torch tensor, a torch model; the loop returns torch
    calls = []

    def model(xt, tt):
        calls.append(type(xt))
        return 0.1 * xt

    y = sample(
        model,
        SHAPE,
        DDIMScheduler(clip_sample=False),
        steps=4,
        x_T=torch.from_numpy(hr.normal(SHAPE, 3)),
        progress=False,
    )
    assert isinstance(y, torch.Tensor) and calls == [torch.Tensor] * 4
    np.testing.assert_array_equal(
        y.numpy(),
        sample(
            lambda a, tt: 0.1 * a, SHAPE, DDIMScheduler(clip_sample=False), steps=4, seed=3, progress=False
        ),
    )
    z = q_sample(torch.from_numpy(x), 10, seed=2)
    assert isinstance(z, torch.Tensor)


def test_perturbed_mean_conditioning():
    s = DDPMScheduler(clip_sample=False)

    def model(x, t):
        return 0.1 * x

    plain = sample(model, SHAPE, s, steps=20, seed=6, progress=False)
    zero = sample(model, SHAPE, s, steps=20, seed=6, progress=False, grad_log_r=lambda x, t: np.zeros_like(x))
    np.testing.assert_allclose(zero, plain, rtol=1e-5, atol=1e-5)
    up = sample(model, SHAPE, s, steps=20, seed=6, progress=False, grad_log_r=lambda x, t: np.ones_like(x))
    assert (up - plain).min() > 0  # the tilt pushes every pixel up
    with pytest.raises(ValueError, match="'grad_log_r'"):
        sample(model, SHAPE, DDIMScheduler(), steps=5, progress=False, grad_log_r=lambda x, t: x)


def test_torch_generator_supplies_the_seed():
    torch = pytest.importorskip("torch")
    x, m = _xm()
    s = DDPMScheduler(clip_sample=False)
    s.set_timesteps(10)
    t = int(s.timesteps[1])
    a = s.step(m, t, x, generator=torch.Generator().manual_seed(3), offset=0).prev_sample
    b = s.step(m, t, x, generator=torch.Generator().manual_seed(3), offset=0).prev_sample
    np.testing.assert_array_equal(a, b)
    d = DDIMScheduler()
    d.set_timesteps(10)
    # diffusers' positional order: (model_output, timestep, sample, eta, use_clipped_model_output, generator)
    c = d.step(m, 900, x, 1.0, False, torch.Generator().manual_seed(3)).prev_sample
    assert np.all(np.isfinite(c))
