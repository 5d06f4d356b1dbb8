"""The daily routine series a CAR-T ward charts: laboratory values, temperature and schedules.

Every laboratory value is log-normal around a mean made of parts the team either sees or that
belong to the hidden state of the process (:mod:`data.synthetic.process`)::

    log lab(d) = static(r)                                   patient level before infusion
               + (response + response_r * r) * log(1 + S(d))  the CRS the team has seen, lagged
               + severe_crs * [CRS grade(d) >= 3]             consumption, capillary leak
               + level_shift[ICANS level(d)]                   concurrent neuro-inflammation
               + expansion * log(1 + CAR-T(d) / reference)     IL-6 and lymphocytes only
               + treatment (tocilizumab before d, steroids on d) + lymphodepletion nadir(d)
               + noise,   then softly capped (CRP saturates)

with ``S(d) = lag * S(d - 1) + CRS grade(d)``, computed from the observed grades. The hidden
parts are the inflammation class ``r``, the latent ICANS level and the expansion classes
(``u``, ``k``), so in the true risk's forward filter each charted value is an *emission*: its
likelihood is evaluated for every (class, level) and multiplied into the posterior, exactly
(:func:`emission_likelihoods`). Which series are charted on which day depends only on the centre
(case mix: outpatient follow-up, IL-6, CAR-T counts) and on chance, never on the patient's
state, so a value not charted carries no information. A value above the contract's bound is
recorded at the bound and its likelihood is the normal tail (censoring), so it stays exact.

The effects' sizes and sources are in :class:`~data.synthetic.parameters.RoutineParameters`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from data.synthetic.baseline import lab_log_mean
from data.synthetic.parameters import CaseMix, GeneratorParameters
from icans.contract import FIELDS
from icans.daily_routine import DAILY_ROUTINE

# The daily laboratory series (contract column names), in the contract's order: the charted
# values of DAILY_ROUTINE except the temperature (drawn with the CRS) and the ICE/CAPD scores
# (findings of the ICANS chain).
LABS = tuple(
    f.table_column
    for f in DAILY_ROUTINE
    if f.value_key == "value" and f.table_column != "temperature_max_c"
)
# Labs whose mean depends on the hidden state through r and the latent ICANS level; the others
# depend on it through r and the expansion classes (u, k), never on the level.
LEVEL_LABS = tuple(lab for lab in LABS if lab not in ("il6_pg_per_ml", "lymphocytes_10e9_per_l"))
EXPANSION_LABS = ("il6_pg_per_ml", "lymphocytes_10e9_per_l")
# Left out of the routine input set: measured at some centres only (icans-facts-3).
NOT_ROUTINE = ("il6_pg_per_ml",)
# CRP saturates: a soft cap on the mean (log scale), ASSUMPTION (severe CRS 150-400 mg/L).
SOFT_CAP = {"crp_mg_per_l": 400.0}
TREATMENT_MG = 20.0  # a treatment dose of corticosteroid (icans.steroids), not prophylaxis
FEVER_C = 38.0


def _bound(lab: str) -> float:
    high = FIELDS[f"{lab}_by_day"].high
    assert high is not None  # every daily series has a range
    return float(high)


@dataclass(frozen=True)
class Charting:
    """What a patient's centre charts: per patient flags drawn from the case mix."""

    outpatient: np.ndarray  # daily labs only to day 7, then twice weekly
    il6: np.ndarray  # the centre measures IL-6
    car_t: np.ndarray  # the centre counts CAR-T cells in blood

    def lab_days(self, params: GeneratorParameters) -> np.ndarray:
        """(patients, days) bool: the days labs are drawn (before missed values)."""
        p = params.routine
        days = np.arange(params.horizon_days + 1)
        until = np.where(self.outpatient, p.outpatient_daily_until, p.inpatient_daily_until)
        return (days[None, :] <= until[:, None]) | np.isin(days, p.twice_weekly_days)[None, :]


def draw_charting(rng: np.random.Generator, n: int, case_mix: CaseMix) -> Charting:
    return Charting(
        outpatient=rng.random(n) < case_mix.outpatient_share,
        il6=rng.random(n) < case_mix.il6_share,
        car_t=rng.random(n) < case_mix.car_t_count_share,
    )


def crs_load(crs_grade: np.ndarray, lag: float) -> np.ndarray:
    """``S(d) = lag * S(d - 1) + grade(d)`` along the last axis (days), from S(-1) = 0."""
    grade = np.asarray(crs_grade, dtype=float)
    out = np.empty_like(grade)
    carry = np.zeros(grade.shape[:-1])
    for d in range(grade.shape[-1]):
        carry = lag * carry + grade[..., d]
        out[..., d] = carry
    return out


