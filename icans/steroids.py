"""Corticosteroid treatment of ICANS and steroid-refractoriness, judged from the daily course.

One definition, used wherever refractoriness is decided: by the synthetic generator for its
outcome columns, by the endpoint to refuse a patient who has already met the outcome, and by
cohort validation to check a cohort's outcome columns against its course.

No consensus definition exists. Gazeau et al. (Transplant Cell Ther 2023) use "grade >= 2 ICANS
with worsening or lack of improvement despite high-dose corticosteroids"; other cohorts use
"persistent or worsening despite corticosteroids". This project makes it operational:

* a **treatment day** gives at least :data:`TREATMENT_MG` mg dexamethasone-equivalent
  (ASCO 2021, Santomasso JCO 39:3978: grade 2 ICANS is treated with dexamethasone 10 mg every
  6-12 h, i.e. 20-40 mg a day); prophylaxis (dexamethasone 10 mg a day on days 0-2, ZUMA-1
  cohort 6, Oluwole BJH 2021) stays below it and is not treatment;
* the **steroid start** is the first day with ICANS grade >= 1 and a treatment dose, whatever
  the grade at which the centre starts (grade 2 under ASTCT/ASCO management, grade 1 where a
  centre treats earlier: Meng 2025 describes grade 1-2 steroid-refractory cases);
* the response is **judged** :data:`RESPONSE_DAYS` days (72 h) after the start: the ICANS is
  refractory when the grade that day is not lower than at the start (it worsened or did not
  improve). The 72-h window reads the KYMRIAH label's 3-day methylprednisolone step as a rule,
  an ASSUMPTION (icans-facts-2, section 5). A judgement day that was not observed (or lies after
  day 28) decides nothing.
"""

from __future__ import annotations

import numpy as np

TREATMENT_MG = 20.0
RESPONSE_DAYS = 3


def first_day(mask: np.ndarray) -> np.ndarray:
    """First column where ``mask`` holds, NaN where it never does."""
    mask = np.asarray(mask, dtype=bool)
    first = mask.argmax(axis=1).astype(float)
    return np.where(mask.any(axis=1), first, np.nan)


def steroid_start_day(icans_grade: np.ndarray, dexamethasone_mg: np.ndarray) -> np.ndarray:
    """First day with ICANS grade >= 1 and a treatment dose of corticosteroid, per row.

    Parameters
    ----------
    icans_grade, dexamethasone_mg : array of shape (patients, days)
        Daily ICANS grade and dexamethasone-equivalent mg, column = day since infusion; NaN
        where a day was not observed.

    Returns
    -------
    numpy.ndarray of float
        The start day, NaN when steroids were never started for ICANS.
    """
    grade = np.asarray(icans_grade, dtype=float)
    mg = np.asarray(dexamethasone_mg, dtype=float)
    return first_day((grade >= 1) & (mg >= TREATMENT_MG))


def refractory_day(icans_grade: np.ndarray, dexamethasone_mg: np.ndarray) -> np.ndarray:
    """The judgement day of ICANS that did not improve on steroids, NaN otherwise, per row.

    Refractory when the grade on start + :data:`RESPONSE_DAYS` is not lower than the grade on
    the start day. Arguments as :func:`steroid_start_day`.
    """
    grade = np.asarray(icans_grade, dtype=float)
    start = steroid_start_day(grade, dexamethasone_mg)
    judge = start + RESPONSE_DAYS
    rows = np.arange(len(grade))
    seen = ~np.isnan(judge) & (judge < grade.shape[1])
    at = np.where(seen, judge, 0).astype(int)
    begin = np.where(seen, start, 0).astype(int)
    at_judge = np.where(seen, grade[rows, at], np.nan)
    not_improved = at_judge >= grade[rows, begin]  # NaN (not observed) compares False
    return np.where(seen & not_improved, judge, np.nan)
