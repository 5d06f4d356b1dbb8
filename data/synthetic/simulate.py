"""Draw each patient's daily course from day 0 to the horizon (day 28).

Every probability comes from :mod:`data.synthetic.process`; this module only draws from them.
ICANS grades are never drawn: the findings are drawn and the grade is derived from them with
the ASTCT rules of :mod:`icans.astct`. CRS organ support is drawn consistent with the CRS chain's
grade and re-graded with the same library, which the generator checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synthetic.baseline import Baseline
from data.synthetic.parameters import GeneratorParameters
from data.synthetic.process import (
    CRS_PRE,
    DEX_DAY2,
    DEX_NONE,
    N_LEVELS,
    FindingTables,
    LatentGrid,
    crs_grade_of_state,
    crs_intensity,
    crs_transition_probs,
    expansion_deviation,
    expansion_log_peak,
    expansion_shape,
    icans_drive,
    icans_kernel,
    is_child,
    next_dex_state,
    per_family,
)
from icans.astct import capd_domain_grade, crs_grade_codes, icans_grade_codes, ice_domain_grade

ICE_BAND_LOW, ICE_BAND_SIZE = np.array([10, 7, 3, 0]), np.array([1, 3, 4, 3])
CAPD_BAND_LOW, CAPD_BAND_SIZE = np.array([0, 1, 9]), np.array([1, 8, 24])
NOT_OBSERVED = -2  # findings code on days after death


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
    dex: np.ndarray,
    day: int,
    drive: np.ndarray,
    fam: np.ndarray,
    child: np.ndarray,
    tables: FindingTables,
    params: GeneratorParameters,
) -> tuple[np.ndarray, Findings, np.ndarray, np.ndarray]:
    """Advance the ICANS chain by one day: new level, findings, derived grade, dex state."""
    kernel = icans_kernel(drive, day, fam, dex != DEX_NONE, params)
    level = draw_categorical(rng, kernel[np.arange(len(level)), level])
    findings = draw_findings(rng, level, child, tables)
    grade = findings.grade(child)
    dex = next_dex_state(dex, grade, params.icans.dexamethasone_start_grade)
    return level, findings, grade, dex


@dataclass
class Course:
    """Daily arrays of shape (patients, horizon + 1) and the expansion measurements."""

    crs_state: np.ndarray
    crs_grade: np.ndarray
    temperature_c: np.ndarray
    hypotension: np.ndarray
    hypoxia: np.ndarray
    icans_level: np.ndarray
    cognition: np.ndarray
    consciousness: np.ndarray
    seizure: np.ndarray
    motor: np.ndarray
    edema: np.ndarray
    icans_grade: np.ndarray  # -1 after death
    dex_state: np.ndarray
    died_of_icans_day: np.ndarray  # -1 if alive at the horizon
    cd4_latent: np.ndarray
    cd8_latent: np.ndarray
    cd4_measured: np.ndarray  # (patients, sampling days), NaN = missed
    cd8_measured: np.ndarray
    sampling_days: tuple[int, ...]
    drive: np.ndarray
    child: np.ndarray


def simulate_course(
    rng: np.random.Generator,
    base: Baseline,
    grid: LatentGrid,
    tables: FindingTables,
    params: GeneratorParameters,
) -> Course:
    """Draw the daily course of every patient in ``base``."""
    t = base.table
    n, horizon = len(t), params.horizon_days
    days = np.arange(horizon + 1)
    fam = base.family
    u = grid.u_values[base.u_index]
    r = grid.r_values[base.r_index]
    dose = t["dose_cells_per_kg"].to_numpy(float)
    blasts = t["marrow_blasts_pct"].to_numpy(float)
    child = is_child(t["age_years"].to_numpy(float))

    log_peak = expansion_log_peak(fam, dose, blasts, u, params)
    dev = expansion_deviation(fam, log_peak, params)
    e = params.expansion
    cd4 = np.exp(log_peak)[:, None] * expansion_shape(fam, days, params)
    ratio = per_family(e.cd8_to_cd4_log_ratio_mean)[fam] + e.cd8_to_cd4_log_ratio_sd * rng.normal(
        size=n
    )
    cd8 = cd4 * np.exp(ratio)[:, None]
    sd = np.array(e.sampling_days)
    missed = (rng.random((n, len(sd))) < e.missed_sample_probability) & (sd > 0)
    noise4, noise8 = (rng.normal(0, e.measurement_log_sd, (n, len(sd))) for _ in range(2))
    cd4_m = np.where(missed, np.nan, cd4[:, sd] * np.exp(noise4))
    cd8_m = np.where(missed, np.nan, cd8[:, sd] * np.exp(noise8))

    # CRS chain and the organ support that goes with each grade.
    intensity = crs_intensity(r, dev, params)
    crs = np.zeros((n, horizon + 1), dtype=np.int64)
    crs[:, 0] = CRS_PRE
    for day in days[1:]:
        probs = crs_transition_probs(crs[:, day - 1], int(day), fam, intensity, params)
        crs[:, day] = draw_categorical(rng, probs)
    crs_grade = crs_grade_of_state(crs)
    temperature, hypotension, hypoxia = _draw_crs_support(rng, crs_grade)

    # ICANS chain, findings, derived grades, dexamethasone and death.
    drive = icans_drive(
        fam,
        blasts,
        t["neuro_comorbidity"].to_numpy(float),
        t["cns_involvement"].to_numpy(float),
        (t["lymphodepletion"] == "flu_cy").to_numpy(float),
        t["age_years"].to_numpy(float),
        dev,
        r,
        params,
    )
    shape = (n, horizon + 1)
    level = np.zeros(shape, dtype=np.int64)
    codes = {
        k: np.zeros(shape, dtype=np.int64)
        for k in ("consciousness", "seizure", "motor", "edema", "grade", "dex")
    }
    cognition = np.where(child, 0, 10)[:, None] * np.ones(shape, dtype=np.int64)
    death_day = np.full(n, -1)
    for day in days[1:]:
        alive = death_day < 0
        lv, f, g, dx = icans_step(
            rng,
            level[:, day - 1],
            codes["dex"][:, day - 1],
            int(day),
            drive,
            fam,
            child,
            tables,
            params,
        )
        level[:, day], codes["grade"][:, day], codes["dex"][:, day] = lv, g, dx
        cognition[:, day] = f.cognition
        for k in ("consciousness", "seizure", "motor", "edema"):
            codes[k][:, day] = getattr(f, k)
        dies = alive & (g == 4) & (rng.random(n) < params.icans.death_probability_per_critical_day)
        death_day[dies] = day
        gone = ~alive
        for arr in (cognition, *codes.values()):
            arr[gone, day] = NOT_OBSERVED
        level[gone, day] = NOT_OBSERVED
        codes["grade"][gone, day] = -1
    return Course(
        crs_state=crs,
        crs_grade=crs_grade,
        temperature_c=temperature,
        hypotension=hypotension,
        hypoxia=hypoxia,
        icans_level=level,
        cognition=cognition,
        consciousness=codes["consciousness"],
        seizure=codes["seizure"],
        motor=codes["motor"],
        edema=codes["edema"],
        icans_grade=codes["grade"],
        dex_state=codes["dex"],
        died_of_icans_day=death_day,
        cd4_latent=cd4,
        cd8_latent=cd8,
        cd4_measured=cd4_m,
        cd8_measured=cd8_m,
        sampling_days=tuple(e.sampling_days),
        drive=drive,
        child=child,
    )


def _draw_crs_support(
    rng: np.random.Generator, grade: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temperature, hypotension and hypoxia codes whose ASTCT CRS grade equals ``grade``.

    The grade's level is carried by hypotension, hypoxia or both (ASSUMPTION: 45/25/30%); the
    other organ sits at a random lower level. Re-grading with :func:`icans.astct.crs_grade_codes`
    must give back the chain's grade.
    """
    fever = grade >= 1
    temperature = np.where(
        fever,
        np.minimum(38.0 + rng.exponential(0.8, grade.shape), 41.5),
        np.minimum(36.4 + rng.exponential(0.4, grade.shape), 37.9),
    ).round(1)
    level = np.maximum(grade - 1, 0)  # organ code carrying grade g (g >= 2) is g - 1
    driver = draw_categorical(rng, np.broadcast_to([0.45, 0.25, 0.30], (*grade.shape, 3)))
    lower = (rng.random(grade.shape) * level).astype(np.int64)
    hypotension = np.where(driver == 1, lower, level)
    hypoxia = np.where(driver == 0, lower, level)
    derived = crs_grade_codes(fever, hypotension, hypoxia)
    if not np.array_equal(derived, grade):
        raise AssertionError("CRS organ support does not re-grade to the chain's grade")
    return temperature, hypotension, hypoxia


def continue_icans(
    rng: np.random.Generator,
    level: np.ndarray,
    dex: np.ndarray,
    from_day: int,
    drive: np.ndarray,
    fam: np.ndarray,
    child: np.ndarray,
    tables: FindingTables,
    params: GeneratorParameters,
) -> np.ndarray:
    """Monte-Carlo continuation: does the target event happen after ``from_day``?

    Starts from latent ``level`` and dexamethasone state ``dex`` at the end of ``from_day`` and
    draws the rest of the course with :func:`icans_step`. Used to check the exact true risk.
    """
    event = np.zeros(len(level), dtype=bool)
    start = params.icans.dexamethasone_start_grade
    for day in range(from_day + 1, params.horizon_days + 1):
        judged = dex == DEX_DAY2  # today is 72 h after the first dose
        level, _, grade, dex = icans_step(rng, level, dex, day, drive, fam, child, tables, params)
        event |= (grade >= 3) | (judged & (grade >= start))
    return event


__all__ = ["N_LEVELS", "Course", "continue_icans", "draw_findings", "icans_step", "simulate_course"]
