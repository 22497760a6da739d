"""Built-in data sets: generated, or shipped with an installed package; never
downloaded."""

from __future__ import annotations

from .toy import heartbeat, split, swiss_roll

__all__: list[str] = ["heartbeat", "split", "swiss_roll"]
