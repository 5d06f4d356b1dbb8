"""Performance metrics for risk predictions, with patient-level bootstrap weights.

Each metric accepts row weights so that a bootstrap replicate is a re-weighting (patients drawn
with replacement -> each row weighted by its patient's count), not a copy of the data; scores are
sorted once per subset and predictor and re-used by every replicate.

Definitions (Van Calster et al., BMC Med 2019 "Calibration: the Achilles heel"; Steyerberg,
Clinical Prediction Models, 2nd ed.; Austin & Steyerberg, Stat Med 2019 for ICI; Vickers & Elkin,
Med Decis Making 2006 for net benefit):

* AUROC, AUPRC (average precision), Brier score;
* calibration intercept (calibration-in-the-large): ``a`` in logit P(y) = a + logit(p) (offset);
* calibration slope: ``b`` in logit P(y) = a + b logit(p);
* ICI: mean |p - p_cal| where p_cal is a flexible calibration curve, here a logistic regression
  on a restricted cubic spline of logit(p) with knots at the 10th/50th/90th percentiles (a
  smooth alternative to loess that is fast enough to bootstrap);
* net benefit at threshold t: TP/n - FP/n * t / (1 - t).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from evaluation.logistic import EXACT_TOL, fit_logistic, logit

METRICS = ("auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ici")


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline with 3 knots (Harrell): x and one non-linear term."""
    k1, k2, k3 = knots
    scale = (k3 - k1) ** 2 or 1.0

    def cube(z):
        return np.clip(z, 0, None) ** 3

    nl = (
        cube(x - k1)
        - cube(x - k2) * (k3 - k1) / (k3 - k2 + 1e-12)
        + cube(x - k3) * (k2 - k1) / (k3 - k2 + 1e-12)
    ) / scale
    return np.column_stack([np.ones_like(x), x, nl])


