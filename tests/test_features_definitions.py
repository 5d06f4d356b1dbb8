"""Golden values for the clinical feature definitions, computed by hand from their formulas.

Tolerance: these are exact sums of a few products, so 1e-9 relative (floating point only).
"""

from __future__ import annotations

import numpy as np
import pytest

from features import definitions as d
from features.layout import N_DAYS


def _block(samples: dict[int, float], n_days: int = N_DAYS) -> np.ndarray:
    row = np.full((1, n_days), np.nan)
    for day, value in samples.items():
        row[0, day] = value
    return row


@pytest.mark.parametrize(
    ("samples", "expected", "why"),
    [
        ({0: 0.0, 3: 10.0}, 15.0, "3 * (0 + 10) / 2"),
        ({3: 10.0}, 15.0, "day 0 not measured counts as 0 (pre-infusion): 3 * 10 / 2"),
        ({0: 0.0, 3: 10.0, 10: 30.0}, 155.0, "missed day-7 sample not imputed: 15 + 7*(10+30)/2"),
        ({7: 20.0}, 70.0, "single sample: triangle from the day-0 anchor, 7 * 20 / 2"),
        ({0: 0.0}, 0.0, "day 0 alone: no area"),
        ({0: 5.0, 2: 5.0}, 10.0, "a measured day-0 value is used as measured: 2 * (5 + 5) / 2"),
    ],
)
def test_cd4_auc_golden_values(samples, expected, why):
    assert d.auc_to_date(_block(samples))[0] == pytest.approx(expected, rel=1e-9), why


def test_auc_without_any_sample_is_missing_not_zero():
    assert np.isnan(d.auc_to_date(_block({}))[0])


def test_auc_case_report_sanity_check():
    """Katsin et al. 2024 (PMBCL, grade IV ICANS): CD4+ CAR-T AUC0-28 632.2 cells*day/uL with a
    peak at day 14 (77.7 CAR-T cells/uL, CD4:CD8 89, so ~76.8 CD4+) and 27.9 at day 28 (~27.6
    CD4+). The intermediate samples are not published; with plausible ones (day 7: 1, day 10: 4,
    day 21: 20) the trapezoid gives 3.5 + 7.5 + 161.6 + 338.8 + 166.6 = 678.0, within 10% of the
    published figure: the definition and the units (cells*day/uL) agree with the report."""
    samples = {0: 0.0, 7: 1.0, 10: 4.0, 14: 76.8, 21: 20.0, 28: 27.6}
    auc = d.auc_to_date(_block(samples))[0]
    assert auc == pytest.approx(678.0, rel=1e-9)
    assert abs(auc - 632.2) / 632.2 < 0.10
    # The same course seen on day 14 stops at the day-14 sample: 3.5 + 7.5 + 161.6.
    to_day_14 = {k: v for k, v in samples.items() if k <= 14}
    assert d.auc_to_date(_block(to_day_14))[0] == pytest.approx(172.6, rel=1e-9)


def test_auc_vectorised_rows_are_independent():
    block = np.vstack([_block({3: 10.0}), _block({}), _block({7: 20.0})])
    np.testing.assert_allclose(d.auc_to_date(block), [15.0, np.nan, 70.0])


def test_m_easix_golden_value_converts_crp_to_mg_per_dl():
    # Pennisi 2021: LDH (U/L) x CRP (mg/dL) / platelets (10^9/L); CRP 50 mg/L = 5 mg/dL.
    assert d.m_easix(np.array([300.0]), np.array([50.0]), np.array([100.0]))[0] == 15.0


def test_easix_golden_value():
    # Luft 2017 / Korell 2022: LDH (U/L) x creatinine (mg/dL) / platelets (10^9/L).
    assert d.easix(np.array([300.0]), np.array([1.2]), np.array([100.0]))[0] == pytest.approx(3.6)


@pytest.mark.parametrize("missing", ["ldh", "crp", "platelets"])
def test_m_easix_missing_input_gives_missing_score(missing):
    values = {"ldh": 300.0, "crp": 50.0, "platelets": 100.0} | {missing: np.nan}
    assert np.isnan(d.m_easix(*(np.array([values[k]]) for k in ("ldh", "crp", "platelets")))[0])


