"""``heatbath info``: what this installation was built with, and what this
machine can run of it."""

from __future__ import annotations


def lines() -> list[str]:
    import heatbath
    from heatbath import _install

    info = _install.build_info()
    out = [f"heatbath {heatbath.__version__} ({heatbath.__path__[0]})"]
    if info["known"]:
        how = [info.get("compiler", "")]
        if info.get("static_runtime"):
            how.append("libstdc++ and OpenMP runtime linked in")
        if info.get("glibc_linked_for"):
            how.append(f"for glibc >= {info['glibc_linked_for']}")
        out.append("build: " + ", ".join(h for h in how if h))
    compiled = info.get("cpu_levels") or heatbath.cpu_levels()
    out.append(
        f"CPU levels compiled: {', '.join(compiled)}; this CPU runs: {', '.join(heatbath.cpu_levels())}; "
        f"in use: {heatbath.cpu_level()}"
    )
    out.append(f"OpenMP threads: {heatbath.get_num_threads()}")

    if not heatbath.cuda_built():
        out.append("CUDA module: not built (no nvcc when this heatbath was built)")
    else:
        archs = info.get("cuda_architectures") or []
        need = _install.driver_needed(info.get("cuda_version", ""))
        text = f"CUDA module: CUDA {info.get('cuda_version') or '?'}"
        if archs:
            text += f", {_install.architectures_text(archs)}"
        if need:
            text += f"; needs an NVIDIA driver {need[1]}"
        out.append(text)
        d = _install.driver()
        if not d.found:
            out.append(f"NVIDIA driver: {d.error}")
        else:
            out.append(f"NVIDIA driver: CUDA {d.version_text}" + (f"; {d.error}" if d.error else ""))
            for g in d.gpus:
                how = _install.runs_on(archs, g.cc) if archs else "?"
                out.append(
                    f"GPU {g.index}: {g.name}, sm_{g.cc}: " + (f"runs {how}" if how else "not covered")
                )
    reason = heatbath.cuda_unavailable_reason()
    out.append("CUDA arrays: usable" if reason is None else f"CUDA arrays: not usable: {reason}")
    return out


def run(args) -> int:
    print("\n".join(lines()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("info", help="what this installation was built with, and what this machine runs of it")
    p.set_defaults(fn=run)
