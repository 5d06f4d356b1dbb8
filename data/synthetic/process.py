"""The data-generating process: one function per mechanism, shared by simulation and true risk.

The cohort is a finite hidden-Markov process so that the true risk can be computed exactly:

* hidden patient classes (:mod:`data.synthetic.kinetics`): expansion magnitude ``u``,
  inflammation ``r``, expansion timing ``k`` and composition ``c``;
* CRS: a daily Markov chain (pre-onset, grade 1-4, resolved) driven by ``u`` and ``r``, sped up
  by tocilizumab (:mod:`data.synthetic.treatment`);
* ICANS: a daily Markov chain on a latent severity 0-4 whose hazards depend on a *drive*
  (log-odds, rounded to ``drive_quantum``) built from the baseline fields, expansion,
  composition and ``r``, with onset timed by the patient's expansion; each day the findings
  (ICE or CAPD, consciousness, seizure, motor, oedema) are drawn given the latent level and the
  ASTCT grade is derived from them (:mod:`icans.astct`); corticosteroids slow progression and
  speed recovery;
* deaths from other causes: a daily hazard per product, raised after high-dose steroids,
  independent of the hidden classes (so surviving to a day says nothing about them).

Every parameter is per product: each product takes its family's value unless the parameter
names the product (:func:`data.synthetic.kinetics.per_product`).

The daily hazards are written as a patient-and-class factor (``exp(drive)``, ``exp(intensity)``)
times a factor of product, timing class and day (:class:`KernelTables`), so the simulation, the
backward table and the compiled forward filter evaluate the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from data.synthetic.kinetics import per_product
from data.synthetic.parameters import PRODUCT_NAMES, GeneratorParameters, Product
from icans.astct import (
    CAPD_AGE_LIMIT_YEARS,
    CONSCIOUSNESS_GRADE,
    EDEMA_GRADE,
    MOTOR_GRADE,
    SEIZURE_GRADE,
    capd_domain_grade,
    ice_domain_grade,
)
from icans.contract import DISEASE_GROUPS

N_LEVELS = 5  # ICANS latent severity 0 (none) .. 4 (critical)
DISEASE_GROUP_NAMES = tuple(sorted(set(DISEASE_GROUPS.values())))  # coded by position
# CRS chain states.
CRS_PRE, CRS_RESOLVED = 0, 5
N_CRS = 6

# ICE bands (10 | 7-9 | 3-6 | 0-2) and CAPD bands (0 | 1-8 | 9-32) with their domain grades.
ICE_BAND_VALUES = ((10,), (7, 8, 9), (3, 4, 5, 6), (0, 1, 2))
CAPD_BAND_VALUES = ((0,), tuple(range(1, 9)), tuple(range(9, 33)))
# Every value of a band has the same ASTCT domain grade; take it from the grading library.
ICE_BAND_GRADE = ice_domain_grade(np.array([band[0] for band in ICE_BAND_VALUES]))
CAPD_BAND_GRADE = capd_domain_grade(np.array([band[0] for band in CAPD_BAND_VALUES]))


@dataclass(frozen=True)
class KernelTables:
    """The product-, timing-class- and day-dependent factors of the daily hazards.

    Indexed ``[product, timing class, day]`` (days 0..horizon), then level or grade, then
    on-treatment (0/1) where it matters.
    """

    icans_timing: np.ndarray  # (F, K, T) log-odds added to the onset hazard; -inf on day 0
    icans_progress: np.ndarray  # (F, K, T, 5, 2) factor of exp(drive); 0 from level 4
    icans_recover: np.ndarray  # (F, K, T, 5, 2) factor of exp(-w * drive); 0 from level 0
    crs_timing: np.ndarray  # (F, T) log-odds added to CRS onset; -inf when no onset allowed
    crs_escalate: np.ndarray  # (F, K, T, 5) factor of exp(intensity), by grade; 0 at grade 4
    crs_improve: np.ndarray  # (F, K, T, 2) factor of exp(-intensity / 2), by tocilizumab
    death_hazard: np.ndarray  # (F, T) daily probability of death from another cause


def kernel_tables(params: GeneratorParameters, shifts: np.ndarray) -> KernelTables:
    """Every product/timing/day factor, for the timing shifts ``shifts`` (days)."""
    ic, crs, ex = params.icans, params.crs, params.expansion
    days = np.arange(params.horizon_days + 1, dtype=float)
    f_ = np.arange(len(PRODUCT_NAMES))[:, None, None]
    shift = np.asarray(shifts, dtype=float)[None, :, None]
    t = days[None, None, :]
    onset_day = per_product(ic.onset_day)[f_] + shift
    timing = -0.5 * ((t - onset_day) / ic.onset_width_days) ** 2
    icans_timing = np.where(t >= 1, timing, -np.inf)
    decline = ic.late_decline_per_day * np.maximum(0.0, t - onset_day - 3.0)
    on = np.array([0.0, 1.0])
    progress = np.zeros((*icans_timing.shape, N_LEVELS, 2))
    recover = np.zeros_like(progress)
    fam_progress = per_product(ic.progress_family_offset)[f_]
    fam_recover = per_product(ic.recover_family_offset)[f_]
    for level in range(1, N_LEVELS):
        if level < N_LEVELS - 1:
            progress[..., level, :] = np.exp(
                (ic.progress_offset[level - 1] + fam_progress - decline)[..., None]
                + ic.steroid_progress_effect * on
            )
        recover[..., level, :] = np.exp(
            (ic.recover_offset[level - 1] + fam_recover + decline)[..., None]
            + ic.steroid_recover_effect[level - 1] * on
        )
    crs_t = days[None, :]
    crs_onset = -0.5 * ((crs_t - per_product(crs.onset_day)[:, None]) / crs.onset_width_days) ** 2
    crs_timing = np.where((crs_t >= 1) & (crs_t <= crs.last_onset_day), crs_onset, -np.inf)
    after_peak = np.maximum(0.0, t - (per_product(ex.peak_day)[f_] + shift))
    grade = np.arange(N_LEVELS)
    escalate = np.exp(
        per_product(crs.escalate_logit)[f_][..., None]
        - crs.escalate_grade_step * (grade - 1)
        - crs.late_decline_per_day * after_peak[..., None]
    )
    escalate[..., 0] = 0.0
    escalate[..., 4] = 0.0
    improve = np.exp(
        (per_product(crs.improve_logit)[f_] + crs.late_decline_per_day * after_peak)[..., None]
        + params.treatment.tocilizumab_improve_effect * on
    )
    nrm = per_product(params.death.nrm_28_day)
    daily = 1.0 - (1.0 - nrm) ** (1.0 / params.horizon_days)
    death = np.where(days[None, :] >= 1, daily[:, None], 0.0)
    return KernelTables(
        icans_timing,
        progress,
        recover,
        crs_timing,
        escalate,
        improve,
        death,
    )


# --- CRS -------------------------------------------------------------------------------------


def crs_intensity(
    r: np.ndarray,
    expansion_dev: np.ndarray,
    params: GeneratorParameters,
    patient_shift: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Patient-level CRS intensity (log-odds units) from inflammation and expansion, plus what
    is known of the patient at infusion (:func:`crs_patient_shift`)."""
    return params.crs.r_effect * r + params.crs.u_effect * expansion_dev + patient_shift


