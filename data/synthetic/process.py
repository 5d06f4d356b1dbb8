"""The data-generating process: one function per mechanism, shared by simulation and true risk.

The cohort is a finite hidden-Markov process so that the true risk can be computed exactly:

* two hidden patient classes, CAR-T expansion propensity ``u`` (7 levels) and inflammation
  ``r`` (5 levels), each a discretised standard normal;
* CAR-T expansion: a gamma-variate CD4+ curve whose peak depends on product, dose, marrow
  blasts and ``u``; CD8+ = CD4+ x a patient ratio; both measured with log-normal noise;
* CRS: a daily Markov chain (pre-onset, grade 1-4, resolved) driven by ``u`` and ``r``;
* ICANS: a daily Markov chain on a latent severity 0-4 whose hazards depend on a *drive*
  (log-odds, rounded to ``drive_quantum``) built from the baseline fields, expansion and ``r``;
  each day the findings (ICE or CAPD, consciousness, seizure, motor, oedema) are drawn given
  the latent level and the ASTCT grade is derived from them (:mod:`icans.astct`);
* dexamethasone starts the first day the derived grade reaches 2; the response is judged
  72 h later.

Every function here is used by :mod:`data.synthetic.simulate` (to draw courses) and by
:mod:`data.synthetic.true_risk` (to compute probabilities), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from data.synthetic.parameters import FAMILIES, GeneratorParameters
from icans.astct import (
    CAPD_AGE_LIMIT_YEARS,
    CONSCIOUSNESS_GRADE,
    EDEMA_GRADE,
    MOTOR_GRADE,
    SEIZURE_GRADE,
    capd_domain_grade,
    ice_domain_grade,
)

N_LEVELS = 5  # ICANS latent severity 0 (none) .. 4 (critical)
# Dexamethasone states at the end of a day.
DEX_NONE, DEX_DAY0, DEX_DAY1, DEX_DAY2, DEX_RESPONDED = range(5)
N_DEX = 5
# CRS chain states.
CRS_PRE, CRS_RESOLVED = 0, 5
N_CRS = 6

# ICE bands (10 | 7-9 | 3-6 | 0-2) and CAPD bands (0 | 1-8 | 9-32) with their domain grades.
ICE_BAND_VALUES = ((10,), (7, 8, 9), (3, 4, 5, 6), (0, 1, 2))
CAPD_BAND_VALUES = ((0,), tuple(range(1, 9)), tuple(range(9, 33)))
# Every value of a band has the same ASTCT domain grade; take it from the grading library.
ICE_BAND_GRADE = ice_domain_grade(np.array([band[0] for band in ICE_BAND_VALUES]))
CAPD_BAND_GRADE = capd_domain_grade(np.array([band[0] for band in CAPD_BAND_VALUES]))


def per_family(values: dict[str, float]) -> np.ndarray:
    """A per-family parameter as an array indexed by family code."""
    return np.array([values[f] for f in FAMILIES], dtype=float)


@dataclass(frozen=True)
class LatentGrid:
    """Values and prior probabilities of the hidden classes (discretised standard normals)."""

    u_values: np.ndarray
    u_prior: np.ndarray
    r_values: np.ndarray
    r_prior: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.u_values) * len(self.r_values)

    def class_u(self) -> np.ndarray:
        """u value of each joint class (u-major order)."""
        return np.repeat(self.u_values, len(self.r_values))

    def class_r(self) -> np.ndarray:
        return np.tile(self.r_values, len(self.u_values))

    def class_log_prior(self) -> np.ndarray:
        return np.log(np.outer(self.u_prior, self.r_prior).ravel())


def latent_grid(params: GeneratorParameters) -> LatentGrid:
    """Equally spaced points over +/- ``class_span_sd``, each with its normal-bin probability."""

    def discretise(k: int) -> tuple[np.ndarray, np.ndarray]:
        values = np.linspace(-params.latent.class_span_sd, params.latent.class_span_sd, k)
        edges = np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2, [np.inf]])
        return values, np.diff(norm.cdf(edges))

    u, pu = discretise(params.latent.expansion_classes)
    r, pr = discretise(params.latent.inflammation_classes)
    return LatentGrid(u, pu, r, pr)


# --- CAR-T expansion -------------------------------------------------------------------------


def expansion_log_peak(
    fam: np.ndarray,
    dose: np.ndarray,
    blasts: np.ndarray,
    u: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """Natural log of the latent CD4+ CAR-T peak (cells/uL).

    ``log peak = log median(family) + dose_exponent * log(dose / 2e6)
    + blasts_effect * blasts/100 + sd * u``. ASSUMPTION (see parameters): dose and tumour
    burden raise expansion (Hay 2017; Gust 2017), CD28 products expand higher.
    """
    p = params.expansion
    return (
        np.log(per_family(p.cd4_peak_median_cells_per_ul))[fam]
        + p.dose_exponent * np.log(dose / 2e6)
        + p.blasts_effect_per_100pct * blasts / 100.0
        + p.log_sd_between_patients * u
    )


def expansion_deviation(
    fam: np.ndarray, log_peak: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """How far a patient's expansion sits above its family's typical peak (log scale)."""
    return log_peak - np.log(per_family(params.expansion.cd4_peak_median_cells_per_ul))[fam]


def expansion_shape(fam: np.ndarray, days: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    """Gamma-variate curve g(t) = (t/tp)^a exp(a(1 - t/tp)), 1 at the peak day, 0 at day 0.

    Returns an array of shape ``fam.shape + days.shape``.
    """
    tp = per_family(params.expansion.peak_day)[fam][..., None]
    a = per_family(params.expansion.shape)[fam][..., None]
    x = np.asarray(days, dtype=float) / tp
    with np.errstate(divide="ignore"):
        log_g = a * (np.log(x) + 1.0 - x)
    return np.where(x > 0, np.exp(log_g), 0.0)


# --- CRS -------------------------------------------------------------------------------------


def crs_intensity(
    r: np.ndarray, expansion_dev: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """Patient-level CRS intensity (log-odds units) from inflammation and expansion."""
    return params.crs.r_effect * r + params.crs.u_effect * expansion_dev


def crs_transition_probs(
    state: np.ndarray, day: int, fam: np.ndarray, intensity: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """P(CRS state on ``day`` | state on ``day - 1``), shape ``state.shape + (6,)``.

    States: 0 pre-onset, 1-4 ASTCT grade, 5 resolved. Onset only between day 1 and
    ``last_onset_day``; onset enters grade 1; each day a grade may rise by one, fall by one
    (grade 1 -> resolved) or stay. ASSUMPTION shapes tuned to product CRS incidence, severity
    and ~7-day duration (see parameters).
    """
    p = params.crs
    state = np.asarray(state)
    out = np.zeros((*np.broadcast_shapes(state.shape, intensity.shape), N_CRS))
    timing = -0.5 * ((day - per_family(p.onset_day)[fam]) / p.onset_width_days) ** 2
    onset = expit(per_family(p.onset_logit)[fam] + intensity + timing)
    if day < 1 or day > p.last_onset_day:
        onset = np.zeros_like(onset)
    after_peak = np.maximum(0.0, day - per_family(params.expansion.peak_day)[fam])
    grade = np.clip(state, 1, 4)
    esc = np.exp(
        per_family(p.escalate_logit)[fam]
        + intensity
        - p.escalate_grade_step * (grade - 1)
        - p.late_decline_per_day * after_peak
    )
    esc = np.where(grade == 4, 0.0, esc)
    imp = np.exp(p.improve_logit - 0.5 * intensity + p.late_decline_per_day * after_peak)
    total = 1.0 + esc + imp
    pre = state == CRS_PRE
    resolved = state == CRS_RESOLVED
    active = ~(pre | resolved)
    onset = np.broadcast_to(onset, out.shape[:-1])
    out[..., CRS_PRE] = np.where(pre, 1.0 - onset, 0.0)
    out[..., 1] = np.where(pre, onset, 0.0)
    out[..., CRS_RESOLVED] = np.where(resolved, 1.0, 0.0)
    for g in range(1, 5):
        here = active & (state == g)
        stay, up, down = 1.0 / total, esc / total, imp / total
        out[..., g] += np.where(here, stay, 0.0)
        if g < 4:
            out[..., g + 1] += np.where(here, up, 0.0)
        out[..., g - 1 if g > 1 else CRS_RESOLVED] += np.where(here, down, 0.0)
    return out


def crs_grade_of_state(state: np.ndarray) -> np.ndarray:
    """Observed ASTCT CRS grade of a chain state (pre-onset and resolved are grade 0)."""
    return np.where((state >= 1) & (state <= 4), state, 0)


# --- ICANS -----------------------------------------------------------------------------------


def icans_drive(
    fam, blasts, neuro, cns, flu_cy, age, expansion_dev, r, params: GeneratorParameters
) -> np.ndarray:
    """ICANS drive (log-odds), rounded to ``drive_quantum``.

    Sum of the product-family intercept and the effects of marrow blasts (Gust 2017), neuro
    comorbidity (Gust 2017), CNS involvement (weak), Cy/Flu lymphodepletion (Gust 2017), age
    (Gauthier, weak), CAR-T expansion above the family's typical peak (ZUMA-1, Santomasso 2018)
    and inflammation ``r`` (shared with CRS). Rounding makes the drive take finitely many values
    so the backward table in :mod:`data.synthetic.true_risk` is exact.
    """
    p = params.icans
    drive = (
        per_family(p.drive_intercept)[fam]
        + p.marrow_blasts_per_25pct * blasts / 25.0
        + p.neuro_comorbidity * neuro
        + p.cns_involvement * cns
        + p.flu_cy * flu_cy
        + p.age_per_10y * (age - 50.0) / 10.0
        + p.expansion_effect * expansion_dev
        + p.inflammation_effect * r
    )
    return quantise_drive(drive, params)


DRIVE_MIN, DRIVE_MAX = -14.0, 8.0


def drive_grid(params: GeneratorParameters) -> np.ndarray:
    q = params.icans.drive_quantum
    return np.round(np.arange(DRIVE_MIN, DRIVE_MAX + q / 2, q), 10)


def quantise_drive(drive: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    q = params.icans.drive_quantum
    return np.round(np.clip(drive, DRIVE_MIN, DRIVE_MAX) / q) * q


def drive_index(drive: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    return np.rint((drive - DRIVE_MIN) / params.icans.drive_quantum).astype(np.int64)


def icans_kernel(
    drive: np.ndarray, day: int, fam: np.ndarray, on_dex: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """P(latent level on ``day`` | level on ``day - 1``): shape ``drive.shape + (5, 5)``.

    From level 0 the onset hazard is ``expit(drive + offset + timing(day))`` with a Gaussian
    timing bump at the family's median onset day (new onset after day 14 is rare: 9-centre
    real-world cohort, Blood Adv 2024); onset enters level 1, or level 2-3 with a probability
    that grows with the drive. From levels 1-3 the patient may
    progress by one level, recover by one level or stay (multinomial logit); level 4 may only
    recover. Dexamethasone lowers progression and speeds recovery. ASSUMPTION shapes tuned to
    the incidence, severity and timing anchors in the parameters.
    """
    p = params.icans
    drive = np.asarray(drive, dtype=float)
    on_dex = np.broadcast_to(np.asarray(on_dex, dtype=bool), drive.shape)
    onset_day = per_family(p.onset_day)[fam]
    timing = -0.5 * ((day - onset_day) / p.onset_width_days) ** 2
    decline = p.late_decline_per_day * np.maximum(0.0, day - onset_day - 3.0)
    k = np.zeros((*drive.shape, N_LEVELS, N_LEVELS))
    onset = expit(drive + p.onset_offset + timing) if day >= 1 else np.zeros_like(drive)
    k[..., 0, 0] = 1.0 - onset
    higher = expit(drive + p.entry_severity_offset)
    k[..., 0, 1] = onset * (1.0 - higher)
    k[..., 0, 2] = onset * higher * (1.0 - p.entry_severe_share)
    k[..., 0, 3] = onset * higher * p.entry_severe_share
    dex = on_dex.astype(float)
    family_offset = per_family(p.progress_family_offset)[fam]
    for level in range(1, N_LEVELS):
        rec = np.exp(
            p.recover_offset[level - 1]
            - p.drive_weight_on_recovery * drive
            + decline
            + p.dexamethasone_recover_effect * dex
        )
        if level < N_LEVELS - 1:
            prog = np.exp(
                drive
                + p.progress_offset[level - 1]
                + family_offset
                - decline
                + p.dexamethasone_progress_effect * dex
            )
        else:
            prog = np.zeros_like(drive)
        total = 1.0 + prog + rec
        k[..., level, level] = 1.0 / total
        k[..., level, level - 1] = rec / total
        if level < N_LEVELS - 1:
            k[..., level, level + 1] = prog / total
    return k


def is_child(age_years: np.ndarray) -> np.ndarray:
    """Children under 12 are assessed with CAPD instead of ICE (ASTCT 2019; ASCO guideline)."""
    return np.asarray(age_years) < CAPD_AGE_LIMIT_YEARS


@dataclass(frozen=True)
class FindingTables:
    """Finding probabilities per latent level, as arrays (instrument 0 = ICE adult, 1 = CAPD)."""

    cognition_band: tuple[np.ndarray, np.ndarray]  # (levels, bands)
    cognition_band_sizes: tuple[np.ndarray, np.ndarray]
    cognition_band_grade: tuple[np.ndarray, np.ndarray]
    consciousness: tuple[np.ndarray, np.ndarray]  # (levels, 5)
    seizure: np.ndarray
    motor: np.ndarray
    edema: np.ndarray

    def grade_cdf(self, instrument: int) -> np.ndarray:
        """P(derived ICANS grade <= g | level), shape (levels, 5) for g = 0..4.

        The derived grade is the max of independent domain grades, except that an unarousable
        patient (consciousness grade 4) cannot be assessed; so for g <= 3 the CDF is the product
        of each domain's CDF, and for g = 4 it is 1.
        """
        cdf = np.ones((N_LEVELS, 5))
        for g in range(4):
            cdf[:, g] = (
                _domain_cdf(self.consciousness[instrument], CONSCIOUSNESS_GRADE, g)
                * _domain_cdf(
                    self.cognition_band[instrument], self.cognition_band_grade[instrument], g
                )
                * _domain_cdf(self.seizure, SEIZURE_GRADE, g)
                * _domain_cdf(self.motor, MOTOR_GRADE, g)
                * _domain_cdf(self.edema, EDEMA_GRADE, g)
            )
        return cdf


def _domain_cdf(probs: np.ndarray, grades: np.ndarray, g: int) -> np.ndarray:
    return probs[:, grades <= g].sum(axis=1)


def finding_tables(params: GeneratorParameters) -> FindingTables:
    f = params.findings
    return FindingTables(
        cognition_band=(np.array(f.ice_band, float), np.array(f.capd_band, float)),
        cognition_band_sizes=(
            np.array([len(b) for b in ICE_BAND_VALUES]),
            np.array([len(b) for b in CAPD_BAND_VALUES]),
        ),
        cognition_band_grade=(ICE_BAND_GRADE, CAPD_BAND_GRADE),
        consciousness=(
            np.array(f.consciousness_adult, float),
            np.array(f.consciousness_child, float),
        ),
        seizure=np.array(f.seizure, float),
        motor=np.array(f.motor, float),
        edema=np.array(f.cerebral_edema, float),
    )


def ice_band_of(score: np.ndarray) -> np.ndarray:
    """Band index of an ICE score (10 -> 0, 7-9 -> 1, 3-6 -> 2, 0-2 -> 3)."""
    return np.select([score >= 10, score >= 7, score >= 3], [0, 1, 2], 3)


def capd_band_of(score: np.ndarray) -> np.ndarray:
    """Band index of a CAPD score (0 -> 0, 1-8 -> 1, 9-32 -> 2)."""
    return np.select([score <= 0, score <= 8], [0, 1], 2)


def findings_likelihood(
    tables: FindingTables,
    child: np.ndarray,
    cognition: np.ndarray,
    consciousness: np.ndarray,
    seizure: np.ndarray,
    motor: np.ndarray,
    edema: np.ndarray,
) -> np.ndarray:
    """P(observed findings of one day | latent level), shape ``child.shape + (5,)``.

    ``cognition`` is the ICE score (adults) or CAPD score (children), -1 when not assessable
    because the patient is unarousable (then it carries no further information).
    """
    inst = child.astype(int)
    out = np.empty((*child.shape, N_LEVELS))
    for i in (0, 1):
        rows = inst == i
        if not rows.any():
            continue
        band = (ice_band_of if i == 0 else capd_band_of)(cognition[rows])
        cog = tables.cognition_band[i][:, band] / tables.cognition_band_sizes[i][band]
        cog = np.where(cognition[rows] < 0, 1.0, cog)
        out[rows] = (
            cog.T
            * tables.consciousness[i][:, consciousness[rows]].T
            * tables.seizure[:, seizure[rows]].T
            * tables.motor[:, motor[rows]].T
            * tables.edema[:, edema[rows]].T
        )
    return out


def next_dex_state(dex: np.ndarray, grade: np.ndarray, start_grade: int) -> np.ndarray:
    """Dexamethasone state at the end of a day given the state before and today's grade."""
    return np.select(
        [dex == DEX_NONE, dex == DEX_DAY0, dex == DEX_DAY1, dex == DEX_DAY2],
        [np.where(grade >= start_grade, DEX_DAY0, DEX_NONE), DEX_DAY1, DEX_DAY2, DEX_RESPONDED],
        DEX_RESPONDED,
    )
