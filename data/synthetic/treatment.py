"""Treatment given from what the team sees: corticosteroids and second-line therapy for ICANS,
tocilizumab for CRS.

Every decision is a function of the observed course (grades, doses so far) and of the centre's
policy and the patient's prophylaxis, known at infusion, with a probability where practice
varies: the decision is observed, never hidden, so the true risk conditions on what was given
and averages over what may be given later (:mod:`data.synthetic.true_risk`).

Corticosteroid states at the end of a day (``STEROID_STATES``)::

    NONE --grade >= start grade, started (p_start)--> D0 -> D1
    D1 --grade >= 2--> D2P --grade >= 2 (refractory)--> HD1
    D1 --grade < 2--> D2N
    D0, D1 --second-line given early (p_early, grade >= 1)--> HD1 (refractory by escalation)
    D2P --grade < 2--> RESPONDED;  D2N --> RESPONDED (HD1 at grade >= 3)
    RESPONDED --grade 0--> DONE; --grade >= 3--> HD1;  DONE --grade >= start grade--> RESPONDED
    HD1 -> HD2 -> HD3 -> TAPER --grade 0--> DONE     (the high-dose course stops after 3 days)

D0/D1/D2 are the start day and the 24-h and 48-h days; the day after D2 (72 h) is the judgement
of :mod:`icans.steroids`: refractory when the 48-h and 72-h grades are both >= 2 (the rule's
threshold for starts at grade 1-2; a start at grade >= 3 is the event already), or when
second-line therapy is given after the start. Doses (dexamethasone-equivalent mg) follow ASCO
2021 and the KYMRIAH label: 10 mg every 6 h, methylprednisolone 1 g a day for 3 days at grade >= 3
or when refractory, then a taper; prophylaxis 10 mg on days 0-2.

Second-line therapy (anakinra, intrathecal therapy) is given on a refractory judgement (a share
of patients) or early, on the day after the start or the next, at centres that escalate early
(the seed series gave intrathecal therapy a median 12 h after onset, Meng 2025).

Tocilizumab: on a day of CRS grade >= 2, or of grade 1 after days of fever, with a probability
by grade and centre, at most 4 doses (label). After the first dose CRS improves faster and
fever is masked.
"""

from __future__ import annotations

import numpy as np

from data.synthetic.parameters import GeneratorParameters

NONE, D0, D1, D2P, D2N, RESPONDED, DONE, HD1, HD2, HD3, TAPER = range(11)
N_STEROID_STATES = 11
STEROID_STATES = (
    "none",
    "start day",
    "24 h",
    "48 h, grade >= 2",
    "48 h, grade < 2",
    "responded (taper)",
    "done",
    "high dose, day 1",
    "high dose, day 2",
    "high dose, day 3",
    "taper after high dose",
)
ON_STEROIDS = np.ones(N_STEROID_STATES, dtype=bool)
ON_STEROIDS[[NONE, DONE]] = False
EARLY = (D0, D1)  # states after which second-line therapy may be given before the judgement
JUDGED = D2P  # the state before the 72-h judgement of a persisting grade
HIGH_DOSE_COURSE = (HD1, HD2, HD3, TAPER)  # a high-dose course and the taper that ends it


def steroid_start_grades(prophylaxis: np.ndarray | bool, centre_grade: int) -> np.ndarray:
    """The ICANS grade at which each patient's steroids start: 1 where the patient had
    prophylaxis (a centre that gives prophylaxis manages early: ZUMA-1 cohort 6 combined
    dexamethasone 10 mg on days 0-2 with steroids from grade 1 ICANS, Oluwole BJH 2021), else the
    centre's grade (case mix). Both are known at infusion, so the rule is observed."""
    return np.where(np.asarray(prophylaxis, dtype=bool), 1, centre_grade).astype(np.int64)


def decision_probability(
    state: np.ndarray,
    grade: np.ndarray,
    start_grade: np.ndarray | int,
    early_second_line: np.ndarray | float,
    params: GeneratorParameters,
) -> np.ndarray:
    """P(the day's treatment decision is taken), from the state the day before and today's grade.

    In state NONE the decision is to start steroids (grade >= the start grade: probability by
    grade, certain from grade 3); in D0/D1 it is to give second-line therapy early (grade >= 1,
    ``early_second_line``, the centre's). No other state has a choice (probability 0).
    """
    t = params.treatment
    state, grade = np.asarray(state), np.asarray(grade)
    start_p = np.asarray(t.steroid_start_probability)[np.clip(grade, 0, 3)]
    return np.select(
        [state == NONE, np.isin(state, EARLY)],
        [
            np.where(grade >= start_grade, np.where(grade >= 3, 1.0, start_p), 0.0),
            np.where(grade >= 1, early_second_line, 0.0),
        ],
        0.0,
    )


