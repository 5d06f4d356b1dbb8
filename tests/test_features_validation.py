"""Cohort-table validation (``cohort.schema``, pandera) and its use by the landmark builder.

Valid generated tables pass (and come back coerced); corrupted ones raise ONE
:class:`~icans.errors.InvalidCohortError` that lists every bad row, each error naming the patient
(``.where``), the field and the value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.schema import validate_table
from features.landmarks import DEFAULT_LANDMARKS, build_landmark_dataset
from features.layout import RAW_COLUMNS
from icans.contract import CAR_TARGETS
from icans.errors import InvalidCohortError, InvalidInputError

TABLES = ("patients", "daily", "measurements", "outcomes")


@pytest.fixture(scope="module")
def tables(block_of) -> dict[str, pd.DataFrame]:
    """500 valid synthetic patients, generated once for this file (never mutated by tests)."""
    return block_of(500, seed=3)


def copies(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {name: frame.copy() for name, frame in tables.items()}


def pid(frame: pd.DataFrame, row: int) -> str:
    return str(frame["patient_id"].iloc[row])


def find(errors: list[InvalidInputError], field: str, patient: str) -> InvalidInputError:
    hits = [e for e in errors if e.field == field and e.where and f"patient {patient} " in e.where]
    assert hits, f"no error for {field} of {patient}: {[(e.field, e.where) for e in errors]}"
    return hits[0]


def assert_message(err: InvalidInputError, value) -> None:
    text = str(err)
    assert err.where and err.where in text
    assert f"{err.field}={value!r}" in text, text
    assert "expected" in text and err.expected, text


# Corrupted rows (positions in the generated tables).
BAD_TARGET_ROWS = (3, 250)
BAD_AGE_ROWS = (10, 499)
NEGATIVE_CD4_ROWS = (5, 50, 700)
BAD_CRS_ROWS = (7, 2000)
DUPLICATED_DAILY_ROW = 100


def corrupted(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = copies(tables)
    p, m, d = out["patients"], out["measurements"], out["daily"]
    p.loc[list(BAD_TARGET_ROWS), "car_target"] = "XYZ"
    p.loc[list(BAD_AGE_ROWS), "age_years"] = 150.0
    m.loc[list(NEGATIVE_CD4_ROWS), "cd4_car_t_cells_per_ul"] = -1.0
    d.loc[list(BAD_CRS_ROWS), "crs_grade"] = 7
    out["daily"] = pd.concat([d, d.iloc[[DUPLICATED_DAILY_ROW]]], ignore_index=True)
    return out


# --------------------------------------------------------------------------------------------
# Valid tables
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABLES)
def test_valid_table_passes_unchanged_in_content(tables, name):
    out = validate_table(name, tables[name])
    assert len(out) == len(tables[name])
    assert list(out["patient_id"]) == list(tables[name]["patient_id"])


def test_valid_table_is_returned_coerced(tables):
    p = tables["patients"].copy()
    p["cns_involvement"] = p["cns_involvement"].astype(int)  # 0/1 -> bool
    p["age_years"] = p["age_years"].round().astype(int)  # int -> float
    out = validate_table("patients", p)
    assert out["cns_involvement"].dtype == bool
    assert out["age_years"].dtype == np.float64
    assert out["prior_lines"].dtype == np.float64
    assert out["neuro_comorbidity"].dtype == np.float64
    assert set(out["neuro_comorbidity"].dropna().unique()) <= {0.0, 1.0}
    # booleans and integer grades, as read: exact (here and below)
    np.testing.assert_array_equal(out["cns_involvement"], tables["patients"]["cns_involvement"])

    d = tables["daily"].copy()
    d["crs_grade"] = d["crs_grade"].astype(float)
    d["day"] = d["day"].astype(float)
    out = validate_table("daily", d)
    assert out["crs_grade"].dtype == np.int64
    assert out["day"].dtype == np.int64
    np.testing.assert_array_equal(out["crs_grade"], tables["daily"]["crs_grade"])


# --------------------------------------------------------------------------------------------
# Corrupted tables: every bad row, with patient, field and value
# --------------------------------------------------------------------------------------------


def test_patients_every_bad_row_listed(tables):
    bad = corrupted(tables)["patients"]
    with pytest.raises(InvalidCohortError) as info:
        validate_table("patients", bad)
    exc = info.value
    assert exc.table == "patients"
    assert len(exc.errors) == len(BAD_TARGET_ROWS) + len(BAD_AGE_ROWS)
    for row in BAD_TARGET_ROWS:
        err = find(exc.errors, "car_target", pid(bad, row))
        assert err.value == "XYZ"
        assert_message(err, "XYZ")
        for target in CAR_TARGETS:  # the allowed values are stated
            assert target in err.expected
    for row in BAD_AGE_ROWS:
        err = find(exc.errors, "age_years", pid(bad, row))
        assert err.value == 150.0
        assert_message(err, 150.0)
        assert "100" in err.expected
    for err in exc.errors:  # the summary message carries every error
        assert str(err) in str(exc)


def test_measurements_every_negative_count_listed(tables):
    bad = corrupted(tables)["measurements"]
    with pytest.raises(InvalidCohortError) as info:
        validate_table("measurements", bad)
    errors = info.value.errors
    assert len(errors) == len(NEGATIVE_CD4_ROWS)
    for row in NEGATIVE_CD4_ROWS:
        err = find(errors, "cd4_car_t_cells_per_ul", pid(bad, row))
        assert err.value == -1.0
        assert f"row {row}" in err.where
        assert_message(err, -1.0)


def test_daily_duplicates_and_grades_listed_together(tables):
    bad = corrupted(tables)["daily"]
    with pytest.raises(InvalidCohortError) as info:
        validate_table("daily", bad)
    errors = info.value.errors
    for row in BAD_CRS_ROWS:
        err = find(errors, "crs_grade", pid(bad, row))
        assert err.value == 7
        assert f"row {row}" in err.where
        assert_message(err, 7)
        assert "4" in err.expected
    duplicated = pid(bad, DUPLICATED_DAILY_ROW)
    day = int(bad["day"].iloc[DUPLICATED_DAILY_ROW])
    err = find(errors, "patient_id+day", duplicated)
    assert err.value == (duplicated, day)
    assert "at most once" in err.expected
    dup_rows = {e.where for e in errors if e.field == "patient_id+day"}
    assert any(f"row {DUPLICATED_DAILY_ROW})" in w for w in dup_rows)
    assert any(f"row {len(bad) - 1})" in w for w in dup_rows)  # the copy is listed too


def test_build_landmark_dataset_raises_on_corrupted_tables(tables):
    with pytest.raises(InvalidCohortError) as info:
        build_landmark_dataset(corrupted(tables))
    # at least the first invalid table is reported in full
    assert len(info.value.errors) >= len(BAD_TARGET_ROWS) + len(BAD_AGE_ROWS)
    fields = {e.field for e in info.value.errors}
    assert {"car_target", "age_years"} <= fields


@pytest.mark.parametrize("name", ["daily", "measurements"])
def test_build_landmark_dataset_checks_every_table(tables, name):
    bad = copies(tables)
    bad[name] = corrupted(tables)[name]
    with pytest.raises(InvalidCohortError) as info:
        build_landmark_dataset(bad)
    assert info.value.errors
    assert all(e.where.startswith(f"{name}: ") for e in info.value.errors)


def test_build_landmark_dataset_lists_bad_rows_of_all_tables_at_once(tables):
    with pytest.raises(InvalidCohortError) as info:
        build_landmark_dataset(corrupted(tables))
    fields = {e.field for e in info.value.errors}
    assert {
        "car_target",
        "age_years",
        "cd4_car_t_cells_per_ul",
        "crs_grade",
        "patient_id+day",
    } <= fields


def test_where_names_the_right_patient_when_index_is_not_positional(tables):
    p = tables["patients"].iloc[::-1].copy()  # index labels 499..0
    p.loc[3, "car_target"] = "XYZ"
    with pytest.raises(InvalidCohortError) as info:
        validate_table("patients", p)
    (err,) = info.value.errors
    assert f"patient {p.loc[3, 'patient_id']} " in err.where, err.where


def test_validate_false_skips_the_checks(tables):
    ds = build_landmark_dataset(corrupted(tables), landmarks=(0,), validate=False)
    assert len(ds) == len(tables["patients"])


# --------------------------------------------------------------------------------------------
# Landmark days
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("landmarks", [(30,), (), (28,), (-1,), (0, 3, 40), (1.5,)])
def test_invalid_landmarks_named(tables, landmarks):
    with pytest.raises(InvalidInputError) as info:
        build_landmark_dataset(tables, landmarks=landmarks)
    err = info.value
    assert err.field == "landmarks"
    assert err.value == list(landmarks)
    assert "landmarks=" in str(err) and "expected" in str(err) and "27" in str(err)


def test_valid_tables_build_landmark_rows(tables):
    ds = build_landmark_dataset(tables, validate=True)
    assert list(ds.frame().columns) == list(RAW_COLUMNS)
    assert set(np.unique(ds.landmark_day)) <= set(DEFAULT_LANDMARKS)
    assert (ds.landmark_day == 0).sum() == len(tables["patients"])
    n = len(ds)
    assert len(ds.label) == len(ds.patient_id) == len(ds.true_risk) == len(ds.subgroups) == n


# --------------------------------------------------------------------------------------------
# The treatment course and marrow involvement: optional columns, checked when present
# --------------------------------------------------------------------------------------------


def with_treatment(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables with a treatment course written in by hand: 10 mg dexamethasone on days 0-2,
    none later; one tocilizumab dose on day 1; marrow involved in every other patient."""
    out = copies(tables)
    d = out["daily"]
    d["dexamethasone_mg"] = np.where(d["day"] <= 2, 10.0, 0.0)
    d["tocilizumab_doses"] = (d["day"] == 1).astype(float)  # as read from a CSV
    out["patients"]["marrow_involvement"] = np.arange(len(out["patients"])) % 2 == 0
    return out


