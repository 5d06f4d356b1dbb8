"""The request path and the cohort path accept and reject the same values (property-based).

Both are derived from one field specification (``icans.contract``): the endpoint's pydantic model
(``api.patient``) and the cohort tables' pandera schema (``cohort.schema``). Here every
contract field gets values drawn around and across its rules (inside, on and just outside each
bound, far outside, wrong enumeration members, missing), each is sent both ways, and the two
verdicts must agree, in both directions: what the endpoint accepts a cohort accepts, and what a
cohort accepts the endpoint accepts. The one stated difference: a request holds a patient
before the event, so its ICANS grades stop at 2 while a cohort's course goes on to 4.

The valid patient and table rows below are written out by hand, not taken from the generator.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.patient import parse_patient
from cohort.schema import _fields, validate_table
from icans.contract import BASELINE, CAR_TARGETS, COURSE, DISEASES, FIELDS
from icans.errors import InvalidCohortError, InvalidPatientError

PATIENT = {
    "age_years": 61.0,
    "weight_kg": 70.0,
    "dose_cells_per_kg": 2.0e6,
    "marrow_blasts_pct": 5.0,
    "cns_involvement": False,
    "prior_lines": 2,
    "neuro_comorbidity": False,
    "ldh_u_per_l": 320.0,
    "crp_mg_per_l": 24.0,
    "ferritin_ng_per_ml": 800.0,
    "platelets_10e9_per_l": 110.0,
    "creatinine_mg_per_dl": 0.9,
    "disease": "LBCL",
    "car_target": "CD19",
    "costimulatory_domain": "CD28",
    "lymphodepletion": "flu_cy",
    "marrow_involvement": False,
}
DAILY = {
    "patient_id": "P1",
    "day": 0,
    "crs_grade": 0,
    "icans_grade": 0,
    "dexamethasone_mg": 0.0,
    "tocilizumab_doses": 0,
}
MEASUREMENT = {
    "patient_id": "P1",
    "day": 0,
    "cd4_car_t_cells_per_ul": 1.0,
    "cd8_car_t_cells_per_ul": 1.0,
}
PROPERTY = settings(max_examples=60, deadline=None)


def by_request(field: str, value) -> bool:
    record = {**PATIENT, "day_since_infusion": 0}
    spec = FIELDS[field]
    if spec.kind == "day_list":
        record[field] = [{"day": 0, spec.value_key: value}]
    elif value is None:
        record.pop(field)
    else:
        record[field] = value
    try:
        parse_patient(record)
    except InvalidPatientError:
        return False
    return True


def by_table(field: str, value) -> bool:
    spec = FIELDS[field]
    if spec.kind == "day_list":
        row = {**(DAILY if spec.table == "daily" else MEASUREMENT), spec.table_column: value}
    else:
        row = {"patient_id": "P1", **PATIENT, field: np.nan if value is None else value}
    frame = pd.DataFrame([row])
    try:
        validate_table(spec.table, frame)
    except InvalidCohortError:
        return False
    return True


def _numbers(low: float, high: float) -> st.SearchStrategy:
    """Numbers around a range: on and just beyond each bound, inside, far out, infinite."""
    span = max(high - low, 1.0)
    edges = [
        low,
        high,
        math.nextafter(low, -math.inf),
        math.nextafter(high, math.inf),
        low - 1,
        high + 1,
        -math.inf,
        math.inf,
    ]
    return st.one_of(
        st.sampled_from(edges),
        st.floats(low - span, high + span, allow_nan=False),
        st.integers(int(low) - 5, int(high) + 5),
    )


NUMERIC = [f.name for f in BASELINE if f.kind in ("number", "integer")]
CATEGORIES = [f.name for f in BASELINE if f.kind == "category"]
BOOLEANS = [f.name for f in BASELINE if f.kind == "boolean"]


@pytest.mark.parametrize("field", NUMERIC)
def test_numbers_are_judged_alike(field):
    spec = FIELDS[field]

    @PROPERTY
    @given(_numbers(spec.low, spec.high))
    def check(value):
        assert by_request(field, value) == by_table(field, value), value

    check()


@pytest.mark.parametrize("field", CATEGORIES)
def test_categories_are_judged_alike(field):
    spec = FIELDS[field]

    @PROPERTY
    @given(st.one_of(st.sampled_from(spec.values), st.text(max_size=8)))
    def check(value):
        assert by_request(field, value) == by_table(field, value), value

    check()


@pytest.mark.parametrize("field", BOOLEANS)
def test_booleans_are_judged_alike(field):
    for value in (True, False):
        assert by_request(field, value) and by_table(field, value)


@pytest.mark.parametrize("field", [f.name for f in BASELINE])
def test_missing_values_are_judged_alike(field):
    assert by_request(field, None) == by_table(field, None) == (not FIELDS[field].required)


@pytest.mark.parametrize("field", [f.name for f in COURSE])
def test_course_values_are_judged_alike(field):
    spec = FIELDS[field]

    @PROPERTY
    @given(_numbers(spec.low, spec.high))
    def check(value):
        request, table = by_request(field, value), by_table(field, value)
        if spec.request_high is not None and value > spec.request_high:
            assert not request  # the event has already happened: not a prediction request
        else:
            assert request == table, value

    check()


def test_the_rules_are_the_published_ones():
    """Spot checks of the specification itself against the contract as published
    (shared vocabulary, ASTCT grades 0-4, ICANS 0-2 before the event)."""
    assert by_request("age_years", 100) and not by_request("age_years", 100.5)
    assert not by_request("weight_kg", 0) and by_table("ldh_u_per_l", 0.0)
    assert by_request("crs_grade_by_day", 4) and not by_request("crs_grade_by_day", 5)
    assert by_request("icans_grade_by_day", 2) and not by_request("icans_grade_by_day", 3)
    assert by_table("icans_grade_by_day", 4)  # a cohort's course goes on after the event
    assert by_request("prior_lines", 3.0) and not by_request("prior_lines", 2.5)
    assert not by_request("car_target", "CD20") and not by_table("car_target", "CD20")
    # treatment: mg are real numbers (methylprednisolone 1 g = 187.5 mg dexamethasone), doses
    # are counted (at most 3 in 24 h, tocilizumab label)
    for judge in (by_request, by_table):
        assert judge("dexamethasone_mg_by_day", 187.5) and judge("dexamethasone_mg_by_day", 0)
        assert not judge("dexamethasone_mg_by_day", -10) and not judge(
            "dexamethasone_mg_by_day", 2001
        )
        assert judge("tocilizumab_doses_by_day", 3) and judge("tocilizumab_doses_by_day", 1.0)
        assert not judge("tocilizumab_doses_by_day", 1.5) and not judge(
            "tocilizumab_doses_by_day", 4
        )
        # marrow blasts are measured in the leukaemias only: may be missing
        assert judge("marrow_blasts_pct", None) and judge("marrow_involvement", None)
        assert judge("marrow_involvement", True) and not judge("marrow_involvement", "yes")


OPTIONAL_COLUMNS = [
    (f, t) for t in ("patients", "daily", "outcomes") for f, _ in _fields(t) if f.optional_column
]


@pytest.mark.parametrize(("spec", "table"), OPTIONAL_COLUMNS, ids=lambda x: getattr(x, "name", x))
def test_an_optional_column_may_be_absent_and_the_field_left_out(spec, table):
    """A cohort without an optional column is read, as a request without the field is."""
    rows = {
        "patients": {"patient_id": "P1", **PATIENT},
        "daily": DAILY,
        "outcomes": {"patient_id": "P1", "severe_or_refractory_icans": False, "event_day": None},
    }
    frame = pd.DataFrame([rows[table]]).drop(columns=[spec.table_column], errors="ignore")
    validate_table(table, frame)  # does not raise
    if table != "outcomes":  # outcomes are never sent to the endpoint
        record = {**PATIENT, "day_since_infusion": 0}
        record.pop(spec.name, None)
        assert spec.name not in parse_patient(record).model_fields_set


def by_both(car_target: str, disease: str, age: float) -> tuple[bool, bool]:
    record = {**PATIENT, "car_target": car_target, "disease": disease, "age_years": age}
    try:
        parse_patient(record | {"day_since_infusion": 0})
        request = True
    except InvalidPatientError:
        request = False
    try:
        validate_table("patients", pd.DataFrame([{"patient_id": "P1", **record}]))
        table = True
    except InvalidCohortError:
        table = False
    return request, table


@pytest.mark.parametrize("car_target", CAR_TARGETS)
def test_product_disease_and_age_combinations_are_judged_alike(car_target):
    for disease in DISEASES:
        for age in (8.0, 17.5, 18.0, 40.0):
            request, table = by_both(car_target, disease, age)
            assert request == table, (car_target, disease, age)


def test_combinations_that_do_not_exist_are_refused():
    """Products by disease as published (icans-facts 2.1-2.2); no child gets myeloma CAR-T."""
    assert by_both("CD19", "AML", 40) == (False, False)  # no CD19 CAR-T for AML
    assert by_both("BCMA", "B-ALL", 40) == (False, False)  # BCMA is a myeloma target
    assert by_both("BCMA", "MM", 10) == (False, False)  # a child with myeloma
    assert by_both("CD19", "B-ALL", 8) == (True, True)  # tisa-cel is for children's B-ALL
    assert by_both("CLL1", "AML", 11) == (True, True)  # the paediatric CLL1 series
    assert by_both("CD7", "T-ALL", 30) == (True, True)
