"""heatbath's schedulers inside diffusers' own pipelines, swapped in the way a
diffusers user does it (``pipe.scheduler = X.from_config(pipe.scheduler.config)``),
with a tiny random ``UNet2DModel``; and diffusers' configuration protocol
(from_config both ways, save_pretrained / from_pretrained, compatibles).

Oracles:
- DDIM (eta = 0) on torch tensors: diffusers' own images, to the bit (the
  scheduler steps torch tensors in diffusers' float32 operation order on
  diffusers' float32 tables), and step by step against diffusers' ``step``
  over prediction types, clipping, schedules and zero-SNR rescaling.
- DDIM through the fused kernel (``torch_exact = False``) and DPM-Solver++(2M):
  a float64 numpy run of the papers' formulas with the UNet in float64. Two
  float32 implementations differ from each other by at most the sum of their
  float32 rounding errors, so heatbath's distance to diffusers is bounded by
  twice diffusers' own distance to the float64 run (|hb - dif| <= |hb - ref|
  + |dif - ref|, with heatbath no less accurate than diffusers).
- DDPM: the noise streams differ by design (Philox vs torch), so the output
  distributions are compared: per pixel, the difference of the means and of
  the variances of two independent batches of N samples, in units of its
  standard error (from the batches' own second and fourth moments), must lie
  within the two-sided Bonferroni bound for a family-wise false-alarm rate of
  1e-3 over all pixels and both statistics. The same check must reject a
  scheduler with the wrong variance (``fixed_large``): the test has power.

Skipped where torch or diffusers is not installed (``pip install ".[diffusers]"``).
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[diffusers]')")
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (pip install '.[diffusers]')")

import heatbath.diffusion as hd  # noqa: E402
from test_diffusion_steps import ref_dpm_run  # noqa: E402

STEPS = 20


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A tiny network: torch's threads would only wait for each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
SHAPE = (3, 8, 8)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(
        sample_size=SHAPE[1],
        in_channels=SHAPE[0],
        out_channels=SHAPE[0],
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    return net.eval()


@pytest.fixture(scope="module")
def unet64(unet):
    return copy.deepcopy(unet).double()


def _abar(T=1000, beta_start=1e-4, beta_end=0.02):
    """diffusers' "linear" schedule in float64 (the oracle's own tables)."""
    return np.cumprod(1.0 - np.linspace(beta_start, beta_end, T))


def _eps64(unet64, x, t):
    with torch.no_grad():
        return unet64(torch.from_numpy(x), int(t)).sample.numpy()


def _x_T(batch, seed):
    return torch.randn((batch,) + SHAPE, generator=torch.Generator().manual_seed(seed))


def _image(x):
    """The pipelines' post-processing: (x / 2 + 0.5) clamped to [0, 1]."""
    return np.clip(x / 2 + 0.5, 0.0, 1.0)