def test_treatment_columns_reach_the_landmark_rows_up_to_the_landmark(tables):
    from features.layout import COLUMN_INDEX

    treated = with_treatment(tables)
    validate_table("daily", treated["daily"])  # does not raise
    ds = build_landmark_dataset(treated, (0, 3))
    at = {name: ds.raw[:, COLUMN_INDEX[name]] for name in RAW_COLUMNS}
    on_day_3 = ds.landmark_day == 3
    recorded = ~np.isnan(at["dexamethasone_mg_d01"][on_day_3])
    assert recorded.mean() > 0.9  # patients with a daily row on day 1
    assert (at["dexamethasone_mg_d01"][on_day_3][recorded] == 10.0).all()
    assert (at["tocilizumab_doses_d01"][on_day_3][recorded] == 1.0).all()
    assert np.isnan(at["dexamethasone_mg_d01"][~on_day_3]).all()  # day 1 is after landmark 0
    assert set(np.unique(at["marrow_involvement"])) == {0.0, 1.0}


def test_treatment_values_outside_the_contract_are_listed(tables):
    daily = with_treatment(tables)["daily"]
    daily.loc[[4, 40], "tocilizumab_doses"] = 1.5
    daily.loc[[9], "tocilizumab_doses"] = 4
    daily.loc[[12], "dexamethasone_mg"] = -5.0
    with pytest.raises(InvalidCohortError) as info:
        validate_table("daily", daily)
    by_row = {(e.field, e.where): e for e in info.value.errors}

    def error(field: str, row: int) -> InvalidInputError:
        return by_row[(field, f"patient {pid(daily, row)} (row {row})")]

    for row in (4, 40):
        err = error("tocilizumab_doses", row)
        assert err.value == 1.5 and "whole number" in err.expected
        assert_message(err, 1.5)
    assert "from 0 to 3" in error("tocilizumab_doses", 9).expected
    assert error("dexamethasone_mg", 12).value == -5.0


def test_marrow_blasts_may_be_empty_where_not_measured(tables):
    patients = copies(tables)["patients"]
    patients.loc[[0, 1], "marrow_blasts_pct"] = np.nan
    out = validate_table("patients", patients)
    assert out["marrow_blasts_pct"].isna().sum() >= 2
