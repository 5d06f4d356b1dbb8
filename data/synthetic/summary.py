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
from data.synthetic.parameters import FAMILIES
from data.synthetic.targets import TARGETS

MIN_PATIENTS = 200  # a family with fewer patients is not compared (too noisy)


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


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    """``df[name]`` as the Series it is (pandas types a column as Series or DataFrame)."""
    return cast(pd.Series, df[name])


ROUTINE_COLUMNS = ["patient_id", "day", "crs_grade", "temperature_max_c", "crp_mg_per_l"]
ROUTINE_COLUMNS += ["ferritin_ng_per_ml"]
EARLY_CRP_DAY = 3  # "CRP alone": the highest CRP charted on days 0-3


def routine_summaries(daily: pd.DataFrame) -> pd.DataFrame:
    """Per patient, from the daily routine series: peak CRP and ferritin and their days, the
    first febrile day (>= 38.0 °C), the first CRS day and the highest CRP to day 3."""
    d = pd.DataFrame(daily[ROUTINE_COLUMNS])
    by = d.groupby("patient_id", sort=False)
    charted = pd.DataFrame(d[d["crp_mg_per_l"].notna()])
    crp_peak_day = charted.loc[charted.groupby("patient_id")["crp_mg_per_l"].idxmax()]
    febrile = pd.DataFrame(d[d["temperature_max_c"] >= 38.0]).groupby("patient_id")["day"].min()
    crs = pd.DataFrame(d[d["crs_grade"] >= 1]).groupby("patient_id")["day"].min()
    early = pd.DataFrame(d[d["day"] <= EARLY_CRP_DAY]).groupby("patient_id")["crp_mg_per_l"]
    out = pd.DataFrame(
        {
            "crp_peak": by["crp_mg_per_l"].max(),
            "ferritin_peak": by["ferritin_ng_per_ml"].max(),
            "first_fever_day": febrile,
            "first_crs_day": crs,
            "crp_max_early": early.max(),
        }
    )
    out["crp_peak_day"] = crp_peak_day.set_index("patient_id")["day"]  # the first of ties
    return out.rename_axis("patient_id").reset_index()


def _crp_early_auroc(df: pd.DataFrame) -> float:
    """AUROC of the highest CRP on days 0-3 alone for the target event after day 3."""
    if "crp_max_early" not in df:
        return np.nan
    event = _column(df, "event_day").astype(float)
    death = _column(df, "death_day").astype(float)
    at_risk = ~(event <= EARLY_CRP_DAY) & ~(death <= EARLY_CRP_DAY)
    at_risk &= _column(df, "crp_max_early").notna()
    y = event[at_risk] > EARLY_CRP_DAY
    if not 0 < y.sum() < len(y):
        return np.nan
    return float(roc_auc_score(y, _column(df, "crp_max_early")[at_risk]))


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
    grade2 = (_column(df, "icans_max_grade") >= 2)[known]
    low, high = np.quantile(score, [1 / 3, 2 / 3]) if len(score) else (np.nan, np.nan)
    bottom, top = grade2[score <= low], grade2[score > high]
    if min(len(bottom), len(top)) < MIN_PER_THIRD or not bottom.any():
        return np.nan
    return float(top.mean() / bottom.mean())


def _routine_metrics(df: pd.DataFrame) -> dict[str, float]:
    if "crp_peak" not in df:
        return {}
    crs = _column(df, "crs_max_grade")
    crs_days = _column(df, "first_crs_day")
    with_crs = crs_days.notna()
    lag = _column(df, "crp_peak_day") - crs_days

    def median(name: str, rows: pd.Series) -> float:
        return float(_column(df, name).loc[rows].median())

    return {
        "crp_peak_crs_1_2": median("crp_peak", crs.between(1, 2)),
        "crp_peak_crs_3plus": median("crp_peak", crs >= 3),
        "ferritin_peak_crs_1_2": median("ferritin_peak", crs.between(1, 2)),
        "ferritin_peak_crs_3plus": median("ferritin_peak", crs >= 3),
        "fever_first_at_crs_onset": float(
            (_column(df, "first_fever_day").loc[with_crs] == crs_days.loc[with_crs]).mean()
        ),
        "crp_peak_after_crs_onset": float(lag.loc[with_crs].median()),
        "crp_early_auroc": _crp_early_auroc(df),
    }


