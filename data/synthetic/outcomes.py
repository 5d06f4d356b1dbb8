"""Outcome columns of the data contract, derived from the daily course.

Steroid-refractory ICANS, operational definition (no consensus exists; Gazeau 2023 uses
"grade >= 2 ICANS with worsening or lack of improvement despite high-dose corticosteroids"):
dexamethasone starts on the first day the ASTCT grade reaches 2; the ICANS is refractory if
72 h after the first dose (day start + 3) the grade is not lower than at the start (it worsened
or did not improve), or if the patient died of ICANS before that judgement. A judgement day
after day 28 is censored (not refractory). Transient worsening inside the 72 h that has
improved by the judgement day is not refractory (steroids are escalated, not abandoned).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.synthetic.simulate import Course


def _first_day(mask: np.ndarray) -> np.ndarray:
    """First day (column) where ``mask`` holds, -1 if never."""
    return np.where(mask.any(axis=1), mask.argmax(axis=1), -1)


def derive_outcomes(
    course: Course, patient_id: pd.Series, response_days: int, start_grade: int
) -> pd.DataFrame:
    """One row per patient: the outcome columns of the data contract plus CRS summaries."""
    grade = course.icans_grade
    n, width = grade.shape
    horizon = width - 1
    rows = np.arange(n)
    died = course.died_of_icans_day >= 0

    onset = _first_day(grade >= 1)
    severe_day = _first_day(grade >= 3)
    dex_start = _first_day(grade >= start_grade)
    started = dex_start >= 0
    start_g = np.where(started, grade[rows, np.maximum(dex_start, 0)], 0)
    judge = dex_start + response_days

    died_first = started & died & (course.died_of_icans_day <= judge)
    judged = started & (judge <= horizon) & ~died_first
    at_judge = np.where(judged, grade[rows, np.clip(judge, 0, horizon)], -1)
    not_improved = judged & (at_judge >= start_g)
    refractory = not_improved | died_first

    severe = severe_day >= 0
    refractory_day = np.where(not_improved, judge, -1)
    candidates = np.where(severe, severe_day, 10_000)
    candidates = np.minimum(candidates, np.where(refractory_day >= 0, refractory_day, 10_000))
    event_day = np.where(candidates < 10_000, candidates, -1)

    max_grade = np.where(died, 5, grade.max(axis=1))
    crs = course.crs_grade

    def optional_day(day: np.ndarray) -> pd.arrays.IntegerArray:
        return pd.arrays.IntegerArray(np.where(day >= 0, day, 0).astype(np.int64), day < 0)

    return pd.DataFrame(
        {
            "patient_id": patient_id.to_numpy(),
            "icans_max_grade": max_grade.astype(np.int64),
            "icans_onset_day": optional_day(onset),
            "severe_icans": max_grade >= 3,
            "steroid_refractory_icans": refractory,
            "severe_or_refractory_icans": severe | refractory,
            "event_day": optional_day(event_day),
            "dexamethasone_start_day": optional_day(dex_start),
            "died_of_icans": died,
            "death_day": optional_day(course.died_of_icans_day),
            "crs_max_grade": crs.max(axis=1).astype(np.int64),
            "crs_onset_day": optional_day(_first_day(crs >= 1)),
        }
    )
