"""``heatbath info``: what this installation was built with."""

from __future__ import annotations


def run(args) -> int:
    import heatbath

    print(f"heatbath {heatbath.__version__}")
    print(f"CPU levels available: {', '.join(heatbath.cpu_levels())}; in use: {heatbath.cpu_level()}")
    print(f"OpenMP threads: {heatbath.get_num_threads()}")
    print(f"CUDA module built: {heatbath.cuda_built()}; usable GPU: {heatbath.has_cuda()}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("info", help="what this installation was built with")
    p.set_defaults(fn=run)
