"""The effect sizes and shares of the realism table, one family of metrics per function: a
cohort's refractory shares, treatment use, CRS-ICANS couplings and odds ratios, severity
structure, daily-course findings and deaths by cause (:mod:`data.synthetic.targets` says what
each metric is and its published range; :func:`data.synthetic.summary.metric_values` gathers
them per group of patients).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """``df[name]`` as the Series it is (pandas types a column as Series or DataFrame)."""
    return cast(pd.Series, df[name])


def share(event: pd.Series, among: pd.Series) -> float:
    """Share of the rows ``among`` where ``event`` holds (NaN when there are none)."""
    n = int(among.sum())
    return float((event & among).sum() / n) if n else np.nan


def count_ratio(numerator: pd.Series, denominator: pd.Series) -> float:
    n = int(denominator.sum())
    return float(numerator.sum() / n) if n else np.nan


def odds_ratio(event: pd.Series, exposed: pd.Series, among: pd.Series | None = None) -> float:
    """Odds ratio of ``event`` for ``exposed`` vs not, from the 2x2 table of the rows ``among``
    (all rows by default); NaN when a cell is empty (no continuity correction)."""
    rows = np.ones(len(event), bool) if among is None else among.to_numpy(bool)
    y, x = event.to_numpy(bool)[rows], exposed.to_numpy(bool)[rows]
    a, b = int((y & x).sum()), int((~y & x).sum())
    c, d = int((y & ~x).sum()), int((~y & ~x).sum())
    return a * d / (b * c) if min(a, b, c, d) > 0 else np.nan


def logistic_slope(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> float:
    """Slope of the univariable logistic regression of the 0/1 ``y`` on ``x`` (maximum
    likelihood, no penalty) by Newton-Raphson; NaN when ``x`` or ``y`` is constant or the fit
    does not converge (separation)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or not 0 < y.sum() < len(y):
        return np.nan
    design = np.column_stack([np.ones_like(x), x - x.mean()])  # centred: better conditioned
    beta = np.array([np.log(y.mean() / (1 - y.mean())), 0.0])
    for _ in range(iterations):
        with np.errstate(over="ignore"):  # exp(large) -> inf -> p = 0: a separated fit
            p = 1 / (1 + np.exp(-design @ beta))
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        try:
            step = np.linalg.solve(hessian, design.T @ (y - p))
        except np.linalg.LinAlgError:  # all weights 0: the fit ran off to infinity
            return np.nan
        beta += step
        if not np.isfinite(beta).all():
            return np.nan
        if np.abs(step).max() < 1e-10:
            return float(beta[1])
    return np.nan


def log_odds_ratio_per(df: pd.DataFrame, name: str, event: pd.Series, base: float) -> float:
    """OR of ``event`` per ``base``-fold column ``name`` (positive values only), by logistic
    fit."""
    x = column(df, name).to_numpy(float, na_value=np.nan)
    known = np.isfinite(x) & (x > 0)
    slope = logistic_slope(np.log(x[known]) / np.log(base), event.to_numpy(bool)[known])
    return float(np.exp(slope))


def counts_by_grade(grade: pd.Series) -> dict[str, float]:
    return {
        "grade1_to_grade2": count_ratio(grade == 1, grade == 2),
        "grade45_to_grade3": count_ratio(grade >= 4, grade == 3),
    }


def refractory_metrics(df: pd.DataFrame) -> dict[str, float]:
    grade = column(df, "icans_max_grade")
    refractory = column(df, "steroid_refractory_icans").astype(bool)
    cause = column(df, "death_cause")
    treatment_death = cause.notna() & (cause != "progression")
    return {
        "refractory": float(refractory.mean()),
        "refractory_given_3plus": share(refractory, grade >= 3),
        "refractory_given_grade2": share(refractory, grade == 2),
        "refractory_grade1_share": share(grade == 1, refractory),
        "refractory_death": share(treatment_death, refractory),
    }


