"""Summaries of a generated cohort: the realism table against published ranges, the grade
distribution, and how well the true risk discriminates at landmark days."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cohort.reader import CohortMetadata, read_metadata
from cohort.store import read_manifest, read_table
from data.synthetic.effect_sizes import (
    column,
    counts_by_grade,
    coupling_metrics,
    course_metrics,
    death_metrics,
    refractory_metrics,
    treatment_metrics,
)
from data.synthetic.parameters import FAMILIES, PRODUCTS
from data.synthetic.targets import TARGETS
from icans.steroids import TREATMENT_MG

MIN_PATIENTS = 200  # a group with fewer patients is not compared (too noisy)


@dataclass
class CohortSummary:
    metadata: CohortMetadata
    realism: pd.DataFrame
    grade_distribution: pd.Series
    seed_phenotypes: pd.Series
    true_risk_auroc: pd.DataFrame | None


def landmark_labels(true_risk: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """True-risk rows with the realised label: target event after the landmark day."""
    m = true_risk.merge(outcomes[["patient_id", "event_day"]], on="patient_id")
    m["event_after_landmark"] = m["event_day"].notna() & (m["event_day"] > m["landmark_day"])
    return m


ROUTINE_COLUMNS = ["patient_id", "day", "crs_grade", "temperature_max_c", "crp_mg_per_l"]
ROUTINE_COLUMNS += ["ferritin_ng_per_ml"]
# The daily findings and doses behind the severity and treatment metrics (optional: a daily
# table without them gives no such metric).
COURSE_COLUMNS = ["seizure", "cerebral_edema", "dexamethasone_mg", "icans_grade"]
EARLY_CRP_DAY = 3  # "CRP alone": the highest CRP charted on days 0-3
DIFFUSE_EDEMA = "diffuse_or_raised_icp"  # icans.astct.CerebralEdema.DIFFUSE_OR_RAISED_ICP
NO_SEIZURE = "none"  # icans.astct.Seizure.NONE


def routine_summaries(daily: pd.DataFrame) -> pd.DataFrame:
    """Per patient, from the daily routine series: peak CRP and ferritin and their days, the
    first febrile day (>= 38.0 °C), the first CRS day, the CRS resolution day (the first later
    day charted at CRS grade 0), the highest CRP to day 3 and, when the daily table has the
    columns, whether a seizure, diffuse cerebral oedema or a treatment dose of corticosteroid
    (>= icans.steroids.TREATMENT_MG mg dexamethasone-equivalent) was charted on any day."""
    course = [c for c in COURSE_COLUMNS if c in daily.columns]
    d = pd.DataFrame(daily[ROUTINE_COLUMNS + course]).reset_index(drop=True)
    # Integer patient codes (in order of appearance): grouping by them is several times faster
    # than by the identifier strings on a 100,000-patient daily table.
    codes, ids = pd.factorize(column(d, "patient_id"))
    day = d["day"].to_numpy()
    crs_grade = d["crs_grade"].to_numpy()

    def per_patient(values: np.ndarray, rows: np.ndarray, how: str) -> np.ndarray:
        grouped = pd.Series(values[rows]).groupby(codes[rows]).agg(how)
        return grouped.reindex(range(len(ids))).to_numpy(float)

    everywhere = np.ones(len(d), bool)
    crp = d["crp_mg_per_l"].to_numpy(float)
    charted = np.flatnonzero(~np.isnan(crp))
    peak_rows = pd.Series(crp[charted]).groupby(codes[charted]).idxmax()  # the first of ties
    crp_peak_day = np.full(len(ids), np.nan)
    crp_peak_day[peak_rows.index.to_numpy()] = day[charted[peak_rows.to_numpy()]]
    first_crs = per_patient(day, crs_grade >= 1, "min")
    resolved = (day > first_crs[codes]) & (crs_grade == 0)  # NaN onset: never
    out = pd.DataFrame(
        {
            "patient_id": ids,
            "crp_peak": per_patient(crp, everywhere, "max"),
            "ferritin_peak": per_patient(
                column(d, "ferritin_ng_per_ml").to_numpy(float), everywhere, "max"
            ),
            "first_fever_day": per_patient(day, d["temperature_max_c"].to_numpy() >= 38.0, "min"),
            "first_crs_day": first_crs,
            "crs_resolution_day": per_patient(day, resolved, "min"),
            "crp_max_early": per_patient(crp, day <= EARLY_CRP_DAY, "max"),
            "crp_peak_day": crp_peak_day,
        }
    )
    if "seizure" in course:
        out["seizure_any"] = (
            per_patient((column(d, "seizure") != NO_SEIZURE).to_numpy(), everywhere, "max") > 0
        )
    if "cerebral_edema" in course:
        edema = (column(d, "cerebral_edema") == DIFFUSE_EDEMA).to_numpy()
        out["diffuse_edema_any"] = per_patient(edema, everywhere, "max") > 0
    if "dexamethasone_mg" in course:
        treated = (column(d, "dexamethasone_mg") >= TREATMENT_MG).to_numpy()
        out["treatment_steroid_any"] = per_patient(treated, everywhere, "max") > 0
    if "icans_grade" in course:
        grade = column(d, "icans_grade").to_numpy(float)
        out["first_icans_2plus_day"] = per_patient(day, grade >= 2, "min")
        out["first_icans_1_day"] = per_patient(day, grade == 1, "min")
    return out


def _crp_early_auroc(df: pd.DataFrame) -> float:
    """AUROC of the highest CRP on days 0-3 alone for the target event after day 3."""
    if "crp_max_early" not in df:
        return np.nan
    event = column(df, "event_day").astype(float)
    death = column(df, "death_day").astype(float)
    at_risk = ~(event <= EARLY_CRP_DAY) & ~(death <= EARLY_CRP_DAY)
    at_risk &= column(df, "crp_max_early").notna()
    y = event[at_risk] > EARLY_CRP_DAY
    if not 0 < y.sum() < len(y):
        return np.nan
    return float(roc_auc_score(y, column(df, "crp_max_early")[at_risk]))


EASIX_FC_LABS = ["ldh_u_per_l", "creatinine_mg_per_dl", "platelets_10e9_per_l"]
EASIX_FC_LABS += ["crp_mg_per_l", "ferritin_ng_per_ml"]
MIN_PER_THIRD = 30  # fewer patients with all five labs in a third: no ratio (too noisy)


def easix_fc_ratio(df: pd.DataFrame) -> float:
    """ICANS grade >= 2 in the highest third of the EASIX-FC score before lymphodepletion over
    the lowest third.

    EASIX-FC (Greenbaum, Blood Adv 2021;5:2799): EASIX (LDH x creatinine / platelets, Luft 2017)
    with CRP and ferritin. Here the score is their product, log EASIX + log CRP + log ferritin
    (ASSUMPTION: equal weights on the log scale; the paper grouped patients by its own cut
    points), and its groups are thirds of the patients with all five labs (ASSUMPTION)."""
    if not set(EASIX_FC_LABS) <= set(df.columns):
        return np.nan
    labs = df[EASIX_FC_LABS].astype(float)
    known = cast(pd.Series, labs.notna().all(axis=1) & (labs > 0).all(axis=1))
    labs = labs[known]
    score = (  # every lab is positive here
        np.log(labs["ldh_u_per_l"] * labs["creatinine_mg_per_dl"])
        - np.log(labs["platelets_10e9_per_l"])
        + np.log(labs["crp_mg_per_l"])
        + np.log(labs["ferritin_ng_per_ml"])
    )
    grade2 = (column(df, "icans_max_grade") >= 2)[known]
    low, high = np.quantile(score, [1 / 3, 2 / 3]) if len(score) else (np.nan, np.nan)
    bottom, top = grade2[score <= low], grade2[score > high]
    if min(len(bottom), len(top)) < MIN_PER_THIRD or not bottom.any():
        return np.nan
    return float(top.mean() / bottom.mean())


def _routine_metrics(df: pd.DataFrame) -> dict[str, float]:
    if "crp_peak" not in df:
        return {}
    crs = column(df, "crs_max_grade")
    crs_days = column(df, "first_crs_day")
    with_crs = crs_days.notna()
    lag = column(df, "crp_peak_day") - crs_days

    def median(name: str, rows: pd.Series) -> float:
        return float(column(df, name).loc[rows].median())

    return {
        "crp_peak_crs_1_2": median("crp_peak", crs.between(1, 2)),
        "crp_peak_crs_3plus": median("crp_peak", crs >= 3),
        "ferritin_peak_crs_1_2": median("ferritin_peak", crs.between(1, 2)),
        "ferritin_peak_crs_3plus": median("ferritin_peak", crs >= 3),
        "fever_first_at_crs_onset": float(
            (column(df, "first_fever_day").loc[with_crs] == crs_days.loc[with_crs]).mean()
        ),
        "crp_peak_after_crs_onset": float(lag.loc[with_crs].median()),
        "crp_early_auroc": _crp_early_auroc(df),
    }


def metric_values(df: pd.DataFrame) -> dict[str, float]:
    """Every metric of :mod:`data.synthetic.targets` for one group of patients (one row each,
    the patients and outcomes tables merged, with :func:`routine_summaries` of the daily
    table); a metric whose columns are absent is left out."""
    icans = column(df, "icans_max_grade") >= 1
    onset = column(df, "icans_onset_day").astype(float)
    duration = column(df, "icans_resolution_day").astype(float) - onset
    crs_onset = column(df, "crs_onset_day").astype(float)
    cause = column(df, "death_cause")
    other_death = cause.notna() & (cause != "icans")
    return (
        {
            "icans_any": icans.mean(),
            "icans_3plus": column(df, "severe_icans").mean(),
            "crs_any": (column(df, "crs_max_grade") >= 1).mean(),
            "crs_3plus": (column(df, "crs_max_grade") >= 3).mean(),
            "onset_median": cast(pd.Series, onset[icans]).median(),
            "duration_median": cast(pd.Series, duration[icans]).median(),
            "crs_onset_median": float(crs_onset.median()),
            "tocilizumab": (column(df, "tocilizumab_doses") > 0).mean(),
            "steroids": column(df, "dexamethasone_start_day").notna().mean(),
            "nrm": other_death.mean(),
            "icans_death": column(df, "died_of_icans").mean(),
            "onset_after_14": (onset > 14).mean(),
            "easix_fc_icans_2plus_ratio": easix_fc_ratio(df),
        }
        | counts_by_grade(column(df, "icans_max_grade"))
        | refractory_metrics(df)
        | treatment_metrics(df)
        | coupling_metrics(df)
        | course_metrics(df)
        | death_metrics(df)
        | _routine_metrics(df)
    )


LYMPHOMAS = ("LBCL", "PMBCL", "MCL", "FL")  # "CD19 lymphoma": the NHL series (Pensato 2024)
PROPHYLAXIS = {", no prophylaxis": False, ", prophylaxis": True}


def group_mask(df: pd.DataFrame, group: str) -> pd.Series:
    """The rows of ``df`` in a target's group: ``"all"``, a product family
    (``product_family``), a product (``product``), ``"CD19"`` (``car_target``), ``"CD19
    lymphoma"`` (CD19 in :data:`LYMPHOMAS`), each optionally followed by ``", no prophylaxis"``
    or ``", prophylaxis"`` (``prophylactic_dexamethasone``)."""
    name, prophylaxis = group, None
    for suffix, given in PROPHYLAXIS.items():
        if group.endswith(suffix):
            name, prophylaxis = group.removesuffix(suffix), given
    if name == "all":
        mask = pd.Series(True, index=df.index)
    elif name in PRODUCTS:
        mask = column(df, "product") == name
    elif name in FAMILIES:
        mask = column(df, "product_family") == name
    elif name == "CD19":
        mask = column(df, "car_target") == "CD19"
    elif name == "CD19 lymphoma":
        mask = (column(df, "car_target") == "CD19") & column(df, "disease").isin(LYMPHOMAS)
    else:
        raise ValueError(f"unknown target group {group!r}")
    if prophylaxis is not None:
        mask &= column(df, "prophylactic_dexamethasone").astype(bool) == prophylaxis
    return mask


def realism_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per published target whose group (:func:`group_mask`) has at least
    :data:`MIN_PATIENTS` patients: the cohort's value, the range, whether it is inside, and the
    source. A value the group leaves undefined (an empty denominator, an odds ratio with an
    empty cell) is NaN and counts as outside, so a cohort missing a whole kind of patient shows.
    Each group's metrics are computed once (about 2.5 s for 100,000 patients)."""
    groups = {t.group: pd.DataFrame(df.loc[group_mask(df, t.group)]) for t in TARGETS}
    values = {name: metric_values(g) for name, g in groups.items() if len(g) >= MIN_PATIENTS}
    rows = []
    for t in TARGETS:
        if t.group not in values or t.metric not in values[t.group]:
            continue
        value = values[t.group][t.metric]
        rows.append(
            {
                "metric": t.metric,
                "group": t.group,
                "patients": len(groups[t.group]),
                "value": value,
                "low": t.low,
                "high": t.high,
                "within": bool(t.low <= value <= t.high),
                "departure": t.departure,
                "source": t.source,
            }
        )
    return pd.DataFrame(rows)


