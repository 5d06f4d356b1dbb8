"""The request path and the cohort path accept and reject the same values (property-based).

Both are derived from one field specification (``icans.contract``): the endpoint's pydantic model
(``api.patient``) and the cohort tables' pandera schema (``cohort.schema``). Here every
contract field gets values drawn around and across its rules (inside, on and just outside each
bound, far outside, wrong enumeration members, missing), each is sent both ways, and the two
verdicts must agree, in both directions: what the endpoint accepts a cohort accepts, and what a
cohort accepts the endpoint accepts. The one stated difference: a request holds a patient
before the event, so its ICANS grades stop at 2 while a cohort's course goes on to 4.

The valid patient and table rows below are written out by hand, not taken from the generator.
So are the rules each verdict is checked against (:data:`RANGES`, :data:`VOCABULARY`,
:data:`REQUIRED`, :data:`SUPPORTED`: the contract as published in ``docs/data-dictionary.md``
and icans-facts): both paths being derived from one specification, their agreeing alone would
not catch a wrong bound in that specification, so each verdict must also be the published one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.patient import parse_patient
from cohort.consistency import cohort_errors
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

# The published rules, written out by hand (docs/data-dictionary.md), never read from
# icans.contract: field -> (low, high, low excluded, whole numbers only).
RANGES = {
    "age_years": (0, 100, False, False),
    "weight_kg": (0, 300, True, False),
    "dose_cells_per_kg": (0, 1e9, True, False),
    "marrow_blasts_pct": (0, 100, False, False),
    "prior_lines": (0, 30, False, True),
    "ldh_u_per_l": (0, 50_000, False, False),
    "crp_mg_per_l": (0, 1_000, False, False),
    "ferritin_ng_per_ml": (0, 500_000, False, False),
    "platelets_10e9_per_l": (0, 2_000, True, False),
    "creatinine_mg_per_dl": (0, 30, False, False),
}
# The course, day by day: field -> (low, high in a request, high in a cohort, low excluded,
# whole numbers only). A request holds a patient before the event: ICANS grades 0-2 (grade 3 is
# the event). The daily routine series: ICE 0-10 and CAPD 0-32 points (ASTCT 2019; Traube 2014:
# 8 items of 0-4); the plausible ranges of the ward's chart (a Fahrenheit temperature, platelets
# per uL or fibrinogen in g/L fall outside). Second-line therapy of ICANS: anakinra in 2-4 doses
# a day (Gazeau TCT 2023), one intrathecal dose a day at most.
COURSE_RANGES = {
    "crs_grade_by_day": (0, 4, 4, False, True),
    "cd4_car_t_cells_per_ul": (0, 100_000, 100_000, False, False),
    "cd8_car_t_cells_per_ul": (0, 100_000, 100_000, False, False),
    "icans_grade_by_day": (0, 2, 4, False, True),
    "dexamethasone_mg_by_day": (0, 2_000, 2_000, False, False),
    "tocilizumab_doses_by_day": (0, 3, 3, False, True),
    "temperature_max_c_by_day": (30, 45, 45, False, False),
    "ice_score_by_day": (0, 10, 10, False, True),
    "capd_score_by_day": (0, 32, 32, False, True),
    "crp_mg_per_l_by_day": (0, 1_000, 1_000, False, False),
    "ferritin_ng_per_ml_by_day": (0, 500_000, 500_000, False, False),
    "il6_pg_per_ml_by_day": (0, 1_000_000, 1_000_000, False, False),
    "platelets_10e9_per_l_by_day": (0, 2_000, 2_000, True, False),
    "fibrinogen_mg_per_dl_by_day": (25, 2_000, 2_000, False, False),
    "lymphocytes_10e9_per_l_by_day": (0, 500, 500, False, False),
    "ldh_u_per_l_by_day": (0, 50_000, 50_000, False, False),
    "creatinine_mg_per_dl_by_day": (0, 30, 30, False, False),
    "anakinra_doses_by_day": (0, 4, 4, False, True),
    "intrathecal_doses_by_day": (0, 1, 1, False, True),
}
# Charted only in an age window, years (low included, high excluded): ASTCT 2019 grades
# encephalopathy by the ICE score from 12 years and by the CAPD below 12.
AGE_WINDOWS = {"ice_score_by_day": (12, math.inf), "capd_score_by_day": (0, 12)}
# A patient inside each window (the adult above; a child with B-ALL, a CD19 indication).
CHILD = {**PATIENT, "age_years": 9.0, "disease": "B-ALL"}
VOCABULARY = {
    "disease": ("LBCL", "PMBCL", "B-ALL", "MCL", "FL", "CLL", "MM", "AML", "T-ALL", "BPDCN"),
    "car_target": ("CD19", "CD19-CD22", "BCMA", "CLL1", "CD123", "CD7"),
    "costimulatory_domain": ("CD28", "4-1BB"),
    "lymphodepletion": ("flu_cy", "bendamustine", "other"),
    "car_product": (
        "axi-cel",
        "brexu-cel",
        "tisa-cel",
        "liso-cel",
        "ide-cel",
        "cilta-cel",
        "investigational",
    ),
}
REQUIRED = {
    "age_years",
    "dose_cells_per_kg",
    "cns_involvement",
    "disease",
    "car_target",
    "costimulatory_domain",
}
# Products by the diseases they are given for (icans-facts 2.1-2.2), and the diseases with no
# paediatric CAR-T (under 18 refused).
SUPPORTED = {
    "CD19": {"LBCL", "PMBCL", "MCL", "FL", "CLL", "B-ALL"},
    "CD19-CD22": {"B-ALL", "LBCL"},
    "BCMA": {"MM"},
    "CLL1": {"AML"},
    "CD123": {"AML", "BPDCN"},
    "CD7": {"T-ALL", "AML"},
}
ADULTS_ONLY = {"MM", "CLL", "MCL", "FL"}
# The licensed products by their US labels (Yescarta, Tecartus, Kymriah, Breyanzi, Abecma,
# Carvykti; icans-facts-2 section 1): (CAR target, costimulatory domain, disease -> ages
# allowed, both ends included). Written out by hand; "investigational" is any product.
ANY_AGE = (0, 100)
LABELS = {
    "axi-cel": ("CD19", "CD28", {"LBCL": ANY_AGE, "PMBCL": ANY_AGE, "FL": ANY_AGE}),
    "brexu-cel": ("CD19", "CD28", {"MCL": ANY_AGE, "B-ALL": (18, 100)}),
    "tisa-cel": ("CD19", "4-1BB", {"B-ALL": (0, 25), "LBCL": ANY_AGE, "FL": ANY_AGE}),
    "liso-cel": (
        "CD19",
        "4-1BB",
        {d: ANY_AGE for d in ("LBCL", "PMBCL", "MCL", "FL", "CLL")},
    ),
    "ide-cel": ("BCMA", "4-1BB", {"MM": ANY_AGE}),
    "cilta-cel": ("BCMA", "4-1BB", {"MM": ANY_AGE}),
}


def within(value, low: float, high: float, low_open: bool, whole: bool) -> bool:
    """The published verdict on a number: finite, inside the range, whole where counted."""
    if not math.isfinite(value) or (whole and value != math.floor(value)):
        return False
    return (value > low if low_open else value >= low) and value <= high


def supported(car_target: str, disease: str, age: float) -> bool:
    return disease in SUPPORTED[car_target] and not (disease in ADULTS_ONLY and age < 18)


def on_label(product: str, car_target: str, domain: str, disease: str, age: float) -> bool:
    """The published verdict on a product: investigational is any, a licensed one its label."""
    if product == "investigational":
        return True
    target, costimulation, diseases = LABELS[product]
    low, high = diseases.get(disease, (math.inf, -math.inf))
    return (target, costimulation) == (car_target, domain) and low <= age <= high


def test_the_hand_written_rules_cover_the_contract():
    """Every field of the contract has its published rule here (a new field needs one)."""
    assert set(RANGES) == {f.name for f in BASELINE if f.kind in ("number", "integer")}
    assert set(COURSE_RANGES) == {f.name for f in COURSE}
    assert {f.name: f.age_window for f in COURSE if f.age_window is not None} == AGE_WINDOWS
    assert {f.name: tuple(FIELDS[f.name].values) for f in BASELINE if f.kind == "category"} == (
        VOCABULARY
    )
    assert (set(CAR_TARGETS), set(DISEASES)) == (set(SUPPORTED), set(VOCABULARY["disease"]))


def by_request(field: str, value, patient: dict | None = None) -> bool:
    """The endpoint's verdict on one value of ``field``, sent for ``patient`` (by default one
    of an age the field is charted at)."""
    if patient is None:
        low, high = AGE_WINDOWS.get(field, (0, math.inf))
        patient = PATIENT if low <= PATIENT["age_years"] < high else CHILD
    record = {**patient, "day_since_infusion": 0}
    spec = FIELDS[field]
    if spec.kind == "day_list":
        record[field] = [{"day": 0, spec.value_key: value}]
    elif value is None:
        record.pop(field, None)  # PATIENT gives no car_product (each target's may differ)
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


def by_table_each(field: str, values: list) -> list[bool]:
    """:func:`by_table` for many values at once: one table, a row (and a patient) per value.
    The reader reports every bad row at once, naming its patient, so one validation gives every
    row's verdict; a cohort is read this way, many rows at a time. A patient's product, disease
    and age are judged only once the table's values pass, so a category's members are judged in
    a table of their own, apart from the values outside its enumeration."""
    spec = FIELDS[field]
    if spec.kind == "category":
        member = [v in VOCABULARY[field] for v in values]
        inside = iter(_table_verdicts(field, [v for v, m in zip(values, member, strict=True) if m]))
        outside = iter(
            _table_verdicts(field, [v for v, m in zip(values, member, strict=True) if not m])
        )
        return [next(inside) if m else next(outside) for m in member]
    return _table_verdicts(field, values)


def _table_verdicts(field: str, values: list) -> list[bool]:
    spec = FIELDS[field]
    ids = [f"P{k}" for k in range(len(values))]
    if spec.kind == "day_list":
        base = DAILY if spec.table == "daily" else MEASUREMENT
        rows = [
            {**base, "patient_id": i, spec.table_column: v}
            for i, v in zip(ids, values, strict=True)
        ]
    else:
        rows = [{"patient_id": i, **PATIENT, field: v} for i, v in zip(ids, values, strict=True)]
    if not rows:
        return []
    try:
        validate_table(spec.table, pd.DataFrame(rows))
    except InvalidCohortError as exc:
        named = {e.where for e in exc.errors}
        assert all(w.startswith("patient P") for w in named), named  # each error names its row
        return [f"patient {i} (row {k})" not in named for k, i in enumerate(ids)]
    return [True] * len(values)


def _edges(low: float, high: float) -> list[float]:
    """On and just beyond each bound, one beyond, infinite."""
    return [
        low,
        high,
        math.nextafter(low, -math.inf),
        math.nextafter(high, math.inf),
        low - 1,
        high + 1,
        -math.inf,
        math.inf,
    ]


def _numbers(low: float, high: float) -> st.SearchStrategy:
    """Lists of numbers around a range: the edges, inside, far out."""
    span = max(high - low, 1.0)
    number = st.one_of(
        st.sampled_from(_edges(low, high)),
        st.floats(low - span, high + span, allow_nan=False),
        st.integers(int(low) - 5, int(high) + 5),
    )
    return st.lists(number, min_size=1, max_size=10)


# Lists of up to ten numbers, each list one table: about as many values per field as 60 single
# values, for a quarter of the table validations (pandera's, tens of ms each).
LISTS = settings(max_examples=15, deadline=None)


BOOLEANS = [f.name for f in BASELINE if f.kind == "boolean"]
# What the patient above (61 y, LBCL, CD19) may be given instead: a CD19 product's diseases, an
# LBCL product; every member of the other enumerations.
ACCEPTED = VOCABULARY | {
    "disease": ("LBCL", "PMBCL", "B-ALL", "MCL", "FL", "CLL"),
    "car_target": ("CD19", "CD19-CD22"),
    "car_product": ("axi-cel", "investigational"),  # CD19 with CD28 in LBCL
}


@pytest.mark.parametrize("field", list(RANGES))
def test_numbers_are_judged_alike(field):
    low, high, low_open, whole = RANGES[field]

    def check(values):
        for value, table in zip(values, by_table_each(field, values), strict=True):
            published = within(value, low, high, low_open, whole)
            assert by_request(field, value) == published == table, value

    check(_edges(low, high))  # every edge, every run
    given(_numbers(low, high))(LISTS(check))()


@pytest.mark.parametrize("field", list(VOCABULARY))
def test_categories_are_judged_alike(field):
    def check(values):
        for value, table in zip(values, by_table_each(field, values), strict=True):
            published = value in ACCEPTED[field]
            assert by_request(field, value) == published == table, value

    check(list(VOCABULARY[field]))  # every member, every run
    value = st.one_of(st.sampled_from(VOCABULARY[field]), st.text(max_size=8))
    given(st.lists(value, min_size=1, max_size=10))(LISTS(check))()


@pytest.mark.parametrize("field", BOOLEANS)
def test_booleans_are_judged_alike(field):
    for value in (True, False):
        assert by_request(field, value) and by_table(field, value)


@pytest.mark.parametrize("field", [f.name for f in BASELINE])
def test_missing_values_are_judged_alike(field):
    assert by_request(field, None) == by_table(field, None) == (field not in REQUIRED)


@pytest.mark.parametrize("field", list(COURSE_RANGES))
def test_course_values_are_judged_alike(field):
    low, request_high, table_high, low_open, whole = COURSE_RANGES[field]

    def check(values):
        for value, table in zip(values, by_table_each(field, values), strict=True):
            # above request_high (ICANS grade 3, 4): the event has already happened, so a
            # cohort may hold it and a prediction request may not
            published = within(value, low, request_high, low_open, whole)
            assert by_request(field, value) == published, value
            assert table == within(value, low, table_high, low_open, whole), value

    check(_edges(low, table_high))  # every edge, every run
    given(_numbers(low, table_high))(LISTS(check))()


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


def accepted_request(record: dict) -> bool:
    try:
        parse_patient(record | {"day_since_infusion": 0})
    except InvalidPatientError:
        return False
    return True


def by_both(car_target: str, disease: str, age: float) -> tuple[bool, bool]:
    record = {**PATIENT, "car_target": car_target, "disease": disease, "age_years": age}
    try:
        validate_table("patients", pd.DataFrame([{"patient_id": "P1", **record}]))
        table = True
    except InvalidCohortError:
        table = False
    return accepted_request(record), table


@pytest.mark.parametrize("car_target", CAR_TARGETS)
def test_product_disease_and_age_combinations_are_judged_alike(car_target):
    cases = [(disease, age) for disease in DISEASES for age in (8.0, 17.5, 18.0, 40.0)]
    records = [
        {**PATIENT, "car_target": car_target, "disease": disease, "age_years": age}
        for disease, age in cases
    ]
    # the cohort path: one table, a patient per combination (every bad one named at once)
    table = pd.DataFrame([{"patient_id": f"P{k}", **r} for k, r in enumerate(records)])
    try:
        validate_table("patients", table)
        named = set()
    except InvalidCohortError as exc:
        named = {e.where for e in exc.errors}
    for k, (disease, age) in enumerate(cases):
        published = supported(car_target, disease, age)
        in_table = f"patient P{k} (row {k})" not in named
        assert (accepted_request(records[k]), in_table) == (published, published), (disease, age)


def test_combinations_that_do_not_exist_are_refused():
    """Products by disease as published (icans-facts 2.1-2.2); no child gets myeloma CAR-T."""
    assert by_both("CD19", "AML", 40) == (False, False)  # no CD19 CAR-T for AML
    assert by_both("BCMA", "B-ALL", 40) == (False, False)  # BCMA is a myeloma target
    assert by_both("BCMA", "MM", 10) == (False, False)  # a child with myeloma
    assert by_both("CD19", "B-ALL", 8) == (True, True)  # tisa-cel is for children's B-ALL
    assert by_both("CLL1", "AML", 11) == (True, True)  # the paediatric CLL1 series
    assert by_both("CD7", "T-ALL", 30) == (True, True)


# Patients a product may be recorded for: each CAR target with both domains (one target
# without a licensed product), diseases of each label and beyond, and ages on either side of
# the labels' limits (18 for brexu-cel in B-ALL, 25 for tisa-cel).
PRODUCT_CASES = [
    (target, domain, disease, age)
    for target in ("CD19", "BCMA", "CD7")
    for domain in ("CD28", "4-1BB")
    for disease in ("LBCL", "PMBCL", "FL", "MCL", "CLL", "B-ALL", "MM", "T-ALL")
    for age in (8.0, 17.9, 18.0, 25.0, 25.5, 60.0)
]


@pytest.mark.parametrize("product", VOCABULARY["car_product"])
def test_products_are_judged_alike_and_as_labelled(product):
    """A product is accepted by the endpoint and by a cohort table exactly when the target,
    disease and age are supported and the product is on its label (investigational: any)."""
    records = [
        {
            **PATIENT,
            "car_target": target,
            "costimulatory_domain": domain,
            "disease": disease,
            "age_years": age,
            "car_product": product,
        }
        for target, domain, disease, age in PRODUCT_CASES
    ]
    table = pd.DataFrame([{"patient_id": f"P{k}", **r} for k, r in enumerate(records)])
    try:
        validate_table("patients", table)
        named = set()
    except InvalidCohortError as exc:
        named = {e.where for e in exc.errors}
    for k, (target, domain, disease, age) in enumerate(PRODUCT_CASES):
        published = supported(target, disease, age) and on_label(
            product, target, domain, disease, age
        )
        in_table = f"patient P{k} (row {k})" not in named
        case = (target, domain, disease, age)
        assert (accepted_request(records[k]), in_table) == (published, published), case


def product_errors_both_ways(**changes) -> tuple[list, list]:
    """The errors the endpoint and the cohort reader give for PATIENT with ``changes``, each
    as (field, value, rule) and, for the table, naming the patient."""
    record = {**PATIENT, **changes}
    try:
        parse_patient(record | {"day_since_infusion": 0})
        request = []
    except InvalidPatientError as exc:
        request = [(e.field, e.value, e.expected) for e in exc.errors]
    try:
        validate_table("patients", pd.DataFrame([{"patient_id": "P1", **record}]))
        table = []
    except InvalidCohortError as exc:
        assert {e.where for e in exc.errors} == {"patient P1 (row 0)"}
        table = [(e.field, e.value, e.expected) for e in exc.errors]
    return request, table


def test_a_product_off_its_label_is_refused_naming_the_field_the_value_and_the_rule():
    """Each refusal names car_product, the product, and what would fit (by hand, from the
    labels): the products of the patient's target and domain, or licensed for the disease at
    that age, and the label broken."""
    # tisa-cel recorded for a myeloma patient with a BCMA product: construct and disease wrong
    request, table = product_errors_both_ways(
        car_product="tisa-cel",
        car_target="BCMA",
        costimulatory_domain="4-1BB",
        disease="MM",
    )
    assert request == table
    assert [(f, v) for f, v, _ in request] == [("car_product", "tisa-cel")] * 2
    construct, licence = (rule for _, _, rule in request)
    assert "ide-cel, cilta-cel or investigational" in construct
    assert "tisa-cel is CD19 with 4-1BB" in construct and "Kymriah" in construct
    assert "licensed for MM" in licence and "ide-cel, cilta-cel or investigational" in licence
    # axi-cel is CD28: recorded with 4-1BB for LBCL, the 4-1BB products are named
    request, table = product_errors_both_ways(car_product="axi-cel", costimulatory_domain="4-1BB")
    assert request == table and len(request) == 1
    field, value, rule = request[0]
    assert (field, value) == ("car_product", "axi-cel")
    assert "tisa-cel, liso-cel or investigational" in rule and "Yescarta" in rule
    # tisa-cel in B-ALL is licensed up to 25 years; brexu-cel from 18
    adult = dict(costimulatory_domain="4-1BB", disease="B-ALL", age_years=30.0)
    request, table = product_errors_both_ways(car_product="tisa-cel", **adult)
    assert request == table and len(request) == 1
    field, value, rule = request[0]
    assert (field, value) == ("car_product", "tisa-cel")
    assert "B-ALL at 30 years: brexu-cel or investigational" in rule
    assert "B-ALL (up to 25 years)" in rule
    child = dict(costimulatory_domain="CD28", disease="B-ALL", age_years=16.0)
    request, table = product_errors_both_ways(car_product="brexu-cel", **child)
    assert request == table and [(f, v) for f, v, _ in request] == [("car_product", "brexu-cel")]
    assert "tisa-cel or investigational" in request[0][2]
    assert "B-ALL (at least 18 years)" in request[0][2]
    # on the label, or investigational, or not given: accepted
    for changes in (
        {"car_product": "axi-cel"},
        {"car_product": "investigational", "costimulatory_domain": "4-1BB"},
        {
            "car_product": "tisa-cel",
            "costimulatory_domain": "4-1BB",
            "disease": "B-ALL",
            "age_years": 25.0,
        },
        {"car_product": "liso-cel", "costimulatory_domain": "4-1BB", "disease": "CLL"},
        {},
    ):
        assert product_errors_both_ways(**changes) == ([], []), changes


def test_a_cohort_without_products_is_judged_by_the_target_alone():
    """The product column is optional: a table without it (an older cohort) reads, and one
    with it empty for some patients judges those by target, disease and age."""
    rows = [
        {"patient_id": "P1", **PATIENT},
        {"patient_id": "P2", **PATIENT, "car_product": None},
        {"patient_id": "P3", **PATIENT, "car_product": "liso-cel"},  # CD28: off its label
    ]
    validate_table("patients", pd.DataFrame(rows[:1]))  # no car_product column: read
    with pytest.raises(InvalidCohortError) as info:
        validate_table("patients", pd.DataFrame(rows))
    errors = info.value.errors
    assert [(e.field, e.value, e.where) for e in errors] == [
        ("car_product", "liso-cel", "patient P3 (row 2)")
    ]


# ASTCT 2019 (Lee et al., Tables 5 and 6), written out: the ICANS grade an ICE score gives on its
# own (10: 0; 7-9: 1; 3-6: 2; 0-2: 3) and a CAPD total (0: 0; 1-8: 1; 9 or more, delirium: 3).
ICE_GRADE = {10: 0, 9: 1, 8: 1, 7: 1, 6: 2, 5: 2, 4: 2, 3: 2, 2: 3, 1: 3, 0: 3}
CAPD_GRADE = {0: 0, **dict.fromkeys(range(1, 9), 1), **dict.fromkeys(range(9, 33), 3)}


def cohort_of(age: float, daily: dict) -> dict[str, pd.DataFrame]:
    """One patient of ``age`` with one daily row (CRS and ICANS grade 0 unless given)."""
    return {
        "patients": pd.DataFrame([{"patient_id": "P1", **PATIENT, "age_years": age}]),
        "daily": pd.DataFrame([{**DAILY, **daily}]),
        "measurements": pd.DataFrame([MEASUREMENT]),
        "outcomes": pd.DataFrame(
            [{"patient_id": "P1", "severe_or_refractory_icans": False, "event_day": None}]
        ),
    }


@pytest.mark.parametrize("age", [3.0, 9.0, 11.99, 12.0, 12.5, 40.0])
@pytest.mark.parametrize("field", ["ice_score_by_day", "capd_score_by_day"])
def test_scores_are_taken_only_in_their_age_window(field, age):
    """The ICE score from 12 years, the CAPD below 12 (ASTCT 2019), judged alike by the
    endpoint and the cohort checks; the refusal names the score, the age and the rule."""
    low, high = AGE_WINDOWS[field]
    published = low <= age < high
    spec = FIELDS[field]
    patient = {**PATIENT, "age_years": age}
    assert by_request(field, 5, patient) == published
    errors = [e for e in cohort_errors(cohort_of(age, {spec.table_column: 5})) if e.value == 5]
    assert (not errors) == published
    if not published:
        (error,) = errors
        assert (error.field, error.where) == (spec.table_column, "daily: patient P1 (row 0)")
        assert f"aged {age:g} years" in error.expected and "12 years" in error.expected
        with pytest.raises(InvalidPatientError) as info:
            parse_patient({**patient, "day_since_infusion": 0, field: [{"day": 0, "score": 5}]})
        (refused,) = info.value.errors
        assert (refused.field, refused.value) == (f"{field}[0].score", 5)
        assert refused.expected == error.expected


@pytest.mark.parametrize(
    ("field", "age", "floors"),
    [("ice_score_by_day", 40.0, ICE_GRADE), ("capd_score_by_day", 9.0, CAPD_GRADE)],
)
def test_the_icans_grade_is_at_least_its_score_s_grade(field, age, floors):
    """A day's ICANS grade is the worst of its domains (ASTCT 2019), so it is at least the
    grade the day's ICE or CAPD score gives alone: every score against every grade, by the
    endpoint (grades 0-2) and by the cohort checks (grades 0-4)."""
    spec = FIELDS[field]
    patient = {**PATIENT, "age_years": age}
    for score, floor in floors.items():
        for grade in range(5):
            rows = cohort_of(age, {spec.table_column: score, "icans_grade": grade})
            named = [e for e in cohort_errors(rows) if e.field == "icans_grade"]
            assert (not named) == (grade >= floor), (score, grade)
            if grade <= 2:
                record = patient | {
                    "day_since_infusion": 0,
                    field: [{"day": 0, "score": score}],
                    "icans_grade_by_day": [{"day": 0, "grade": grade}],
                }
                assert accepted_request(record) == (grade >= floor), (score, grade)
    # the refusal names the grade, its place, the score and the grade it gives
    with pytest.raises(InvalidPatientError) as info:
        parse_patient(
            patient
            | {
                "day_since_infusion": 1,
                field: [{"day": 0, "score": 0}, {"day": 1, "score": max(floors)}],
                "icans_grade_by_day": [{"day": 1, "grade": 0}, {"day": 0, "grade": 0}],
            }
        )
    (refused,) = [e for e in info.value.errors if e.field.startswith("icans_grade_by_day")]
    floor = floors[0] if field == "ice_score_by_day" else floors[max(floors)]
    day = 0 if field == "ice_score_by_day" else 1
    assert refused.field == f"icans_grade_by_day[{1 - day}].grade" and refused.value == 0
    assert f"at least {floor}" in refused.expected and f"day {day}" in refused.expected