def test_scores_with_zero_platelets_are_missing_not_infinite():
    assert np.isnan(d.m_easix(np.array([300.0]), np.array([50.0]), np.array([0.0]))[0])
    assert np.isnan(d.easix(np.array([300.0]), np.array([1.0]), np.array([0.0]))[0])


def test_latest_value_carries_forward_the_last_observed_grade():
    block = np.vstack([_block({0: 0, 2: 2}), _block({0: 0, 1: 1, 3: 0}), _block({})])
    # copies of observed values and whole days, here and below: exact
    np.testing.assert_array_equal(d.latest_value(block), [2.0, 0.0, np.nan])


def test_max_to_date():
    block = np.vstack([_block({0: 0, 2: 3, 4: 1}), _block({})])
    np.testing.assert_array_equal(d.max_to_date(block), [3.0, np.nan])


def test_days_since_first_onset():
    block = np.vstack([_block({0: 0, 1: 0, 2: 1, 3: 2}), _block({0: 0, 1: 0})])
    np.testing.assert_array_equal(d.days_since_first(block, 1, np.array([5.0, 5.0])), [3.0, np.nan])


def test_latest_sample_after_day0_ignores_the_pre_infusion_zero():
    block = np.vstack([_block({0: 0.0}), _block({0: 0.0, 3: 5.0, 7: 12.0}), _block({})])
    np.testing.assert_array_equal(d.latest_sample_after_day0(block), [np.nan, 12.0, np.nan])


def test_mean_log_deviation_golden_values():
    # reference: log 10 on day 3, log 20 on day 7, unknown (NaN) on day 10
    reference = np.full((3, N_DAYS), np.nan)
    reference[:, 3], reference[:, 7] = np.log(10.0), np.log(20.0)
    block = np.vstack(
        [
            _block({0: 0.0, 3: 20.0, 7: 10.0}),  # (log 2 + log 0.5) / 2 = 0
            _block({0: 0.0, 3: 40.0, 10: 99.0}),  # day 10 has no reference: log 4 only
            _block({0: 0.0}),  # no post-infusion sample
        ]
    )
    out = d.mean_log_deviation(block, reference)
    np.testing.assert_allclose(out[:2], [0.0, np.log(4.0)], atol=1e-12)
    assert np.isnan(out[2])


def test_mean_log_deviation_never_falls_when_a_sample_rises_even_from_zero():
    reference = np.zeros((1, N_DAYS))
    low = d.mean_log_deviation(_block({3: 0.0, 7: 5.0}), reference)[0]
    high = d.mean_log_deviation(_block({3: 0.05, 7: 5.0}), reference)[0]
    higher = d.mean_log_deviation(_block({3: 1.0, 7: 5.0}), reference)[0]
    assert np.isfinite(low) and low <= high < higher


@pytest.mark.parametrize(
    ("grades", "landmark", "expected"),
    [
        ({3: 1, 5: 2, 6: 1}, 7, (1.0, 2.0, 4.0, 2.0)),  # grade 2 on day 5: steroids 2 days ago
        ({3: 1, 5: 2, 6: 1}, 4, (1.0, 1.0, 1.0, np.nan)),  # day 5 is not yet observed on day 4
        ({3: 1, 4: 1}, 7, (1.0, 1.0, 4.0, np.nan)),  # never grade 2
        ({2: 2}, 2, (2.0, 2.0, 0.0, 0.0)),  # grade 2 today, onset at grade 2
        ({}, 7, (np.nan, np.nan, np.nan, np.nan)),  # no ICANS findings recorded
    ],
)
def test_icans_features_from_the_grades_observed_up_to_the_landmark(grades, landmark, expected):
    """Today's grade, the worst so far, days since onset (grade >= 1) and days since grade 2
    (when corticosteroids start), from the raw layout through the pipeline's own step and
    its observation window."""
    from features.layout import COLUMN_INDEX, RAW_COLUMNS, SERIES_SLICE
    from features.transformers import IcansFeatures, ObservationWindow

    raw = np.full((1, len(RAW_COLUMNS)), np.nan)
    raw[0, COLUMN_INDEX["day_since_infusion"]] = landmark
    for day, grade in grades.items():
        raw[0, SERIES_SLICE["icans_grade"].start + day] = grade
    step = IcansFeatures()
    assert tuple(step.get_feature_names_out()) == (
        "icans_grade_today",
        "icans_max_grade_to_date",
        "days_since_icans_onset",
        "days_since_icans_grade2",
    )
    window = ObservationWindow().fit(raw)
    # grades and whole days: exact
    np.testing.assert_array_equal(step.fit(raw).transform(window.transform(raw))[0], expected)


