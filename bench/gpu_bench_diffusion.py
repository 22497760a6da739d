"""GPU diffusion steps next to the same update written in torch and the
device copy, in one process run (run by bench/gpu_check.sh).

For each shape, float32: a device-to-device copy of one array (cupy; its
bytes read + written over the time give the copy bandwidth), heatbath's
``DDPMScheduler.step`` (noise drawn in the kernel) and ``DDIMScheduler.step``
with eta = 0 on cupy arrays, and the DDPM update written in torch (clamp of
the data prediction, two multiply-adds, ``torch.randn``). Each is timed as a
loop of 50 steps between two CUDA events (what a sampling loop costs,
Python included); the median of 7 loops is reported. A step moves 12 bytes
per element (reads x and the model output, writes the sample).

    python bench/gpu_bench_diffusion.py [--steps 50] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from goals import record  # noqa: E402

SHAPES = [(64, 3, 64, 64), (64, 3, 256, 256)]


def loop_ms(fn, steps: int, repeat: int) -> float:
    """Median milliseconds per call of ``fn(i)`` over loops of ``steps`` calls
    timed with CUDA events."""
    import cupy as cp

    for i in range(3):
        fn(i)
    cp.cuda.Device().synchronize()
    ts = []
    for _ in range(repeat):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        for i in range(steps):
            fn(i)
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b) / steps)
    return statistics.median(ts)


def graph_ms(graph, repeat: int) -> float:
    """Median milliseconds of one replay of a captured CUDA graph."""
    import cupy as cp

    graph.launch()
    cp.cuda.Device().synchronize()
    ts = []
    for _ in range(repeat):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        graph.launch()
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b))
    return statistics.median(ts)


def section(shape, steps: int, repeat: int) -> dict:
    import cupy as cp
    from heatbath import random as hr
    from heatbath.diffusion import DDIMScheduler, DDPMScheduler, check_errors

    n = int(cp.prod(cp.asarray(shape)))
    x = hr.normal(shape, 1, device="cuda")
    m = hr.normal(shape, 2, device="cuda") * 0.5
    dst = cp.empty_like(x)
    res = {"copy": loop_ms(lambda i: cp.copyto(dst, x), steps, repeat)}

    ddpm = DDPMScheduler()
    ddpm.set_timesteps(steps)
    ts = [int(t) for t in ddpm.timesteps]
    res["heatbath DDPM"] = loop_ms(lambda i: ddpm.step(m, ts[i % steps], x, seed=3, offset=i * n).prev_sample,
                                   steps, repeat)
    ddim = DDIMScheduler()
    ddim.set_timesteps(steps)
    res["heatbath DDIM eta=0"] = loop_ms(lambda i: ddim.step(m, ts[i % steps], x).prev_sample, steps, repeat)
    check_errors()
    # the same 50 steps captured once in a CUDA graph and replayed: the device
    # time of the steps alone, without Python between them
    for name, sch, kw in (("DDPM", ddpm, dict(seed=3)), ("DDIM eta=0", ddim, {})):
        stream = cp.cuda.Stream(non_blocking=True)
        with stream:
            xx = x.copy()
            for i in range(steps):  # warm the buffers
                xx = sch.step(m, ts[i], xx, offset=i * n, **kw).prev_sample if name == "DDPM" else \
                    sch.step(m, ts[i], xx).prev_sample
            stream.synchronize()
            stream.begin_capture()
            xx = x
            for i in range(steps):
                xx = sch.step(m, ts[i], xx, offset=i * n, **kw).prev_sample if name == "DDPM" else \
                    sch.step(m, ts[i], xx).prev_sample
            g = stream.end_capture()
        res[f"heatbath {name} (graph)"] = graph_ms(g, repeat) / steps
    try:
        import torch

        if torch.cuda.is_available():
            xt, mt = torch.from_dlpack(x), torch.from_dlpack(m)
            A = torch.from_numpy(ddpm.alphas_cumprod)

            def torch_ddpm(i):
                t = ts[i % steps]
                prev = t - 1000 // steps
                a_t = float(A[t])
                a_p = float(A[prev]) if prev >= 0 else 1.0
                beta = 1 - a_t / a_p
                x0 = ((xt - (1 - a_t) ** 0.5 * mt) / a_t**0.5).clamp_(-1, 1)
                out = x0 * (a_p**0.5 * beta / (1 - a_t)) + xt * ((1 - beta) ** 0.5 * (1 - a_p) / (1 - a_t))
                if t > 0:
                    out += ((1 - a_p) / (1 - a_t) * beta) ** 0.5 * torch.randn_like(xt)
                return out

            res["torch DDPM update"] = loop_ms(torch_ddpm, steps, repeat)
    except ImportError:
        pass
    print(f"\n== GPU diffusion step, float32 {shape} ({4 * n / 1e6:.1f} MB per array), ms per step "
          f"(loops of {steps} steps, median of {repeat}) ==")
    copy_bw = 8 * n / res["copy"] / 1e6  # GB/s, read + write
    for k, ms in res.items():
        moved = 8 * n if k == "copy" else 12 * n
        bw = moved / ms / 1e6
        vs = f"{res['torch DDPM update'] / ms:6.2f}x torch" if "torch DDPM update" in res else ""
        print(f"{k:22s} {ms:8.4f} ms {bw:9.0f} GB/s {bw / copy_bw:6.0%} of copy  {vs}")
    return res, copy_bw, n


def section_random(n: int, repeat: int) -> None:
    import cupy as cp
    from heatbath import random as hr
    from timing import cuda_median_ms

    out = cp.empty(n, dtype=cp.float32)
    src = cp.ones(n, dtype=cp.float32)
    rs = cp.random.default_rng(1)
    rows = {
        "copy (read+write)": cuda_median_ms(lambda: cp.copyto(out, src), repeat),
        "cupy fill (write only)": cuda_median_ms(lambda: out.fill(1.5), repeat),
        "heatbath uniform": cuda_median_ms(lambda: hr.uniform(None, 7, out=out), repeat),
        "heatbath normal": cuda_median_ms(lambda: hr.normal(None, 7, out=out), repeat),
        "cupy uniform": cuda_median_ms(lambda: rs.random(n, dtype=cp.float32, out=out), repeat),
        "cupy normal": cuda_median_ms(lambda: rs.standard_normal(n, dtype=cp.float32, out=out), repeat),
    }
    print(f"\n== GPU random numbers: {n:,} float32 values ==")
    for k, ms in rows.items():
        moved = (8 if k.startswith("copy") else 4) * n
        print(f"{k:24s} {ms:8.3f} ms  {n / ms / 1e6:8.1f} values/ns  {moved / ms / 1e6:8.1f} GB/s")
    print(f"(a write-only kernel reaches {rows['copy (read+write)'] / 2 / rows['cupy fill (write only)']:.0%} of the "
          f"write rate implied by the copy here: cupy's fill)")
    write_rate = 8 * n / rows["copy (read+write)"] / 4 / 1e6  # values/ns at the copy's byte rate
    for k in ("heatbath uniform", "heatbath normal"):
        record("13", f"{k} float32, fraction of the write rate implied by copy", n / rows[k] / 1e6 / write_rate,
               0.85)
    record("13", "heatbath normal / cupy standard_normal (float32)", rows["cupy normal"] / rows["heatbath normal"],
           1.5, "x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--n", type=int, default=100_000_000, help="random numbers per call")
    args = ap.parse_args(argv)
    from heatbath import _backend

    reason = _backend.gpu_unavailable_reason()
    if reason is not None:
        print(f"gpu_bench_diffusion: skipped: {reason}")
        return 0
    for shape in SHAPES:
        res, copy_bw, n = section(shape, args.steps, args.repeat)
        big = shape == SHAPES[-1]
        tag = f"{shape}"
        if big:
            for k, goal in (("heatbath DDPM", 0.70), ("heatbath DDIM eta=0", 0.85)):
                record("13", f"{k} {tag} eager loop: fraction of copy bandwidth (12 B/elem)",
                       12 * n / res[k] / 1e6 / copy_bw, goal)
                record("13", f"{k} {tag} graph replay: fraction of copy bandwidth",
                       12 * n / res[k + " (graph)"] / 1e6 / copy_bw, goal)
        if "torch DDPM update" in res:
            record("13", f"heatbath DDPM step vs torch update {tag}", res["torch DDPM update"] / res["heatbath DDPM"],
                   4.0 if big else 2.0, "x")
    section_random(args.n, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
