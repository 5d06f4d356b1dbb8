"""Draw each patient's daily course from day 0 to the horizon (day 28).

Every probability comes from :mod:`data.synthetic.process` (and treatment from
:mod:`data.synthetic.treatment`); this module only draws from them. ICANS grades are never drawn:
the findings are drawn and the grade is derived from them with the ASTCT rules of
:mod:`icans.astct`. CRS organ support is drawn consistent with the CRS chain's grade and
re-graded with the same library (fever masked after tocilizumab, as ASTCT allows), which the
generator checks. A patient who dies on day d is observed last on day d - 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synthetic.baseline import Baseline
from data.synthetic.kinetics import (
    LatentGrid,
    expansion_deviation,
    expansion_log_peak,
    expansion_shape,
    per_product,
    ratio_mean,
)
from data.synthetic.parameters import GeneratorParameters
from data.synthetic.process import (
    CRS_PRE,
    FindingTables,
    KernelTables,
    crs_grade_of_state,
    crs_intensity,
    crs_patient_shift,
    crs_transition_probs,
    icans_drive,
    icans_kernel,
    is_child,
)
from data.synthetic.routine import (
    LABS,
    Charting,
    SeenCourse,
    draw_routine,
    draw_temperature,
    static_log_level,
)
from data.synthetic.treatment import (
    EARLY,
    ON_STEROIDS,
    death_probability,
    decision_probability,
    next_steroid_state,
    refractory_today,
    second_line_doses,
    steroid_mg,
    tocilizumab_probability,
)
from icans.astct import capd_domain_grade, crs_grade_codes, icans_grade_codes, ice_domain_grade
from icans.contract import DEATH_CAUSES
from icans.steroids import TREATMENT_MG

ICE_BAND_LOW, ICE_BAND_SIZE = np.array([10, 7, 3, 0]), np.array([1, 3, 4, 3])
CAPD_BAND_LOW, CAPD_BAND_SIZE = np.array([0, 1, 9]), np.array([1, 8, 24])
NOT_OBSERVED = -2  # findings code on days after death
DIFFUSE_EDEMA = 2  # CerebralEdema code of diffuse oedema


def draw_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (..., k) probability array."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1])[..., None] * cum[..., -1:]
    return np.minimum((u >= cum).sum(axis=-1), probs.shape[-1] - 1)


@dataclass
class Findings:
    """One day's ICANS findings as integer codes (enum positions in :mod:`icans.astct`)."""

    cognition: np.ndarray  # ICE 0-10 (>= 12 y) or CAPD 0-32 (< 12 y); -1 = not assessable
    consciousness: np.ndarray
    seizure: np.ndarray
    motor: np.ndarray
    edema: np.ndarray

    def grade(self, child: np.ndarray) -> np.ndarray:
        """ASTCT ICANS grade 0-4 derived from the findings."""
        cog = np.empty_like(self.cognition)
        cog[child] = capd_domain_grade(self.cognition[child])
        cog[~child] = ice_domain_grade(self.cognition[~child])
        return icans_grade_codes(cog, self.consciousness, self.seizure, self.motor, self.edema)


def draw_findings(
    rng: np.random.Generator, level: np.ndarray, child: np.ndarray, tables: FindingTables
) -> Findings:
    """Draw each finding independently given the latent level (unarousable -> no ICE/CAPD)."""
    consc = draw_categorical(
        rng,
        np.where(child[:, None], tables.consciousness[1][level], tables.consciousness[0][level]),
    )
    cognition = np.empty(len(level), dtype=np.int64)
    for inst, low, size in ((0, ICE_BAND_LOW, ICE_BAND_SIZE), (1, CAPD_BAND_LOW, CAPD_BAND_SIZE)):
        rows = child if inst == 1 else ~child
        band = draw_categorical(rng, tables.cognition_band[inst][level[rows]])
        cognition[rows] = low[band] + (rng.random(len(band)) * size[band]).astype(np.int64)
    cognition[consc == 4] = -1
    return Findings(
        cognition=cognition,
        consciousness=consc,
        seizure=draw_categorical(rng, tables.seizure[level]),
        motor=draw_categorical(rng, tables.motor[level]),
        edema=draw_categorical(rng, tables.edema[level]),
    )