def next_steroid_state(
    state: np.ndarray,
    grade: np.ndarray,
    start_grade: np.ndarray | int,
    decided: np.ndarray | bool | None = None,
) -> np.ndarray:
    """Steroid state at the end of a day from the state the day before, today's grade and the
    day's decision (:func:`decision_probability`). ``None``: the course without a choice drawn,
    steroids started as soon as the grade calls for them and no early second-line therapy (the
    seed profiles' course)."""
    state, grade = np.asarray(state), np.asarray(grade)
    taken: np.ndarray = state == NONE if decided is None else np.asarray(decided, dtype=bool)
    early = np.isin(state, EARLY) & taken & (grade >= 1)
    nxt = np.select(
        [
            state == NONE,
            state == D0,
            state == D1,
            state == D2P,
            state == D2N,
            state == RESPONDED,
            state == DONE,
            np.isin(state, (HD1, HD2)),
            state == HD3,
        ],
        [
            np.where((grade >= start_grade) & taken, D0, NONE),
            D1,
            np.where(grade >= 2, D2P, D2N),
            np.where(grade >= 2, HD1, RESPONDED),
            np.where(grade >= 3, HD1, RESPONDED),
            np.where(grade == 0, DONE, np.where(grade >= 3, HD1, RESPONDED)),
            np.where(grade >= start_grade, RESPONDED, DONE),
            state + 1,
            TAPER,
        ],
        np.where(grade == 0, DONE, TAPER),  # TAPER
    )
    return np.where(early, HD1, nxt)


def refractory_today(
    previous_state: np.ndarray, grade: np.ndarray, decided: np.ndarray | bool = False
) -> np.ndarray:
    """The day's grade or decision makes the ICANS steroid-refractory (:mod:`icans.steroids`):
    the 72-h reading is still >= 2 after a 48-h reading >= 2, or second-line therapy is given
    early."""
    previous_state, grade = np.asarray(previous_state), np.asarray(grade)
    persisted = (previous_state == JUDGED) & (grade >= 2)
    escalated = np.isin(previous_state, EARLY) & np.asarray(decided, dtype=bool) & (grade >= 1)
    return persisted | escalated


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
    return np.select(
        [
            np.isin(state, (NONE, DONE)),
            state == RESPONDED,
            np.isin(state, (HD1, HD2, HD3)),
            state == TAPER,
        ],
        [
            proph,
            t.taper_mg,
            t.high_dose_mg,
            np.where(severe, t.standard_mg, t.taper_mg),
        ],
        np.where(severe, t.high_dose_mg, t.standard_mg),  # D0, D1, D2P, D2N
    )


def tocilizumab_probability(
    crs_grade: np.ndarray,
    fever_days: np.ndarray,
    doses_so_far: np.ndarray,
    grade_1_probability: np.ndarray | float,
    params: GeneratorParameters,
) -> np.ndarray:
    """P(a dose today): by the day's CRS grade (grade 1 only from its
    ``tocilizumab_fever_days``-th day of fever running, ``fever_days`` counting today, at the
    centre's ``grade_1_probability``), while doses remain (label: at most 4)."""
    t = params.treatment
    grade = np.asarray(crs_grade)
    by_grade = np.asarray(t.tocilizumab_probability)[np.clip(grade, 0, 4)]
    grade_1 = np.where(np.asarray(fever_days) >= t.tocilizumab_fever_days, grade_1_probability, 0)
    p = np.where(grade == 1, grade_1, by_grade)
    return np.where(np.asarray(doses_so_far) < t.tocilizumab_max_doses, p, 0.0)


def second_line_doses(
    escalation_day: np.ndarray,
    intrathecal: np.ndarray,
    icans_grade: np.ndarray,
    alive: np.ndarray,
    params: GeneratorParameters,
) -> tuple[np.ndarray, np.ndarray]:
    """Anakinra and intrathecal doses by day after each patient's escalation (-1: none).

    Anakinra: ``anakinra_doses_per_day`` on each day from the escalation while ICANS lasts, for
    at most ``anakinra_days`` days (Gazeau 2023: 100-200 mg every 8-12 h; median 15.5 days to
    resolution). Intrathecal therapy: one dose on the escalation day, repeated every 2 days
    while grade >= 2, at most ``intrathecal_max_doses`` (Meng 2025: median 1, range 1-3).
    """
    t = params.treatment
    days = np.arange(icans_grade.shape[1])[None, :]
    since = days - escalation_day[:, None]
    escalated = (escalation_day >= 0)[:, None] & (since >= 0) & alive
    anakinra = escalated & ~intrathecal[:, None] & (since < t.anakinra_days)
    anakinra &= (icans_grade >= 1) | (since == 0)
    it_day = escalated & intrathecal[:, None] & (since % 2 == 0)
    it_day &= (since < 2 * t.intrathecal_max_doses) & ((icans_grade >= 2) | (since == 0))
    return anakinra.astype(np.int64) * t.anakinra_doses_per_day, it_day.astype(np.int64)


def death_probability(
    hazard: np.ndarray, steroids: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """P(death from another cause at the start of a day), from the product's daily ``hazard``
    (:attr:`data.synthetic.process.KernelTables.death_hazard`) and the steroid state at the end
    of the day before: times ``high_dose_steroid_hazard_ratio`` during and after a high-dose
    course (infections)."""
    ratio = np.where(
        np.isin(steroids, HIGH_DOSE_COURSE), params.death.high_dose_steroid_hazard_ratio, 1.0
    )
    return np.minimum(hazard * ratio, 1.0)