def _swap(pipe, cls):
    """The user's line; diffusers' configs carry keys heatbath does not read
    silently only when they are bookkeeping, so no warning is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    return pipe.scheduler


def _report(name, hb, dif, ref):
    e_hb, e_dif, d = np.abs(hb - ref).max(), np.abs(dif - ref).max(), np.abs(hb - dif).max()
    print(
        f"{name}: max |hb - dif| {d:.3g}, max |hb - ref64| {e_hb:.3g}, max |dif - ref64| {e_dif:.3g}, "
        f"bit-equal {np.mean(hb == dif):.4f} of values"
    )
    return e_hb, e_dif, d


def test_ddim_pipeline_eta0_equals_diffusers_to_the_bit(unet):
    pipe = diffusers.DDIMPipeline(unet=unet, scheduler=diffusers.DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    kw = dict(batch_size=4, num_inference_steps=STEPS, eta=0.0, output_type="np")
    dif = pipe(generator=torch.Generator().manual_seed(1), **kw).images
    sch = _swap(pipe, hd.DDIMScheduler)
    assert isinstance(sch, hd.DDIMScheduler) and pipe.scheduler is sch
    hb = pipe(generator=torch.Generator().manual_seed(1), **kw).images
    assert hb.dtype == dif.dtype and hb.shape == dif.shape
    np.testing.assert_array_equal(hb, dif)
    # a different start gives different images: equality is not vacuous
    other = pipe(generator=torch.Generator().manual_seed(2), **kw).images
    assert np.mean(other == dif) < 0.5


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"clip_sample": False, "set_alpha_to_one": False},
        {"prediction_type": "v_prediction", "beta_schedule": "scaled_linear", "clip_sample": False},
        {"prediction_type": "sample", "timestep_spacing": "trailing", "rescale_betas_zero_snr": True},
        {"beta_schedule": "squaredcos_cap_v2", "steps_offset": 1, "clip_sample_range": 0.5},
        {"num_train_timesteps": 50, "trained_betas": np.linspace(1e-4, 0.05, 50).tolist()},
    ],
    ids=["default", "no-clip", "v-scaled", "sample-zsnr", "cosine", "trained"],
)
@pytest.mark.parametrize("clipped_eps", [False, True])
def test_ddim_torch_steps_equal_diffusers_steps_to_the_bit(opts, clipped_eps):
    d = diffusers.DDIMScheduler(**opts)
    h = hd.DDIMScheduler.from_config(d.config)
    d.set_timesteps(10)
    h.set_timesteps(10)
    g = torch.Generator().manual_seed(5)
    x = torch.randn((3,) + SHAPE, generator=g) * 1.5
    xd, xh = x.clone(), x.clone()
    for t in d.timesteps:
        eps = torch.randn((3,) + SHAPE, generator=g)
        od = d.step(eps, t, xd, eta=0.0, use_clipped_model_output=clipped_eps)
        oh = h.step(eps, t, xh, eta=0.0, use_clipped_model_output=clipped_eps)
        assert torch.equal(oh.pred_original_sample, od.pred_original_sample), int(t)
        assert torch.equal(oh.prev_sample, od.prev_sample), int(t)
        xd, xh = od.prev_sample, oh.prev_sample
    # eta > 0 with the same variance noise given to both
    z = torch.randn((3,) + SHAPE, generator=g)
    t = d.timesteps[3]
    od = d.step(eps, t, xd, eta=0.7, variance_noise=z)
    oh = h.step(eps, t, xh, eta=0.7, variance_noise=z)
    assert torch.equal(oh.prev_sample, od.prev_sample)


def test_ddim_torch_and_fused_paths_agree_within_float32_rounding():
    """The exact torch path and the fused kernel are two float32 evaluations
    of one formula: each lies within the forward error bound of float32
    arithmetic (tables included) of a float64 evaluation; with eta > 0 both
    add the stream's Philox normals (seed, offset + flat index)."""
    import heatbath.random as hr

    h = hd.DDIMScheduler()
    h.set_timesteps(20)
    g = torch.Generator().manual_seed(3)
    x = torch.randn((4,) + SHAPE, generator=g)
    eps = torch.randn((4,) + SHAPE, generator=g)
    A = _abar()
    xn, en = x.double().numpy(), eps.double().numpy()
    u = 2.0**-24
    for t in (h.timesteps[0], h.timesteps[10], h.timesteps[-1]):
        ti = int(t)
        a_t, pt = A[ti], ti - 1000 // 20
        a_p = A[pt] if pt >= 0 else 1.0
        x0 = np.clip((xn - (1 - a_t) ** 0.5 * en) / a_t**0.5, -1, 1)
        ref = a_p**0.5 * x0 + (1 - a_p) ** 0.5 * en
        # |error| <= K u (the magnitudes the formula combines), K = 32 for six
        # roundings, square roots and float32 tables (<= 6 ulp off float64);
        # 1 - abar in float32 carries the absolute error of abar, so its square
        # root is off by about u abar / (2 sqrt(1 - abar)) (diffusers' own
        # arithmetic: 8e-5 relative at t = 0)
        def root_err(a):
            return 0.0 if a >= 1 else (1 - a) ** 0.5 + a / (1 - a) ** 0.5

        mag = (a_p / a_t) ** 0.5 * (np.abs(xn) + root_err(a_t) * np.abs(en)) + root_err(a_p) * np.abs(en)
        for exact in (True, False):
            h.torch_exact = exact
            got = h.step(eps, t, x, eta=0.0).prev_sample
            assert got.dtype == torch.float32
            err = np.abs(got.double().numpy() - ref)
            assert np.all(err <= 32 * u * mag), (ti, exact, float((err / mag).max() / u))
        # eta > 0: the drawn noise is the stream's normals, on both paths
        z = torch.from_numpy(hr.normal(tuple(x.shape), 9, 0, "float32"))
        for exact in (True, False):
            h.torch_exact = exact
            drawn = h.step(eps, t, x, eta=1.0, seed=9, offset=0).prev_sample
            given = h.step(eps, t, x, eta=1.0, noise=z).prev_sample
            assert torch.equal(drawn, given), (ti, exact)
            other = h.step(eps, t, x, eta=1.0, seed=10, offset=0).prev_sample
            if a_p < 1:  # the last step (abar_prev = 1) has no noise term
                assert float((drawn - other).abs().max()) > 0.1
    h.torch_exact = True
    with pytest.raises(ValueError, match="'model_output'"):
        h.step(torch.full_like(eps, float("nan")), h.timesteps[0], x)
    h.check_finite = False  # the caller vouches: NaN goes through, as in diffusers
    assert torch.isnan(h.step(torch.full_like(eps, float("nan")), h.timesteps[0], x).prev_sample).all()
    h.check_finite = True
    with pytest.raises(ValueError, match="'sample'"):
        h.step(eps, h.timesteps[0], torch.full_like(x, float("inf")))
    with pytest.raises(ValueError, match="'model_output'"):
        h.step(eps[:2], h.timesteps[0], x)
    with pytest.raises(TypeError, match="'model_output'"):
        h.step(eps.double(), h.timesteps[0], x)


