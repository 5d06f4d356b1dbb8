"""Performance estimated from the predicted risks alone, before any outcome is known.

In the spirit of NannyML's confidence-based performance estimation (CBPE): **if the model is
calibrated on the traffic** (a row with predicted risk p has the event with probability p),
each row is a positive with weight p and a negative with weight 1 - p, and the expected
ROC curve follows from the risks alone. The expected AUROC is the weighted share of
(positive, negative) pairs of different rows that the risks order correctly, ties counting
one half::

    AUROC_est = sum_{i != j} p_i (1 - p_j) [s_i > s_j  (+ 1/2 if s_i = s_j)]
                / sum_{i != j} p_i (1 - p_j)

(a row is never paired with itself: it cannot be both). The expected prevalence is the mean
risk. What it shows: how well the model can separate this case mix, assuming its risks are
right. A case mix with fewer clear-cut patients lowers it before any outcome is in. What it
cannot show: a model whose risks have become wrong (a new product, a changed practice) looks as
good as its risks say; only joined outcomes reveal that (:mod:`monitoring.realised`).

The interval is the spread (2.5-97.5%) of the AUROC the window's outcomes would give if drawn
from the risks (outcome draws simulated): a realised AUROC outside it says the calibration
assumption fails on this traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class LabelFreeEstimate:
    n: int
    expected_prevalence: float
    expected_auroc: float
    auroc_interval: tuple[float, float]  # realised AUROC's expected spread if calibrated
    prevalence_interval: tuple[float, float]


def expected_auroc(p: np.ndarray) -> float:
    """The AUROC expected from calibrated risks ``p`` (each row positive with weight p,
    negative with weight 1 - p; self-pairs excluded); NaN with fewer than two rows."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    if len(p) < 2:
        return float("nan")
    scores, group = np.unique(p, return_inverse=True)
    pos = np.bincount(group, weights=p, minlength=len(scores))
    neg = np.bincount(group, weights=1.0 - p, minlength=len(scores))
    below = np.cumsum(neg) - neg  # negative weight of lower scores
    self_pairs = float(np.sum(p * (1.0 - p)))
    numerator = float(np.sum(pos * (below + 0.5 * neg))) - 0.5 * self_pairs
    denominator = float(pos.sum() * neg.sum()) - self_pairs
    return numerator / denominator if denominator > 0 else float("nan")


def realised_auroc_draws(p: np.ndarray, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and prevalence of ``draws`` outcome vectors drawn from ``p`` (a draw with one
    class only: NaN AUROC)."""
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    ranks = rankdata(p)  # average ranks: ties count one half
    aurocs, prevalences = np.full(draws, np.nan), np.zeros(draws)
    for start in range(0, draws, 50):  # bounded memory: 50 draws x rows at a time
        y = rng.random((min(50, draws - start), len(p))) < p
        n1 = y.sum(axis=1).astype(float)
        n0 = len(p) - n1
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (y @ ranks - n1 * (n1 + 1) / 2) / (n1 * n0)
        aurocs[start : start + len(y)] = np.where((n1 > 0) & (n0 > 0), auc, np.nan)
        prevalences[start : start + len(y)] = n1 / len(p)
    return aurocs, prevalences


def estimate(p: np.ndarray, draws: int = 200, seed: int = 0) -> LabelFreeEstimate:
    """The label-free estimate of rows with predicted risks ``p``."""
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        nan = float("nan")
        return LabelFreeEstimate(0, nan, nan, (nan, nan), (nan, nan))
    aurocs, prevalences = realised_auroc_draws(p, draws, seed)
    finite = aurocs[np.isfinite(aurocs)]
    interval = interval95(finite) if len(finite) else (float("nan"), float("nan"))
    return LabelFreeEstimate(
        n=len(p),
        expected_prevalence=float(p.mean()),
        expected_auroc=expected_auroc(p),
        auroc_interval=interval,
        prevalence_interval=interval95(prevalences),
    )


def interval95(values: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% quantiles of ``values`` (a 95% interval of draws)."""
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)
