"""Boundary validation of one patient (``api.patient``): every rule, with its message.

Each rule is checked for the three things a clinical app needs to fix its request: an
:class:`~icans.errors.InvalidPatientError` is raised, one of its ``errors`` names the field (with
the position in a list, e.g. ``crs_grade_by_day[2].day``), and the message holds the bad value
and says what was expected. Then packing into the raw layout (``to_raw``) and the list of
omitted optional inputs (``missing_inputs``).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from api.patient import PatientObservation, parse_patient
from features.layout import CATEGORY_CODE, COLUMN_INDEX, N_DAYS, RAW_COLUMNS, SERIES_SLICE
from features.packing import missing_inputs, to_raw
from icans.contract import CAR_TARGETS
from icans.errors import InvalidInputError, InvalidPatientError

VALID: dict[str, Any] = {
    "age_years": 61,
    "disease": "LBCL",
    "car_target": "CD19",
    "costimulatory_domain": "CD28",
    "dose_cells_per_kg": 2.0e6,
    "marrow_blasts_pct": 5.0,
    "cns_involvement": False,
    "neuro_comorbidity": True,
    "ldh_u_per_l": 320,
    "crp_mg_per_l": 24,
    "ferritin_ng_per_ml": 800,
    "platelets_10e9_per_l": 110,
    "creatinine_mg_per_dl": 0.9,
    "day_since_infusion": 5,
    "crs_grade_by_day": [{"day": 0, "grade": 0}, {"day": 2, "grade": 1}, {"day": 4, "grade": 2}],
    "cd4_car_t_cells_per_ul": [{"day": 0, "value": 0.0}, {"day": 3, "value": 4.2}],
    "cd8_car_t_cells_per_ul": [{"day": 3, "value": 7.9}],
    "icans_grade_by_day": [{"day": 4, "grade": 1}],
}

_DROP = object()


def record(**changes: Any) -> dict[str, Any]:
    """A deep copy of VALID with fields replaced (or removed with ``_DROP``)."""
    out = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def rejected(data: dict[str, Any]) -> InvalidPatientError:
    with pytest.raises(InvalidPatientError) as info:
        parse_patient(data)
    exc = info.value
    assert exc.errors, "an InvalidPatientError must list at least one error"
    assert all(isinstance(e, InvalidInputError) for e in exc.errors)
    return exc


def error_for(exc: InvalidPatientError, field: str) -> InvalidInputError:
    fields = [e.field for e in exc.errors]
    matches = [e for e in exc.errors if e.field == field]
    assert matches, f"no error names {field!r}; errors name {fields}"
    return matches[0]


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


# --------------------------------------------------------------------------------------------
# The valid record
# --------------------------------------------------------------------------------------------


def test_valid_record_parses():
    patient = parse_patient(record())
    assert isinstance(patient, PatientObservation)
    assert patient.day_since_infusion == 5
    assert [o.day for o in patient.crs_grade_by_day] == [0, 2, 4]
    assert parse_patient(patient) is patient  # a model passes through untouched


# --------------------------------------------------------------------------------------------
# One rule at a time: (request, field named, bad value, phrases the message must contain)
# --------------------------------------------------------------------------------------------

INVALID_CASES = [
    pytest.param(
        record(age_years="sixty"), "age_years", "sixty", ["valid number"], id="wrong-type"
    ),
    pytest.param(
        record(age_years=130), "age_years", 130, ["less than or equal to 100"], id="age-130"
    ),
    pytest.param(
        record(marrow_blasts_pct=120),
        "marrow_blasts_pct",
        120,
        ["less than or equal to 100"],
        id="blasts-120",
    ),
    pytest.param(
        record(dose_cells_per_kg=0), "dose_cells_per_kg", 0, ["greater than 0"], id="dose-0"
    ),
    pytest.param(
        record(dose_cells_per_kg=-2.0e6),
        "dose_cells_per_kg",
        -2.0e6,
        ["greater than 0"],
        id="dose-negative",
    ),
    pytest.param(
        record(platelets_10e9_per_l=-1),
        "platelets_10e9_per_l",
        -1,
        ["greater than 0"],
        id="platelets-negative",
    ),
    pytest.param(
        record(crp_mg_per_l=5000),
        "crp_mg_per_l",
        5000,
        ["less than or equal to 1000"],
        id="crp-5000",
    ),
    pytest.param(
        record(car_target="GPRC5D"),
        "car_target",
        "GPRC5D",
        [repr(t) for t in CAR_TARGETS],  # every allowed value is listed
        id="unknown-enum",
    ),
    pytest.param(
        record(favourite_colour="blue"),
        "favourite_colour",
        "blue",
        ["not permitted"],
        id="extra-field",
    ),
    pytest.param(
        record(cd4_car_t_cells_per_ul=[{"day": 0, "value": 0.0}, {"day": 7, "value": 3.1}]),
        "cd4_car_t_cells_per_ul[1].day",
        7,
        ["after the prediction day", "day_since_infusion=5"],
        id="after-prediction-day",
    ),
    pytest.param(
        record(
            crs_grade_by_day=[
                {"day": 0, "grade": 0},
                {"day": 2, "grade": 1},
                {"day": 2, "grade": 2},
            ]
        ),
        "crs_grade_by_day[2].day",
        2,
        ["at most once", "crs_grade_by_day"],
        id="duplicate-day",
    ),
    pytest.param(
        record(cd4_car_t_cells_per_ul=[{"day": 0, "value": 0.0}, {"day": 3, "value": -4.2}]),
        "cd4_car_t_cells_per_ul[1].value",
        -4.2,
        ["greater than or equal to 0"],
        id="negative-cd4",
    ),
    pytest.param(
        record(icans_grade_by_day=[{"day": 4, "grade": 3}]),
        "icans_grade_by_day[0].grade",
        3,
        ["less than or equal to 2"],
        id="icans-grade-3",
    ),
    pytest.param(
        record(day_since_infusion=27, crs_grade_by_day=[{"day": 29, "grade": 1}]),
        "crs_grade_by_day[0].day",
        29,
        ["less than or equal to 28"],
        id="course-day-29",
    ),
    pytest.param(
        # day 28 is the last day of follow-up: no horizon reaches past it (icans.horizons)
        record(day_since_infusion=28),
        "day_since_infusion",
        28,
        ["less than or equal to 27"],
        id="day-since-infusion-28",
    ),
    pytest.param(
        record(crp_mg_per_l=float("nan")), "crp_mg_per_l", float("nan"), ["finite"], id="nan-lab"
    ),
    pytest.param(
        record(age_years=float("inf")), "age_years", float("inf"), ["finite"], id="inf-age"
    ),
    pytest.param(
        record(cd8_car_t_cells_per_ul=[{"day": 3, "value": float("nan")}]),
        "cd8_car_t_cells_per_ul[0].value",
        float("nan"),
        ["finite"],
        id="nan-cells",
    ),
    pytest.param(
        record(cd4_car_t_cells_per_ul=[{"day": 3, "value": float("-inf")}]),
        "cd4_car_t_cells_per_ul[0].value",
        float("-inf"),
        ["finite"],
        id="minus-inf-cells",
    ),
    pytest.param(
        record(crs_grade_by_day=[{"day": 1, "grade": float("nan")}]),
        "crs_grade_by_day[0].grade",
        float("nan"),
        ["integer"],
        id="nan-grade",
    ),
    pytest.param(
        record(dexamethasone_mg_by_day=[{"day": 1, "mg": float("nan")}]),
        "dexamethasone_mg_by_day[0].mg",
        float("nan"),
        ["finite"],
        id="nan-steroid-mg",
    ),
    pytest.param(
        record(tocilizumab_doses_by_day=[{"day": 1, "doses": 1.5}]),
        "tocilizumab_doses_by_day[0].doses",
        1.5,
        ["integer"],
        id="half-a-tocilizumab-dose",
    ),
    pytest.param(
        record(tocilizumab_doses_by_day=[{"day": 1, "doses": 4}]),
        "tocilizumab_doses_by_day[0].doses",
        4,
        ["less than or equal to 3"],
        id="four-tocilizumab-doses-a-day",
    ),
    pytest.param(
        # ICANS grade 2 on day 2, dexamethasone 20 mg that day (treatment), still grade 2 on
        # day 4 and day 5 (48 and 72 h later): persisting, steroid-refractory, the outcome met
        record(
            day_since_infusion=5,
            icans_grade_by_day=[
                {"day": 2, "grade": 2},
                {"day": 4, "grade": 2},
                {"day": 5, "grade": 2},
            ],
            dexamethasone_mg_by_day=[{"day": 2, "mg": 20.0}],
        ),
        "icans_grade_by_day[2].grade",
        2,
        ["steroid-refractory", "started on day 2", "48 and 72 h", "day 5: grade 2", "at least 2"],
        id="already-steroid-refractory-persisting",
    ),
    pytest.param(
        # grade 1 on day 2 with 20 mg (the start), anakinra on day 3: escalation after the
        # start, steroid-refractory on day 3 whatever the grade
        record(
            day_since_infusion=3,
            icans_grade_by_day=[{"day": 2, "grade": 1}, {"day": 3, "grade": 1}],
            dexamethasone_mg_by_day=[{"day": 2, "mg": 20.0}, {"day": 3, "mg": 20.0}],
            anakinra_doses_by_day=[{"day": 2, "doses": 0}, {"day": 3, "doses": 2}],
        ),
        "anakinra_doses_by_day[1].doses",
        2,
        ["steroid-refractory", "started on day 2", "anakinra was given on day 3", "after"],
        id="already-steroid-refractory-anakinra",
    ),
    pytest.param(
        # grade 2 on day 1 with 40 mg (the start), intrathecal therapy on day 2
        record(
            day_since_infusion=4,
            icans_grade_by_day=[{"day": 1, "grade": 2}, {"day": 4, "grade": 1}],
            dexamethasone_mg_by_day=[{"day": 1, "mg": 40.0}],
            intrathecal_doses_by_day=[{"day": 2, "doses": 1}],
        ),
        "intrathecal_doses_by_day[0].doses",
        1,
        ["steroid-refractory", "started on day 1", "intrathecal therapy was given on day 2"],
        id="already-steroid-refractory-intrathecal",
    ),
    pytest.param(
        record(anakinra_doses_by_day=[{"day": 1, "doses": 5}]),
        "anakinra_doses_by_day[0].doses",
        5,
        ["less than or equal to 4"],
        id="five-anakinra-doses-a-day",
    ),
    pytest.param(
        record(intrathecal_doses_by_day=[{"day": 1, "doses": 2}]),
        "intrathecal_doses_by_day[0].doses",
        2,
        ["less than or equal to 1"],
        id="two-intrathecal-doses-a-day",
    ),
]


@pytest.mark.parametrize(("data", "field", "value", "phrases"), INVALID_CASES)
def test_each_rule_names_field_value_and_expectation(data, field, value, phrases):
    exc = rejected(data)
    err = error_for(exc, field)
    assert same_value(err.value, value), f"{field}: value {err.value!r}, sent {value!r}"
    assert err.expected, "the rule must be stated"
    for text in (str(err), str(exc)):
        assert f"{field}={value!r}" in text, text
        assert "expected" in text, text
        for phrase in phrases:
            assert phrase in text, f"{phrase!r} not in {text!r}"


def test_future_observation_in_every_series_is_rejected():
    exc = rejected(
        record(
            day_since_infusion=5,
            crs_grade_by_day=[{"day": 6, "grade": 1}],
            cd4_car_t_cells_per_ul=[{"day": 7, "value": 1.0}],
            cd8_car_t_cells_per_ul=[{"day": 28, "value": 1.0}],
            icans_grade_by_day=[{"day": 5, "grade": 1}, {"day": 9, "grade": 2}],
        )
    )
    for field in (
        "crs_grade_by_day[0].day",
        "cd4_car_t_cells_per_ul[0].day",
        "cd8_car_t_cells_per_ul[0].day",
        "icans_grade_by_day[1].day",
    ):
        assert "after the prediction day" in str(error_for(exc, field))
    assert "icans_grade_by_day[0].day" not in {e.field for e in exc.errors}  # day L is allowed


def test_missing_required_field_is_named():
    exc = rejected(record(disease=_DROP))
    err = error_for(exc, "disease")
    assert "required" in err.expected.lower()
    assert "disease" in str(exc) and "required" in str(exc).lower()


def test_missing_required_field_does_not_echo_the_request():
    exc = rejected(record(disease=_DROP, patient_id="P-secret-42"))
    err = error_for(exc, "disease")
    assert not isinstance(err.value, dict)
    assert "P-secret-42" not in str(exc)


BOOL_FOR_INT = [
    pytest.param(record(prior_lines=True), "prior_lines", id="prior_lines"),
    pytest.param(
        record(crs_grade_by_day=[{"day": 1, "grade": True}]),
        "crs_grade_by_day[0].grade",
        id="crs-grade",
    ),
    pytest.param(
        record(icans_grade_by_day=[{"day": True, "grade": 1}]),
        "icans_grade_by_day[0].day",
        id="course-day",
    ),
    pytest.param(
        record(
            day_since_infusion=True,
            crs_grade_by_day=[],
            cd4_car_t_cells_per_ul=[],
            cd8_car_t_cells_per_ul=[],
            icans_grade_by_day=[],
        ),
        "day_since_infusion",
        id="day_since_infusion",
    ),
]


@pytest.mark.parametrize(("data", "field"), BOOL_FOR_INT)
def test_bool_for_int_field_is_rejected(data, field):
    exc = rejected(data)
    err = error_for(exc, field)
    assert err.value is True
    assert "True" in str(exc) and "integer" in str(exc)


# --------------------------------------------------------------------------------------------
# Several violations at once
# --------------------------------------------------------------------------------------------


def test_all_field_violations_reported_at_once():
    exc = rejected(
        record(
            age_years=130,
            car_target="GPRC5D",
            platelets_10e9_per_l=-1,
            cd4_car_t_cells_per_ul=[{"day": 0, "value": 0.0}, {"day": 3, "value": -4.2}],
            icans_grade_by_day=[{"day": 4, "grade": 3}],
        )
    )
    expected = {
        "age_years": 130,
        "car_target": "GPRC5D",
        "platelets_10e9_per_l": -1,
        "cd4_car_t_cells_per_ul[1].value": -4.2,
        "icans_grade_by_day[0].grade": 3,
    }
    assert len(exc.errors) >= 3
    for field, value in expected.items():
        assert error_for(exc, field).value == value
        assert f"{field}={value!r}" in str(exc)


def test_all_course_date_violations_reported_at_once():
    exc = rejected(
        record(
            crs_grade_by_day=[{"day": 2, "grade": 1}, {"day": 2, "grade": 2}],
            cd4_car_t_cells_per_ul=[{"day": 6, "value": 1.0}],
            icans_grade_by_day=[{"day": 8, "grade": 1}],
        )
    )
    assert len(exc.errors) >= 3
    for field in (
        "crs_grade_by_day[1].day",
        "cd4_car_t_cells_per_ul[0].day",
        "icans_grade_by_day[0].day",
    ):
        error_for(exc, field)


def test_field_and_date_violations_reported_together():
    exc = rejected(
        record(
            age_years=130,
            car_target="GPRC5D",
            crs_grade_by_day=[{"day": 2, "grade": 1}, {"day": 2, "grade": 2}],
            cd4_car_t_cells_per_ul=[{"day": 7, "value": 1.0}],
        )
    )
    for field in (
        "age_years",
        "car_target",
        "crs_grade_by_day[1].day",
        "cd4_car_t_cells_per_ul[0].day",
    ):
        error_for(exc, field)


# --------------------------------------------------------------------------------------------
# to_raw: the raw layout
# --------------------------------------------------------------------------------------------


def test_to_raw_places_values_in_their_columns():
    raw = to_raw(parse_patient(record()))
    assert raw.shape == (1, len(RAW_COLUMNS))
    assert raw.dtype == np.float64
    row = raw[0]

    def at(name: str) -> float:
        return row[COLUMN_INDEX[name]]

    # exact, here and in the tests below: the request's values copied into the row, and codes
    assert at("age_years") == 61.0
    assert at("dose_cells_per_kg") == 2.0e6
    assert at("marrow_blasts_pct") == 5.0
    assert at("cns_involvement") == 0.0
    assert at("neuro_comorbidity") == 1.0
    assert at("ldh_u_per_l") == 320.0
    assert at("creatinine_mg_per_dl") == 0.9
    assert at("disease") == CATEGORY_CODE["disease"]["LBCL"]
    assert at("car_target") == CATEGORY_CODE["car_target"]["CD19"]
    assert at("costimulatory_domain") == CATEGORY_CODE["costimulatory_domain"]["CD28"]
    assert at("day_since_infusion") == 5.0
    assert at("crs_grade_d00") == 0.0
    assert at("crs_grade_d02") == 1.0
    assert at("crs_grade_d04") == 2.0
    assert at("cd4_cells_per_ul_d00") == 0.0
    assert at("cd4_cells_per_ul_d03") == 4.2
    assert at("cd8_cells_per_ul_d03") == 7.9
    assert at("icans_grade_d04") == 1.0
    # omitted optional fields are NaN, never 0
    for name in ("weight_kg", "prior_lines", "lymphodepletion", "marrow_involvement"):
        assert np.isnan(at(name)), name
    for series in ("dexamethasone_mg", "tocilizumab_doses"):
        assert np.isnan(row[SERIES_SLICE[series]]).all()


def test_to_raw_places_the_treatment_course_and_marrow_involvement():
    row = to_raw(
        parse_patient(
            record(
                marrow_involvement=True,
                dexamethasone_mg_by_day=[{"day": 0, "mg": 10.0}, {"day": 4, "mg": 187.5}],
                tocilizumab_doses_by_day=[{"day": 3, "doses": 2.0}],
            )
        )
    )[0]
    assert row[COLUMN_INDEX["marrow_involvement"]] == 1.0
    assert row[COLUMN_INDEX["dexamethasone_mg_d00"]] == 10.0
    assert row[COLUMN_INDEX["dexamethasone_mg_d04"]] == 187.5
    assert np.isnan(row[COLUMN_INDEX["dexamethasone_mg_d01"]])
    assert row[COLUMN_INDEX["tocilizumab_doses_d03"]] == 2.0


def test_to_raw_other_categories_use_their_codes():
    raw = to_raw(
        parse_patient(
            record(
                disease="MM",
                car_target="BCMA",
                costimulatory_domain="4-1BB",
                lymphodepletion="bendamustine",
                prior_lines=3,
                weight_kg=70.5,
            )
        )
    )[0]
    assert raw[COLUMN_INDEX["disease"]] == CATEGORY_CODE["disease"]["MM"]
    assert raw[COLUMN_INDEX["car_target"]] == CATEGORY_CODE["car_target"]["BCMA"]
    assert (
        raw[COLUMN_INDEX["costimulatory_domain"]] == CATEGORY_CODE["costimulatory_domain"]["4-1BB"]
    )
    assert raw[COLUMN_INDEX["lymphodepletion"]] == CATEGORY_CODE["lymphodepletion"]["bendamustine"]
    assert raw[COLUMN_INDEX["prior_lines"]] == 3.0
    assert raw[COLUMN_INDEX["weight_kg"]] == 70.5


def test_to_raw_unobserved_days_are_nan():
    data = record()
    row = to_raw(parse_patient(data))[0]
    series_of_field = {
        "crs_grade": "crs_grade_by_day",
        "cd4_cells_per_ul": "cd4_car_t_cells_per_ul",
        "cd8_cells_per_ul": "cd8_car_t_cells_per_ul",
        "icans_grade": "icans_grade_by_day",
    }
    for series, field in series_of_field.items():
        block = row[SERIES_SLICE[series]]
        assert block.shape == (N_DAYS,)
        observed = {o["day"] for o in data[field]}
        for day in range(N_DAYS):
            assert np.isnan(block[day]) == (day not in observed), (series, day)


def test_to_raw_empty_course_is_all_nan():
    row = to_raw(
        parse_patient(
            record(
                crs_grade_by_day=[],
                cd4_car_t_cells_per_ul=[],
                cd8_car_t_cells_per_ul=[],
                icans_grade_by_day=[],
            )
        )
    )[0]
    start = COLUMN_INDEX["crs_grade_d00"]
    assert np.isnan(row[start:]).all()
    assert not np.isnan(row[COLUMN_INDEX["age_years"]])


# --------------------------------------------------------------------------------------------
# missing_inputs
# --------------------------------------------------------------------------------------------


def test_missing_inputs_lists_omitted_optional_fields():
    missing = missing_inputs(parse_patient(record(crp_mg_per_l=_DROP, ferritin_ng_per_ml=None)))
    for field in ("weight_kg", "prior_lines", "crp_mg_per_l", "ferritin_ng_per_ml"):
        assert field in missing
    for field in (
        "ldh_u_per_l",
        "platelets_10e9_per_l",
        "creatinine_mg_per_dl",
        "neuro_comorbidity",
        "crs_grade_by_day",
        "cd4_car_t_cells_per_ul",
        "cd8_car_t_cells_per_ul",
        "icans_grade_by_day",
        "age_years",
    ):
        assert field not in missing


def test_missing_inputs_empty_series_after_day_zero():
    assert "cd4_car_t_cells_per_ul" in missing_inputs(
        parse_patient(record(cd4_car_t_cells_per_ul=[]))
    )
    at_day_zero = record(
        day_since_infusion=0,
        crs_grade_by_day=[{"day": 0, "grade": 0}],
        cd4_car_t_cells_per_ul=[],
        cd8_car_t_cells_per_ul=[],
        icans_grade_by_day=[],
    )
    missing = missing_inputs(parse_patient(at_day_zero))
    assert "cd4_car_t_cells_per_ul" not in missing  # nothing can be measured yet on day 0
    assert "icans_grade_by_day" not in missing


def test_missing_inputs_complete_record_lists_nothing():
    """Every input the model reads given: nothing missing. Anakinra and intrathecal doses are
    left out: no predictor reads them (only the outcome check does), so they are not missing."""
    full = record(
        weight_kg=80.0,
        prior_lines=2,
        lymphodepletion="flu_cy",
        marrow_involvement=False,
        car_product="investigational",  # any product, as the record's CD19/CD28 LBCL allows
        dexamethasone_mg_by_day=[{"day": d, "mg": 0.0} for d in range(6)],
        tocilizumab_doses_by_day=[{"day": 2, "doses": 1}],
        temperature_max_c_by_day=[{"day": 1, "value": 38.2}],
        ice_score_by_day=[{"day": 1, "score": 10}],  # an adult: no CAPD, and none missing
        crp_mg_per_l_by_day=[{"day": 1, "value": 12.0}],
        ferritin_ng_per_ml_by_day=[{"day": 1, "value": 800.0}],
        il6_pg_per_ml_by_day=[{"day": 1, "value": 30.0}],
        platelets_10e9_per_l_by_day=[{"day": 1, "value": 90.0}],
        fibrinogen_mg_per_dl_by_day=[{"day": 1, "value": 350.0}],
        lymphocytes_10e9_per_l_by_day=[{"day": 1, "value": 0.3}],
        ldh_u_per_l_by_day=[{"day": 1, "value": 300.0}],
        creatinine_mg_per_dl_by_day=[{"day": 1, "value": 0.8}],
    )
    assert missing_inputs(parse_patient(full)) == []


def test_missing_inputs_leave_out_the_screen_not_charted_at_the_patients_age():
    """ICE is charted from 12 years, CAPD below (ASTCT 2019): the other is not missing."""
    assert "capd_score_by_day" not in missing_inputs(parse_patient(record(age_years=40.0)))
    assert "ice_score_by_day" in missing_inputs(parse_patient(record(age_years=40.0)))
    child = missing_inputs(parse_patient(record(age_years=6.0, disease="B-ALL")))
    assert "capd_score_by_day" in child and "ice_score_by_day" not in child


def test_missing_inputs_lists_the_treatment_course_and_marrow_involvement():
    missing = missing_inputs(parse_patient(record()))
    for field in ("marrow_involvement", "dexamethasone_mg_by_day", "tocilizumab_doses_by_day"):
        assert field in missing


# --------------------------------------------------------------------------------------------
# A patient who has already met the outcome (steroid-refractory ICANS) is refused
# --------------------------------------------------------------------------------------------

# Hand-worked against the stated rule (treatment: >= 20 mg dexamethasone-equivalent on a day
# with ICANS grade >= 1; refractory when the grades 2 and 3 days later are both at least the
# start grade and at least 2, or on a day after the start with anakinra or intrathecal doses),
# each accepted: (grades, dexamethasone mg, second-line doses by field, prediction day).
NOT_YET_REFRACTORY = [
    pytest.param([(2, 2), (4, 2), (5, 1)], [(2, 40.0)], {}, 5, id="grade-2-start-improved-to-1"),
    pytest.param([(2, 2), (4, 1), (5, 2)], [(2, 40.0)], {}, 5, id="grade-1-at-48h"),
    pytest.param([(2, 1), (3, 1), (4, 1), (5, 1)], [(2, 20.0)], {}, 5, id="grade-1-lingers"),
    pytest.param([(2, 1), (4, 2), (5, 1)], [(2, 20.0)], {}, 5, id="grade-1-2-then-1"),
    pytest.param(
        [(1, 1), (3, 2), (4, 2)],
        [(0, 10.0), (1, 10.0), (2, 10.0)],
        {},
        5,
        id="prophylaxis-is-no-start",
    ),
    pytest.param([(2, 2), (4, 2)], [(2, 20.0)], {}, 4, id="72h-reading-not-reached"),
    pytest.param([(2, 2), (4, 2), (6, 2)], [(2, 20.0)], {}, 6, id="72h-reading-not-graded"),
    pytest.param([(2, 2), (5, 2)], [(2, 20.0)], {}, 5, id="48h-reading-not-graded"),
    pytest.param([(2, 0), (4, 0), (5, 0)], [(2, 20.0)], {}, 5, id="steroids-without-icans"),
    pytest.param([(2, 2), (4, 2), (5, 2)], [], {}, 5, id="no-steroid-course-sent"),
    pytest.param(
        [(2, 1), (3, 1)],
        [(2, 20.0)],
        {"anakinra_doses_by_day": [(2, 1)]},
        4,
        id="anakinra-on-the-start-day",
    ),
    pytest.param(
        [(1, 0), (2, 1), (3, 1)],
        [(2, 20.0)],
        {"intrathecal_doses_by_day": [(1, 1)]},
        4,
        id="intrathecal-before-the-start",
    ),
    pytest.param(
        [(2, 1), (3, 1)],
        [(2, 10.0)],
        {"anakinra_doses_by_day": [(3, 2)]},
        4,
        id="anakinra-without-a-steroid-start",
    ),
    pytest.param(
        [(2, 1), (3, 1), (4, 1)],
        [(2, 20.0)],
        {"anakinra_doses_by_day": [(3, 0), (4, 0)], "intrathecal_doses_by_day": [(3, 0)]},
        4,
        id="no-doses-after-the-start",
    ),
]


@pytest.mark.parametrize(("grades", "doses", "second_line", "day"), NOT_YET_REFRACTORY)
def test_a_patient_not_yet_refractory_is_accepted(grades, doses, second_line, day):
    parse_patient(
        record(
            day_since_infusion=day,
            icans_grade_by_day=[{"day": d, "grade": g} for d, g in grades],
            dexamethasone_mg_by_day=[{"day": d, "mg": mg} for d, mg in doses],
            **{
                field: [{"day": d, "doses": n} for d, n in given]
                for field, given in second_line.items()
            },
        )
    )


def test_refractoriness_is_judged_on_the_course_in_any_order_with_a_worse_grade():
    """Grade 1 at the start (day 3, methylprednisolone 1 g = 187.5 mg dexamethasone) and grade
    2 on days 5 and 6 (48 and 72 h later): persisting at grade >= 2, refractory on day 6; the
    lists may come in any order."""
    exc = rejected(
        record(
            day_since_infusion=7,
            crs_grade_by_day=[],
            icans_grade_by_day=[
                {"day": 6, "grade": 2},
                {"day": 7, "grade": 2},
                {"day": 3, "grade": 1},
                {"day": 5, "grade": 2},
            ],
            dexamethasone_mg_by_day=[{"day": 4, "mg": 187.5}, {"day": 3, "mg": 187.5}],
        )
    )
    err = error_for(exc, "icans_grade_by_day[0].grade")
    assert err.value == 2 and "steroid-refractory" in err.expected
    assert len(exc.errors) == 1


def test_the_earlier_of_persistence_and_escalation_is_named():
    """Grade 2 from day 1 (start, 40 mg), persisting on days 3 and 4 (refractory on day 4):
    anakinra on day 3 is the earlier sign and is named; with anakinra on day 5, later than
    the persistence, the grade of day 4 is."""
    course = {
        "icans_grade_by_day": [{"day": d, "grade": 2} for d in range(1, 6)],
        "dexamethasone_mg_by_day": [{"day": 1, "mg": 40.0}],
    }
    exc = rejected(
        record(day_since_infusion=5, **course, anakinra_doses_by_day=[{"day": 3, "doses": 1}])
    )
    assert [e.field for e in exc.errors] == ["anakinra_doses_by_day[0].doses"]
    exc = rejected(
        record(day_since_infusion=5, **course, anakinra_doses_by_day=[{"day": 5, "doses": 1}])
    )
    assert [e.field for e in exc.errors] == ["icans_grade_by_day[3].grade"]  # day 4


def test_refractoriness_is_reported_with_every_other_error():
    """The course is judged even when other fields are invalid, so all errors come at once."""
    exc = rejected(
        record(
            age_years=130,
            car_target="BCMA",  # not a product for LBCL
            day_since_infusion=5,
            cd4_car_t_cells_per_ul=[{"day": 6, "value": 1.0}],
            icans_grade_by_day=[{"day": 2, "grade": 1}, {"day": 4, "grade": 1}],
            dexamethasone_mg_by_day=[{"day": 2, "mg": 20.0}],
            anakinra_doses_by_day=[{"day": 4, "doses": 1}],
        )
    )
    for field in ("age_years", "cd4_car_t_cells_per_ul[0].day", "anakinra_doses_by_day[0].doses"):
        error_for(exc, field)
    exc = rejected(  # and with the product error of the model validator
        record(
            car_target="BCMA",
            day_since_infusion=5,
            icans_grade_by_day=[
                {"day": 2, "grade": 2},
                {"day": 4, "grade": 2},
                {"day": 5, "grade": 2},
            ],
            dexamethasone_mg_by_day=[{"day": 2, "mg": 20.0}],
        )
    )
    error_for(exc, "car_target")
    error_for(exc, "icans_grade_by_day[2].grade")


def test_the_outcome_check_refuses_exactly_the_courses_the_definition_calls_refractory():
    """outcome_errors skips the definition's arrays when steroids were never started for ICANS
    (no day with grade >= 1 and a treatment dose): on random courses (grades 0-2, doses from
    none to treatment, second-line doses) it refuses a patient exactly when
    icans.steroids.refractory_day gives a day on or before day_since_infusion."""
    from api.patient import outcome_errors
    from icans.steroids import refractory_day

    rng = np.random.default_rng(12)
    refused = 0
    for _ in range(2000):
        day = int(rng.integers(0, 28))
        rows = {name: np.full((1, N_DAYS), np.nan) for name in ("grade", "mg", "second")}
        record: dict[str, Any] = {"day_since_infusion": day}
        for name, field, key, values in (
            ("grade", "icans_grade_by_day", "grade", [0, 0, 1, 2, 2]),
            ("mg", "dexamethasone_mg_by_day", "mg", [0.0, 4.0, 10.0, 20.0, 40.0]),
            ("second", "anakinra_doses_by_day", "doses", [0, 0, 0, 1]),
        ):
            days = np.flatnonzero(rng.random(day + 1) < rng.uniform(0.2, 1.0))
            record[field] = []
            for d in rng.permutation(days).tolist():
                value = values[int(rng.integers(len(values)))]
                record[field].append({"day": d, key: value})
                rows[name][0, d] = value
        expected = not np.isnan(refractory_day(rows["grade"], rows["mg"], rows["second"])[0])
        assert bool(outcome_errors(record)) == expected
        refused += expected
    assert 50 < refused < 1950  # both kinds of course were drawn
