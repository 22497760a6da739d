"""``heatbath ising``: sample a periodic Ising lattice and print the energy and
|magnetization| per spin with batch-means errors (and Onsager's exact values
for 2D at zero field), the throughput in spin updates per nanosecond, and
optionally save a snapshot of the spins (matplotlib). With ``--scheduler``
the chains run in shards on a Dask cluster, with the same result."""

from __future__ import annotations

import argparse

from . import _args


def _even_int(text: str) -> int:
    v = _args.whole_number(text)
    if v < 2 or v % 2:
        raise argparse.ArgumentTypeError(f"expected an even whole number >= 2, got {text!r}")
    return v


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import heatbath
    from heatbath.ebm import IsingLattice
    from heatbath.ebm.lattice import BETA_C_2D, batch_means, onsager_energy, onsager_magnetization

    shape = (args.size,) * args.dim
    device = "cuda" if args.cuda else "cpu"
    if args.cuda:
        _args.check_device("cuda", "--cuda")
    if args.snapshot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    if args.threads:
        heatbath.set_num_threads(args.threads)
    lat = IsingLattice(
        shape,
        beta=args.beta,
        J=args.J,
        h=args.field,
        n_chains=1 if args.scheduler else args.chains,
        method=args.method,
        seed=args.seed,
        init="up" if args.beta > BETA_C_2D and args.dim == 2 else "random",
        device=device,
    )
    print(
        f"heatbath {heatbath.__version__}: {args.dim}D Ising {' x '.join(map(str, shape))}, "
        f"{args.chains} chain(s), "
        f"beta = {args.beta}, J = {args.J}, h = {args.field}, {args.method}, "
        f"{'GPU' if args.cuda else f'CPU level {heatbath.cpu_level()}, {heatbath.get_num_threads()} threads'}"
    )
    if args.scheduler:
        res, spins0 = _sample_on_dask(lat, args)
    else:
        res = lat.sample(args.sweeps, warmup=args.warmup, thin=args.thin)
        spins0 = lat.spins[0] if args.snapshot else None
    n_b = min(16, res.energy.shape[0])
    if n_b < 2:
        raise ValueError("'--sweeps': too few records for error bars (need sweeps / thin >= 2)")
    e, de = batch_means(res.energy, n_b)
    m, dm = batch_means(np.abs(res.magnetization), n_b)
    print(f"{'':24s} {'value':>10s} {'error':>9s}")
    print(f"{'energy per spin':24s} {e:10.5f} {de:9.5f}")
    print(f"{'|magnetization| per spin':24s} {m:10.5f} {dm:9.5f}")
    if args.dim == 2 and args.field == 0.0:
        print(
            f"{'Onsager (L = inf)':24s} e = {onsager_energy(args.beta, args.J):.5f}, "
            f"|m| = {onsager_magnetization(args.beta, args.J):.5f}"
        )
    where = ""
    if args.scheduler:
        where = f" on the Dask cluster at {args.scheduler} (warm-up and transfers included)"
    print(
        f"{args.sweeps} sweeps after {args.warmup} warm-up: {res.seconds:.3f} s, "
        f"{res.updates_per_ns:.3f} spin updates/ns{where}"
    )
    if args.snapshot:
        spins = spins0
        img = spins if args.dim == 2 else spins[0]
        plt.figure(figsize=(5, 5))
        plt.imshow(img, cmap="gray", interpolation="nearest")
        plt.axis("off")
        plt.title(f"Ising {args.dim}D, beta = {args.beta}" + ("" if args.dim == 2 else " (slice z = 0)"))
        plt.savefig(args.snapshot, dpi=120, bbox_inches="tight")
        print(f"snapshot written to {args.snapshot}")
    return 0


def _sample_on_dask(template, args):
    """The chains in shards on the scheduler at ``args.scheduler``: the same
    records as the one-process run (and chain 0's final spins for --snapshot)."""
    import time

    from .. import distributed as hd
    from ..ebm.lattice import LatticeSamples
    from ._dask import scheduler_client

    with scheduler_client(args) as client:
        t0 = time.perf_counter()
        r = hd.gibbs_lattice(client, template, args.chains, args.sweeps, warmup=args.warmup, thin=args.thin,
                             keep_states=bool(args.snapshot), chunk=args.chunk)
        dt = time.perf_counter() - t0
    res = LatticeSamples(r["energy"], r["magnetization"], args.sweeps, dt, template.n_sites)
    return res, (r["spins"][0] if args.snapshot else None)


def register(sub) -> None:
    p = sub.add_parser(
        "ising",
        help="sample a periodic Ising lattice (energy, magnetization, updates/ns)",
        description=__doc__,
    )
    p.add_argument(
        "--size", "-L", type=_even_int, default=256, help="lattice side (even; > 64: a multiple of 64)"
    )
    p.add_argument("--dim", type=int, choices=(2, 3), default=2, help="2 or 3 dimensions (default 2)")
    p.add_argument("--beta", type=_args.nonneg_float, default=0.44,
                   help="inverse temperature >= 0 (default 0.44; 2D critical: 0.4407)")
    p.add_argument("--J", type=_args.finite_float, default=1.0,
                   help="coupling (default 1; negative: antiferromagnet)")
    p.add_argument("--field", type=_args.finite_float, default=0.0, help="external field h (default 0)")
    p.add_argument("--chains", type=_args.positive_int, default=1, help="independent lattices (default 1)")
    p.add_argument("--method", choices=("heatbath", "metropolis"), default="heatbath",
                   help="spin update (default heatbath)")
    p.add_argument("--sweeps", type=_args.positive_int, default=1000, help="recorded sweeps (default 1000)")
    p.add_argument("--warmup", type=_args.nonneg_int, default=200, help="warm-up sweeps (default 200)")
    p.add_argument("--thin", type=_args.positive_int, default=1, help="record every thin-th sweep (default 1)")
    _args.add_seed(p, 2015, "the initial spins and the updates")
    p.add_argument("--threads", type=_args.positive_int, default=None,
                   help="CPU threads (default: all; results do not depend on it)")
    p.add_argument("--cuda", action="store_true", help="run on the GPU (cupy)")
    p.add_argument("--snapshot", metavar="PNG", type=_args.plot_file,
                   help="save an image of chain 0 (needs matplotlib)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the chains in shards on this Dask scheduler (e.g. tcp://host:8786); same result")
    p.add_argument("--chunk", type=_args.positive_int, default=None, help="chains per shard with --scheduler")
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    p.set_defaults(fn=run)
