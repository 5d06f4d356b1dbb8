"""Outcome columns against the recorded course (``cohort.consistency``), one rule per case:
a contradiction is reported naming the field; a course with uncharted days is judged only by
what was recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from cohort.consistency import cohort_errors

QUIET = {
    "severe_or_refractory_icans": False,
    "event_day": None,
    "icans_max_grade": 0,
    "icans_onset_day": None,
    "severe_icans": False,
    "steroid_refractory_icans": False,
    "death_day": None,
    "death_cause": None,
}


def tables(
    grades: dict[int, int],
    mg: dict[int, float] | None = None,
    second_line: dict[str, dict[int, float]] | None = None,
    **outcome,
) -> dict:
    """One patient P1 charted on the days of ``grades`` (ICANS grade; CRS 0); ``second_line``:
    daily column (anakinra_doses, intrathecal_doses) -> doses by day (0 on other charted days)."""
    days = sorted(grades)
    daily = pd.DataFrame(
        {
            "patient_id": "P1",
            "day": days,
            "crs_grade": 0,
            "icans_grade": [grades[d] for d in days],
        }
    )
    if mg is not None:
        daily["dexamethasone_mg"] = [mg.get(d, 0.0) for d in days]
    for column, doses in (second_line or {}).items():
        daily[column] = [doses.get(d, 0.0) for d in days]
    out = pd.DataFrame([{"patient_id": "P1", **QUIET, **outcome}])
    return {
        "patients": pd.DataFrame({"patient_id": ["P1"]}),
        "daily": daily,
        "measurements": pd.DataFrame({"patient_id": ["P1"], "day": [7]}),
        "outcomes": out,
    }


def fields(t: dict) -> set[str]:
    return {e.field for e in cohort_errors(t)}


COURSE = {d: 0 for d in range(0, 29)}
SEVERE = COURSE | {5: 1, 6: 3, 7: 2, 8: 1}  # grade 3 on day 6
SEVERE_OUT = dict(
    severe_or_refractory_icans=True,
    event_day=6,
    icans_max_grade=3,
    icans_onset_day=5,
    severe_icans=True,
)


def test_a_consistent_severe_course_passes():
    assert cohort_errors(tables(SEVERE, **SEVERE_OUT)) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severe_icans": False}, "severe_icans"),
        ({"icans_max_grade": 2}, "icans_max_grade"),
        ({"severe_or_refractory_icans": False, "event_day": None}, "severe_or_refractory_icans"),
        ({"event_day": 9}, "event_day"),  # after the first grade 3
        ({"event_day": 5}, "event_day"),  # grade 1 recorded that day, no judgement
        ({"event_day": None}, "event_day"),
        ({"icans_onset_day": 6}, "icans_onset_day"),
        ({"icans_onset_day": None}, "icans_onset_day"),
        ({"death_day": 20, "death_cause": "infection"}, "death_day"),  # charted to day 28
        ({"death_cause": "infection"}, "death_cause"),
    ],
)
def test_each_contradiction_is_named(change, field):
    assert field in fields(tables(SEVERE, **(SEVERE_OUT | change)))


def test_an_event_on_an_uncharted_day_before_the_first_recorded_grade_3_is_accepted():
    course = {d: g for d, g in SEVERE.items() if d != 6} | {7: 3}  # day 6 not charted
    assert cohort_errors(tables(course, **SEVERE_OUT)) == []


REFRACTORY = COURSE | {4: 1, 5: 2, 6: 2, 7: 2, 8: 2, 9: 1}
# start day 5 (grade 2); grade 2 on day 7 and day 8 (48 and 72 h): refractory on day 8
DEX = {5: 20.0, 6: 20.0, 7: 20.0, 8: 20.0, 9: 20.0}
REFRACTORY_OUT = dict(
    severe_or_refractory_icans=True,
    event_day=8,
    icans_max_grade=2,
    icans_onset_day=4,
    steroid_refractory_icans=True,
)


def test_a_grade_2_persisting_48_and_72_h_after_steroids_is_refractory():
    assert cohort_errors(tables(REFRACTORY, DEX, **REFRACTORY_OUT)) == []
    quiet = REFRACTORY_OUT | {
        "severe_or_refractory_icans": False,
        "event_day": None,
        "steroid_refractory_icans": False,
    }
    assert "severe_or_refractory_icans" in fields(tables(REFRACTORY, DEX, **quiet))
    errors = cohort_errors(
        tables(REFRACTORY, DEX, **REFRACTORY_OUT | {"steroid_refractory_icans": False})
    )
    (error,) = [e for e in errors if e.field == "steroid_refractory_icans"]
    for words in ("persisted 48 and 72 h", "started on day 5", "day 7 and day 8", "on day 8"):
        assert words in error.expected, error.expected


def test_a_48_h_reading_not_charted_decides_nothing():
    """Day 7 not charted: persistence is not judged, so neither answer is contradicted."""
    course = {d: g for d, g in REFRACTORY.items() if d != 7}
    assert cohort_errors(tables(course, DEX, **REFRACTORY_OUT)) == []
    quiet = REFRACTORY_OUT | {
        "severe_or_refractory_icans": False,
        "event_day": None,
        "steroid_refractory_icans": False,
    }
    assert cohort_errors(tables(course, DEX, **quiet)) == []


# Grade 1 from day 4, steroids from day 5 (the start, grade 1), grade 1 on days 7 and 8: a
# grade 1 that lingers, not refractory by persistence (it needs grade >= 2 on both readings).
LINGERING = COURSE | {4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 0}
LINGERING_QUIET = dict(icans_max_grade=1, icans_onset_day=4)


def test_a_lingering_grade_1_is_not_refractory():
    assert cohort_errors(tables(LINGERING, DEX, **LINGERING_QUIET)) == []
    zeros = {"anakinra_doses": {}, "intrathecal_doses": {}}  # recorded, none given
    assert cohort_errors(tables(LINGERING, DEX, zeros, **LINGERING_QUIET)) == []


def test_escalation_after_the_start_is_refractory_that_day():
    """Anakinra on day 6, after the start on day 5: refractory on day 6, whatever the grade;
    an outcome saying otherwise is named, with the column and day that show it."""
    given = {"anakinra_doses": {6: 2.0}}
    out = LINGERING_QUIET | dict(
        severe_or_refractory_icans=True, event_day=6, steroid_refractory_icans=True
    )
    assert cohort_errors(tables(LINGERING, DEX, given, **out)) == []
    errors = cohort_errors(tables(LINGERING, DEX, given, **LINGERING_QUIET))
    (error,) = [e for e in errors if e.field == "steroid_refractory_icans"]
    for words in ("anakinra_doses > 0 on day 6", "started on day 5", "refractory on day 6"):
        assert words in error.expected, error.expected
    assert "severe_or_refractory_icans" in {e.field for e in errors}
    # an event day after the escalation is too late
    assert "event_day" in fields(tables(LINGERING, DEX, given, **out | {"event_day": 8}))


def test_intrathecal_therapy_alone_is_read_and_on_the_start_day_counts_for_nothing():
    """Only the intrathecal column: a dose on day 7 is refractory on day 7; a dose on the
    start day (5) or before it (4) is no escalation."""
    out = LINGERING_QUIET | dict(
        severe_or_refractory_icans=True, event_day=7, steroid_refractory_icans=True
    )
    assert cohort_errors(tables(LINGERING, DEX, {"intrathecal_doses": {7: 1.0}}, **out)) == []
    for day in (4, 5):
        given = {"intrathecal_doses": {day: 1.0}, "anakinra_doses": {day: 1.0}}
        assert cohort_errors(tables(LINGERING, DEX, given, **LINGERING_QUIET)) == []


def test_a_stated_event_the_course_cannot_show_needs_the_second_line_columns():
    """The lingering grade 1 stated refractory on day 8 (grade 1 that day): with the anakinra
    and intrathecal columns recorded (no dose), the course decides day 8 and it was no
    refractory day; without them an escalation that day cannot be ruled out."""
    out = LINGERING_QUIET | dict(
        severe_or_refractory_icans=True, event_day=8, steroid_refractory_icans=True
    )
    zeros = {"anakinra_doses": {}, "intrathecal_doses": {}}
    errors = cohort_errors(tables(LINGERING, DEX, zeros, **out))
    assert [e.field for e in errors] == ["event_day"]
    assert "no steroid-refractory ICANS" in errors[0].expected
    assert cohort_errors(tables(LINGERING, DEX, **out)) == []


def test_a_judgement_from_an_uncharted_start_is_not_made():
    """The day before the recorded start (day 5) is not charted: the real start may have been
    day 4, judged on day 7; the outcome saying refractory on day 7 cannot be contradicted."""
    course = {d: g for d, g in REFRACTORY.items() if d != 4}
    out = REFRACTORY_OUT | {"event_day": 7}
    assert cohort_errors(tables(course, DEX | {4: 20.0}, **out)) == []


def test_rows_of_unknown_patients_and_patients_without_outcomes():
    t = tables(COURSE)
    t["daily"] = pd.concat([t["daily"], pd.DataFrame({"patient_id": ["X"], "day": [1]})])
    t["patients"] = pd.DataFrame({"patient_id": ["P1", "P2"]})
    errors = cohort_errors(t)
    assert {(e.field, e.value) for e in errors} >= {("patient_id", "X"), ("patient_id", "P2")}


def test_scores_fit_the_patients_age_and_the_days_icans_grade():
    """ICE from 12 years, CAPD below 12 (ASTCT 2019), judged on the patients table's age; a
    day's ICANS grade at least its score's (ICE 7-9: 1, 3-6: 2, 0-2: 3; CAPD 1-8: 1, 9+: 3);
    an ICE of 10 or a missing grade bounds nothing. Each error names table, patient, row."""
    t = tables({0: 0, 1: 1, 2: 0, 3: 2})
    t["patients"] = pd.DataFrame({"patient_id": ["P1", "K1"], "age_years": [45.0, 7.0]})
    t["outcomes"] = pd.concat([t["outcomes"], t["outcomes"].assign(patient_id="K1")])
    kid = pd.DataFrame({"patient_id": "K1", "day": [0, 1], "crs_grade": 0, "icans_grade": [1, 1]})
    t["daily"] = pd.concat([t["daily"], kid], ignore_index=True)  # rows 4 and 5
    t["daily"]["ice_score"] = [10, 8, 9, 6, 9, None]  # P1 day 2: grade 0 with ICE 9
    t["daily"]["capd_score"] = [None, None, None, 1, None, 12]  # P1 day 3: CAPD at 45 y
    errors = cohort_errors(t)
    errors = {(e.where, e.field, e.value) for e in errors if e.where.startswith("daily")}
    assert errors == {
        ("daily: patient P1 (row 2)", "icans_grade", 0),
        ("daily: patient P1 (row 3)", "capd_score", 1),
        ("daily: patient K1 (row 4)", "ice_score", 9),
        ("daily: patient K1 (row 5)", "icans_grade", 1),  # CAPD 12 is delirium: grade 3
    }