def test_ddim_fused_kernel_in_a_pipeline_within_float32_rounding(unet, unet64):
    pipe = diffusers.DDIMPipeline(unet=unet, scheduler=diffusers.DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    kw = dict(batch_size=4, num_inference_steps=STEPS, eta=0.0, output_type="np")
    dif = pipe(generator=torch.Generator().manual_seed(1), **kw).images
    sch = _swap(pipe, hd.DDIMScheduler)
    sch.torch_exact = False
    hb = pipe(generator=torch.Generator().manual_seed(1), **kw).images

    # the oracle: DDIM (clip_sample, set_alpha_to_one, leading spacing) in float64
    A = _abar()
    x = _x_T(4, 1).numpy().astype(np.float64)
    ts = np.arange(0, STEPS)[::-1] * (1000 // STEPS)
    for t in ts:
        m = _eps64(unet64, x, t)
        a_t, pt = A[t], t - 1000 // STEPS
        a_p = A[pt] if pt >= 0 else 1.0
        x0 = np.clip((x - (1 - a_t) ** 0.5 * m) / a_t**0.5, -1.0, 1.0)
        x = a_p**0.5 * x0 + (1 - a_p) ** 0.5 * m
    ref = _image(x).transpose(0, 2, 3, 1)
    e_hb, e_dif, d = _report("DDIM eta=0", hb, dif, ref)
    assert e_dif < 1e-2  # the oracle is the same computation
    assert e_hb <= 2 * e_dif + 1e-6
    assert d <= 3 * e_dif + 1e-6


# diffusers' own set_timesteps converts a torch tensor with np.array (numpy 2 warns)
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_dpm_solver_loop_within_float32_rounding_of_diffusers(unet, unet64):
    def run(sch, x):
        sch.set_timesteps(STEPS)
        with torch.no_grad():
            for t in sch.timesteps:
                x = sch.step(unet(x, t).sample, t, x, return_dict=False)[0]
        return x.numpy()

    d_sch = diffusers.DPMSolverMultistepScheduler()
    dif = run(d_sch, _x_T(4, 2))
    h_sch = hd.DPMSolverMultistepScheduler.from_config(d_sch.config)
    assert isinstance(h_sch.timesteps, torch.Tensor)  # stands in for a diffusers scheduler
    hb = run(h_sch, _x_T(4, 2))

    A = _abar()
    x64 = _x_T(4, 2).numpy().astype(np.float64)
    ts = np.asarray(h_sch.timesteps)
    ref = ref_dpm_run(A, ts, lambda x, t, i: _eps64(unet64, x, t), x64)[-1]
    e_hb, e_dif, d = _report("DPM-Solver++(2M)", hb, dif, ref)
    assert e_dif < 1e-2
    assert e_hb <= 2 * e_dif + 1e-6
    assert d <= 3 * e_dif + 1e-6


def _moments(x):
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    m = x.mean(0)
    c = x - m
    v = (c**2).mean(0)
    return m, v, (c**4).mean(0)


def _max_z(a, b):
    """max |z| of the per-pixel differences of means and of variances of two
    independent batches of n samples (standard errors from their moments)."""
    n = a.shape[0]
    (m1, v1, k1), (m2, v2, k2) = _moments(a), _moments(b)
    floor = 1e-12  # pixels clamped to one value in both batches
    z_mean = (m1 - m2) / np.sqrt((v1 + v2) / n + floor)
    z_var = (v1 - v2) / np.sqrt((np.maximum(k1 - v1**2, 0) + np.maximum(k2 - v2**2, 0)) / n + floor)
    return max(np.abs(z_mean).max(), np.abs(z_var).max())


def test_ddpm_pipeline_statistically_equivalent(unet):
    n = 512
    pixels = int(np.prod(SHAPE))
    # Bonferroni: family-wise false alarm 1e-3 over 2 statistics per pixel, two-sided
    from statistics import NormalDist

    z_star = NormalDist().inv_cdf(1 - 1e-3 / (2 * 2 * pixels))
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler())
    pipe.set_progress_bar_config(disable=True)
    kw = dict(batch_size=n, num_inference_steps=STEPS, output_type="np")
    dif = pipe(generator=torch.Generator().manual_seed(11), **kw).images
    sch = _swap(pipe, hd.DDPMScheduler)
    hb = pipe(generator=torch.Generator().manual_seed(12), **kw).images
    z = _max_z(hb, dif)
    # power: the wrong reverse variance is rejected by the same check
    pipe.scheduler = hd.DDPMScheduler.from_config(sch.config, variance_type="fixed_large")
    z_wrong = _max_z(pipe(generator=torch.Generator().manual_seed(13), **kw).images, dif)
    print(f"DDPM, {n} samples per side: max |z| {z:.2f} (bound {z_star:.2f}); fixed_large: {z_wrong:.1f}")
    assert z < z_star
    assert z_wrong > z_star


# ---- configuration protocol --------------------------------------------------


def _public(cfg):
    """A config without diffusers' bookkeeping keys (``_use_default_values``...)."""
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


@pytest.mark.parametrize("name", ["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"])
def test_config_round_trip_both_ways(name, tmp_path):
    D, H = getattr(diffusers, name), getattr(hd, name)
    d = D(beta_schedule="scaled_linear", prediction_type="v_prediction", steps_offset=1)
    h = H.from_config(d.config)
    for k, v in h.config.items():
        assert d.config[k] == v, k
    back = D.from_config(h.config)  # the user switches back
    assert _public(back.config) == _public(d.config)
    # scheduler_config.json, read by both
    path = h.save_pretrained(tmp_path / "s")
    with open(path) as f:
        data = json.load(f)
    assert data["_class_name"] == name and data["beta_schedule"] == "scaled_linear"
    assert _public(D.from_pretrained(tmp_path / "s").config) == _public(d.config)
    assert _public(H.from_pretrained(tmp_path / "s").config) == _public(h.config)
    d.save_pretrained(tmp_path / "pipe" / "scheduler")
    h2 = H.from_pretrained(tmp_path / "pipe", subfolder="scheduler")
    assert _public(h2.config) == _public(h.config) and isinstance(h2.timesteps, torch.Tensor)


def test_trained_betas_travel_in_the_config():
    betas = np.linspace(1e-4, 0.03, 50)
    d = diffusers.DDIMScheduler(num_train_timesteps=50, trained_betas=betas.tolist())
    h = hd.DDIMScheduler.from_config(d.config)
    np.testing.assert_array_equal(h.betas, betas)
    back = diffusers.DDIMScheduler.from_config(h.config)
    np.testing.assert_allclose(back.betas.numpy(), betas, rtol=1e-7)


def test_timesteps_follow_the_pipeline_device():
    d = diffusers.DDIMScheduler()
    h = hd.DDIMScheduler.from_config(d.config)
    d.set_timesteps(10, device="cpu")
    h.set_timesteps(10, device="cpu")
    assert isinstance(h.timesteps, torch.Tensor) and h.timesteps.dtype == torch.int64
    assert torch.equal(h.timesteps, d.timesteps)
    own = hd.DDIMScheduler()  # heatbath's own: numpy, unless given a torch device
    own.set_timesteps(10)
    assert isinstance(own.timesteps, np.ndarray)
    own.set_timesteps(10, device=torch.device("cpu"))
    assert isinstance(own.timesteps, torch.Tensor)
    # what a pipeline touches
    assert h.init_noise_sigma == 1.0 and h.order == 1
    assert hd.DPMSolverMultistepScheduler.from_config(d.config).order == 2
    x = torch.randn(2, *SHAPE)
    assert h.scale_model_input(x, h.timesteps[0]) is x
    out = h.step(torch.randn(2, *SHAPE), h.timesteps[0], x, return_dict=False)
    assert isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor)
    dpm = hd.DPMSolverMultistepScheduler.from_config(d.config)
    dpm.set_timesteps(10)
    out = dpm.step(torch.randn(2, *SHAPE), dpm.timesteps[0], x, return_dict=False)
    assert isinstance(out, tuple) and len(out) == 1