def metric_values(df: pd.DataFrame) -> dict[str, float]:
    """Every metric of :mod:`data.synthetic.targets` for one group of patients (one row each,
    the patients and outcomes tables merged)."""
    icans = _column(df, "icans_max_grade") >= 1
    onset = _column(df, "icans_onset_day").astype(float)
    duration = _column(df, "icans_resolution_day").astype(float) - onset
    cause = _column(df, "death_cause")
    other_death = cause.notna() & (cause != "icans")
    return {
        "icans_any": icans.mean(),
        "icans_3plus": _column(df, "severe_icans").mean(),
        "crs_any": (_column(df, "crs_max_grade") >= 1).mean(),
        "crs_3plus": (_column(df, "crs_max_grade") >= 3).mean(),
        "onset_median": cast(pd.Series, onset[icans]).median(),
        "duration_median": cast(pd.Series, duration[icans]).median(),
        "tocilizumab": (_column(df, "tocilizumab_doses") > 0).mean(),
        "steroids": _column(df, "dexamethasone_start_day").notna().mean(),
        "nrm": other_death.mean(),
        "icans_death": _column(df, "died_of_icans").mean(),
        "onset_after_14": (onset > 14).mean(),
        "easix_fc_icans_2plus_ratio": easix_fc_ratio(df),
    } | _routine_metrics(df)


def realism_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per published target whose group has at least :data:`MIN_PATIENTS` patients:
    the cohort's value, the range, whether it is inside, and the source."""
    groups = {"all": df} | {f: g for f, g in df.groupby("product_family") if f in FAMILIES}
    values = {name: metric_values(g) for name, g in groups.items() if len(g) >= MIN_PATIENTS}
    rows = []
    for t in TARGETS:
        if t.family not in values or t.metric not in values[t.family]:
            continue
        value = values[t.family][t.metric]
        rows.append(
            {
                "metric": t.metric,
                "group": t.family,
                "patients": len(groups[t.family]),
                "value": value,
                "low": t.low,
                "high": t.high,
                "within": bool(t.low <= value <= t.high),
                "source": t.source,
            }
        )
    return pd.DataFrame(rows)


def seed_phenotypes(df: pd.DataFrame) -> pd.Series:
    """Counts of the patients the source papers describe, which the cohort must contain."""
    grade = _column(df, "icans_max_grade")
    refractory_low_grade = _column(df, "steroid_refractory_icans") & (grade <= 2)
    late_without_crs = (
        (grade >= 4)
        & (_column(df, "icans_onset_day").astype(float) >= 12)
        & (_column(df, "crs_max_grade") == 0)
    )
    target = _column(df, "car_target")
    myeloid_cns = target.isin(["CLL1", "CD7", "CD123"]) & _column(df, "cns_involvement")
    return pd.Series(
        {
            "patients": len(df),
            "grade 1-2 steroid-refractory (Meng 2025)": int(refractory_low_grade.sum()),
            "grade >= 4, onset day >= 12, no CRS (Katsin 2024)": int(late_without_crs.sum()),
            "myeloid target with CNS involvement": int(myeloid_cns.sum()),
            "  of whom severe or refractory": int(
                (myeloid_cns & _column(df, "severe_or_refractory_icans")).sum()
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
            "disease",
            "car_target",
            "cns_involvement",
            *EASIX_FC_LABS,
        ],
    )
    outcomes = read_table(cohort_dir, "outcomes")
    df = patients.merge(outcomes, on="patient_id")
    daily = read_table(cohort_dir, "daily", ROUTINE_COLUMNS)
    df = df.merge(routine_summaries(daily), on="patient_id", how="left")
    grade_distribution = df["icans_max_grade"].value_counts(normalize=True).sort_index()

    auroc = None
    if "true_risk" in manifest["tables"]:
        m = landmark_labels(read_table(cohort_dir, "true_risk"), outcomes)
        rows = []
        for day, x in m.groupby("landmark_day"):
            y = _column(x, "event_after_landmark")
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
