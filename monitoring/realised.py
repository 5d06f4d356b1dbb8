"""Realised performance once outcomes are joined to predictions, and the reference's own.

The training metrics (:mod:`evaluation.metrics`, the same definitions as ``icans train`` and
``icans evaluate``): AUROC with a 95% bootstrap interval (rows resampled: a window's
predictions are mostly one per patient and day, and the log has no patient identifier to
resample patients by, so the interval is somewhat too narrow when a patient is predicted on
several days), Brier score, calibration intercept (in the large) and slope, the integrated
calibration index (ICI: mean |predicted - smoothed observed| risk), observed/expected events,
and a reliability table (mean predicted and observed risk per group of predicted risk).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from evaluation.metrics import PreparedScores, bootstrap_weights, calibration_bins
from monitoring.estimate import expected_auroc, interval95

BOOTSTRAP = 200
ROWS_PER_BIN = 50  # the reliability table: about 50 rows per group, at most 10 groups


@dataclass(frozen=True)
class Realised:
    n: int
    events: int
    prevalence: float
    auroc: float
    auroc_ci: tuple[float, float]
    brier: float
    calibration_intercept: float
    calibration_slope: float
    ici: float
    observed_expected: float  # events / sum of predicted risks
    expected_auroc: float  # the label-free estimate on the same rows, for comparison
    reliability: list[dict] = field(default_factory=list)


def realised(y: ArrayLike, p: ArrayLike, seed: int = 0, bootstrap: int = BOOTSTRAP) -> Realised:
    """Performance of predicted risks ``p`` against outcomes ``y`` (0/1)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    n, events = len(y), int(y.sum())
    nan = float("nan")
    scores = PreparedScores(y, p)
    m = scores.metrics() if n else {}
    ci = (nan, nan)
    if 0 < events < n and bootstrap > 0:
        replicates = np.concatenate(
            [
                scores.metrics_batch(np.vstack(chunk))["auroc"]
                for chunk in _chunks(bootstrap_weights(np.arange(n), bootstrap, seed), 50)
            ]
        )
        replicates = replicates[np.isfinite(replicates)]
        ci = interval95(replicates)
    n_bins = int(min(10, max(1, n // ROWS_PER_BIN)))
    bins = calibration_bins(y, p, n_bins) if n else {"mean_predicted": [], "observed": [], "n": []}
    reliability = [
        {"mean_predicted": float(a), "observed": float(b), "n": int(c)}
        for a, b, c in zip(bins["mean_predicted"], bins["observed"], bins["n"], strict=True)
    ]
    return Realised(
        n=n,
        events=events,
        prevalence=events / n if n else nan,
        auroc=m.get("auroc", nan),
        auroc_ci=ci,
        brier=m.get("brier", nan),
        calibration_intercept=m.get("calibration_intercept", nan),
        calibration_slope=m.get("calibration_slope", nan),
        ici=m.get("ici", nan),
        observed_expected=events / p.sum() if n and p.sum() > 0 else nan,
        expected_auroc=expected_auroc(p),
        reliability=reliability,
    )


def _chunks(iterable, size: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