def test_compatibles_name_heatbath_and_diffusers():
    for cls in (hd.DDPMScheduler, hd.DDIMScheduler, hd.DPMSolverMultistepScheduler):
        names = cls.compatibles
        assert f"heatbath.diffusion.{cls.__name__}" in names and f"diffusers.{cls.__name__}" in names
        for n in names:
            mod, _, attr = n.rpartition(".")
            assert hasattr(hd if mod == "heatbath.diffusion" else diffusers, attr), n


def test_foreign_keys_warn_and_unimplemented_options_are_refused():
    cfg = _public(diffusers.EulerDiscreteScheduler().config)
    with pytest.warns(UserWarning, match=r"_class_name='EulerDiscreteScheduler'.*interpolation_type"):
        hd.DDIMScheduler.from_config({**cfg, "_class_name": "EulerDiscreteScheduler"})
    with pytest.raises(ValueError, match="'use_karras_sigmas'"):
        hd.DPMSolverMultistepScheduler.from_config(
            diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True).config
        )
    with pytest.raises(ValueError, match="'solver_order'"):
        hd.DPMSolverMultistepScheduler.from_config(diffusers.DPMSolverMultistepScheduler(solver_order=3).config)
    with pytest.raises(TypeError, match="'foo'"):
        hd.DDIMScheduler.from_config(diffusers.DDIMScheduler().config, foo=1)
    with warnings.catch_warnings():  # a sibling's option (DDPM's variance) goes unused silently
        warnings.simplefilter("error")
        h, unused = hd.DDIMScheduler.from_config(
            diffusers.DDPMScheduler().config, return_unused_kwargs=True, clip_sample=False
        )
    assert unused == {"variance_type": "fixed_small"} and h.config.clip_sample is False
    with pytest.raises(TypeError, match="read-only"):
        h.config["clip_sample"] = True
    with pytest.raises(OSError, match="nothing is downloaded"):
        hd.DDIMScheduler.from_pretrained("google/ddpm-cifar10-32")
