"""The Dask client behind the commands' ``--scheduler ADDRESS`` option."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def scheduler_client(args: Any) -> Iterator[Any]:
    """A ``dask.distributed.Client`` connected to ``args.scheduler`` (within
    ``args.connect_timeout`` seconds), closed on exit; a clear ValueError
    naming ``--scheduler`` when dask.distributed is missing or the scheduler
    cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("'--scheduler': needs dask.distributed (pip install 'heatbath[dist]')") from None
    try:
        client = Client(args.scheduler, timeout=args.connect_timeout)
    except OSError as exc:
        raise ValueError(f"'--scheduler': cannot reach a Dask scheduler at {args.scheduler}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