def icans_step(
    rng: np.random.Generator,
    level: np.ndarray,
    steroids: np.ndarray,
    day: int,
    drive: np.ndarray,
    fam: np.ndarray,
    k: np.ndarray,
    child: np.ndarray,
    findings: FindingTables,
    kernels: KernelTables,
    start_grade: np.ndarray | int,
    params: GeneratorParameters,
) -> tuple[np.ndarray, Findings, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Advance the ICANS chain by one day: new level, findings, derived grade, the day's
    treatment decision (:func:`data.synthetic.treatment.decision_probability`), the steroid state
    at the end of the day and whether the day makes the ICANS steroid-refractory."""
    kernel = icans_kernel(drive, day, fam, k, ON_STEROIDS[steroids], kernels, params)
    level = draw_categorical(rng, kernel[np.arange(len(level)), level])
    drawn = draw_findings(rng, level, child, findings)
    grade = drawn.grade(child)
    early = per_product(params.treatment.early_second_line)[fam]
    p = decision_probability(steroids, grade, start_grade, early, params)
    decided = rng.random(len(level)) < p
    refractory = refractory_today(steroids, grade, decided)
    return (
        level,
        drawn,
        grade,
        decided,
        next_steroid_state(steroids, grade, start_grade, decided),
        refractory,
    )


@dataclass
class Course:
    """Daily arrays of shape (patients, horizon + 1) and the expansion measurements."""

    crs_state: np.ndarray
    crs_grade: np.ndarray
    temperature_max_c: np.ndarray
    hypotension: np.ndarray
    hypoxia: np.ndarray
    tocilizumab: np.ndarray  # doses given each day
    anakinra: np.ndarray  # doses given each day (second-line therapy for ICANS)
    intrathecal: np.ndarray  # intrathecal doses given each day (second-line therapy)
    icans_level: np.ndarray
    cognition: np.ndarray
    consciousness: np.ndarray
    seizure: np.ndarray
    motor: np.ndarray
    edema: np.ndarray
    icans_grade: np.ndarray  # -1 after death
    steroid_state: np.ndarray
    steroid_mg: np.ndarray
    death_day: np.ndarray  # -1 if alive at the horizon
    death_cause: np.ndarray  # index into icans.contract.DEATH_CAUSES, -1 if alive
    cd4_latent: np.ndarray
    cd8_latent: np.ndarray
    cd4_measured: np.ndarray  # (patients, sampling days), NaN = missed
    cd8_measured: np.ndarray
    sampling_days: tuple[int, ...]
    drive: np.ndarray
    child: np.ndarray
    timing: np.ndarray  # timing class index per patient
    charting: Charting  # what the centre charts
    labs: dict[str, np.ndarray]  # daily lab series (patients, days), NaN = not charted

    @property
    def alive(self) -> np.ndarray:
        """(patients, days): observed that day (a patient who dies on day d is seen last on
        day d - 1)."""
        days = np.arange(self.icans_grade.shape[1])
        return (self.death_day[:, None] < 0) | (days[None, :] < self.death_day[:, None])


def simulate_course(
    rng: np.random.Generator,
    base: Baseline,
    charting: Charting,
    grid: LatentGrid,
    findings: FindingTables,
    kernels: KernelTables,
    params: GeneratorParameters,
) -> Course:
    """Draw the daily course of every patient in ``base`` (each under its steroid rule), with
    the series its centre charts (``charting``)."""
    start_grade = base.steroid_start_grade
    t = base.table
    n, horizon = len(t), params.horizon_days
    days = np.arange(horizon + 1)
    fam = base.product  # the dynamics are indexed by product (kinetics.per_product)
    u = grid.class_u()[base.latent_class]
    r = grid.class_r()[base.latent_class]
    k = grid.class_k()[base.latent_class]
    c = grid.class_c()[base.latent_class]
    shift = grid.shifts[k]
    dose = t["dose_cells_per_kg"].to_numpy(float)
    child = is_child(t["age_years"].to_numpy(float))

    log_peak = expansion_log_peak(fam, dose, base.burden, u, params)
    dev = expansion_deviation(fam, log_peak, params)
    e = params.expansion
    cd4 = np.exp(log_peak)[:, None] * expansion_shape(fam, shift, days, params)
    ratio = ratio_mean(fam, c, params) + e.cd8_to_cd4_log_ratio_sd * rng.normal(size=n)
    cd8 = cd4 * np.exp(ratio)[:, None]
    sd = np.array(e.sampling_days)
    missed = (rng.random((n, len(sd))) < e.missed_sample_probability) & (sd > 0)
    missed |= ~charting.car_t[:, None]  # counted only where the centre counts CAR-T cells
    noise4, noise8 = (rng.normal(0, e.measurement_log_sd, (n, len(sd))) for _ in range(2))
    cd4_m = np.where(missed, np.nan, cd4[:, sd] * np.exp(noise4))
    cd8_m = np.where(missed, np.nan, cd8[:, sd] * np.exp(noise8))

    drive = icans_drive(
        fam,
        base.burden,
        t["neuro_comorbidity"].to_numpy(float),
        t["cns_involvement"].to_numpy(float),
        base.disease_group,
        (t["lymphodepletion"] == "flu_cy").to_numpy(float),
        t["age_years"].to_numpy(float),
        dev,
        r,
        c,
        base.prophylaxis.astype(float),
        params,
    )
    total_cells = dose * t["weight_kg"].to_numpy(float)
    intensity = crs_intensity(
        r, dev, params, crs_patient_shift(fam, total_cells, base.prophylaxis, params)
    )
    shape = (n, horizon + 1)
    crs = np.full(shape, CRS_PRE, dtype=np.int64)
    toci = np.zeros(shape, dtype=np.int64)
    level = np.zeros(shape, dtype=np.int64)
    codes = {
        key: np.zeros(shape, dtype=np.int64)
        for key in ("consciousness", "seizure", "motor", "edema", "grade", "steroids")
    }
    cognition = np.where(child, 0, 10)[:, None] * np.ones(shape, dtype=np.int64)
    mg = np.zeros(shape)
    mg[:, 0] = steroid_mg(
        codes["steroids"][:, 0], codes["grade"][:, 0], 0, base.prophylaxis, params
    )
    death_day = np.full(n, -1)
    death_cause = np.full(n, -1)
    fever_run = np.zeros(n, dtype=np.int64)  # consecutive days of CRS grade 1 up to today
    toci_grade_1 = per_product(params.treatment.tocilizumab_grade_1_probability)[fam]
    toci_use = per_product(params.treatment.tocilizumab_use)[fam]
    second_line_share = params.treatment.second_line_on_refractory
    escalation = np.full(n, -1)  # day second-line therapy was first given, -1 if never
    for day in days[1:]:
        _draw_deaths(
            rng,
            day,
            codes["grade"][:, day - 1],
            codes["edema"][:, day - 1],
            crs_grade_of_state(crs[:, day - 1]),
            codes["steroids"][:, day - 1],
            fam,
            death_day,
            death_cause,
            kernels,
            params,
        )
        gone = death_day >= 0
        given = toci[:, :day].sum(axis=1)
        probs = crs_transition_probs(
            crs[:, day - 1], int(day), fam, k, intensity, given > 0, kernels, params
        )
        crs[:, day] = np.where(gone, crs[:, day - 1], draw_categorical(rng, probs))
        grade_today = crs_grade_of_state(crs[:, day])
        fever_run = np.where(grade_today == 1, fever_run + 1, 0)
        p_toci = toci_use * tocilizumab_probability(
            grade_today, fever_run, given, toci_grade_1, params
        )
        toci[:, day] = ~gone & (rng.random(n) < p_toci)
        before = codes["steroids"][:, day - 1]
        lv, f, g, decided, st, refractory = icans_step(
            rng,
            np.where(gone, 0, level[:, day - 1]),
            codes["steroids"][:, day - 1],
            int(day),
            drive,
            fam,
            k,
            child,
            findings,
            kernels,
            start_grade,
            params,
        )
        level[:, day], codes["grade"][:, day], codes["steroids"][:, day] = lv, g, st
        second_line = refractory & (
            (np.isin(before, EARLY) & decided) | (rng.random(n) < second_line_share)
        )
        escalation = np.where(second_line & ~gone & (escalation < 0), day, escalation)
        cognition[:, day] = f.cognition
        for key in ("consciousness", "seizure", "motor", "edema"):
            codes[key][:, day] = getattr(f, key)
        mg[:, day] = np.where(gone, 0.0, steroid_mg(st, g, int(day), base.prophylaxis, params))
        for arr in (cognition, *codes.values(), level):
            arr[gone, day] = NOT_OBSERVED
        codes["grade"][gone, day] = -1
        codes["steroids"][gone, day] = codes["steroids"][gone, day - 1]
    crs_grade = crs_grade_of_state(crs)
    toci_masked = np.cumsum(toci, axis=1) - toci > 0  # tocilizumab given on an earlier day
    on_steroids = mg >= TREATMENT_MG  # a treatment dose that day
    crs_fever, hypotension, hypoxia = _draw_crs_support(
        rng, crs_grade, toci_masked, on_steroids, params
    )
    alive = (death_day[:, None] < 0) | (days[None, :] < death_day[:, None])
    t_params = params.treatment
    intrathecal = rng.random(n) < per_product(t_params.intrathecal_share)[fam]
    anakinra, it_doses = second_line_doses(escalation, intrathecal, codes["grade"], alive, params)
    group = base.disease_group
    static = {
        lab: static_log_level(
            lab,
            r,
            t[lab].to_numpy(float) if lab in t.columns else None,
            base.burden,
            child,
            group,
            params,
        )
        for lab in LABS
    }
    labs = draw_routine(
        rng,
        charting,
        SeenCourse(crs_grade, toci, mg),
        static,
        r,
        level,
        cd4,
        alive,
        params,
    )
    return Course(
        crs_state=crs,
        crs_grade=crs_grade,
        temperature_max_c=draw_temperature(rng, crs_fever, on_steroids, params),
        hypotension=hypotension,
        hypoxia=hypoxia,
        tocilizumab=toci,
        anakinra=anakinra,
        intrathecal=it_doses,
        icans_level=level,
        cognition=cognition,
        consciousness=codes["consciousness"],
        seizure=codes["seizure"],
        motor=codes["motor"],
        edema=codes["edema"],
        icans_grade=codes["grade"],
        steroid_state=codes["steroids"],
        steroid_mg=mg,
        death_day=death_day,
        death_cause=death_cause,
        cd4_latent=cd4,
        cd8_latent=cd8,
        cd4_measured=cd4_m,
        cd8_measured=cd8_m,
        sampling_days=tuple(e.sampling_days),
        drive=drive,
        child=child,
        timing=k,
        charting=charting,
        labs=labs,
    )


def _draw_deaths(
    rng, day, grade, edema, crs_grade, steroids, fam, death_day, death_cause, kernels, params
) -> None:
    """Deaths at the start of ``day`` (nothing is observed on it), from what was seen the day
    before: from ICANS (grade 4, diffuse oedema), else from another cause at the product's
    daily hazard, raised after high-dose corticosteroids
    (:func:`data.synthetic.treatment.death_probability`); the cause is CRS only after a day of
    CRS grade >= 3 (otherwise infection), or progression, in the parameters' shares."""
    d = params.death
    n = len(grade)
    alive = death_day < 0
    p_icans = 1 - (1 - d.icans_death_per_grade_4_day * (grade == 4)) * (
        1 - d.icans_death_per_diffuse_edema_day * (edema == DIFFUSE_EDEMA)
    )
    icans = alive & (rng.random(n) < p_icans)
    p_other = death_probability(kernels.death_hazard[fam, day], steroids, params)
    other = alive & ~icans & (rng.random(n) < p_other)
    causes = list(d.cause_share)
    share = np.array(list(d.cause_share.values()))
    drawn = np.asarray(causes)[rng.choice(len(causes), size=n, p=share / share.sum())]
    drawn = np.where((drawn == "crs") & (crs_grade < 3), "infection", drawn)
    death_day[icans | other] = day
    death_cause[icans] = DEATH_CAUSES.index("icans")
    death_cause[other] = [DEATH_CAUSES.index(x) for x in drawn[other]]


def _draw_crs_support(
    rng: np.random.Generator,
    grade: np.ndarray,
    toci_masked: np.ndarray,
    on_steroids: np.ndarray,
    params: GeneratorParameters,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CRS fever (bool), hypotension and hypoxia codes whose ASTCT CRS grade equals ``grade``.

    The grade's level is carried by hypotension, hypoxia or both (ASSUMPTION: 45/25/30%); the
    other organ sits at a random lower level. After tocilizumab (``toci_masked``) or on a day of
    treatment-dose corticosteroids a patient at grade >= 2 is mostly afebrile, and ASTCT grades
    by organ support alone (grade 1 is fever, so it stays febrile). Re-grading with
    :func:`icans.astct.crs_grade_codes` must give back the chain's grade.
    """
    t = params.treatment
    draw = rng.random(grade.shape)
    afebrile = (grade >= 2) & (
        (toci_masked & (draw < t.fever_masked_probability))
        | (on_steroids & (draw < t.steroid_fever_masked_probability))
    )
    masked = toci_masked | on_steroids
    fever = (grade >= 1) & ~afebrile
    level = np.maximum(grade - 1, 0)  # organ code carrying grade g (g >= 2) is g - 1
    driver = draw_categorical(rng, np.broadcast_to([0.45, 0.25, 0.30], (*grade.shape, 3)))
    lower = (rng.random(grade.shape) * level).astype(np.int64)
    hypotension = np.where(driver == 1, lower, level)
    hypoxia = np.where(driver == 0, lower, level)
    derived = crs_grade_codes(fever, hypotension, hypoxia, fever_masked=masked)
    if not np.array_equal(derived, grade):
        raise AssertionError("CRS organ support does not re-grade to the chain's grade")
    return fever, hypotension, hypoxia


def continue_icans(
    rng: np.random.Generator,
    level: np.ndarray,
    steroids: np.ndarray,
    from_day: int,
    drive: np.ndarray,
    fam: np.ndarray,
    k: np.ndarray,
    child: np.ndarray,
    findings: FindingTables,
    kernels: KernelTables,
    start_grade: np.ndarray | int,
    params: GeneratorParameters,
) -> np.ndarray:
    """Monte-Carlo continuation: the day the target event happens after ``from_day`` (NaN:
    none by day 28).

    Starts from latent ``level`` and steroid state at the end of ``from_day`` and draws the rest
    of the course with :func:`icans_step`, with deaths from other causes at the start of a day
    (after which nothing happens). Used to check the exact true risk, of every horizon.
    """
    n = len(level)
    event_day = np.full(n, np.nan)
    dead = np.zeros(n, dtype=bool)
    for day in range(from_day + 1, params.horizon_days + 1):
        dead |= rng.random(n) < death_probability(kernels.death_hazard[fam, day], steroids, params)
        level, _, grade, _, steroids, refractory = icans_step(
            rng,
            level,
            steroids,
            day,
            drive,
            fam,
            k,
            child,
            findings,
            kernels,
            start_grade,
            params,
        )
        first = np.isnan(event_day) & ~dead & ((grade >= 3) | refractory)
        event_day[first] = day
    return event_day


__all__ = ["Course", "continue_icans", "draw_findings", "icans_step", "simulate_course"]