@pytest.mark.parametrize(
    ("doses", "expected", "why"),
    [
        ({1: 1.0, 2: 2.0}, 3.0, "1 + 2 doses"),
        ({0: 0.0, 1: 0.0}, 0.0, "recorded days without a dose: 0, not missing"),
        ({}, np.nan, "nothing recorded: missing, never 0"),
    ],
)
def test_tocilizumab_doses_to_date(doses, expected, why):
    # whole doses: exact
    np.testing.assert_array_equal(d.sum_to_date(_block(doses)), [expected], err_msg=why)


@pytest.mark.parametrize(
    ("mg", "grades", "expected", "why"),
    [
        ({0: 10.0, 1: 10.0, 2: 10.0}, {}, 1.0, "dexamethasone 10 mg d0-2 (ZUMA-1 cohort 6)"),
        ({0: 10.0}, {0: 0, 4: 2}, 1.0, "a dose on day 0 at grade 0; ICANS later"),
        ({1: 10.0}, {0: 1}, 0.0, "ICANS (grade 1) on day 0 came first: treatment"),
        ({2: 20.0}, {2: 1}, 0.0, "ICANS the same day: treatment"),
        ({0: 0.0, 1: 0.0, 2: 0.0, 3: 10.0}, {}, 0.0, "a first dose on day 3 is not prophylaxis"),
        ({3: 10.0}, {}, np.nan, "days 0-2 not recorded: missing"),
    ],
)
def test_prophylactic_dose(mg, grades, expected, why):
    got = d.dose_before_onset(_block(mg), _block(grades))
    np.testing.assert_array_equal(got, [expected], err_msg=why)  # a 0/1 flag: exact


@pytest.mark.parametrize(
    ("mg", "grades", "landmark", "expected"),
    [
        # prophylaxis d0-2, ICANS grade 1 on day 3 treated with 20 mg; toci 1 dose on day 1
        # (latest mg, days since start, grade at start, prophylaxis, tocilizumab doses,
        # persisting on steroids with the 72-h reading pending: grade >= max(start grade, 2))
        # a grade 1 start still at grade 1: lingering, not persisting as refractory ICANS does
        ({0: 10.0, 1: 10.0, 2: 10.0, 3: 20.0}, {3: 1}, 5, (20.0, 2.0, 1.0, 1.0, 1.0, 0.0)),
        ({0: 10.0, 1: 10.0, 2: 10.0, 3: 20.0}, {3: 1}, 3, (20.0, 0.0, 1.0, 1.0, 1.0, 0.0)),
        ({0: 10.0, 1: 10.0, 2: 10.0, 3: 20.0}, {3: 1}, 2, (10.0, np.nan, np.nan, 1.0, 1.0, np.nan)),
        # the grade 1 start has become grade 2 on day 5: persisting
        ({3: 20.0}, {3: 1, 5: 2}, 5, (20.0, 2.0, 1.0, np.nan, 1.0, 1.0)),
        # the 72-h reading (start + 3) has come: no longer pending
        ({3: 20.0}, {3: 2, 6: 2}, 6, (20.0, 3.0, 2.0, np.nan, 1.0, 0.0)),
        # started at grade 2 on day 5 (40 mg), grade 1 on day 6: improved
        ({5: 40.0, 6: 40.0}, {5: 2, 6: 1}, 6, (40.0, 1.0, 2.0, np.nan, 1.0, 0.0)),
        # started at grade 2 on day 5, still grade 2 on day 7: persisting, read again on day 8
        ({5: 40.0, 7: 40.0}, {5: 2, 7: 2}, 7, (40.0, 2.0, 2.0, np.nan, 1.0, 1.0)),
        # started at grade 2 on day 5, grade 2 on day 5 itself: persisting from the start
        ({5: 40.0}, {5: 2}, 5, (40.0, 0.0, 2.0, np.nan, 1.0, 1.0)),
        # 10 mg with grade 1 on day 4 is below treatment: no start
        ({0: 0.0, 4: 10.0}, {4: 1}, 6, (10.0, np.nan, np.nan, 0.0, 1.0, 0.0)),
        ({}, {}, 6, (np.nan, np.nan, np.nan, np.nan, 1.0, np.nan)),
    ],
)
def test_treatment_features_from_the_course_up_to_the_landmark(mg, grades, landmark, expected):
    """Latest corticosteroid dose, days since steroids started for ICANS, the grade then,
    prophylaxis, tocilizumab doses so far and ICANS unimproved on steroids, through the
    pipeline's own step and its observation window."""
    from features.layout import COLUMN_INDEX, RAW_COLUMNS, SERIES_SLICE
    from features.transformers import ObservationWindow
    from features.treatment import TreatmentFeatures

    raw = np.full((1, len(RAW_COLUMNS)), np.nan)
    raw[0, COLUMN_INDEX["day_since_infusion"]] = landmark
    for day, value in mg.items():
        raw[0, SERIES_SLICE["dexamethasone_mg"].start + day] = value
    for day, grade in grades.items():
        raw[0, SERIES_SLICE["icans_grade"].start + day] = grade
    raw[0, SERIES_SLICE["tocilizumab_doses"].start + 1] = 1
    step = TreatmentFeatures()
    window = ObservationWindow().fit(raw)
    # copied doses, whole days, grades and flags: exact
    np.testing.assert_array_equal(step.fit(raw).transform(window.transform(raw))[0], expected)


