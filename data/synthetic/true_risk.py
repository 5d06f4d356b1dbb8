"""The exact true risk: P(target event after landmark L, through day 28 | all observed to L).

Because the process is a finite hidden-Markov model (see :mod:`data.synthetic.process`), the
probability is computed in closed form, not estimated:

1. **Backward table** (once per parameter set, steroid policy and horizon window,
   :mod:`data.synthetic.backward`): P(no event on days L+1..28, or within the window | latent
   ICANS level and steroid state at the end of L), exact; a death from another cause ends the
   course without an event (the cumulative incidence with competing deaths).
2. **Forward filter** (per patient): the joint posterior of the hidden class (u, r, k, c) and
   the latent ICANS level at the end of each day, given the labs, the CD4+/CD8+ measurements,
   the CRS course (with tocilizumab) and the ICANS findings (with corticosteroids) observed so
   far. Surviving to L says nothing about the classes: the competing hazard does not depend on
   them. The daily step is compiled (:mod:`data.synthetic.filter_step`).
3. ``true_risk(L) = 1 - sum posterior(class, level) * B[..., L, level, observed steroid state]``.

Everything observable up to and including day L enters; nothing after day L does. Being exact,
it has no Monte-Carlo standard error; ``continue_icans`` in :mod:`data.synthetic.simulate` gives
the Monte-Carlo check.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
from scipy.special import expit

from data.synthetic.backward import backward_table
from data.synthetic.baseline import Baseline, lab_log_likelihood, lab_log_mean
from data.synthetic.filter_step import filter_day, no_event_probability
from data.synthetic.kinetics import (
    LatentGrid,
    expansion_deviation,
    expansion_log_peak,
    expansion_shape,
    per_product,
    ratio_mean,
)
from data.synthetic.parameters import PRODUCT_NAMES, GeneratorParameters
from data.synthetic.process import (
    N_LEVELS,
    FindingTables,
    KernelTables,
    crs_intensity,
    crs_patient_shift,
    drive_index,
    finding_tables,
    findings_likelihood,
    icans_drive,
    kernel_tables,
)
from data.synthetic.routine import (
    LABS,
    NOT_ROUTINE,
    SeenCourse,
    emission_likelihoods,
    expansion_index,
    static_log_level,
)
from data.synthetic.simulate import Course
from data.synthetic.treatment import (
    ON_STEROIDS,
)
from icans.contract import LAB_FIELDS
from icans.horizons import HORIZONS

# The observations each input set folds in (besides the baseline, the CRS and ICANS course and
# the treatment, which every set has): "all" adds every lab and the CAR-T counts a centre
# charts; "routine" leaves out what only some centres measure (CAR-T counts and IL-6).
INPUT_SETS: dict[str, tuple[tuple[str, ...], bool]] = {
    "all": (LABS, True),
    "routine": (tuple(lab for lab in LABS if lab not in NOT_ROUTINE), False),
}


class ForwardFilter:
    """Posterior over (hidden class, latent ICANS level) for a chunk of patients, day by day,
    given the observations of one input set (:data:`INPUT_SETS`)."""

    def __init__(
        self,
        base: Baseline,
        course: Course,
        grid: LatentGrid,
        params: GeneratorParameters,
        inputs: str = "all",
    ):
        t = base.table
        self.params, self.course, self.grid = params, course, grid
        self.labs, self.with_counts = INPUT_SETS[inputs]
        self.fam = base.product  # product codes (kinetics.per_product)
        self.start_grade = base.steroid_start_grade
        # per window (None: to day 28), one backward table per steroid rule in this chunk,
        # looked up once when first asked for
        self._backward: dict[int | None, dict[int, np.ndarray]] = {}
        n = len(t)
        u_c, r_c = grid.class_u()[None, :], grid.class_r()[None, :]
        self.class_k = grid.class_k()
        c_c = grid.class_c()[None, :]
        shift_c = grid.shifts[self.class_k][None, :]
        dose = t["dose_cells_per_kg"].to_numpy(float)[:, None]
        burden = base.burden[:, None]
        fam2 = self.fam[:, None]
        self.log_peak = expansion_log_peak(fam2, dose, burden, u_c, params)
        dev = expansion_deviation(fam2, self.log_peak, params)
        shift = crs_patient_shift(
            self.fam,
            t["dose_cells_per_kg"].to_numpy(float) * t["weight_kg"].to_numpy(float),
            base.prophylaxis,
            params,
        )
        self.intensity = crs_intensity(r_c, dev, params, shift[:, None])
        self.drive = icans_drive(
            fam2,
            burden,
            t["neuro_comorbidity"].to_numpy(float)[:, None],
            t["cns_involvement"].to_numpy(float)[:, None],
            base.disease_group[:, None],
            (t["lymphodepletion"] == "flu_cy").to_numpy(float)[:, None],
            t["age_years"].to_numpy(float)[:, None],
            dev,
            r_c,
            c_c,
            base.prophylaxis.astype(float)[:, None],
            params,
        )
        self.shift = np.broadcast_to(shift_c, self.drive.shape)
        self.tables: FindingTables = finding_tables(params)
        self.kernels: KernelTables = kernel_tables(params, grid.shifts)
        child = course.child[:, None]
        group = base.disease_group[:, None]
        r_index = np.indices(grid.shape)[1].ravel()  # labs depend on the class through r only
        lab_ll = sum(
            lab_log_likelihood(
                lab,
                t[lab].to_numpy(float)[:, None],
                lab_log_mean(lab, grid.r_values[None, :], burden, child, group, params),
                params,
            )
            for lab in LAB_FIELDS
        )
        lab_ll = cast(np.ndarray, lab_ll)  # LAB_FIELDS is not empty: never sum()'s start, 0
        log_w = grid.class_log_prior()[None, :] + lab_ll[:, r_index]
        # The daily labs: each lab's level before any response per patient and r class, and
        # the expansion classes (u, r, k; composition does not enter) for IL-6 and lymphocytes.
        self.class_r_index = r_index
        self.seen = SeenCourse(course.crs_grade, course.tocilizumab, course.steroid_mg)
        self.static_r = {
            lab: static_log_level(
                lab,
                grid.r_values[None, :],
                t[lab].to_numpy(float)[:, None] if lab in t.columns else None,
                burden,
                child,
                group,
                params,
            )
            for lab in self.labs
        }
        urk = np.flatnonzero(grid.class_c() == 0)  # one class per (u, r, k), c fastest
        self.urk_peak = np.exp(self.log_peak[:, urk])
        self.urk_k = self.class_k[urk]
        self.urk_r = grid.class_r()[urk]
        days = np.arange(params.horizon_days + 1)
        self.curve = expansion_shape(  # (product, timing class, day)
            np.arange(len(PRODUCT_NAMES))[:, None], grid.shifts[None, :], days, params
        )
        self.n_composition = grid.shape[3]
        by_level, by_class = self._lab_likelihood(0)  # day 0: before any CRS or expansion
        alpha = np.zeros((n, grid.n_classes, N_LEVELS))
        alpha[..., 0] = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        alpha[..., 0] *= by_level[:, r_index, 0] * by_class
        self.alpha = alpha / alpha.sum(axis=(1, 2), keepdims=True)
        # CD8/CD4 log-ratio: Gaussian random effect around the composition class's mean,
        # integrated out sequentially (conjugate).
        e = params.expansion
        self.rho_mean = np.broadcast_to(ratio_mean(fam2, c_c, params), (n, grid.n_classes)).copy()
        self.rho_var = np.full((n, 1), e.cd8_to_cd4_log_ratio_sd**2)
        ic = params.icans
        self.onset_base = self.drive + ic.onset_offset
        self.higher = expit(self.drive + ic.entry_severity_offset)
        self.e_up = np.exp(self.drive)
        self.e_down = np.exp(-ic.drive_weight_on_recovery * self.drive)
        self.crs_base = per_product(params.crs.onset_logit)[fam2] + self.intensity
        self.crs_up = np.exp(self.intensity)
        self.crs_down = np.exp(-0.5 * self.intensity)
        self.day = 0

    def step(self) -> None:
        """Fold in day ``self.day + 1``: transition, CRS, measurements and ICANS findings."""
        c, p = self.course, self.params
        day = self.day + 1
        observed = c.alive[:, day]
        codes = {
            name: np.where(observed, getattr(c, name)[:, day], 0)
            for name in ("consciousness", "seizure", "motor", "edema")
        }
        cognition = np.where(observed, c.cognition[:, day], 10)
        lik = findings_likelihood(self.tables, c.child, cognition, **codes)
        toci_before = c.tocilizumab[:, :day].sum(axis=1) > 0
        kt = self.kernels
        filter_day(
            self.alpha,
            lik,
            observed,
            c.crs_state[:, day - 1],
            c.crs_state[:, day],
            toci_before,
            ON_STEROIDS[c.steroid_state[:, day - 1]],
            self.fam,
            self.class_k,
            day,
            self.onset_base,
            self.higher,
            self.e_up,
            self.e_down,
            self.crs_base,
            self.crs_up,
            self.crs_down,
            p.icans.entry_severe_share,
            kt.icans_timing,
            kt.icans_progress,
            kt.icans_recover,
            kt.crs_timing,
            kt.crs_escalate,
            kt.crs_improve,
            *self._lab_likelihood(day),
            self.class_r_index,
        )
        sampling = list(p.expansion.sampling_days)
        if self.with_counts and day in sampling:
            self.alpha *= self._measurement_likelihood(sampling.index(day), day)[..., None]
            total = self.alpha.sum(axis=(1, 2), keepdims=True)
            np.divide(self.alpha, total, out=self.alpha, where=total > 0)
        self.day = day

    def _lab_likelihood(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """The day's lab likelihood by (r class, level) and by joint class."""
        cd4 = self.urk_peak * self.curve[self.fam[:, None], self.urk_k[None, :], day]
        by_level, by_urk = emission_likelihoods(
            self.course.labs,
            day,
            self.labs,
            self.static_r,
            self.grid.r_values,
            self.seen,
            expansion_index(cd4, self.params),
            self.urk_r,
            self.params,
        )
        return by_level, np.repeat(by_urk, self.n_composition, axis=1)

    def _measurement_likelihood(self, k: int, day: int) -> np.ndarray:
        """Likelihood of the CD4+ and CD8+ samples of one day for every class (1 if missed)."""
        e = self.params.expansion
        c = self.course
        m4, m8 = c.cd4_measured[:, k], c.cd8_measured[:, k]
        have = ~np.isnan(m4)
        shape = expansion_shape(self.fam[:, None], self.shift, np.array([day]), self.params)
        log_curve = self.log_peak + np.log(shape[..., 0])
        s2 = e.measurement_log_sd**2
        ll4 = _log_normal_pdf(np.log(m4)[:, None] - log_curve, s2)
        resid = np.log(m8)[:, None] - log_curve
        ll8 = _log_normal_pdf(resid - self.rho_mean, self.rho_var + s2)
        gain = self.rho_var / (self.rho_var + s2)
        upd_mean = self.rho_mean + gain * (resid - self.rho_mean)
        self.rho_mean = np.where(have[:, None], upd_mean, self.rho_mean)
        self.rho_var = np.where(have[:, None], self.rho_var * (1 - gain), self.rho_var)
        ll = np.where(have[:, None], ll4 + ll8, 0.0)
        return np.exp(ll - ll.max(axis=1, keepdims=True))

    def backward(self, window: int | None = None) -> dict[int, np.ndarray]:
        """The backward table of each steroid rule in this chunk (start grade -> table)."""
        if window not in self._backward:
            self._backward[window] = {
                int(g): backward_table(self.params, self.grid, int(g), window)
                for g in np.unique(self.start_grade)
            }
        return self._backward[window]

    def risk(self, window: int | None = None) -> np.ndarray:
        """True risk after the current day for every patient (meaningful if event-free), each
        under the steroid rule of its centre (:func:`backward_table` per start grade): of the
        event by day 28, or with ``window`` within that many days (and by day 28)."""
        day = self.day
        steroids = self.course.steroid_state[:, day]
        inst = self.course.child.astype(int)
        idx = drive_index(self.drive, self.params)
        no_event = np.empty(len(self.fam))
        for grade, table in self.backward(window).items():
            rows = self.start_grade == grade
            no_event[rows] = no_event_probability(
                self.alpha[rows],
                table[:, :, :, :, day],
                self.fam[rows],
                inst[rows],
                self.class_k,
                idx[rows],
                steroids[rows],
            )
        return np.clip(1.0 - no_event, 0.0, 1.0)


