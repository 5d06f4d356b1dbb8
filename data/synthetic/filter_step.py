"""One day of the forward filter, compiled: transition, ICANS findings, the observed CRS step
and the day's charted laboratory values.

The true risk's forward filter (:mod:`data.synthetic.true_risk`) carries, for every patient, the
joint posterior over (hidden class, latent ICANS level). A day multiplies it by the ICANS
transition of each class, the likelihood of the day's findings, the probability of the
observed CRS transition and the likelihood of the day's labs (:mod:`data.synthetic.routine`,
split into a part by inflammation class and level and a part by class). With 150 classes and
10,000 patients a block, numpy's temporaries cost more than the arithmetic, so this loop is
compiled with numba; it evaluates exactly the formulas of
:func:`data.synthetic.process.icans_kernel` and
:func:`~data.synthetic.process.crs_transition_probs` from the same
:class:`~data.synthetic.process.KernelTables` (a test compares them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

CRS_PRE, CRS_RESOLVED = 0, 5


@njit(cache=True, inline="always")
def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    z = np.exp(x)
    return z / (1.0 + z)


@njit(cache=True)
def crs_step_probability(
    prev: int,
    cur: int,
    crs_base: float,
    e_up: float,
    e_down: float,
    timing: float,
    escalate: np.ndarray,
    improve: float,
    toci: bool,
) -> float:
    """P(CRS state ``cur`` today | ``prev`` yesterday) for one patient and class."""
    if prev == CRS_PRE:
        onset = 0.0 if timing == -np.inf else _expit(crs_base + timing)
        if cur == CRS_PRE:
            return 1.0 - onset
        return onset if cur == 1 else 0.0
    if prev == CRS_RESOLVED:
        return 1.0 if cur == CRS_RESOLVED else 0.0
    esc = e_up * escalate[prev]
    imp = e_down * improve
    total = 1.0 + esc + imp
    if cur == prev:
        return 1.0 / total
    if prev < 4 and cur == prev + 1:
        return esc / total
    down = CRS_RESOLVED if (prev == 1 or (prev == 2 and toci)) else prev - 1
    return imp / total if cur == down else 0.0


@njit(cache=True)
def filter_day(
    alpha,  # (n, C, 5) posterior at the end of yesterday, updated in place
    lik,  # (n, 5) likelihood of today's ICANS findings per latent level
    observed,  # (n,) bool: the patient was observed today
    crs_prev,  # (n,) int CRS state yesterday
    crs_cur,  # (n,) int CRS state today
    toci,  # (n,) bool: tocilizumab before today
    on_steroids,  # (n,) bool: on corticosteroids at the end of yesterday
    fam,  # (n,) int
    class_k,  # (C,) int timing class of each joint class
    day,
    onset_base,  # (n, C) drive + onset offset
    higher,  # (n, C) P(onset at level >= 2)
    e_up,  # (n, C) exp(drive)
    e_down,  # (n, C) exp(-w * drive)
    crs_base,  # (n, C) CRS onset logit + intensity
    crs_up,  # (n, C) exp(intensity)
    crs_down,  # (n, C) exp(-intensity / 2)
    entry_severe_share,
    icans_timing,  # (F, K, T)
    icans_progress,  # (F, K, T, 5, 2)
    icans_recover,  # (F, K, T, 5, 2)
    crs_timing,  # (F, T)
    crs_escalate,  # (F, K, T, 5)
    crs_improve,  # (F, K, T, 2)
    lab_by_level,  # (n, R, 5) likelihood of today's labs that depend on r and the level
    lab_by_class,  # (n, C) likelihood of today's labs that depend on the class only
    class_r,  # (C,) int r class of each joint class
):
    n, n_classes, n_levels = alpha.shape
    new = np.empty(n_levels)
    for i in range(n):
        if not observed[i]:
            continue
        f = fam[i]
        s = 1 if on_steroids[i] else 0
        t_idx = 1 if toci[i] else 0
        total_i = 0.0
        for c in range(n_classes):
            k = class_k[c]
            a = alpha[i, c]
            timing = icans_timing[f, k, day]
            onset = 0.0 if timing == -np.inf else _expit(onset_base[i, c] + timing)
            hi = higher[i, c]
            new[0] = a[0] * (1.0 - onset)
            new[1] = a[0] * onset * (1.0 - hi)
            new[2] = a[0] * onset * hi * (1.0 - entry_severe_share)
            new[3] = a[0] * onset * hi * entry_severe_share
            new[4] = 0.0
            for level in range(1, n_levels):
                prog = e_up[i, c] * icans_progress[f, k, day, level, s]
                rec = e_down[i, c] * icans_recover[f, k, day, level, s]
                total = 1.0 + prog + rec
                new[level] += a[level] / total
                new[level - 1] += a[level] * rec / total
                if level < n_levels - 1:
                    new[level + 1] += a[level] * prog / total
            p_crs = crs_step_probability(
                crs_prev[i],
                crs_cur[i],
                crs_base[i, c],
                crs_up[i, c],
                crs_down[i, c],
                crs_timing[f, day],
                crs_escalate[f, k, day],
                crs_improve[f, k, day, t_idx],
                toci[i],
            )
            p_class = p_crs * lab_by_class[i, c]
            r = class_r[c]
            for level in range(n_levels):
                value = new[level] * lik[i, level] * p_class * lab_by_level[i, r, level]
                alpha[i, c, level] = value
                total_i += value
        if total_i > 0:
            for c in range(n_classes):
                for level in range(n_levels):
                    alpha[i, c, level] /= total_i


@njit(cache=True)
def no_event_probability(alpha, beta_day, fam, instrument, class_k, drive_idx, steroids):
    """sum over (class, level) of posterior x P(no event later) for each patient.

    ``beta_day`` is the backward table on the landmark day, indexed
    ``[product, instrument, timing class, drive, level, steroid state]``.
    """
    n, n_classes, n_levels = alpha.shape
    out = np.zeros(n)
    for i in range(n):
        f, inst, s = fam[i], instrument[i], steroids[i]
        total = 0.0
        for c in range(n_classes):
            k, d = class_k[c], drive_idx[i, c]
            for level in range(n_levels):
                total += alpha[i, c, level] * beta_day[f, inst, k, d, level, s]
        out[i] = total
    return out
