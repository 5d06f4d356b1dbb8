"""Drift in the predicted risk: the distribution of the probabilities against the reference's.

Every input shift that matters to the model shows here, weighted by how much the model uses
the input; a shift in an input the model barely uses does not. Two measures:

* the **population stability index** over the reference's deciles of predicted risk,
  ``PSI = sum_k (c_k - r_k) ln(c_k / r_k)`` with r_k, c_k the reference's and the window's
  shares in bin k (an empty bin counts as a share of 1e-4). The usual reading: below 0.1 no
  real change, 0.1-0.25 moderate, above 0.25 major. The threshold is
  ``monitor.max_risk_psi``;
* the two-sample **Kolmogorov-Smirnov** test (statistic and p-value). With thousands of
  predictions it finds differences too small to matter, so it is reported, not judged.

With the mean predicted risk of both (the expected event rate if the model is calibrated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
from scipy.stats import ks_2samp

PSI_BINS = 10
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class RiskDrift:
    psi: float
    ks_statistic: float
    ks_p_value: float
    mean_reference: float
    mean_current: float
    bins: list[dict]  # per bin: lower and upper risk, reference and window shares


def psi_bins(reference: np.ndarray, current: np.ndarray, n_bins: int = PSI_BINS) -> list[dict]:
    """Shares of the reference and of the window in bins at the reference's quantiles
    (tied quantiles merged, so a bin is never empty in the reference)."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1]))
    edges = np.r_[-np.inf, inner, np.inf]
    r = np.histogram(reference, edges)[0] / max(len(reference), 1)
    c = np.histogram(current, edges)[0] / max(len(current), 1)
    return [
        {
            "low": float(max(edges[k], 0.0)),
            "high": float(min(edges[k + 1], 1.0)),
            "reference": float(r[k]),
            "current": float(c[k]),
        }
        for k in range(len(r))
    ]


def psi(bins: list[dict]) -> float:
    r = np.maximum([b["reference"] for b in bins], PSI_FLOOR)
    c = np.maximum([b["current"] for b in bins], PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def risk_drift(reference: np.ndarray, current: np.ndarray) -> RiskDrift:
    """PSI, KS and the means of the window's predicted risks against the reference's."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(reference) == 0 or len(current) == 0:
        nan = float("nan")
        return RiskDrift(nan, nan, nan, nan, nan, [])
    bins = psi_bins(reference, current)
    # scipy's KstestResult, a tuple (statistic, pvalue) whose class scipy makes at run time
    statistic, p_value = cast("tuple[float, float]", ks_2samp(reference, current))
    return RiskDrift(
        psi=psi(bins),
        ks_statistic=float(statistic),
        ks_p_value=float(p_value),
        mean_reference=float(reference.mean()),
        mean_current=float(current.mean()),
        bins=bins,
    )
