"""A per-patient fit of the CAR-T expansion curve: when does (or did) this expansion peak?

Expansion curves of CAR-T cells in blood rise, peak and fall; a gamma-variate
``log c(t) = m + a log t - k t`` describes that shape (peak on day ``a / k``) and is the usual
empirical form for such first-order rise-and-decay kinetics. Two things are learned at ``fit``
per product (CAR target and costimulatory domain, no labels):

* the product's **shape** ``a`` and usual decay ``k`` (hence its usual peak day ``a / k``): a
  least-squares fit of log CD4+ and log CD8+ counts on ``log t`` and ``t``, each series centred
  within its row, so every patient's own level (expansion magnitude, CD4:CD8 composition) drops
  out and only the shape of the curve is pooled;
* an empirical-Bayes **prior weight**: how much a patient's own samples are trusted against the
  product's usual ``k``, from the residual noise and the spread of the per-row estimates.

Per row, with the product's ``a`` fixed, the patient's own ``k`` is the shrunken least-squares
slope of ``log c - a log t`` on ``t`` over the positive CD4+ and CD8+ samples on days 1..L
(both series share the curve and differ in level, so the two together halve the measurement
noise of either alone). Predictors:

* ``expansion_delay_days``: the fitted peak day minus the product's usual peak day (positive:
  a late expansion). The peak ``a / k`` is taken to first order around the product's ``k0``,
  ``peak = usual * (2 - k / k0)``, so the predictor is linear in the estimate (it told the
  generator's hidden timing classes apart better than ``a / k`` itself: AUROC for "late"
  0.88 vs 0.86 on day 7) and a curve that has not turned yet (``k <= 0``) reads as very
  late rather than undefined; clipped to peaks on days 1-28;
* ``days_to_expansion_peak``: the fitted peak day minus L (positive: the peak is still ahead).

NaN while no series has two positive samples. Why: ICANS follows the expansion, whose peak
varies between patients (tisa-cel Tmax 9.9 days, range 5.7-28, KYMRIAH label), and the case
the product must not miss had a late expansion still rising at day 10 (peak on day 14; Katsin
2024). The latest slopes (:mod:`features.kinetics`) read only two samples each; this fit reads
all samples of both series at once, as a clinician reading the whole curve would.
"""

from __future__ import annotations

import numpy as np

from features.kinetics import product_group, product_index
from features.layout import N_DAYS, col, series
from features.steps import FeatureStep, require_fitted

_SERIES = ("cd4_cells_per_ul", "cd8_cells_per_ul")
_DAYS = np.arange(N_DAYS, dtype=float)


_SUMS = ("ll", "lt", "tt", "yl", "yt", "yy")
_COLUMNS = "ylt"  # the stacked columns' order
_LEFT = [_COLUMNS.index(key[0]) for key in _SUMS]
_RIGHT = [_COLUMNS.index(key[1]) for key in _SUMS]