def static_log_level(
    lab: str,
    r: np.ndarray,
    baseline_value: np.ndarray | None,
    burden: np.ndarray,
    child: np.ndarray,
    group: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """The patient's level before any response. For a lab measured before lymphodepletion,
    ``carry * log(baseline value) + (1 - carry) * mean(r)``: most of a patient's own level
    persists (a patient who starts high stays high), so day after day the values say little
    more about ``r`` than the baseline did; a missing baseline value is replaced by the
    population's mean (``r`` = 0). Otherwise the median plus ``r``'s loading."""
    p = params.routine
    if lab in p.median:
        return np.log(p.median[lab]) + p.r_loading[lab] * np.asarray(r, dtype=float)
    mean = lab_log_mean(lab, r, burden, child, group, params)
    typical = lab_log_mean(lab, np.zeros_like(r, dtype=float), burden, child, group, params)
    assert baseline_value is not None
    own = np.where(np.isnan(baseline_value), typical, np.log(baseline_value))
    carry = p.baseline_carry_over
    return carry * own + (1.0 - carry) * mean


class SeenCourse:
    """What the labs respond to that the team sees, per patient and day (patients, days): the
    CRS grades, tocilizumab given on an earlier day and a treatment dose of corticosteroid that
    day. Each lab's load and fixed shift are computed once and kept."""

    def __init__(self, crs_grade: np.ndarray, tocilizumab: np.ndarray, steroid_mg: np.ndarray):
        self.crs_grade = np.maximum(crs_grade, 0)
        self.tocilizumab_before = (np.cumsum(tocilizumab, axis=-1) - tocilizumab) > 0
        self.steroid_treatment = steroid_mg >= TREATMENT_MG
        self._load: dict[str, np.ndarray] = {}
        self._fixed: dict[str, np.ndarray] = {}

    def load(self, lab: str, params: GeneratorParameters) -> np.ndarray:
        """log(1 + S): the lab's smoothed CRS load."""
        if lab not in self._load:
            lag = params.routine.crs_lag.get(lab, 0.0)
            self._load[lab] = np.log1p(crs_load(self.crs_grade, lag))
        return self._load[lab]

    def fixed_shift(self, lab: str, params: GeneratorParameters) -> np.ndarray:
        """The part of the mean that depends on nothing hidden: severe CRS, treatment and the
        lymphodepletion nadir."""
        if lab not in self._fixed:
            p = params.routine
            days = np.arange(self.crs_grade.shape[-1], dtype=float)
            self._fixed[lab] = (
                p.severe_crs.get(lab, 0.0) * (self.crs_grade >= 3)
                + p.after_tocilizumab.get(lab, 0.0) * self.tocilizumab_before
                + p.on_steroids.get(lab, 0.0) * self.steroid_treatment
                + p.lymphodepletion_nadir.get(lab, 0.0) * (1.0 - np.exp(-days / 3.0))
            )
        return self._fixed[lab]


def expansion_index(cd4_cells_per_ul: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    """log(1 + CD4+ CAR-T cells / reference): 0 before the expansion, ~0.7 at a typical
    axi-cel peak."""
    return np.log1p(cd4_cells_per_ul / params.routine.expansion_reference_cells_per_ul)


def log_mean(
    lab: str,
    static: np.ndarray,
    r: np.ndarray,
    load: np.ndarray,
    fixed: np.ndarray,
    level: np.ndarray | None,
    expansion: np.ndarray | None,
    params: GeneratorParameters,
) -> np.ndarray:
    """Mean of log(lab); every argument broadcasts (the simulation passes one class per
    patient and day, the filter every class or level of one day)."""
    p = params.routine
    response = p.crs_response.get(lab, 0.0) + p.crs_response_r.get(lab, 0.0) * r
    mean = static + response * load + fixed
    if level is not None and lab in p.icans_level:
        mean = mean + np.asarray(p.icans_level[lab])[level]
    if expansion is not None and lab in p.expansion_loading:
        mean = mean + p.expansion_loading[lab] * expansion
    if lab in SOFT_CAP:  # soft minimum of the mean and the cap, smooth in the mean
        cap = np.log(SOFT_CAP[lab])
        mean = cap - np.logaddexp(0.0, cap - mean)
    return mean


def draw_value(
    rng: np.random.Generator, lab: str, mean: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """A value around ``exp(mean)``, recorded at the contract's bound when above it."""
    value = np.exp(mean + params.routine.log_sd[lab] * rng.standard_normal(mean.shape))
    return np.minimum(value, _bound(lab))


def log_likelihood(
    lab: str, value: np.ndarray, mean: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """log density of log(value) given the mean; the normal tail for a value at the bound;
    0 where not charted (NaN). ``value`` broadcasts against ``mean``."""
    sd = params.routine.log_sd[lab]
    x = np.log(value)
    z = (x - mean) / sd
    ll = -0.5 * z**2 - np.log(sd * np.sqrt(2.0 * np.pi))
    at_bound = value >= _bound(lab)
    if np.any(at_bound):
        ll = np.where(at_bound, log_ndtr(-z), ll)
    return np.where(np.isnan(x), 0.0, ll)


def draw_routine(
    rng: np.random.Generator,
    charting: Charting,
    seen: SeenCourse,
    static: dict[str, np.ndarray],
    r: np.ndarray,
    level: np.ndarray,
    cd4_latent: np.ndarray,
    alive: np.ndarray,
    params: GeneratorParameters,
) -> dict[str, np.ndarray]:
    """Every lab series, (patients, days), NaN where not charted (or after death)."""
    p = params.routine
    charted = charting.lab_days(params) & alive
    expansion = expansion_index(cd4_latent, params)
    out = {}
    for lab in LABS:
        mean = log_mean(
            lab,
            static[lab][:, None],
            r[:, None],
            seen.load(lab, params),
            seen.fixed_shift(lab, params),
            np.clip(level, 0, 4),
            expansion,
            params,
        )
        value = draw_value(rng, lab, mean, params)
        kept = charted & (rng.random(charted.shape) >= p.missed_probability[lab])
        if lab == "il6_pg_per_ml":
            kept &= charting.il6[:, None]
        out[lab] = np.where(kept, value, np.nan)
    return out


def draw_temperature(
    rng: np.random.Generator,
    crs_fever: np.ndarray,
    on_steroids: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """The day's maximum temperature (°C): febrile on a day of CRS fever and on days of fever
    from another cause (``other_fever_per_day``, independent of everything hidden), which a
    treatment dose of corticosteroids that day masks as it masks CRS fever
    (``steroid_fever_masked_probability``)."""
    masked = on_steroids & (
        rng.random(crs_fever.shape) < params.treatment.steroid_fever_masked_probability
    )
    other = (rng.random(crs_fever.shape) < params.routine.other_fever_per_day) & ~masked
    fever = crs_fever | other
    return np.where(
        fever,
        np.minimum(FEVER_C + rng.exponential(0.8, crs_fever.shape), 41.5),
        np.minimum(36.4 + rng.exponential(0.4, crs_fever.shape), 37.9),
    ).round(1)


def emission_likelihoods(
    values: dict[str, np.ndarray],
    day: int,
    labs: tuple[str, ...],
    static_r: dict[str, np.ndarray],
    r_values: np.ndarray,
    seen: SeenCourse,
    expansion_urk: np.ndarray,
    r_urk: np.ndarray,
    params: GeneratorParameters,
) -> tuple[np.ndarray, np.ndarray]:
    """Likelihood of the day's charted labs, split by what each depends on.

    Returns ``(by_r_level, by_urk)``: ``(patients, r classes, 5 levels)`` for the labs of
    :data:`LEVEL_LABS` and ``(patients, u*r*k classes)`` for :data:`EXPANSION_LABS`, each
    scaled to a maximum of 1 per patient (the filter renormalises). ``static_r`` holds each
    lab's static level per patient and r class; ``expansion_urk`` the expansion index per
    patient and (u, r, k) class on ``day``; ``r_urk`` the r value of each (u, r, k) class.
    """
    n = len(seen.crs_grade)
    levels = np.arange(5)
    by_rl = np.zeros((n, len(r_values), 5))
    by_urk = np.zeros((n, len(r_urk)))
    for lab in labs:
        value = values[lab][:, day]
        if np.isnan(value).all():
            continue
        load = seen.load(lab, params)[:, day]
        fixed = seen.fixed_shift(lab, params)[:, day]
        if lab in EXPANSION_LABS:
            static = static_r[lab][:, _r_position(r_urk, r_values)]
            mean = log_mean(
                lab,
                static,
                r_urk[None, :],
                load[:, None],
                fixed[:, None],
                None,
                expansion_urk,
                params,
            )
            by_urk += log_likelihood(lab, value[:, None], mean, params)
        else:
            mean = log_mean(
                lab,
                static_r[lab][:, :, None],
                r_values[None, :, None],
                load[:, None, None],
                fixed[:, None, None],
                levels[None, None, :],
                None,
                params,
            )
            by_rl += log_likelihood(lab, value[:, None, None], mean, params)
    by_rl = np.exp(by_rl - by_rl.max(axis=(1, 2), keepdims=True))
    by_urk = np.exp(by_urk - by_urk.max(axis=1, keepdims=True))
    return by_rl, by_urk


def _r_position(r_urk: np.ndarray, r_values: np.ndarray) -> np.ndarray:
    return np.searchsorted(r_values, r_urk)


__all__ = [
    "LABS",
    "Charting",
    "SeenCourse",
    "draw_charting",
    "draw_routine",
    "draw_temperature",
    "emission_likelihoods",
    "log_likelihood",
    "log_mean",
    "static_log_level",
]