def _log_normal_pdf(deviation: np.ndarray, variance: np.ndarray | float) -> np.ndarray:
    """log density of a centred normal with ``variance`` at ``deviation``."""
    return -0.5 * (deviation**2 / variance + np.log(2 * np.pi * variance))


def true_risk_table(
    base: Baseline,
    course: Course,
    event_day: np.ndarray,
    grid: LatentGrid,
    params: GeneratorParameters,
) -> pd.DataFrame:
    """Rows (patient_id, landmark_day, true_risk, true_risk_routine, true_risk_72h,
    true_risk_7d) for patients alive and event-free at L: the exact risk by day 28 given
    everything observed (``all``) and given the routine input set only (no CAR-T counts, no
    IL-6: what most centres have), and given everything within the shorter horizons of
    :mod:`icans.horizons` (the next 72 hours, the next 7 days)."""
    everything = ForwardFilter(base, course, grid, params, "all")
    filters = {
        "true_risk": (everything, None),
        "true_risk_routine": (ForwardFilter(base, course, grid, params, "routine"), None),
    } | {f"true_risk_{h.name}": (everything, h.days) for h in HORIZONS if h.days is not None}
    ids = base.table["patient_id"].to_numpy()
    frames = []
    for landmark in params.landmark_days:
        at_risk = ((event_day < 0) | (event_day > landmark)) & course.alive[:, landmark]
        columns = {}
        for name, (filt, window) in filters.items():
            while filt.day < landmark:
                filt.step()
            columns[name] = filt.risk(window)[at_risk]
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": ids[at_risk],
                    "landmark_day": np.full(int(at_risk.sum()), landmark, dtype=np.int64),
                    **columns,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


__all__ = ["ForwardFilter", "true_risk_table"]