def crs_patient_shift(
    product: np.ndarray,
    total_cells: np.ndarray,
    prophylaxis: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """The CRS intensity shift of the dose and of prophylaxis, per patient.

    Dose: ``crs.dose_per_doubling`` per doubling of the total CAR+ cells over the product's
    median total (CIBMTR tisa-cel NHL: OR 2.87 per doubling for CRS, Pasquini 2020; none
    reported elsewhere, so 0). Prophylactic dexamethasone: ``treatment.prophylaxis_crs_effect``
    (ZUMA-1 cohort 6: CRS 80%, no grade >= 3, against 93% and 13%; Oluwole 2021).
    """
    products = params.baseline.products
    reference = np.array([_median_total_cells(products[name]) for name in PRODUCT_NAMES])[product]
    doublings = np.log2(np.asarray(total_cells, dtype=float) / reference)
    dose = per_product(params.crs.dose_per_doubling)[product] * doublings
    return dose + params.treatment.prophylaxis_crs_effect * np.asarray(prophylaxis, dtype=float)


REFERENCE_WEIGHT_KG = 70.0  # the adult at whom a per-kg label's median becomes a total dose


def _median_total_cells(product: Product) -> float:
    """A product's median dose as total CAR+ cells (per-kg labels at a 70-kg adult)."""
    return product.median if product.rule == "flat" else product.median * REFERENCE_WEIGHT_KG


def crs_transition_probs(
    state: np.ndarray,
    day: int,
    fam: np.ndarray,
    k: np.ndarray,
    intensity: np.ndarray,
    tocilizumab: np.ndarray,
    tables: KernelTables,
    params: GeneratorParameters,
) -> np.ndarray:
    """P(CRS state on ``day`` | state on ``day - 1``), shape ``broadcast + (6,)``.

    States: 0 pre-onset, 1-4 ASTCT grade, 5 resolved. Onset only between day 1 and
    ``last_onset_day``, into grade 1; each day a grade may rise by one, fall by one (grade 1 ->
    resolved) or stay. After tocilizumab (given from grade 2) CRS improves faster and an
    improving grade 2 resolves: the fever is masked, so grade 1 (fever alone) cannot follow.
    ASSUMPTION shapes tuned to product CRS incidence, severity and ~7-day duration.
    """
    state, intensity = np.asarray(state), np.asarray(intensity)
    toci = np.asarray(tocilizumab, dtype=bool)
    shape = np.broadcast_shapes(
        state.shape, intensity.shape, np.shape(fam), np.shape(k), toci.shape
    )
    state, toci = np.broadcast_to(state, shape), np.broadcast_to(toci, shape)
    out = np.zeros((*shape, N_CRS))
    onset = np.broadcast_to(
        expit(per_product(params.crs.onset_logit)[fam] + intensity + tables.crs_timing[fam, day]),
        shape,
    )
    grade = np.clip(state, 1, 4)
    esc = np.exp(intensity) * tables.crs_escalate[fam, k, day, grade]
    imp = np.exp(-0.5 * intensity) * tables.crs_improve[fam, k, day, toci.astype(int)]
    total = 1.0 + esc + imp
    pre = state == CRS_PRE
    resolved = state == CRS_RESOLVED
    active = ~(pre | resolved)
    out[..., CRS_PRE] = np.where(pre, 1.0 - onset, 0.0)
    out[..., 1] = np.where(pre, onset, 0.0)
    out[..., CRS_RESOLVED] = np.where(resolved, 1.0, 0.0)
    for g in range(1, 5):
        here = active & (state == g)
        stay, up, down = 1.0 / total, esc / total, imp / total
        out[..., g] += np.where(here, stay, 0.0)
        if g < 4:
            out[..., g + 1] += np.where(here, up, 0.0)
        resolves = here & ((g == 1) | ((g == 2) & toci))
        out[..., CRS_RESOLVED] += np.where(resolves, down, 0.0)
        if g > 1:
            out[..., g - 1] += np.where(here & ~resolves, down, 0.0)
    return out


def crs_grade_of_state(state: np.ndarray) -> np.ndarray:
    """Observed ASTCT CRS grade of a chain state (pre-onset and resolved are grade 0)."""
    return np.where((state >= 1) & (state <= 4), state, 0)


# --- ICANS -----------------------------------------------------------------------------------


def icans_drive(
    fam,
    burden,
    neuro,
    cns,
    disease,
    flu_cy,
    age,
    expansion_dev,
    r,
    cd4_dominant,
    prophylaxis,
    params: GeneratorParameters,
) -> np.ndarray:
    """ICANS drive (log-odds), rounded to ``drive_quantum``.

    Sum of the product's intercept (its family's, unless the products of a family differ in
    the sources) and the effects of marrow tumour burden (Gust 2017),
    neuro comorbidity (Gust 2017), CNS involvement by disease group (strong in B-ALL, none
    consistent in lymphoma), Cy/Flu lymphodepletion (Gust 2017), age (Gauthier, weak), CAR-T
    expansion above the family's typical peak (by family: ZUMA-1 yes, JULIET no), a
    CD4-dominant expansion (ASSUMPTION, Baur 2023), inflammation ``r`` (shared with CRS) and
    prophylactic dexamethasone (ZUMA-1 cohort 6). Rounding makes the drive take finitely many
    values so the backward table in :mod:`data.synthetic.true_risk` is exact.
    """
    p = params.icans
    cns_effect = np.array([p.cns_involvement[g] for g in DISEASE_GROUP_NAMES])[np.asarray(disease)]
    drive = (
        per_product(p.drive_intercept)[fam]
        + p.marrow_burden_per_25pct * burden / 0.25
        + p.neuro_comorbidity * neuro
        + cns_effect * cns
        + p.flu_cy * flu_cy
        + p.age_per_10y * (age - 50.0) / 10.0
        + per_product(p.expansion_effect)[fam] * expansion_dev
        + p.inflammation_effect * r
        + p.cd4_dominance_effect * cd4_dominant
        + params.treatment.prophylaxis_drive_effect * prophylaxis
    )
    return quantise_drive(drive, params)


def disease_group_codes(disease: np.ndarray) -> np.ndarray:
    """Index of each disease's group in :data:`DISEASE_GROUP_NAMES`."""
    lookup = {d: DISEASE_GROUP_NAMES.index(g) for d, g in DISEASE_GROUPS.items()}
    return np.array([lookup[d] for d in np.asarray(disease)], dtype=np.int64)


DRIVE_MIN, DRIVE_MAX = -12.0, 6.0


def drive_grid(params: GeneratorParameters) -> np.ndarray:
    q = params.icans.drive_quantum
    return np.round(np.arange(DRIVE_MIN, DRIVE_MAX + q / 2, q), 10)


def quantise_drive(drive: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    q = params.icans.drive_quantum
    return np.round(np.clip(drive, DRIVE_MIN, DRIVE_MAX) / q) * q


def drive_index(drive: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    return np.rint((drive - DRIVE_MIN) / params.icans.drive_quantum).astype(np.int64)


def icans_kernel(
    drive: np.ndarray,
    day: int,
    fam: np.ndarray,
    k: np.ndarray,
    on_steroids: np.ndarray,
    tables: KernelTables,
    params: GeneratorParameters,
) -> np.ndarray:
    """P(latent level on ``day`` | level on ``day - 1``): shape ``broadcast + (5, 5)``.

    From level 0 the onset hazard is ``expit(drive + offset + timing)`` with a Gaussian timing
    bump at the product's median onset day shifted by the patient's expansion timing (new onset
    after day 14 is rare: 9-centre real-world cohort, Blood Adv 2024); onset enters level 1, or
    level 2-3 with a probability that grows with the drive. From levels 1-3 the patient may
    progress by one level, recover by one level or stay (multinomial logit); level 4 may only
    recover. Corticosteroids lower progression and speed recovery. ASSUMPTION shapes tuned to
    the incidence, severity, timing and duration anchors in the parameters.
    """
    p = params.icans
    drive = np.asarray(drive, dtype=float)
    s = np.asarray(on_steroids, dtype=bool).astype(int)
    shape = np.broadcast_shapes(drive.shape, np.shape(fam), np.shape(k), s.shape)
    drive = np.broadcast_to(drive, shape)
    k_out = np.zeros((*shape, N_LEVELS, N_LEVELS))
    onset = expit(drive + p.onset_offset + tables.icans_timing[fam, k, day])
    onset = np.broadcast_to(onset, shape)
    higher = expit(drive + p.entry_severity_offset)
    k_out[..., 0, 0] = 1.0 - onset
    k_out[..., 0, 1] = onset * (1.0 - higher)
    k_out[..., 0, 2] = onset * higher * (1.0 - p.entry_severe_share)
    k_out[..., 0, 3] = onset * higher * p.entry_severe_share
    up_factor = np.exp(drive)
    down_factor = np.exp(-p.drive_weight_on_recovery * drive)
    for level in range(1, N_LEVELS):
        prog = up_factor * tables.icans_progress[fam, k, day, level, s]
        rec = down_factor * tables.icans_recover[fam, k, day, level, s]
        total = 1.0 + prog + rec
        k_out[..., level, level] = 1.0 / total
        k_out[..., level, level - 1] = rec / total
        if level < N_LEVELS - 1:
            k_out[..., level, level + 1] = prog / total
    return k_out


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