def treatment_metrics(df: pd.DataFrame) -> dict[str, float]:
    crs = column(df, "crs_max_grade")
    grade = column(df, "icans_max_grade")
    toci = column(df, "tocilizumab_doses") > 0
    steroids = column(df, "dexamethasone_start_day").notna()
    out = {
        "toci_given_crs": share(toci, crs >= 1),
        "toci_given_crs1": share(toci, crs == 1),
        "toci_given_crs2": share(toci, crs == 2),
        "toci_given_crs3plus": share(toci, crs >= 3),
        "steroids_given_icans": share(steroids, grade >= 1),
        "steroids_given_icans_2plus": share(steroids, grade >= 2),
    }
    if "treatment_steroid_any" in df:
        given = column(df, "treatment_steroid_any").astype("boolean").fillna(False).astype(bool)
        out["steroids_given_crs3plus"] = share(given, crs >= 3)
    return out


def coupling_metrics(df: pd.DataFrame) -> dict[str, float]:
    severe = column(df, "severe_icans").astype(bool)
    crs = column(df, "crs_max_grade")
    icans_onset = column(df, "icans_onset_day").astype(float)
    crs_onset = column(df, "crs_onset_day").astype(float)
    both = icans_onset.notna() & crs_onset.notna()
    out = {
        "severe_icans_or_crs34": odds_ratio(severe, crs >= 3),
        "p_severe_icans_given_crs34": share(severe, crs >= 3),
        "severe_icans_without_crs": share(crs == 0, severe),
        "icans_after_crs_onset": share(icans_onset >= crs_onset, both),
    }
    if "product" in df:
        product = column(df, "product")
        tisa, axi = product == "tisa-cel NHL", product == "axi-cel"
        out["or_tisa_vs_axi_icans"] = odds_ratio(
            column(df, "icans_max_grade") >= 1, tisa, among=tisa | axi
        )
    if "ldh_u_per_l" in df:
        out["ldh_or_per_log10"] = log_odds_ratio_per(df, "ldh_u_per_l", severe, 10)
    if {"dose_cells_per_kg", "weight_kg"} <= set(df.columns):
        total = column(df, "dose_cells_per_kg") * column(df, "weight_kg")
        out["dose_crs_or_per_doubling"] = log_odds_ratio_per(
            pd.DataFrame({"total_cells": total}), "total_cells", crs >= 1, 2
        )
    return out


def course_metrics(df: pd.DataFrame) -> dict[str, float]:
    """Metrics from the per-patient summaries of the daily course (:func:`routine_summaries`);
    a patient without daily rows counts as without the finding."""

    def ever(name: str) -> pd.Series:
        return column(df, name).astype("boolean").fillna(False).astype(bool)

    out: dict[str, float] = {}
    if "crs_resolution_day" in df:
        crs_onset = column(df, "crs_onset_day").astype(float)
        duration = column(df, "crs_resolution_day").astype(float) - crs_onset
        out["crs_duration_median"] = float(duration.loc[crs_onset.notna()].median())
    if "first_icans_2plus_day" in df:
        first_2 = column(df, "first_icans_2plus_day").astype(float)
        first_1 = column(df, "first_icans_1_day").astype(float)
        reached = first_2.notna()
        out["grade1_before_grade2"] = share(first_1 < first_2, reached)
    if "seizure_any" in df:
        out["seizure"] = float(ever("seizure_any").mean())
    if "diffuse_edema_any" in df:
        edema = ever("diffuse_edema_any")
        out["diffuse_edema"] = float(edema.mean())
        out["fatal_edema"] = float((edema & column(df, "died_of_icans").astype(bool)).mean())
    return out


def death_metrics(df: pd.DataFrame) -> dict[str, float]:
    cause = column(df, "death_cause")
    died = cause.notna()
    return {
        "early_death": float(died.mean()),
        "death_share_icans": share(cause == "icans", died),
        "death_share_crs": share(cause == "crs", died),
        "death_share_infection": share(cause == "infection", died),
    }
