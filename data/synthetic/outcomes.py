"""Outcome columns of the data contract, derived from the daily course.

Steroid-refractoriness is decided by the one rule of :mod:`icans.steroids` on the generated
grades and corticosteroid doses, exactly as it is decided for a real cohort or a request.

Competing deaths: a patient who dies of another cause (infection, CRS, progression) before the
event is a **non-event**: the target is the cumulative incidence of severe or refractory ICANS by
day 28 in the presence of competing deaths (what will actually happen to the patient), not the
risk in a world where nobody dies of anything else. Nothing is observed after a death, so an
event can only precede it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.synthetic.simulate import Course
from icans.contract import DEATH_CAUSES
from icans.steroids import refractory_day, steroid_start_day


def _first_day(mask: np.ndarray) -> np.ndarray:
    """First day (column) where ``mask`` holds, -1 if never."""
    return np.where(mask.any(axis=1), mask.argmax(axis=1), -1)


def derive_outcomes(course: Course, patient_id: pd.Series) -> pd.DataFrame:
    """One row per patient: the outcome columns of the data contract plus CRS summaries."""
    alive = course.alive
    grade = np.where(alive, course.icans_grade, np.nan)
    mg = np.where(alive, course.steroid_mg, np.nan)
    second_line = np.where(alive, course.anakinra + course.intrathecal, np.nan)
    died_of_icans = course.death_cause == DEATH_CAUSES.index("icans")

    onset = _first_day(grade >= 1)
    severe_day = _first_day(grade >= 3)
    refractory = refractory_day(grade, mg, second_line)
    refractory_i = np.where(np.isnan(refractory), -1, refractory).astype(np.int64)
    severe = severe_day >= 0
    candidates = np.minimum(
        np.where(severe, severe_day, 10_000), np.where(refractory_i >= 0, refractory_i, 10_000)
    )
    event_day = np.where(candidates < 10_000, candidates, -1)
    max_grade = np.where(died_of_icans, 5, np.nanmax(np.where(alive, grade, 0), axis=1))
    start = steroid_start_day(grade, mg)
    days = np.arange(grade.shape[1])
    after_onset = (days[None, :] > onset[:, None]) & (onset[:, None] >= 0)
    resolution = _first_day(after_onset & (grade == 0))
    crs = np.where(alive, course.crs_grade, 0)

    def optional_day(day: np.ndarray) -> pd.arrays.IntegerArray:
        day = np.where(np.isnan(day.astype(float)), -1, day).astype(np.int64)
        return pd.arrays.IntegerArray(np.where(day >= 0, day, 0), day < 0)

    cause = pd.Categorical.from_codes(course.death_cause, categories=list(DEATH_CAUSES))
    return pd.DataFrame(
        {
            "patient_id": patient_id.to_numpy(),
            "icans_max_grade": max_grade.astype(np.int64),
            "icans_onset_day": optional_day(onset),
            "severe_icans": max_grade >= 3,
            "steroid_refractory_icans": refractory_i >= 0,
            "severe_or_refractory_icans": event_day >= 0,
            "event_day": optional_day(event_day),
            "icans_resolution_day": optional_day(resolution),
            "dexamethasone_start_day": optional_day(start),
            "died_of_icans": died_of_icans,
            "death_day": optional_day(course.death_day),
            "death_cause": cause,
            "crs_max_grade": crs.max(axis=1).astype(np.int64),
            "crs_onset_day": optional_day(_first_day(crs >= 1)),
            "tocilizumab_doses": course.tocilizumab.sum(axis=1).astype(np.int64),
        }
    )
