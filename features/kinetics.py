"""The shape of the CAR-T expansion so far: is it still rising, and what is it made of?

Three predictors from the CD4+ and CD8+ CAR-T counts sampled up to day L:

* ``cd4_log_slope_latest``: change in log CD4+ cells per day between the two latest samples
  (:func:`features.definitions.log_slope_latest`); positive while the expansion still rises;
* ``days_since_cd4_peak``: days since the highest CD4+ sample so far (0: the latest is the
  highest, the peak may be ahead);
* ``cd4_cd8_latest_log_ratio``: log CD4+/CD8+ of the latest paired sample.

Why: ICANS follows the expansion, and expansion peaks on different days in different patients
(tisa-cel Tmax 9.9 days, range 5.7-28, KYMRIAH label); the case the product must not miss had a
late, CD4-dominant expansion (peak on day 14, CD4:CD8 89; Katsin 2024), and CD4+ expansion went
with ICANS severity (Baur 2023, as cited there). AUC and peak to date cannot tell a rising from
a falling expansion, nor the composition today.
"""

from __future__ import annotations

import numpy as np

from features import definitions as d
from features.layout import CATEGORICAL_FIELDS, N_DAYS, col, series
from features.steps import FeatureStep, Stateless, as_columns, require_fitted


def product_group(raw: np.ndarray) -> np.ndarray:
    """One code per (CAR target, costimulatory domain) pair; -1 where either is missing."""
    target, costim = col(raw, "car_target"), col(raw, "costimulatory_domain")
    known = ~(np.isnan(target) | np.isnan(costim))
    n_costim = len(CATEGORICAL_FIELDS["costimulatory_domain"])
    return np.where(known, target * n_costim + costim, -1.0)


class ExpansionShape(Stateless):
    """Trend, timing and composition of the CAR-T expansion up to day L."""

    names = ("cd4_log_slope_latest", "days_since_cd4_peak", "cd4_cd8_latest_log_ratio")

    def _compute(self, raw):
        cd4, cd8 = series(raw, "cd4_cells_per_ul"), series(raw, "cd8_cells_per_ul")
        return [
            d.log_slope_latest(cd4),
            d.days_since_max(cd4, col(raw, "day_since_infusion")),
            d.latest_log_ratio(cd4, cd8),
        ]


def product_day_medians(
    values: np.ndarray, group: np.ndarray, min_samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per product group and day, the median of ``values`` (rows x days, NaN = none).

    Returns ``(groups, reference, pooled)``: the product groups seen (sorted), their medians
    (groups x days) and the medians of all rows (days). A (group, day) cell with fewer than
    ``min_samples`` values takes the pooled median; a day with fewer overall is NaN."""

    def medians(v: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
        counts = (~np.isnan(v)).sum(axis=0)
        out = np.full(v.shape[1], np.nan)
        enough = counts >= min_samples
        if enough.any():
            out[enough] = np.nanmedian(v[:, enough], axis=0)
        return out if fallback is None else np.where(enough, out, fallback)

    pooled = medians(values)
    groups = np.unique(group[group >= 0])
    reference = np.array([medians(values[group == g], pooled) for g in groups]).reshape(
        len(groups), values.shape[1]
    )
    return groups, reference, pooled


def product_index(group: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row's position in ``groups`` (the product groups seen in training, sorted); -1 for
    a product not seen, or not known."""
    if not len(groups):
        return np.full(len(group), -1)
    pos = np.minimum(np.searchsorted(groups, group), len(groups) - 1)
    return np.where(groups[pos] == group, pos, -1)


def reference_for(index: np.ndarray, reference: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Each row's reference by day: its product group's (``index`` from
    :func:`product_index`), or the pooled one if unseen (index -1: the row after the groups)."""
    return np.vstack([reference, pooled[None]])[index]


class ExpansionTiming(FeatureStep):
    """Is this expansion early or late for its product? The trend and the level of the latest
    CD4+ samples against the same product's usual on the same day.

    * ``cd4_slope_vs_product``: :func:`features.definitions.log_slope_latest` minus the
      product's median slope ending on the same day;
    * ``cd4_rise_vs_product``: :func:`features.definitions.log_slope_since_first` (first to
      latest sample) minus the product's median ending on the same day;
    * ``cd4_latest_vs_product``: log of the latest CD4+ sample minus the product's median log
      count on that day.

    Why: expansion peaks on different days in different patients (tisa-cel Tmax 9.9 days, range
    5.7-28, KYMRIAH label) and ICANS follows it; a product's usual curve is falling by day 10
    when a late expansion (Katsin 2024: peak on day 14) is still rising, which the raw slope
    cannot say without knowing the product. Learned state (no labels): the medians per (CAR
    target, costimulatory domain) and day, as :class:`features.learned.ExpansionLevel`
    learns the level.
    """

    names = ("cd4_slope_vs_product", "cd4_rise_vs_product", "cd4_latest_vs_product")

    def __init__(self, min_samples: int = 20):
        self.min_samples = min_samples

    @staticmethod
    def _by_latest_day(raw: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Per row: the latest sample day and the values compared on it (slope of the two
        latest samples, slope since the first, log count)."""
        cd4 = series(raw, "cd4_cells_per_ul")
        day, value, day0, value0 = d.latest_two_samples(cd4)
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.log(value)
        slope = d.log_slope_between(day, value, day0, value0)  # d.log_slope_latest(cd4)
        return day, [slope, d.log_slope_since_first(cd4), level]

    def _spread(self, day: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Rows x days with ``value`` on each row's ``day`` (NaN elsewhere)."""
        out = np.full((len(day), N_DAYS), np.nan)
        known = ~np.isnan(day) & ~np.isnan(value)
        out[np.flatnonzero(known), day[known].astype(int)] = value[known]
        return out

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        day, values = self._by_latest_day(raw)
        group = product_group(raw)
        fitted = [
            product_day_medians(self._spread(day, v), group, self.min_samples) for v in values
        ]
        self.groups_ = fitted[0][0]
        self.references_ = [(reference, pooled) for _, reference, pooled in fitted]
        return self

    def transform(self, X):
        require_fitted(self, "groups_")
        raw = np.asarray(X, dtype=float)
        day, values = self._by_latest_day(raw)
        index = product_index(product_group(raw), self.groups_)
        at = np.where(np.isnan(day), 0, day).astype(int)
        out = []
        for value, (reference, pooled) in zip(values, self.references_, strict=True):
            ref = reference_for(index, reference, pooled)[np.arange(len(raw)), at]
            out.append(np.where(np.isnan(day), np.nan, value - ref))
        return as_columns(out)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)
