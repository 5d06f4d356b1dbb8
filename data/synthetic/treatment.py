"""Treatment given by rule from what the team sees: corticosteroids for ICANS, tocilizumab for CRS.

Both are deterministic functions of the observed grades (and of the centre's policy and the
patient's prophylaxis, known at infusion), so they are observed, never hidden: the true risk
conditions on them exactly.

Corticosteroid states at the end of a day (``STEROID_STATES``)::

    NONE --grade >= start grade--> D0(g) -> D1(g) -> D2(g) --next day's grade < g--> RESPONDED
                                                          \\--grade >= g (refractory)--> ESCALATED
    RESPONDED --grade 0--> DONE --grade >= start grade--> RESPONDED (re-treated)

``g`` is the ICANS grade on the start day (1 or 2; a severe start counts as 2). The judgement on
the day after D2 (72 h after the first dose) is the rule of :mod:`icans.steroids`, which the
generator's outcome columns are computed with. Doses (dexamethasone-equivalent mg) follow ASCO
2021 and the KYMRIAH label: standard 10 mg every 6 h, high dose (methylprednisolone 1 g) at grade
>= 3 or when refractory, a taper after a response; prophylaxis 10 mg on days 0-2.

Tocilizumab: one dose on each day with CRS grade >= 2 or a persisting grade 1, at most 4 in total
(label). After the first dose CRS improves faster and fever is masked.
"""

from __future__ import annotations

import numpy as np

from data.synthetic.parameters import GeneratorParameters

NONE, D0_G1, D1_G1, D2_G1, D0_G2, D1_G2, D2_G2, RESPONDED, DONE, ESCALATED = range(10)
N_STEROID_STATES = 10
STEROID_STATES = (
    "none",
    "day 0 (start grade 1)",
    "day 1 (start grade 1)",
    "day 2 (start grade 1)",
    "day 0 (start grade 2)",
    "day 1 (start grade 2)",
    "day 2 (start grade 2)",
    "responded",
    "done",
    "escalated",
)
# The state before the judgement day and the start grade it judges against.
JUDGED_GRADE = {D2_G1: 1, D2_G2: 2}
ON_STEROIDS = np.zeros(N_STEROID_STATES, dtype=bool)
ON_STEROIDS[[D0_G1, D1_G1, D2_G1, D0_G2, D1_G2, D2_G2, RESPONDED, ESCALATED]] = True


def steroid_start_grades(prophylaxis: np.ndarray | bool, centre_grade: int) -> np.ndarray:
    """The ICANS grade at which each patient's steroids start: 1 where the patient had
    prophylaxis (a centre that gives prophylaxis manages early: ZUMA-1 cohort 6 combined
    dexamethasone 10 mg on days 0-2 with steroids from grade 1 ICANS, Oluwole BJH 2021), else the
    centre's grade (case mix). Both are known at infusion, so the rule is observed."""
    return np.where(np.asarray(prophylaxis, dtype=bool), 1, centre_grade).astype(np.int64)


def next_steroid_state(
    state: np.ndarray, grade: np.ndarray, start_grade: np.ndarray | int
) -> np.ndarray:
    """Steroid state at the end of a day from the state the day before and today's grade."""
    state = np.asarray(state)
    grade = np.asarray(grade)
    start = np.where(grade >= 2, D0_G2, D0_G1)
    judged_grade = np.where(state == D2_G1, 1, 2)
    return np.select(
        [
            state == NONE,
            np.isin(state, (D0_G1, D1_G1, D0_G2, D1_G2)),
            np.isin(state, (D2_G1, D2_G2)),
            state == RESPONDED,
            state == DONE,
        ],
        [
            np.where(grade >= start_grade, start, NONE),
            state + 1,
            np.where(grade >= judged_grade, ESCALATED, RESPONDED),
            np.where(grade == 0, DONE, np.where(grade >= 3, ESCALATED, RESPONDED)),
            np.where(grade >= start_grade, RESPONDED, DONE),
        ],
        np.where(grade == 0, DONE, ESCALATED),
    )


def refractory_today(previous_state: np.ndarray, grade: np.ndarray) -> np.ndarray:
    """The judgement day finds ICANS not improved (the steroid-refractory event)."""
    previous_state = np.asarray(previous_state)
    judged = np.isin(previous_state, tuple(JUDGED_GRADE))
    return judged & (np.asarray(grade) >= np.where(previous_state == D2_G1, 1, 2))


def steroid_mg(
    state: np.ndarray,
    grade: np.ndarray,
    day: int,
    prophylaxis: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """Dexamethasone-equivalent mg given on ``day`` (state at the end of it, grade that day)."""
    t = params.treatment
    state = np.asarray(state)
    severe = np.asarray(grade) >= 3
    proph = np.where(np.asarray(prophylaxis) & (day < t.prophylaxis_days), t.prophylaxis_mg, 0.0)
    treated = np.where(severe, t.high_dose_mg, t.standard_mg)
    return np.select(
        [
            np.isin(state, (NONE, DONE)),
            state == RESPONDED,
            state == ESCALATED,
        ],
        [proph, np.where(severe, t.high_dose_mg, t.taper_mg), t.high_dose_mg],
        treated,
    )


def tocilizumab_doses(
    crs_grade: np.ndarray,
    fever_days: np.ndarray,
    doses_so_far: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """Doses given today: one on a day of CRS grade >= the start grade, or of grade 1 for the
    ``tocilizumab_fever_days``-th day running (``fever_days`` counts today), while doses
    remain."""
    t = params.treatment
    grade = np.asarray(crs_grade)
    indicated = (grade >= t.tocilizumab_start_grade) | (
        (grade == 1) & (np.asarray(fever_days) >= t.tocilizumab_fever_days)
    )
    return (indicated & (np.asarray(doses_so_far) < t.tocilizumab_max_doses)).astype(np.int64)