def _centred_sums(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Per row, the centred sums of squares and cross-products of ``y = log count``,
    ``l = log day`` and ``t = day`` over each series' positive samples on days 1..L, added over
    the two series (each centred on its own means). Keys ``ll, lt, tt, yl, yt, yy`` and ``n``
    (number of series with at least two samples).

    Both series and all three columns are computed in one stacked array (columns x series x
    rows x days): a single patient's request pays numpy's set-up per call, not per value. Every
    sum is still one row's days reduced on their own, and the two series are added in order
    onto 0, so the numbers are those of the series taken one at a time."""
    t = _DAYS[1:]
    block = np.stack([series(raw, name)[:, 1:] for name in _SERIES])  # series x rows x days
    ok = block > 0  # NaN (no sample, or masked future) compares False
    count = ok.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(ok, np.log(np.where(ok, block, 1.0)), 0.0)
    w = ok.astype(float)
    safe = np.maximum(count, 1)
    columns = np.stack([y, w * np.log(t), w * t])  # columns x series x rows x days
    means = columns.sum(axis=3) / safe
    centred = w * (columns - means[..., None])
    sums = (centred[_LEFT] * centred[_RIGHT]).sum(axis=3)  # sums x series x rows
    usable = count >= 2
    both = np.where(usable, sums, 0.0)
    out = {key: np.zeros(len(raw)) + both[k, 0] + both[k, 1] for k, key in enumerate(_SUMS)}
    out["n"] = np.zeros(len(raw)) + usable[0] + usable[1]
    return out


class ExpansionCurve(FeatureStep):
    """Fitted peak day of the CD4+/CD8+ expansion, against the product's usual and day L.

    Parameters
    ----------
    min_rows
        Rows with two or more samples a product needs for its own curve; fewer: the pooled one.
    """

    names = ("expansion_delay_days", "days_to_expansion_peak")

    def __init__(self, min_rows: int = 50):
        self.min_rows = min_rows

    @staticmethod
    def _shape(s: dict[str, np.ndarray], rows: np.ndarray) -> tuple[float, float] | None:
        """Pooled least squares of centred y on centred (log t, t): ``(a, k)``, or None when
        the rows cannot determine a rising-and-falling curve."""
        m = np.array(
            [[s["ll"][rows].sum(), s["lt"][rows].sum()], [s["lt"][rows].sum(), s["tt"][rows].sum()]]
        )
        v = np.array([s["yl"][rows].sum(), s["yt"][rows].sum()])
        if abs(np.linalg.det(m)) < 1e-9:
            return None
        a, minus_k = np.linalg.solve(m, v)
        return (float(a), float(-minus_k)) if a > 0 and minus_k < 0 else None

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        s = _centred_sums(raw)
        group = product_group(raw)
        usable = s["n"] > 0
        pooled = self._shape(s, usable)
        if pooled is None:  # no expansion data to learn from: every row gets NaN
            pooled = (np.nan, np.nan)
        shapes = {}
        for g in np.unique(group[(group >= 0) & usable]):
            rows = usable & (group == g)
            fitted = self._shape(s, rows) if rows.sum() >= self.min_rows else None
            if fitted is not None:
                shapes[float(g)] = fitted
        self.groups_ = np.array(sorted(shapes), dtype=float)
        self.shapes_ = np.array([shapes[g] for g in self.groups_]).reshape(-1, 2)
        self.pooled_shape_ = np.array(pooled, dtype=float)
        self.prior_weight_ = self._prior_weight(s, raw, usable)
        return self

    def _prior_weight(self, s: dict[str, np.ndarray], raw: np.ndarray, usable: np.ndarray) -> float:
        """Empirical Bayes: ``sigma^2 / tau^2``, the residual variance of log counts around a
        patient's curve over the between-patient variance of ``k`` (method of moments on the
        rows' unshrunken estimates); in day^2, the weight of the product's usual ``k``."""
        a, k0 = self._row_shape(raw)
        rows = usable & (s["tt"] > 0) & ~np.isnan(a)
        if rows.sum() < 10:
            return 1.0
        r_t = s["yt"][rows] - a[rows] * s["lt"][rows]
        r_r = s["yy"][rows] - 2 * a[rows] * s["yl"][rows] + a[rows] ** 2 * s["ll"][rows]
        k_hat = -r_t / s["tt"][rows]
        dof = np.maximum(2 * s["n"][rows] - 1, 1)  # points minus levels and k, roughly
        residual = np.maximum(r_r - r_t**2 / s["tt"][rows], 0.0)
        sigma2 = residual.sum() / dof.sum()
        tau2 = np.var(k_hat - k0[rows]) - np.mean(sigma2 / s["tt"][rows])
        return float(sigma2 / tau2) if tau2 > 1e-6 else 1e6

    def _row_shape(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's product ``a`` and usual ``k`` (the pooled shape for an unseen product)."""
        index = product_index(product_group(raw), self.groups_)
        shapes = np.vstack([self.shapes_, self.pooled_shape_[None]])[index]  # -1: pooled
        return shapes[:, 0], shapes[:, 1]

    def transform(self, X):
        require_fitted(self, "shapes_")
        raw = np.asarray(X, dtype=float)
        s = _centred_sums(raw)
        a, k0 = self._row_shape(raw)
        r_t = s["yt"] - a * s["lt"]
        k = (-r_t + self.prior_weight_ * k0) / (s["tt"] + self.prior_weight_)
        usual = a / k0
        # first order in k around k0 (peak = a / k): linear in the estimate, so a curve that
        # has not turned yet (k <= 0) is very late, not undefined
        peak = np.clip(usual * (2.0 - k / k0), 1.0, float(N_DAYS - 1))
        peak = np.where(s["n"] > 0, peak, np.nan)
        return np.column_stack([peak - usual, peak - col(raw, "day_since_infusion")])

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)