@pytest.mark.parametrize(
    ("cd4", "cd8", "landmark", "expected", "why"),
    [
        # Katsin-like: CD4 rising 1 -> 8 -> 30 on days 3, 7, 10, CD8 0.05 -> 0.15 -> 0.4
        (
            {0: 0.0, 3: 1.0, 7: 8.0, 10: 30.0},
            {0: 0.0, 3: 0.05, 7: 0.15, 10: 0.4},
            10,
            (np.log(30 / 8) / 3, 0.0, np.log(30 / 0.4)),
            "rising: positive slope, peak is the latest sample, CD4:CD8 75",
        ),
        (
            {3: 30.0, 7: 20.0, 10: 8.0},
            {3: 30.0, 7: 20.0, 10: 8.0},
            10,
            (np.log(8 / 20) / 3, 7.0, 0.0),
            "falling from a day-3 peak, balanced composition",
        ),
        ({3: 5.0}, {3: 5.0}, 7, (np.nan, 4.0, 0.0), "one sample: no slope yet"),
        ({}, {}, 7, (np.nan, np.nan, np.nan), "no sample: all missing"),
        ({3: 5.0, 7: 9.0}, {3: 5.0, 7: 3.0}, 5, (np.nan, 2.0, 0.0), "day 7 is after L=5"),
    ],
)
def test_expansion_shape(cd4, cd8, landmark, expected, why):
    """Trend, days since peak and composition, through the pipeline's own step and window."""
    from features.kinetics import ExpansionShape
    from features.layout import COLUMN_INDEX, RAW_COLUMNS, SERIES_SLICE
    from features.transformers import ObservationWindow

    raw = np.full((1, len(RAW_COLUMNS)), np.nan)
    raw[0, COLUMN_INDEX["day_since_infusion"]] = landmark
    for name, values in (("cd4_cells_per_ul", cd4), ("cd8_cells_per_ul", cd8)):
        for day, value in values.items():
            raw[0, SERIES_SLICE[name].start + day] = value
    window = ObservationWindow().fit(raw)
    got = ExpansionShape().fit(raw).transform(window.transform(raw))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=why)


# --------------------------------------------------------------------------------------------
# The daily routine (features.daily): hand-computed values on small blocks
# --------------------------------------------------------------------------------------------


def test_crp_quadrupling_daily_gives_log4_per_day_and_latest_log160():
    """CRP 10, 40, 160 mg/L on days 1-3: latest log(160), peak log(160), and the least-squares
    slope of (1, log 10), (2, log 40), (3, log 160) is (log 160 - log 10) / 2 = log 4 per day."""
    logs = d.log_floored(_block({1: 10.0, 2: 40.0, 3: 160.0}), 0.1)
    assert d.latest_value(logs)[0] == pytest.approx(np.log(160.0), rel=1e-12)
    assert d.max_to_date(logs)[0] == pytest.approx(np.log(160.0), rel=1e-12)
    assert d.recent_slope(logs)[0] == pytest.approx(np.log(4.0), rel=1e-12)


