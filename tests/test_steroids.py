"""The one definition of steroid-refractory ICANS (``icans.steroids``), against hand-worked cases.

Each case is a short course written out by hand, with the start and judgement days worked out
from the rule as stated in the module (and in the contract's outcome note), not from the code:
a treatment day has ICANS grade >= 1 and at least 20 mg dexamethasone-equivalent; the start is
the first such day; the ICANS is refractory when the grade 3 days later is not lower than on the
start day; a judgement day that was not observed, or lies beyond the course, decides nothing.
Exact comparisons: the results are whole days or NaN.
"""

from __future__ import annotations

import numpy as np
import pytest

from icans.steroids import refractory_day, steroid_start_day

N_DAYS = 29  # days 0..28, as in the cohort and the raw layout
NAN = np.nan


def course(values: dict[int, float], n_days: int = N_DAYS) -> np.ndarray:
    """One patient's daily values (days not listed: not observed)."""
    row = np.full(n_days, np.nan)
    for day, value in values.items():
        row[day] = value
    return row


# (ICANS grades, dexamethasone-equivalent mg, start day, refractory judgement day)
CASES = [
    pytest.param(
        {2: 1, 3: 1, 4: 1, 5: 1}, {2: 20.0, 3: 20.0}, 2, 5, id="grade-1-start-not-improved"
    ),
    pytest.param({2: 1, 5: 2}, {2: 20.0}, 2, 5, id="grade-1-start-worse"),
    pytest.param({1: 2, 4: 1}, {1: 40.0}, 1, NAN, id="grade-2-start-improved-to-1"),
    pytest.param({1: 2, 4: 0}, {1: 40.0}, 1, NAN, id="grade-2-start-resolved"),
    pytest.param({1: 2, 4: 2}, {1: 40.0}, 1, 4, id="grade-2-start-unchanged"),
    pytest.param(
        {1: 1, 2: 1, 4: 1},
        {0: 10.0, 1: 10.0, 2: 10.0},
        NAN,
        NAN,
        id="prophylaxis-10mg-with-grade-1-is-no-start",
    ),
    pytest.param({3: 1, 6: 1}, {3: 19.9}, NAN, NAN, id="just-below-the-treatment-dose"),
    pytest.param(
        {1: 1, 2: 1, 5: 1}, {1: 10.0, 2: 20.0}, 2, 5, id="start-is-the-first-treatment-day"
    ),
    pytest.param({2: 0, 5: 0}, {2: 20.0}, NAN, NAN, id="steroids-without-icans-are-no-start"),
    pytest.param(
        {3: 1, 6: 1}, {3: 187.5}, 3, 6, id="methylprednisolone-1g-as-187.5mg-dexamethasone"
    ),
    pytest.param({2: 1, 6: 2}, {2: 20.0}, 2, NAN, id="judgement-day-not-observed"),
    pytest.param({26: 1, 27: 2, 28: 2}, {26: 20.0}, 26, NAN, id="judgement-beyond-day-28"),
    pytest.param({}, {}, NAN, NAN, id="nothing-observed"),
]


@pytest.mark.parametrize(("grades", "mg", "start", "judged"), CASES)
def test_start_and_refractoriness_of_one_course(grades, mg, start, judged):
    g, m = course(grades)[None, :], course(mg)[None, :]
    # whole days (or NaN), here and below: exact
    np.testing.assert_array_equal(steroid_start_day(g, m), [start])
    np.testing.assert_array_equal(refractory_day(g, m), [judged])


def test_rows_are_judged_independently():
    """The cases above as one matrix: each row gets its own answer."""
    rows = [case.values for case in CASES]
    grades = np.vstack([course(r[0]) for r in rows])
    mg = np.vstack([course(r[1]) for r in rows])
    np.testing.assert_array_equal(steroid_start_day(grades, mg), [r[2] for r in rows])  # days
    np.testing.assert_array_equal(refractory_day(grades, mg), [r[3] for r in rows])


def test_a_course_cut_before_the_judgement_day_decides_nothing():
    """Columns stop at day 5 (a course read up to day 5): a start on day 4 is judged on day 7,
    which the columns do not hold."""
    grades = course({4: 2, 5: 2}, n_days=6)[None, :]
    mg = course({4: 20.0}, n_days=6)[None, :]
    np.testing.assert_array_equal(steroid_start_day(grades, mg), [4.0])  # whole days: exact
    np.testing.assert_array_equal(refractory_day(grades, mg), [NAN])


def test_a_list_input_works_like_an_array():
    grades = [[np.nan, 1, np.nan, np.nan, 1]]
    mg = [[np.nan, 25, 25, 25, np.nan]]
    np.testing.assert_array_equal(refractory_day(grades, mg), [4.0])  # whole days: exact
