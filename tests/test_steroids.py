"""The one definition of steroid-refractory ICANS (``icans.steroids``), against hand-worked cases.

Each case is a short course written out by hand, with the start and refractory days worked out
from the rule as stated in the module (and in the contract's outcome note), not from the code:

* a treatment day has ICANS grade >= 1 and at least 20 mg dexamethasone-equivalent; the start
  is the first such day;
* persistence: refractory on start + 3 when the grades on start + 2 AND start + 3 are both at
  least max(start grade, 2); a reading that was not observed, or lies beyond the course,
  decides nothing;
* escalation: anakinra or intrathecal therapy (doses > 0) on a day after the start is
  refractory on that day, whatever the grade; on or before the start day it does not count;
* the refractory day is the earlier of the two; without second-line doses, persistence only.

Exact comparisons: the results are whole days or NaN.
"""

from __future__ import annotations

import numpy as np
import pytest

from icans.steroids import (
    escalation_day,
    persistence_day,
    persistence_threshold,
    refractory_day,
    steroid_start_day,
)

N_DAYS = 29  # days 0..28, as in the cohort and the raw layout
NAN = np.nan


def course(values: dict[int, float], n_days: int = N_DAYS) -> np.ndarray:
    """One patient's daily values (days not listed: not observed)."""
    row = np.full(n_days, np.nan)
    for day, value in values.items():
        row[day] = value
    return row


# Persistence only: (ICANS grades, dexamethasone-equivalent mg, start day, refractory day)
PERSISTENCE_CASES = [
    pytest.param(
        {2: 1, 3: 1, 4: 1, 5: 1}, {2: 20.0, 3: 20.0}, 2, NAN, id="grade-1-start-lingers-at-1"
    ),
    pytest.param({2: 1, 4: 2, 5: 2}, {2: 20.0}, 2, 5, id="grade-1-start-becomes-2-on-both"),
    pytest.param({2: 1, 4: 2, 5: 1}, {2: 20.0}, 2, NAN, id="grade-1-start-2-then-back-to-1"),
    pytest.param({2: 1, 4: 1, 5: 2}, {2: 20.0}, 2, NAN, id="grade-1-start-2-on-72h-only"),
    pytest.param({1: 2, 3: 2, 4: 2}, {1: 40.0}, 1, 4, id="grade-2-start-unchanged"),
    pytest.param({1: 2, 3: 3, 4: 3}, {1: 40.0}, 1, 4, id="grade-2-start-worse"),
    pytest.param({1: 2, 3: 2, 4: 1}, {1: 40.0}, 1, NAN, id="grade-2-start-improved-at-72h"),
    pytest.param({1: 2, 3: 1, 4: 2}, {1: 40.0}, 1, NAN, id="grade-2-start-improved-at-48h"),
    pytest.param({1: 2, 3: 0, 4: 0}, {1: 40.0}, 1, NAN, id="grade-2-start-resolved"),
    pytest.param(
        {1: 2, 2: 0, 3: 2, 4: 2}, {1: 40.0}, 1, 4, id="a-better-day-before-48h-does-not-count"
    ),
    pytest.param({1: 3, 3: 2, 4: 2}, {1: 40.0}, 1, NAN, id="grade-3-start-down-to-2"),
    pytest.param({1: 3, 3: 3, 4: 2}, {1: 40.0}, 1, NAN, id="grade-3-start-2-at-72h"),
    pytest.param({1: 3, 3: 3, 4: 4}, {1: 40.0}, 1, 4, id="grade-3-start-stays-3-or-worse"),
    pytest.param({1: 2, 4: 2}, {1: 40.0}, 1, NAN, id="48h-reading-missing"),
    pytest.param({2: 1, 4: 2}, {2: 20.0}, 2, NAN, id="72h-reading-missing"),
    pytest.param(
        {1: 1, 2: 1, 4: 1},
        {0: 10.0, 1: 10.0, 2: 10.0},
        NAN,
        NAN,
        id="prophylaxis-10mg-with-grade-1-is-no-start",
    ),
    pytest.param({3: 2, 5: 2, 6: 2}, {3: 19.9}, NAN, NAN, id="just-below-the-treatment-dose"),
    pytest.param(
        {1: 2, 2: 2, 4: 2, 5: 2},
        {1: 10.0, 2: 20.0},
        2,
        5,
        id="start-is-the-first-treatment-day",
    ),
    pytest.param({2: 0, 4: 0, 5: 0}, {2: 20.0}, NAN, NAN, id="steroids-without-icans-no-start"),
    pytest.param(
        {3: 2, 5: 2, 6: 2},
        {3: 187.5},
        3,
        6,
        id="methylprednisolone-1g-as-187.5mg-dexamethasone",
    ),
    pytest.param({25: 2, 27: 2, 28: 2}, {25: 20.0}, 25, 28, id="judged-on-day-28"),
    pytest.param({26: 2, 28: 2}, {26: 20.0}, 26, NAN, id="72h-reading-beyond-day-28"),
    pytest.param({}, {}, NAN, NAN, id="nothing-observed"),
]


@pytest.mark.parametrize(("grades", "mg", "start", "refractory"), PERSISTENCE_CASES)
def test_start_and_persistence_of_one_course(grades, mg, start, refractory):
    g, m = course(grades)[None, :], course(mg)[None, :]
    # whole days (or NaN), here and below: exact
    np.testing.assert_array_equal(steroid_start_day(g, m), [start])
    np.testing.assert_array_equal(persistence_day(g, m), [refractory])
    np.testing.assert_array_equal(refractory_day(g, m), [refractory])
    # no second-line therapy recorded (NaN) or none given (0): persistence alone decides
    for none in (np.full_like(g, np.nan), np.zeros_like(g)):
        np.testing.assert_array_equal(escalation_day(g, m, none), [NAN])
        np.testing.assert_array_equal(refractory_day(g, m, none), [refractory])


