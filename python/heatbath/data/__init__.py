"""Built-in data sets: generated, or shipped with an installed package; never
downloaded."""

from __future__ import annotations

__all__: list[str] = []
