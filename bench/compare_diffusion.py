"""Gaussian diffusion steps on a (64, 3, 64, 64) float32 batch: heatbath's fused
DDIM (eta = 0) and DDPM steps against the copy bandwidth of the same arrays,
a straightforward numpy DDPM step, and diffusers' DDPMScheduler.step on CPU
torch tensors (when diffusers and torch import).

Bandwidth: bytes a step must touch / its median time, where a step reads
sample and model_output and writes prev_sample and pred_original_sample (4
arrays); copy: ``np.copyto`` of one array into another (2 arrays) and
heatbath's own 2-thread copy (a q_sample with sqrt(abar) = 1 and no noise),
whichever is faster is the reference.

    python bench/compare_diffusion.py            # via bench/compare.py --only diffusion
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heatbath  # noqa: E402
from heatbath.diffusion import DDIMScheduler, DDPMScheduler  # noqa: E402
from heatbath.diffusion import _kernels as K  # noqa: E402
from timing import interleaved  # noqa: E402

SHAPE = (64, 3, 64, 64)


def _numpy_ddpm(
    sch: DDPMScheduler, rng: np.random.Generator, m: np.ndarray, t: int, x: np.ndarray, out: dict
) -> np.ndarray:
    """The textbook DDPM step in numpy (epsilon prediction, clipping, fixed_small)."""
    A = sch.alphas_cumprod
    prev_t = int(sch.previous_timestep(t))
    a_t, a_p = A[t], (A[prev_t] if prev_t >= 0 else 1.0)
    b_t, b_p = 1 - a_t, 1 - a_p
    cur_a = a_t / a_p
    cur_b = 1 - cur_a
    z = rng.standard_normal(x.shape, dtype=np.float32)
    x0 = (x - np.float32(b_t**0.5) * m) / np.float32(a_t**0.5)
    np.clip(x0, -1, 1, out=x0)
    prev = np.float32(a_p**0.5 * cur_b / b_t) * x0 + np.float32(cur_a**0.5 * b_p / b_t) * x
    prev += np.float32(((1 - a_p) / (1 - a_t) * cur_b) ** 0.5) * z
    out["x0"] = x0
    return prev


def section_diffusion(repeat: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    m = rng.standard_normal(SHAPE, dtype=np.float32) * np.float32(0.5)
    dst = np.empty_like(x)
    n = x.size
    ddim = DDIMScheduler()
    ddim.set_timesteps(50)
    ddpm = DDPMScheduler()
    ddpm.set_timesteps(1000)
    t = 500
    gen = np.random.default_rng(1)
    keep: dict = {}
    coef = K.new_coefs(1)
    coef[:, K.AX] = 1.0
    x2, d2 = x.reshape(1, -1), dst.reshape(1, -1)

    def hb_copy():
        K.fused_step(x2, coef, d2)

    fns = {
        "np_copy": lambda: np.copyto(dst, x),
        "hb_copy": hb_copy,
        "ddim": lambda: ddim.step(m, 980, x, eta=0.0),
        "ddpm": lambda: ddpm.step(m, t, x, seed=7, offset=0),
        "numpy_ddpm": lambda: _numpy_ddpm(ddpm, gen, m, t, x, keep),
    }
    peer = None
    set_torch_threads = None
    try:
        import diffusers
        import torch

        dsch = diffusers.DDPMScheduler()
        dsch.set_timesteps(1000)
        tx, tm = torch.from_numpy(x), torch.from_numpy(m)
        tg = torch.Generator().manual_seed(0)
        fns["diffusers"] = lambda: dsch.step(tm, t, tx, generator=tg)
        set_torch_threads = torch.set_num_threads
        peer = f"diffusers {diffusers.__version__}, torch {torch.__version__} (threads as heatbath)"
    except ImportError:
        pass
    nbytes = x.nbytes
    print(
        f"\n== diffusion: one step on a {SHAPE} float32 batch ({n:,} elements, {nbytes / 2**20:.1f} MiB "
        f"per array), median of {repeat} interleaved runs =="
    )
    print(f"peer: {peer}" if peer else "peer: diffusers/torch not importable; the diffusers ratio is skipped")
    print("each call timed from cold caches (a 96 MiB buffer written before it)")
    print("bandwidth = bytes a step touches (reads sample, model_output; writes prev_sample,")
    print("  pred_original_sample) / time, against the faster copy of one array into another")
    for threads in (1, 2):
        if set_torch_threads is not None:
            set_torch_threads(threads)
        with heatbath.threads(threads):
            # every call starts from cold caches (a 96 MiB write, 3x the L3 of
            # this machine), so steps and copies are all measured from memory
            ts = interleaved(fns, repeat, flush_bytes=96 << 20)
        bw_np, bw_hb = 2 * nbytes / ts["np_copy"], 2 * nbytes / ts["hb_copy"]
        copy_bw = max(bw_np, bw_hb)
        print(f"-- heatbath threads = {threads} (np.copyto and numpy's Generator are single-threaded) --")
        print(
            f"copy  np.copyto {ts['np_copy'] * 1e3:7.3f} ms {bw_np / 1e9:6.1f} GB/s | "
            f"heatbath {ts['hb_copy'] * 1e3:7.3f} ms {bw_hb / 1e9:6.1f} GB/s"
        )
        for name in ("ddim", "ddpm"):
            bw = 4 * nbytes / ts[name]
            frac = bw / copy_bw
            print(f"{name:5s} {ts[name] * 1e3:7.3f} ms {bw / 1e9:6.1f} GB/s = {frac:6.1%} of copy bandwidth")
        r = ts["numpy_ddpm"] / ts["ddpm"]
        print(f"DDPM vs numpy (standard_normal + arithmetic) {ts['numpy_ddpm'] * 1e3:8.3f} ms: {r:6.1f}x")
        if "diffusers" in ts:
            r = ts["diffusers"] / ts["ddpm"]
            ms = ts["diffusers"] * 1e3
            print(f"DDPM vs diffusers.DDPMScheduler.step (CPU torch) {ms:8.3f} ms: {r:6.1f}x")
    if peer:
        _agreement_with_diffusers()


def _agreement_with_diffusers() -> None:
    """Max relative difference of heatbath's steps from diffusers' own, given
    the same noise (diffusers keeps float32 tables, so about 1e-7 is the floor)."""
    import diffusers
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    m = (rng.standard_normal((4, 3, 16, 16)) * 0.5).astype(np.float32)
    z = rng.standard_normal(x.shape).astype(np.float32)
    tx, tm, tz = torch.from_numpy(x), torch.from_numpy(m), torch.from_numpy(z)

    def rel(a, b) -> float:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / np.abs(b).max())

    out = []
    for kw in (dict(), dict(clip_sample=False, prediction_type="v_prediction")):
        d, h = diffusers.DDPMScheduler(**kw), DDPMScheduler(**kw)
        d.set_timesteps(50)
        h.set_timesteps(50)
        t = int(h.timesteps[10])
        g = torch.Generator().manual_seed(1)
        zz = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
        out.append(
            rel(h.step(m, t, x, noise=zz.numpy()).prev_sample, d.step(tm, t, tx, generator=g).prev_sample)
        )
        d, h = diffusers.DDIMScheduler(**kw), DDIMScheduler(**kw)
        d.set_timesteps(20)
        h.set_timesteps(20)
        t = int(h.timesteps[3])
        out.append(
            rel(
                h.step(m, t, x, eta=0.5, noise=z).prev_sample,
                d.step(tm, t, tx, eta=0.5, variance_noise=tz).prev_sample,
            )
        )
    print(f"agreement with diffusers (same noise, DDPM/DDIM, epsilon and v): max rel diff {max(out):.1e}")


SECTIONS = {"diffusion": section_diffusion}

if __name__ == "__main__":
    section_diffusion(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