def test_recent_slope_uses_the_three_latest_samples_and_skipped_days():
    # values 100, 1, 2, 4 on days 0, 2, 5, 6: the three latest are (2, 1), (5, 2), (6, 4);
    # mean day 13/3, mean value 7/3;
    # sxy = (2-13/3)(1-7/3) + (5-13/3)(2-7/3) + (6-13/3)(4-7/3) = 28/9 - 2/9 + 25/9 = 51/9
    # sxx = 49/9 + 4/9 + 25/9 = 78/9; slope 51/78
    block = _block({0: 100.0, 2: 1.0, 5: 2.0, 6: 4.0})
    assert d.recent_slope(block)[0] == pytest.approx(51.0 / 78.0, rel=1e-12)
    # two samples: their difference per day; one or none: missing
    assert d.recent_slope(_block({3: 1.0, 7: 3.0}))[0] == pytest.approx(0.5, rel=1e-12)
    assert np.isnan(d.recent_slope(_block({4: 2.0}))[0])
    assert np.isnan(d.recent_slope(_block({}))[0])


def test_recent_slope_rows_are_independent_and_equal_alone():
    rows = [_block({1: 1.0, 2: 2.0, 3: 4.0}), _block({}), _block({0: 5.0, 9: 2.0})]
    batch = d.recent_slope(np.vstack(rows))
    alone = np.concatenate([d.recent_slope(r) for r in rows])
    # least-squares sums: numpy may pair the terms differently for a batch and for one row
    np.testing.assert_allclose(batch, alone, rtol=1e-12, atol=0)
    np.testing.assert_allclose(batch, [1.5, np.nan, -1.0 / 3.0])


def test_log_floored_keeps_zero_finite_and_nan_missing():
    logs = d.log_floored(_block({1: 0.0, 2: 0.005, 3: 0.2}), 0.01)
    assert logs[0, 1] == pytest.approx(np.log(0.01)) and logs[0, 2] == pytest.approx(np.log(0.01))
    assert logs[0, 3] == pytest.approx(np.log(0.2))
    assert np.isnan(logs[0, 0]) and np.isnan(logs[0, 4])


def test_min_first_and_fall_from_best():
    # platelets 150, 80, 40 then 60 on days 0, 2, 4, 6
    plt = _block({0: 150.0, 2: 80.0, 4: 40.0, 6: 60.0})
    assert d.min_to_date(plt)[0] == 40.0
    assert d.first_value(plt)[0] == 150.0
    # ICE 10, 10, 8, 6 then 7: the best 10, the latest 7, 3 below the best
    ice = _block({1: 10.0, 2: 10.0, 3: 8.0, 4: 6.0, 5: 7.0})
    assert d.fall_from_best(ice)[0] == 3.0
    assert d.min_to_date(ice)[0] == 6.0
    for f in (d.min_to_date, d.first_value, d.fall_from_best):
        assert np.isnan(f(_block({}))[0])


def test_fever_days_count_only_charted_days_at_or_above_38():
    # 37.2, 38.0 (fever: >= 38.0), 39.4, 37.9 (not fever), 38.5: three fever days
    temp = _block({0: 37.2, 1: 38.0, 2: 39.4, 3: 37.9, 5: 38.5})
    assert d.count_to_date(temp, 38.0)[0] == 3.0
    assert d.days_since_first(temp, 38.0, np.array([6.0]))[0] == 5.0  # onset day 1
    assert d.count_to_date(_block({0: 36.8}), 38.0)[0] == 0.0  # charted, afebrile: 0
    assert np.isnan(d.count_to_date(_block({}), 38.0)[0])  # never charted: missing


def test_latest_common_day_takes_the_latest_day_all_were_charted():
    # LDH on days 1, 2, 3; CRP on days 1, 3; platelets on days 1, 2: day 1 is the latest common
    ldh = _block({1: 300.0, 2: 400.0, 3: 500.0})
    crp = _block({1: 20.0, 3: 90.0})
    plt = _block({1: 100.0, 2: 50.0})
    got = [v[0] for v in d.latest_common_day(ldh, crp, plt)]
    assert got == [300.0, 20.0, 100.0]
    # m-EASIX that day: 300 x (20 mg/L = 2 mg/dL) / 100 = 6
    assert d.m_easix(*(np.array([v]) for v in got))[0] == pytest.approx(6.0, rel=1e-12)
    assert all(np.isnan(v[0]) for v in d.latest_common_day(ldh, _block({2: 5.0}), crp))