def seed_phenotypes(df: pd.DataFrame) -> pd.Series:
    """Counts of the patients the source papers describe, which the cohort must contain."""
    grade = column(df, "icans_max_grade")
    refractory_low_grade = column(df, "steroid_refractory_icans") & (grade <= 2)
    late_without_crs = (
        (grade >= 4)
        & (column(df, "icans_onset_day").astype(float) >= 12)
        & (column(df, "crs_max_grade") == 0)
    )
    target = column(df, "car_target")
    myeloid_cns = target.isin(["CLL1", "CD7", "CD123"]) & column(df, "cns_involvement")
    return pd.Series(
        {
            "patients": len(df),
            "grade 1-2 steroid-refractory (Meng 2025)": int(refractory_low_grade.sum()),
            "grade >= 4, onset day >= 12, no CRS (Katsin 2024)": int(late_without_crs.sum()),
            "myeloid target with CNS involvement": int(myeloid_cns.sum()),
            "  of whom severe or refractory": int(
                (myeloid_cns & column(df, "severe_or_refractory_icans")).sum()
            ),
        }
    )


def summarise(cohort_dir: Path) -> CohortSummary:
    manifest = read_manifest(cohort_dir)
    patients = read_table(
        cohort_dir,
        "patients",
        [
            "patient_id",
            "product_family",
            "product",
            "disease",
            "car_target",
            "cns_involvement",
            "prophylactic_dexamethasone",
            "dose_cells_per_kg",
            "weight_kg",
            *EASIX_FC_LABS,
        ],
    )
    outcomes = read_table(cohort_dir, "outcomes")
    df = patients.merge(outcomes, on="patient_id")
    daily = read_table(cohort_dir, "daily", ROUTINE_COLUMNS + COURSE_COLUMNS)
    df = df.merge(routine_summaries(daily), on="patient_id", how="left")
    grade_distribution = df["icans_max_grade"].value_counts(normalize=True).sort_index()

    auroc = None
    if "true_risk" in manifest["tables"]:
        m = landmark_labels(read_table(cohort_dir, "true_risk"), outcomes)
        rows = []
        for day, x in m.groupby("landmark_day"):
            y = column(x, "event_after_landmark")
            rows.append(
                {
                    "landmark_day": day,
                    "at_risk": len(x),
                    "events_after": int(y.sum()),
                    "mean_true_risk": x["true_risk"].mean(),
                    "auroc": roc_auc_score(y, x["true_risk"]) if 0 < y.sum() < len(y) else np.nan,
                }
            )
        auroc = pd.DataFrame(rows).set_index("landmark_day")
    return CohortSummary(
        read_metadata(cohort_dir, manifest),
        realism_table(df),
        grade_distribution,
        seed_phenotypes(df),
        auroc,
    )