def test_the_threshold_is_the_start_grade_and_at_least_2():
    """Worked by hand: a start at grade 1 or 2 needs grade 2; a start at 3 needs 3, at 4 needs 4."""
    np.testing.assert_array_equal(persistence_threshold(np.array([1, 2, 3, 4])), [2, 2, 3, 4])
    assert float(persistence_threshold(1.0)) == 2.0


# Grade 1 from day 2, lingering at 1, steroids from day 2: not refractory by persistence.
LINGERING = {2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}
# Grade 2 from day 1, persisting: refractory by persistence on day 4 (readings on days 3 and 4).
PERSISTING = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}

# With second-line doses: (grades, mg, second-line doses, escalation day, refractory day)
ESCALATION_CASES = [
    pytest.param(LINGERING, {2: 20.0}, {3: 1}, 3, 3, id="anakinra-the-day-after-the-start"),
    pytest.param(LINGERING, {2: 20.0}, {6: 2}, 6, 6, id="grade-1-escalated-on-day-6"),
    pytest.param(LINGERING, {2: 20.0}, {2: 1}, NAN, NAN, id="on-the-start-day-does-not-count"),
    pytest.param(LINGERING, {2: 20.0}, {1: 1}, NAN, NAN, id="before-the-start-does-not-count"),
    pytest.param(
        LINGERING, {2: 20.0}, {2: 1, 5: 1}, 5, 5, id="the-first-dose-after-the-start-counts"
    ),
    pytest.param(PERSISTING, {1: 40.0}, {3: 1}, 3, 3, id="escalation-before-persistence-wins"),
    pytest.param(PERSISTING, {1: 40.0}, {6: 1}, 6, 4, id="persistence-before-escalation-wins"),
    pytest.param(PERSISTING, {1: 40.0}, {4: 1}, 4, 4, id="both-on-the-same-day"),
    pytest.param(
        {2: 1, 3: 0}, {2: 20.0}, {3: 1}, 3, 3, id="escalation-whatever-the-grade-that-day"
    ),
    pytest.param(LINGERING, {2: 10.0}, {3: 1}, NAN, NAN, id="no-steroid-start-no-escalation"),
    pytest.param(LINGERING, {2: 20.0}, {3: 0, 4: 0}, NAN, NAN, id="zero-doses-are-none"),
]


@pytest.mark.parametrize(("grades", "mg", "doses", "escalated", "refractory"), ESCALATION_CASES)
def test_escalation_to_second_line_therapy(grades, mg, doses, escalated, refractory):
    g, m, s = course(grades)[None, :], course(mg)[None, :], course(doses)[None, :]
    np.testing.assert_array_equal(escalation_day(g, m, s), [escalated])
    np.testing.assert_array_equal(refractory_day(g, m, s), [refractory])


def test_without_second_line_doses_only_persistence_counts():
    """The same escalated course: day 3 with the doses, persistence (day 4, or none) without."""
    doses = course({3: 1})[None, :]
    for grades, mg, without in ((LINGERING, {2: 20.0}, NAN), (PERSISTING, {1: 40.0}, 4.0)):
        g, m = course(grades)[None, :], course(mg)[None, :]
        np.testing.assert_array_equal(refractory_day(g, m, doses), [3.0])
        np.testing.assert_array_equal(refractory_day(g, m), [without])
        np.testing.assert_array_equal(refractory_day(g, m, None), [without])


def test_rows_are_judged_independently():
    """The cases above as one matrix: each row gets its own answer."""
    persistence = [case.values for case in PERSISTENCE_CASES]
    escalation = [case.values for case in ESCALATION_CASES]
    grades = np.vstack([course(r[0]) for r in (*persistence, *escalation)])
    mg = np.vstack([course(r[1]) for r in (*persistence, *escalation)])
    doses = np.vstack([course({}) for _ in persistence] + [course(r[2]) for r in escalation])
    expected = [r[3] for r in persistence] + [r[4] for r in escalation]
    np.testing.assert_array_equal(refractory_day(grades, mg, doses), expected)  # days: exact
    np.testing.assert_array_equal(
        steroid_start_day(grades[: len(persistence)], mg[: len(persistence)]),
        [r[2] for r in persistence],
    )


def test_a_course_cut_before_the_judgement_day_decides_nothing():
    """Columns stop at day 5 (a course read up to day 5): a start on day 4 needs the readings
    of days 6 and 7, which the columns do not hold."""
    grades = course({4: 2, 5: 2}, n_days=6)[None, :]
    mg = course({4: 20.0}, n_days=6)[None, :]
    np.testing.assert_array_equal(steroid_start_day(grades, mg), [4.0])  # whole days: exact
    np.testing.assert_array_equal(refractory_day(grades, mg), [NAN])
    # ... but an escalation the day after the start is within them
    doses = course({5: 1}, n_days=6)[None, :]
    np.testing.assert_array_equal(refractory_day(grades, mg, doses), [5.0])


def test_a_list_input_works_like_an_array():
    grades = [[np.nan, 2, np.nan, 2, 2]]
    mg = [[np.nan, 25, 25, 25, np.nan]]
    np.testing.assert_array_equal(refractory_day(grades, mg), [4.0])  # whole days: exact
    np.testing.assert_array_equal(refractory_day(grades, mg, [[0, 0, 1, 0, 0]]), [2.0])