# The compiled definitions (numba loops) against the numpy forms they replaced, kept here as
# the reference: a second implementation by other means, on random blocks with every kind of
# row (nothing observed, one sample, ties, zeros, values on day 0 only) and on the strided views
# the steps pass (days reversed, day 0 dropped).
def _reference_latest_value(block):
    observed = ~np.isnan(block)
    last = block.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    value = block[np.arange(len(block)), last]
    return np.where(observed.any(axis=1), value, np.nan)


def _reference_days_since_first(block, threshold, prediction_day):
    hit = block >= threshold
    first = np.argmax(hit, axis=1).astype(float)
    return np.where(hit.any(axis=1), prediction_day - first, np.nan)


def _reference_latest_samples(block, k):
    days = np.where(np.isnan(block), -1.0, np.arange(block.shape[1], dtype=float)[None, :])
    top = np.argsort(days, axis=1, kind="stable")[:, -k:]
    rows = np.arange(len(block))[:, None]
    picked_days, picked = days[rows, top], block[rows, top]
    absent = picked_days < 0
    return np.where(absent, np.nan, picked_days), np.where(absent, np.nan, picked)


def _reference_latest_two_samples(block):
    values = np.where(block[:, 1:] > 0, block[:, 1:], np.nan)
    days = np.where(np.isnan(values), -1.0, np.arange(block.shape[1], dtype=float)[1:])
    top = np.argsort(days, axis=1, kind="stable")[:, -2:]
    rows = np.arange(len(block))[:, None]
    picked_days, picked = days[rows, top], values[rows, top]
    picked_days = np.where(picked_days < 0, np.nan, picked_days)
    return picked_days[:, 1], picked[:, 1], picked_days[:, 0], picked[:, 0]


def _reference_days_since_max(block, prediction_day):
    values = block[:, 1:]
    observed = ~np.isnan(values)
    filled = np.where(observed, values, -np.inf)
    last_max = values.shape[1] - 1 - np.argmax(filled[:, ::-1], axis=1)
    return np.where(observed.any(axis=1), prediction_day - (last_max + 1), np.nan)


def _reference_count_to_date(block, threshold):
    observed = (~np.isnan(block)).any(axis=1)
    return np.where(observed, (block >= threshold).sum(axis=1).astype(float), np.nan)


def _reference_ratio(numerator, denominator):
    ok = (denominator > 0) & ~np.isnan(numerator)
    with np.errstate(over="ignore"):
        out = np.divide(numerator, denominator, out=np.full(len(numerator), np.nan), where=ok)
    return np.where(np.isfinite(out), out, np.nan)


def _random_blocks(seed: int):
    rng = np.random.default_rng(seed)
    for trial in range(200):
        n = int(rng.integers(1, 40))
        if trial % 2:
            levels = [np.nan, 0.0, 0.5, 1.0, 2.0, 3.0, 38.2, 7.0]
            block = rng.choice(levels, size=(n, N_DAYS), p=[0.5] + [0.5 / 7] * 7)
        else:
            block = rng.lognormal(size=(n, N_DAYS))
            block[rng.random((n, N_DAYS)) < 0.7] = np.nan
        block[0] = np.nan  # a row with nothing observed
        yield rng, block
        yield rng, block[:, ::-1]
        yield rng, block[:, 1:]


def test_the_compiled_definitions_give_exactly_the_numpy_forms():
    checked = 0
    for rng, block in _random_blocks(seed=11):
        day = rng.integers(0, N_DAYS, size=len(block)).astype(float)
        pairs = [
            (d.latest_value(block), _reference_latest_value(block)),
            (d.days_since_first(block, 1.0, day), _reference_days_since_first(block, 1.0, day)),
            (d.count_to_date(block, 2.0), _reference_count_to_date(block, 2.0)),
            (d.days_since_max(block, day), _reference_days_since_max(block, day)),
            *zip(d.latest_samples(block, 3), _reference_latest_samples(block, 3), strict=True),
            *zip(d.latest_two_samples(block), _reference_latest_two_samples(block), strict=True),
        ]
        for ours, reference in pairs:
            np.testing.assert_array_equal(ours, reference)  # bit for bit, NaN where NaN
            checked += 1
    assert checked > 3000


