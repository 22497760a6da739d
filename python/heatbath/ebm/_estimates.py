"""Result types shared by the estimators of the energy-based models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class LogZEstimate:
    """An estimate of a log partition function (natural log).

    Attributes
    ----------
    log_z : float
        The estimate (for AIS: log of the mean importance weight times the
        base model's Z).
    stderr : float
        Its standard error (delta method on the importance weights; 0 for an
        exact value).
    ess : float
        Effective sample size of the importance weights, (sum w)^2 / sum w^2
        (n for an exact value).
    method : str
        "exact", "ais", "raise", ...
    log_weights : ndarray or None
        Per-run log importance weights, when the method has them.
    """

    log_z: float
    stderr: float
    ess: float
    method: str
    log_weights: Optional[np.ndarray] = field(default=None, repr=False)

    def __float__(self) -> float:
        return float(self.log_z)

    @staticmethod
    def from_log_weights(log_w: np.ndarray, log_z_base: float, method: str) -> "LogZEstimate":
        """log Z = log_z_base + log mean exp(log_w), with the delta-method
        standard error sd(w) / (sqrt(n) mean(w)) and ESS (sum w)^2 / sum w^2."""
        log_w = np.asarray(log_w, dtype=np.float64).ravel()
        n = log_w.size
        if n == 0:
            raise ValueError("'log_w': no importance weights")
        m = log_w.max()
        w = np.exp(log_w - m)
        mean_w = w.mean()
        log_z = float(log_z_base + m + np.log(mean_w))
        stderr = float(w.std(ddof=1) / (np.sqrt(n) * mean_w)) if n > 1 else float("inf")
        ess = float(w.sum() ** 2 / (w**2).sum())
        return LogZEstimate(log_z, stderr, ess, method, log_w)
