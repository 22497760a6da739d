"""Built-in data sets: generated, or shipped with an installed package; never
downloaded."""

from __future__ import annotations

from .digits import binarized_digits
from .toy import heartbeat, split, swiss_roll

__all__: list[str] = ["binarized_digits", "heartbeat", "split", "swiss_roll"]