def test_the_compiled_ratio_gives_exactly_numpys_division():
    rng = np.random.default_rng(5)
    numerators = np.array([np.nan, 0.0, 1.0, 1e308, -2.0, np.inf, 3.3])
    denominators = np.array([np.nan, 0.0, 1e-308, 2.0, -1.0, 5e-324, 7.7])
    for _ in range(200):
        n = int(rng.integers(1, 30))
        num, den = rng.choice(numerators, size=n), rng.choice(denominators, size=n)
        np.testing.assert_array_equal(d.ratio(num, den), _reference_ratio(num, den))
    # the edges: overflow and a vanishing denominator are NaN, never infinite
    assert np.isnan(d.ratio(np.array([1e308]), np.array([1e-308])))[0]
    assert np.isnan(d.ratio(np.array([1.0]), np.array([0.0])))[0]


def _same_bits(ours: np.ndarray, reference: np.ndarray) -> None:
    """Bit for bit (-0.0 is not 0.0), NaN where NaN."""
    ours, reference = np.asarray(ours, dtype=float), np.asarray(reference, dtype=float)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    known = ~np.isnan(reference)
    np.testing.assert_array_equal(ours[known].view(np.int64), reference[known].view(np.int64))


def _reference_recent_slope(block, k=d.RECENT_SAMPLES):
    """The numpy form recent_slope had before its loop was compiled."""
    days, values = d.latest_samples(block, k)
    known = ~np.isnan(values)
    n = known.sum(axis=1).astype(float)
    t = np.where(known, days, 0.0)
    y = np.where(known, values, 0.0)
    sum_t, sum_y = np.zeros(len(block)), np.zeros(len(block))
    for j in range(k):
        sum_t, sum_y = sum_t + t[:, j], sum_y + y[:, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_t, mean_y = sum_t / n, sum_y / n
        sxy, sxx = np.zeros(len(block)), np.zeros(len(block))
        for j in range(k):
            dt = np.where(known[:, j], t[:, j] - mean_t, 0.0)
            dy = np.where(known[:, j], y[:, j] - mean_y, 0.0)
            sxy, sxx = sxy + dt * dy, sxx + dt * dt
        slope = sxy / sxx
    return np.where(n >= 2, slope, np.nan)


def _reference_latest_common_day(*blocks):
    """The form latest_common_day had before the blocks were stacked: one search per block."""
    together = np.logical_and.reduce([~np.isnan(b) for b in blocks])
    return [d.latest_value(np.where(together, b, np.nan)) for b in blocks]


def test_the_compiled_and_stacked_forms_give_exactly_the_numpy_forms_they_replaced():
    """recent_slope (a compiled loop), latest_common_day (blocks stacked), nan_as_zero_sum
    (np.nansum without its checks): the same bits as the forms they replaced, on random blocks
    of every kind (logs of lognormal values, repeated levels, negative values, reversed and
    shifted days), in batches and one row at a time."""
    checked = 0
    for rng, block in _random_blocks(seed=23):
        with np.errstate(divide="ignore"):  # 0 -> -inf: infinite slopes, as the numpy form
            logs = np.log(block)  # negative and repeated values: slopes of every sign, and 0
        for k in (2, 3, 4):
            _same_bits(d.recent_slope(logs, k), _reference_recent_slope(logs, k))
        for i in range(min(3, len(block))):
            _same_bits(d.recent_slope(logs[i : i + 1]), _reference_recent_slope(logs)[i : i + 1])
        other = np.where(rng.random(block.shape) < 0.3, np.nan, block[::-1])
        third = np.where(rng.random(block.shape) < 0.3, np.nan, logs)
        for ours, reference in zip(
            d.latest_common_day(block, other, third),
            _reference_latest_common_day(block, other, third),
            strict=True,
        ):
            _same_bits(ours, reference)
        _same_bits(d.nan_as_zero_sum(logs), np.nansum(logs, axis=1))
        _same_bits(
            d.sum_to_date(block),
            np.where(np.isnan(block).all(axis=1), np.nan, np.nansum(block, axis=1)),
        )
        checked += 1
    assert checked == 600