@dataclass
class PreparedScores:
    """One predictor on one set of rows, prepared for fast repeated (re-weighted) metrics."""

    y: np.ndarray
    p: np.ndarray

    def __post_init__(self):
        self.y = np.asarray(self.y, dtype=float)
        self.p = np.clip(np.asarray(self.p, dtype=float), 0.0, 1.0)
        order = np.argsort(-self.p, kind="stable")
        self.order = order
        ps = self.p[order]
        # boundaries of groups of tied scores in descending order
        self.group_end = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
        self.lp = logit(self.p)
        self.design_slope = np.column_stack([np.ones_like(self.lp), self.lp])
        knots = np.quantile(self.lp, [0.1, 0.5, 0.9]) if len(self.lp) else np.zeros(3)
        self.spline = _rcs_basis(self.lp, knots)

    def metrics(self, w: np.ndarray | None = None) -> dict[str, float]:
        """Every metric for one set of row weights (default: all rows weigh 1)."""
        w = np.ones_like(self.y) if w is None else np.asarray(w, dtype=float)
        return {name: float(v[0]) for name, v in self.metrics_batch(w[None, :]).items()}

    def metrics_batch(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`metrics` for many weight vectors at once (``w``: replicates x rows).

        Same definitions, vectorised over bootstrap replicates (a test checks the two agree).
        """
        w = np.asarray(w, dtype=float)
        pos, neg = w * self.y, w * (1 - self.y)
        wp, wn, wt = pos.sum(axis=1), neg.sum(axis=1), w.sum(axis=1)
        out = {m: np.full(len(w), np.nan) for m in METRICS}
        with np.errstate(divide="ignore", invalid="ignore"):
            out["brier"] = np.where(wt > 0, w @ (self.p - self.y) ** 2 / wt, np.nan)
            ok = (wp > 0) & (wn > 0)
            if not ok.any():
                return out
            tp, fp, tp_prev, fp_prev = self._curve(pos, neg)
            auroc = np.sum((fp - fp_prev) * (tp + tp_prev) / 2, axis=1) / (wp * wn)
            precision = tp / np.maximum(tp + fp, 1e-300)
            auprc = np.sum((tp - tp_prev) * precision, axis=1) / wp
        wk = w[ok]
        intercept = _calibration_fits(self.design_slope[:, :1], self.y, wk, offset=self.lp)
        slope = _calibration_fits(self.design_slope, self.y, wk)[:, 1]
        curve = expit(_calibration_fits(self.spline, self.y, wk) @ self.spline.T)
        ici = np.sum(wk * np.abs(curve - self.p), axis=1) / wt[ok]
        for name, values in (
            ("auroc", auroc[ok]),
            ("auprc", auprc[ok]),
            ("calibration_intercept", intercept[:, 0]),
            ("calibration_slope", slope),
            ("ici", ici),
        ):
            out[name][ok] = values
        return out

    def _curve(self, pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, ...]:
        """Weighted true and false positives at each distinct score, descending, and at the
        score before (replicates x distinct scores)."""
        tp = np.cumsum(pos[:, self.order], axis=1)[:, self.group_end]
        fp = np.cumsum(neg[:, self.order], axis=1)[:, self.group_end]
        tp_prev = np.concatenate([np.zeros((len(pos), 1)), tp[:, :-1]], axis=1)
        fp_prev = np.concatenate([np.zeros((len(pos), 1)), fp[:, :-1]], axis=1)
        return tp, fp, tp_prev, fp_prev

    def auroc_batch(self, w: np.ndarray) -> np.ndarray:
        """The AUROC alone for many weight vectors (replicates x rows), as in
        :meth:`metrics_batch` without the calibration fits: NaN where a replicate lacks
        events or non-events."""
        w = np.asarray(w, dtype=float)
        pos, neg = w * self.y, w * (1 - self.y)
        wp, wn = pos.sum(axis=1), neg.sum(axis=1)
        tp, fp, tp_prev, fp_prev = self._curve(pos, neg)
        with np.errstate(divide="ignore", invalid="ignore"):
            auroc = np.sum((fp - fp_prev) * (tp + tp_prev) / 2, axis=1) / (wp * wn)
        return np.where((wp > 0) & (wn > 0), auroc, np.nan)


def _calibration_fits(
    design: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray | float = 0.0
) -> np.ndarray:
    """The calibration model's coefficients for every weight vector (replicates x rows), by
    :func:`evaluation.logistic.fit_logistic` (unpenalised).

    With several replicates, each starts from the fit with unit weights (bootstrap replicates
    lie close to it), so Newton needs a step or two instead of up to ten from zero; the result
    is the same maximum-likelihood estimate. At most 30 steps: a replicate whose scores
    separate the outcomes has no finite estimate.
    """
    start = None
    if len(w) > 1:
        start = fit_logistic(design, y, offset=offset, tol=EXACT_TOL, max_iter=30)
    return fit_logistic(design, y, w, offset=offset, start=start, tol=EXACT_TOL, max_iter=30)


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of treating when p >= t, for each threshold t (Vickers & Elkin 2006)."""
    y = np.asarray(y, dtype=bool)
    n = len(y)
    treat = np.asarray(p)[None, :] >= thresholds[:, None]
    tp = (treat & y).sum(axis=1) / n
    fp = (treat & ~y).sum(axis=1) / n
    return tp - fp * thresholds / (1 - thresholds)


def treat_all_net_benefit(y: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    prevalence = float(np.mean(y))
    return prevalence - (1 - prevalence) * thresholds / (1 - thresholds)


def bootstrap_weights(patient_id: np.ndarray, n_boot: int, seed: int | Sequence[int]):
    """Yield row weights: patients drawn with replacement, each row weighted by its count."""
    codes, inverse = np.unique(patient_id, return_inverse=True)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        counts = rng.multinomial(len(codes), np.full(len(codes), 1.0 / len(codes)))
        yield counts[inverse].astype(float)


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Mean predicted and observed risk per decile of predicted risk (for plots and tables)."""
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, n_bins)
    return {
        "mean_predicted": np.array([p[b].mean() for b in bins]),
        "observed": np.array([np.mean(y[b]) for b in bins]),
        "n": np.array([len(b) for b in bins]),
    }
