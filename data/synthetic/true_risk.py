"""The exact true risk: P(target event after landmark L, through day 28 | all observed to L).

Because the process is a finite hidden-Markov model (see :mod:`data.synthetic.process`), the
probability is computed in closed form, not estimated:

1. **Backward table** (once per parameter set): ``B[family, instrument, drive, L, level, dex]``
   = P(no event on days L+1..28 | latent ICANS level and dexamethasone state at the end of L).
   The drive takes finitely many values (it is rounded), so the table is exact.
2. **Forward filter** (per patient): the joint posterior of the hidden class (u, r) and the
   latent ICANS level at the end of each day, given the labs, the CD4+/CD8+ measurements, the
   CRS course and the ICANS findings observed so far.
3. ``true_risk(L) = 1 - sum posterior(class, level) * B[..., L, level, observed dex state]``.

Everything observable up to and including day L enters: labs before lymphodepletion, CAR-T
measurements dated <= L, the daily CRS grade and the daily ICANS findings (ICE/CAPD,
consciousness, seizure, motor, oedema). Nothing after day L does. Being exact, it has no
Monte-Carlo standard error; ``continue_icans`` in :mod:`data.synthetic.simulate` gives the
Monte-Carlo check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from data.synthetic.baseline import Baseline, lab_log_likelihood
from data.synthetic.parameters import FAMILIES, GeneratorParameters
from data.synthetic.process import (
    DEX_DAY2,
    DEX_NONE,
    N_DEX,
    N_LEVELS,
    FindingTables,
    LatentGrid,
    crs_intensity,
    crs_transition_probs,
    drive_grid,
    drive_index,
    expansion_deviation,
    expansion_log_peak,
    expansion_shape,
    finding_tables,
    findings_likelihood,
    icans_drive,
    icans_kernel,
    next_dex_state,
    per_family,
)
from data.synthetic.simulate import Course
from icans.contract import LAB_FIELDS

_TABLES: dict[str, np.ndarray] = {}


def backward_table(params: GeneratorParameters) -> np.ndarray:
    """P(no event after day t | level, dex) for every family, instrument, drive and day t.

    Shape ``(families, 2, drives, horizon + 1, levels, dex states)``. The event on day t+1 is a
    derived grade >= 3, or a grade >= 2 on the 72 h judgement day (dex state DAY2 the day before).
    """
    key = params.fingerprint()
    if key not in _TABLES:
        _TABLES.clear()  # one parameter set at a time; the table is ~35 MB
        _TABLES[key] = _build_backward_table(params)
    return _TABLES[key]


def _build_backward_table(params: GeneratorParameters) -> np.ndarray:
    horizon = params.horizon_days
    drives = drive_grid(params)
    n_f = len(FAMILIES)
    fam = np.repeat(np.arange(n_f), len(drives)).reshape(n_f, len(drives))
    drv = np.broadcast_to(drives, fam.shape)
    tables = finding_tables(params)
    start = params.icans.dexamethasone_start_grade
    out = np.empty((n_f, 2, len(drives), horizon + 1, N_LEVELS, N_DEX))
    for inst in (0, 1):
        cdf = tables.grade_cdf(inst)
        p_low = cdf[:, start - 1]  # no dex trigger, no event
        p_mid = cdf[:, 2] - cdf[:, start - 1]  # grade 2: starts dex, event only on judgement
        beta = np.ones((n_f, len(drives), N_LEVELS, N_DEX))
        out[:, inst, :, horizon] = beta
        for t in range(horizon - 1, -1, -1):
            kernels = [
                icans_kernel(drv, t + 1, fam, np.full(fam.shape, on), params)
                for on in (False, True)
            ]
            new = np.empty_like(beta)
            for d in range(N_DEX):
                nxt_low = int(next_dex_state(np.array(d), np.array(0), start))
                nxt_mid = int(next_dex_state(np.array(d), np.array(start), start))
                value = p_low * beta[..., nxt_low]
                if d != DEX_DAY2:
                    value = value + p_mid * beta[..., nxt_mid]
                k = kernels[d != DEX_NONE]
                new[..., d] = np.einsum("fdst,fdt->fds", k, value)
            beta = new
            out[:, inst, :, t] = beta
    return out


class ForwardFilter:
    """Posterior over (hidden class, latent ICANS level) for a chunk of patients, day by day."""

    def __init__(
        self, base: Baseline, course: Course, grid: LatentGrid, params: GeneratorParameters
    ):
        t = base.table
        self.params, self.course, self.grid = params, course, grid
        self.fam = base.family
        n = len(t)
        u_c, r_c = grid.class_u(), grid.class_r()
        dose = t["dose_cells_per_kg"].to_numpy(float)[:, None]
        blasts = t["marrow_blasts_pct"].to_numpy(float)[:, None]
        fam2 = self.fam[:, None]
        self.log_peak = expansion_log_peak(fam2, dose, blasts, u_c[None, :], params)
        dev = expansion_deviation(fam2, self.log_peak, params)
        self.intensity = crs_intensity(r_c[None, :], dev, params)
        self.drive = icans_drive(
            fam2,
            blasts,
            t["neuro_comorbidity"].to_numpy(float)[:, None],
            t["cns_involvement"].to_numpy(float)[:, None],
            (t["lymphodepletion"] == "flu_cy").to_numpy(float)[:, None],
            t["age_years"].to_numpy(float)[:, None],
            dev,
            r_c[None, :],
            params,
        )
        self.tables: FindingTables = finding_tables(params)
        log_w = np.broadcast_to(grid.class_log_prior(), (n, grid.n_classes)).copy()
        child = course.child
        for lab in LAB_FIELDS:
            value = t[lab].to_numpy(float)[:, None]
            log_w += lab_log_likelihood(lab, value, r_c[None, :], blasts, child[:, None], params)
        alpha = np.zeros((n, grid.n_classes, N_LEVELS))
        alpha[..., 0] = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        self.alpha = alpha / alpha.sum(axis=(1, 2), keepdims=True)
        # CD8/CD4 log-ratio: Gaussian random effect, integrated out sequentially (conjugate).
        e = params.expansion
        self.rho_mean = np.broadcast_to(
            per_family(e.cd8_to_cd4_log_ratio_mean)[self.fam][:, None], (n, grid.n_classes)
        ).copy()
        self.rho_var = np.full((n, 1), e.cd8_to_cd4_log_ratio_sd**2)
        self.day = 0

    def step(self) -> None:
        """Fold in day ``self.day + 1``: transition, CRS, measurements and ICANS findings."""
        c, p = self.course, self.params
        day = self.day + 1
        n = len(self.fam)
        rows = np.arange(n)
        on_dex = c.dex_state[:, day - 1] != DEX_NONE
        kernel = icans_kernel(self.drive, day, self.fam[:, None], on_dex[:, None], p)
        alpha = np.einsum("ncs,ncst->nct", self.alpha, kernel)
        lik = findings_likelihood(
            self.tables,
            c.child,
            c.cognition[:, day],
            c.consciousness[:, day],
            c.seizure[:, day],
            c.motor[:, day],
            c.edema[:, day],
        )
        alpha *= lik[:, None, :]
        crs_p = crs_transition_probs(
            c.crs_state[:, day - 1][:, None], day, self.fam[:, None], self.intensity, p
        )
        alpha *= crs_p[rows, :, c.crs_state[:, day]][..., None]
        sampling = list(p.expansion.sampling_days)
        if day in sampling:
            alpha *= self._measurement_likelihood(sampling.index(day), day)[..., None]
        total = alpha.sum(axis=(1, 2), keepdims=True)
        self.alpha = np.divide(alpha, total, out=np.zeros_like(alpha), where=total > 0)
        self.day = day

    def _measurement_likelihood(self, k: int, day: int) -> np.ndarray:
        """Likelihood of the CD4+ and CD8+ samples of one day for every class (1 if missed)."""
        e = self.params.expansion
        c = self.course
        m4, m8 = c.cd4_measured[:, k], c.cd8_measured[:, k]
        have = ~np.isnan(m4)
        log_curve = self.log_peak + np.log(expansion_shape(self.fam, np.array([day]), self.params))
        s2 = e.measurement_log_sd**2
        ll4 = norm.logpdf(np.log(m4)[:, None], log_curve, np.sqrt(s2))
        resid = np.log(m8)[:, None] - log_curve
        ll8 = norm.logpdf(resid, self.rho_mean, np.sqrt(self.rho_var + s2))
        gain = self.rho_var / (self.rho_var + s2)
        upd_mean = self.rho_mean + gain * (resid - self.rho_mean)
        self.rho_mean = np.where(have[:, None], upd_mean, self.rho_mean)
        self.rho_var = np.where(have[:, None], self.rho_var * (1 - gain), self.rho_var)
        ll = np.where(have[:, None], ll4 + ll8, 0.0)
        return np.exp(ll - ll.max(axis=1, keepdims=True))

    def risk(self, table: np.ndarray) -> np.ndarray:
        """True risk after the current day for every patient (meaningful if event-free)."""
        day = self.day
        dex = self.course.dex_state[:, day]
        inst = self.course.child.astype(int)
        idx = drive_index(self.drive, self.params)
        beta = table[self.fam[:, None], inst[:, None], idx, day, :, dex[:, None]]
        return np.clip(1.0 - np.einsum("ncs,ncs->n", self.alpha, beta), 0.0, 1.0)


def true_risk_table(
    base: Baseline,
    course: Course,
    event_day: np.ndarray,
    grid: LatentGrid,
    params: GeneratorParameters,
) -> pd.DataFrame:
    """Rows (patient_id, landmark_day, true_risk) for patients event-free at L."""
    table = backward_table(params)
    filt = ForwardFilter(base, course, grid, params)
    ids = base.table["patient_id"].to_numpy()
    frames = []
    for landmark in params.landmark_days:
        while filt.day < landmark:
            filt.step()
        at_risk = (event_day < 0) | (event_day > landmark)
        risk = filt.risk(table)[at_risk]
        frames.append(
            pd.DataFrame(
                {
                    "patient_id": ids[at_risk],
                    "landmark_day": np.full(len(risk), landmark, dtype=np.int64),
                    "true_risk": risk,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


__all__ = ["ForwardFilter", "backward_table", "true_risk_table"]
