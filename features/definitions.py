"""Clinical feature definitions, each computed in one place, vectorised over rows.

Every function takes day-indexed blocks (rows x days 0..28, NaN = not observed) whose days after
the prediction day are already NaN, so nothing here can read the future. A single patient is a
block of one row: the endpoint and the cohort run exactly the same code.

The definitions that only find days (the latest observed day, the first day over a threshold,
the latest samples, the day of the maximum) and count them are loops compiled with numba: on one
patient's row numpy spends its time setting up a handful of small array operations per
definition, some forty definitions per request, while the loop takes a microsecond. They
select and count, no arithmetic on the values, so they give exactly numpy's results (tested
against the numpy forms in ``tests/test_features_definitions.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_DAYS_CACHE: dict[int, np.ndarray] = {}


def _days(n: int) -> np.ndarray:
    if n not in _DAYS_CACHE:
        _DAYS_CACHE[n] = np.arange(n, dtype=float)
    return _DAYS_CACHE[n]


def max_to_date(block: np.ndarray) -> np.ndarray:
    """Worst value observed up to the prediction day; NaN if nothing was observed.

    ``np.fmax`` ignores a NaN beside a number, so its reduction is ``nanmax`` without the
    warning for an all-NaN row (and without the warning filter, which cost ~5x the reduction
    itself on one patient's row)."""
    return np.fmax.reduce(block, axis=1)


def latest_value(block: np.ndarray) -> np.ndarray:
    """Value on the latest observed day up to the prediction day (carried forward); NaN if none.

    Used for "CRS grade today" and "ICANS grade today": a grade recorded on day L is today's;
    if day L has no record yet, the latest earlier grade stands.
    """
    return _latest_value(block)


@njit(cache=True, nogil=True)
def _latest_value(block):
    out = np.full(block.shape[0], np.nan)
    for i in range(block.shape[0]):
        for j in range(block.shape[1] - 1, -1, -1):
            if not np.isnan(block[i, j]):
                out[i] = block[i, j]
                break
    return out


def days_since_first(block: np.ndarray, threshold: float, prediction_day: np.ndarray) -> np.ndarray:
    """Days from the first day with a value >= ``threshold`` to the prediction day; NaN if none.

    For CRS: days since CRS onset (first day graded >= 1, ASTCT 2019). For ICANS likewise.
    """
    return _days_since_first(block, float(threshold), np.asarray(prediction_day, dtype=float))


@njit(cache=True, nogil=True)
def _days_since_first(block, threshold, prediction_day):
    out = np.full(block.shape[0], np.nan)
    for i in range(block.shape[0]):
        for j in range(block.shape[1]):
            if block[i, j] >= threshold:  # NaN compares False
                out[i] = prediction_day[i] - j
                break
    return out


def auc_to_date(block: np.ndarray) -> np.ndarray:
    """Area under the measured CAR-T curve from day 0 to the last sample, cells*day/uL.

    Trapezoidal rule over the days actually measured, up to the prediction day (the usual
    pharmacokinetic AUC0-t, as reported for CD4+ CAR-T AUC0-28 by Baur et al., Bone Marrow
    Transplant 2023, and Katsin et al., Front Immunol 2024). Rules:

    * day 0 counts as 0 cells/uL when it was not measured: CAR-T cells are not in the blood
      before infusion, so the curve starts at 0;
    * skipped or missed samples are not imputed: the trapezoid joins the neighbouring samples;
    * the area stops at the last sample on or before the prediction day (no extrapolation);
    * a single sample at day d > 0 gives the triangle d * value / 2; day 0 alone gives 0;
    * no sample at all gives NaN (reported as a missing input, never taken as 0).
    """
    any_sample = (~np.isnan(block)).any(axis=1)
    values = block.copy()
    values[:, 0] = np.where(np.isnan(values[:, 0]), 0.0, values[:, 0])
    measured = ~np.isnan(values)
    n_days = values.shape[1]
    idx = np.where(measured, np.arange(n_days), -1)
    last_idx = np.maximum.accumulate(idx, axis=1)
    prev_idx = np.concatenate([np.full((len(values), 1), -1), last_idx[:, :-1]], axis=1)
    prev_val = np.take_along_axis(values, np.maximum(prev_idx, 0), axis=1)
    width = _days(n_days)[None, :] - prev_idx
    area = np.where(measured & (prev_idx >= 0), width * (values + prev_val) / 2.0, 0.0)
    return np.where(any_sample, area.sum(axis=1), np.nan)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator; NaN where either is missing, the denominator is not > 0 or the
    quotient overflows (a vanishing denominator is not infinite). One IEEE division per row,
    as numpy's."""
    denominator = np.asarray(denominator, dtype=float)
    numerator = np.asarray(numerator, dtype=float)
    if numerator.shape != denominator.shape:  # a number over many (broadcast_to costs ~5 us)
        numerator = np.broadcast_to(numerator, denominator.shape)
    return _ratio(numerator, denominator)


@njit(cache=True, nogil=True)
def _ratio(numerator, denominator):
    out = np.full(denominator.shape[0], np.nan)
    for i in range(denominator.shape[0]):
        if denominator[i] > 0 and not np.isnan(numerator[i]):
            quotient = numerator[i] / denominator[i]
            if np.isfinite(quotient):
                out[i] = quotient
    return out


def m_easix(
    ldh_u_per_l: np.ndarray, crp_mg_per_l: np.ndarray, platelets_10e9_per_l: np.ndarray
) -> np.ndarray:
    """Modified EASIX = LDH (U/L) x CRP (mg/dL) / platelets (10^9/L).

    Pennisi M et al., Blood Adv 2021;5(17):3397 (creatinine of EASIX replaced by CRP). The
    contract carries CRP in mg/L, so it is divided by 10 here. NaN if any input is missing.
    """
    return ratio(ldh_u_per_l * (crp_mg_per_l / 10.0), platelets_10e9_per_l)


def easix(
    ldh_u_per_l: np.ndarray, creatinine_mg_per_dl: np.ndarray, platelets_10e9_per_l: np.ndarray
) -> np.ndarray:
    """EASIX = LDH (U/L) x creatinine (mg/dL) / platelets (10^9/L).

    Luft T et al., Lancet Haematol 2017; pre-lymphodepletion use in CAR-T by Korell F et al.,
    Front Immunol 2022;13:877477 (EASIX-pre). NaN if any input is missing.
    """
    return ratio(ldh_u_per_l * creatinine_mg_per_dl, platelets_10e9_per_l)


# Below this many CAR+ cells/uL a count is taken at this floor on the log scale: a reported 0
# (below detection) stays finite, and the floor keeps the log level non-decreasing in the count.
LOG_COUNT_FLOOR_CELLS_PER_UL = 0.1


def latest_sample_after_day0(block: np.ndarray) -> np.ndarray:
    """Latest measured value on days 1..L (the day-0 pre-infusion sample excluded); NaN if none.

    For CAR-T counts the day-0 sample is 0 by construction (the cells are not yet in the blood),
    so "latest value" would read 0 until the first post-infusion sample; excluding day 0 makes
    "no sample yet" missing instead of a misleading 0.
    """
    return latest_value(block[:, 1:])


def nan_as_zero_sum(block: np.ndarray) -> np.ndarray:
    """Each row's sum with NaN taken as 0: ``np.nansum(block, axis=1)``'s numbers (it too
    sums a contiguous copy with the NaN set to 0; tested bit for bit), without its checks."""
    return np.where(np.isnan(block), 0.0, block).sum(axis=1)


def mean_log_deviation(block: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean over the sampled days 1..L of ``log(value) - reference[row, day]``; NaN if none.

    ``reference`` (rows x days, natural log) is the typical log level for each row's product on
    each day; days whose reference is NaN are skipped. Values are floored at
    :data:`LOG_COUNT_FLOOR_CELLS_PER_UL` before the log, so the result never decreases when a
    sample rises.
    """
    values = block[:, 1:]
    ref = reference[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.log(np.maximum(values, LOG_COUNT_FLOOR_CELLS_PER_UL)) - ref
    dev = np.where(np.isnan(values), np.nan, dev)
    n = (~np.isnan(dev)).sum(axis=1)
    total = nan_as_zero_sum(dev)
    return np.divide(total, n, out=np.full(len(block), np.nan), where=n > 0)


def sum_to_date(block: np.ndarray) -> np.ndarray:
    """Sum of the values observed up to the prediction day; NaN if nothing was observed.

    For tocilizumab: the doses given so far (a day recorded as 0 counts as observed)."""
    observed = (~np.isnan(block)).any(axis=1)
    return np.where(observed, nan_as_zero_sum(block), np.nan)


# Prophylactic corticosteroids are given on the first days after infusion, before any ICANS:
# dexamethasone 10 mg on days 0, 1 and 2 (ZUMA-1 cohort 6, Oluwole et al., Br J Haematol
# 2021;194:690).
PROPHYLAXIS_LAST_DAY = 2


def dose_before_onset(
    doses: np.ndarray, grades: np.ndarray, last_day: int = PROPHYLAXIS_LAST_DAY
) -> np.ndarray:
    """1 if a dose (> 0) was given on a day 0..``last_day`` with no grade >= 1 recorded on that
    day or before (the grade 0 or not recorded); 0 if the doses of some of those days were
    recorded and none was such a dose; NaN if no dose was recorded on those days.

    For corticosteroids and ICANS grades: prophylaxis, given before (below or without) ICANS,
    as opposed to treatment of ICANS (:mod:`icans.steroids`). Only days up to the prediction
    day count (later days are NaN in the blocks)."""
    given = doses[:, : last_day + 1]
    onset = np.logical_or.accumulate(grades[:, : last_day + 1] >= 1, axis=1)  # NaN: no onset
    before_onset = (given > 0) & ~onset
    recorded = (~np.isnan(given)).any(axis=1)
    return np.where(before_onset.any(axis=1), 1.0, np.where(recorded, 0.0, np.nan))


def latest_two_samples(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Days and values of the latest and the previous positive sample on days 1..L per row
    (NaN where a row has fewer)."""
    days, values = _latest_samples(block, 2, first_day=1, positive=True)
    return days[:, 1], values[:, 1], days[:, 0], values[:, 0]


def log_slope_latest(block: np.ndarray) -> np.ndarray:
    """Change in log count per day between the two latest positive samples on days 1..L; NaN
    with fewer than two. Positive while the expansion is still rising (a late expansion: the
    Katsin case peaked on day 14), negative once it falls."""
    return log_slope_between(*latest_two_samples(block))


def log_slope_between(
    day1: np.ndarray, value1: np.ndarray, day0: np.ndarray, value0: np.ndarray
) -> np.ndarray:
    """Change in log value per day from (``day0``, ``value0``) to (``day1``, ``value1``): the
    slope of :func:`log_slope_latest`, for a caller that already has the two samples."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.log(value1) - np.log(value0)) / (day1 - day0)


def latest_log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """log(numerator / denominator) on the latest day (1..L) both were measured above 0; NaN
    if never. For CD4+/CD8+ CAR-T cells: the current composition of the expansion (CD4:CD8 of
    89 in the Katsin case)."""
    both = (numerator[:, 1:] > 0) & (denominator[:, 1:] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.where(both, np.log(numerator[:, 1:] / denominator[:, 1:]), np.nan)
    return latest_value(log_ratio)


def days_since_max(block: np.ndarray, prediction_day: np.ndarray) -> np.ndarray:
    """Days from the highest sample on days 1..L to the prediction day; NaN if none. 0 when the
    latest sample is the highest so far (the peak may still be ahead)."""
    return _days_since_max(block, np.asarray(prediction_day, dtype=float))


@njit(cache=True, nogil=True)
def _days_since_max(block, prediction_day):
    out = np.full(block.shape[0], np.nan)
    for i in range(block.shape[0]):
        best, at = -np.inf, -1
        for j in range(block.shape[1] - 1, 0, -1):  # from the latest: the latest of equal maxima
            if block[i, j] > best or (at < 0 and not np.isnan(block[i, j])):
                best, at = block[i, j], j
        if at > 0:
            out[i] = prediction_day[i] - at
    return out


def value_on_day(block: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The value of each row on its own ``day`` (NaN where ``day`` is NaN or not observed)."""
    known = ~np.isnan(day)
    index = np.where(known, day, 0).astype(int)
    value = block[np.arange(len(block)), np.clip(index, 0, block.shape[1] - 1)]
    return np.where(known, value, np.nan)


def log_slope_since_first(block: np.ndarray) -> np.ndarray:
    """Change in log count per day from the first to the latest positive sample on days 1..L;
    NaN with fewer than two. Over the whole expansion so far it separates an early from a late
    peak better than the two latest samples (each count carries ~25% measurement noise)."""
    values = np.where(block[:, 1:] > 0, block[:, 1:], np.nan)
    observed = ~np.isnan(values)
    first = np.argmax(observed, axis=1)
    last = values.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    rows = np.arange(len(block))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (np.log(values[rows, last]) - np.log(values[rows, first])) / (last - first)
    return np.where(observed.sum(axis=1) >= 2, slope, np.nan)


def min_to_date(block: np.ndarray) -> np.ndarray:
    """Lowest value observed up to the prediction day; NaN if nothing was observed.

    For the labs that fall with severity (platelets, fibrinogen: consumptive coagulopathy, Hay
    2017) and the ICE score (lower is worse, ASTCT 2019). ``np.fmin``, as
    :func:`max_to_date`."""
    return np.fmin.reduce(block, axis=1)


def first_value(block: np.ndarray) -> np.ndarray:
    """Value on the earliest observed day; NaN if none (the patient's own first daily value)."""
    return latest_value(block[:, ::-1])


def log_floored(block: np.ndarray, floor: float | np.ndarray) -> np.ndarray:
    """Natural log of the values, each taken at least ``floor`` first (a lab reported as 0 stays
    finite and the log never decreases when the value rises); NaN stays NaN. ``floor``: one
    value, or one per row (a column: :class:`features.daily.DailyLabs`, labs stacked)."""
    with np.errstate(invalid="ignore"):
        return np.log(np.maximum(block, floor))  # np.maximum keeps NaN


def latest_samples(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Days and values (rows x ``k``, oldest first) of the ``k`` latest observed days up to the
    prediction day; NaN in the leading columns of a row with fewer than ``k``."""
    return _latest_samples(block, k, first_day=0, positive=False)


@njit(cache=True, nogil=True)
def _latest_samples(block, k, first_day, positive):
    """Days and values (rows x k, oldest first, NaN where fewer) of the k latest samples on
    days ``first_day``..L: observed ones, or only those > 0 with ``positive``."""
    days = np.full((block.shape[0], k), np.nan)
    values = np.full((block.shape[0], k), np.nan)
    for i in range(block.shape[0]):
        found = 0
        for j in range(block.shape[1] - 1, first_day - 1, -1):
            value = block[i, j]
            if value > 0 if positive else not np.isnan(value):  # NaN > 0 is False
                found += 1
                days[i, k - found], values[i, k - found] = j, value
                if found == k:
                    break
    return days, values


# How many of the latest observations the recent trend of a daily lab is fitted to: with daily
# charting the last ~3 days, fewer noisy than a two-point difference, still recent.
RECENT_SAMPLES = 3


def recent_slope(block: np.ndarray, k: int = RECENT_SAMPLES) -> np.ndarray:
    """Least-squares slope per day of the ``k`` latest observed values up to the prediction
    day (days need not be consecutive: skipped days are not imputed); NaN with fewer than two.

    Given log values, the change of the log level per day: CRP 10, 40, 160 mg/L on days 1-3
    gives log(4) per day (it quadruples daily). Computed sample by sample over the ``k``
    picked samples (no reduction whose summation order could depend on the batch), so a single
    row gives the same number as the row within a cohort. The picking and the arithmetic
    (``+ - * /`` only, in a fixed order) are one compiled loop: the numpy form of it, kept in
    ``tests/test_features_definitions.py``, gives the same bits."""
    days, values = latest_samples(block, k)
    return _recent_slope(days, values)


@njit(cache=True, nogil=True, error_model="numpy")  # x / 0 is inf or NaN, as in numpy
def _recent_slope(days, values):
    n_rows, k = values.shape
    out = np.full(n_rows, np.nan)
    for i in range(n_rows):
        n, sum_t, sum_y = 0, 0.0, 0.0
        for j in range(k):
            known = not np.isnan(values[i, j])
            n += known
            sum_t = sum_t + (days[i, j] if known else 0.0)
            sum_y = sum_y + (values[i, j] if known else 0.0)
        if n < 2:
            continue
        mean_t, mean_y = sum_t / n, sum_y / n
        sxy, sxx = 0.0, 0.0
        for j in range(k):
            known = not np.isnan(values[i, j])
            dt = days[i, j] - mean_t if known else 0.0
            dy = values[i, j] - mean_y if known else 0.0
            sxy, sxx = sxy + dt * dy, sxx + dt * dt
        out[i] = sxy / sxx
    return out


def count_to_date(block: np.ndarray, threshold: float) -> np.ndarray:
    """Number of observed days with a value >= ``threshold`` up to the prediction day; NaN if
    nothing was observed (a series never charted is missing, not 0).

    For temperature: the fever days so far (>= 38.0 C, ASTCT 2019)."""
    return _count_to_date(block, float(threshold))


@njit(cache=True, nogil=True)
def _count_to_date(block, threshold):
    out = np.full(block.shape[0], np.nan)
    for i in range(block.shape[0]):
        observed, count = False, 0
        for j in range(block.shape[1]):
            observed |= not np.isnan(block[i, j])
            count += block[i, j] >= threshold  # NaN compares False
        if observed:
            out[i] = count
    return out


def fall_from_best(block: np.ndarray) -> np.ndarray:
    """Best (highest) value to date minus the latest value: 0 at the best so far, NaN if none.

    For the ICE score (10 = no deficit): ICE falls within grade 1 (7-9) before grade 2-3, the
    writing item often first lost (ASTCT 2019, Lee et al.; icans-facts-3)."""
    return max_to_date(block) - latest_value(block)


def latest_common_day(*blocks: np.ndarray) -> list[np.ndarray]:
    """Each block's value on the latest day (up to the prediction day) on which every block was
    observed; NaN where there is no such day. For scores combining labs charted on one day (a
    daily m-EASIX needs LDH, CRP and platelets of the same day). The blocks are stacked, so a
    single patient pays for one search, not one per block; each row is searched on its own."""
    stacked = np.stack(blocks)  # blocks x rows x days
    together = ~np.isnan(stacked).any(axis=0)
    picked = np.where(together, stacked, np.nan).reshape(-1, stacked.shape[2])
    return list(_latest_value(picked).reshape(len(blocks), -1))
