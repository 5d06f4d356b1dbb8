"""Corticosteroid treatment of ICANS and steroid-refractoriness, judged from the daily course.

One definition, used wherever refractoriness is decided: by the synthetic generator for its
outcome columns (and, as a state machine, for its treatment and true risk), by the endpoint to
refuse a patient who has already met the outcome, and by cohort validation to check a cohort's
outcome columns against its course.

No consensus definition exists. Gazeau et al. (Transplant Cell Ther 2023;29:430) give anakinra
for "grade >= 2 ICANS with worsening or lack of improvement despite high-dose corticosteroids";
other centres use "persistent or worsening despite corticosteroids" (FHCC/OHSU). None states a
clock. This project makes it operational, and a clinician can read each part back:

* a **treatment day** gives at least :data:`TREATMENT_MG` mg dexamethasone-equivalent
  (ASCO 2021, Santomasso JCO 39:3978: grade 2 ICANS is treated with dexamethasone 10 mg every
  6-12 h, i.e. 20-40 mg a day); prophylaxis (dexamethasone 10 mg a day on days 0-2, ZUMA-1
  cohort 6, Oluwole BJH 2021) stays below it and is not treatment;
* the **steroid start** is the first day with ICANS grade >= 1 and a treatment dose, whatever
  the grade at which the centre starts;
* **persistence**: the ICANS is refractory when the grade read 48 h *and* 72 h after the start
  (:data:`PERSISTENCE_DAYS`) is still at least :func:`persistence_threshold` of the start grade:
  grade >= 2 (Gazeau) and not lower than at the start. Two readings, so one noisy day decides
  nothing; a grade 1 that merely lingers is not refractory, a grade 1 that became a grade 2 and
  stayed is. The 72-h window reads the KYMRIAH label's 3-day methylprednisolone step as a rule;
  the window is an ASSUMPTION (no published clock). A reading that was not observed (or lies
  after day 28) decides nothing;
* **escalation**: second-line therapy for ICANS (anakinra, or intrathecal therapy:
  chemotherapy or corticosteroid given into the CSF) on a day after the start is the treating
  team's own judgement that steroids failed, and is refractory ICANS on that day, whatever the
  grade. This is how the seed series
  (Meng, Front Immunol 2025: 8 of 13 patients with grade 1-2 ICANS given intrathecal
  dexamethasone and methotrexate as "steroid-refractory", at a median 12 h after onset) has
  refractory grade 1-2 ICANS.

The outcome day is the earlier of the two.
"""

from __future__ import annotations

import numpy as np

TREATMENT_MG = 20.0
RESPONSE_DAYS = 3
PERSISTENCE_DAYS = (2, 3)  # the 48-h and 72-h readings; the later one is the judgement day
MIN_REFRACTORY_GRADE = 2  # Gazeau 2023: grade >= 2 ICANS


def first_day(mask: np.ndarray) -> np.ndarray:
    """First column where ``mask`` holds, NaN where it never does."""
    mask = np.asarray(mask, dtype=bool)
    first = mask.argmax(axis=1).astype(float)
    return np.where(mask.any(axis=1), first, np.nan)


def persistence_threshold(start_grade: np.ndarray | float) -> np.ndarray:
    """The grade the 48-h and 72-h readings must still reach for the ICANS to be refractory:
    the start grade, and at least :data:`MIN_REFRACTORY_GRADE`."""
    return np.maximum(np.asarray(start_grade, dtype=float), MIN_REFRACTORY_GRADE)


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


def _on_day(matrix: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Each row's value on its own day; NaN where the day is NaN or outside the columns."""
    ok = ~np.isnan(day) & (day >= 0) & (day < matrix.shape[1])
    at = np.where(ok, day, 0).astype(int)
    return np.where(ok, matrix[np.arange(len(matrix)), at], np.nan)


def persistence_day(icans_grade: np.ndarray, dexamethasone_mg: np.ndarray) -> np.ndarray:
    """The judgement day (start + :data:`RESPONSE_DAYS`) of ICANS that persisted on steroids
    (both readings of :data:`PERSISTENCE_DAYS` at least the threshold), NaN otherwise.
    Arguments as :func:`steroid_start_day`."""
    grade = np.asarray(icans_grade, dtype=float)
    start = steroid_start_day(grade, dexamethasone_mg)
    threshold = persistence_threshold(_on_day(grade, start))
    persists = np.ones(len(grade), dtype=bool)
    for offset in PERSISTENCE_DAYS:
        persists &= _on_day(grade, start + offset) >= threshold  # NaN compares False
    return np.where(persists, start + RESPONSE_DAYS, np.nan)


def escalation_day(
    icans_grade: np.ndarray, dexamethasone_mg: np.ndarray, second_line: np.ndarray
) -> np.ndarray:
    """First day after the steroid start with second-line therapy for ICANS, NaN if none.

    ``second_line``: doses of second-line therapy (anakinra, intrathecal therapy) per day, of
    the same shape; NaN where not recorded.
    """
    start = steroid_start_day(icans_grade, dexamethasone_mg)
    doses = np.asarray(second_line, dtype=float)
    days = np.arange(doses.shape[1])[None, :]
    return first_day((doses > 0) & (days > start[:, None]))  # NaN start compares False


def refractory_day(
    icans_grade: np.ndarray,
    dexamethasone_mg: np.ndarray,
    second_line: np.ndarray | None = None,
) -> np.ndarray:
    """The day ICANS became steroid-refractory, NaN if it did not, per row: the earlier of
    :func:`persistence_day` and :func:`escalation_day` (when ``second_line`` is given).
    Arguments as :func:`steroid_start_day` and :func:`escalation_day`."""
    day = persistence_day(icans_grade, dexamethasone_mg)
    if second_line is not None:
        day = np.fmin(day, escalation_day(icans_grade, dexamethasone_mg, second_line))
    return day
