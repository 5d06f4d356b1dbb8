"""Summaries of a generated cohort: incidence by product family against the published ranges,
grade distribution, onset days, and how well the true risk discriminates at landmark days."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cohort.reader import CohortMetadata, read_metadata
from cohort.store import read_manifest, read_table
from data.synthetic.parameters import FAMILIES, PUBLISHED_SEVERE_ICANS_RANGE


@dataclass
class CohortSummary:
    metadata: CohortMetadata
    by_family: pd.DataFrame
    grade_distribution: pd.Series
    onset: pd.DataFrame
    true_risk_auroc: pd.DataFrame | None


def landmark_labels(true_risk: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """True-risk rows with the realised label: target event after the landmark day."""
    m = true_risk.merge(outcomes[["patient_id", "event_day"]], on="patient_id")
    m["event_after_landmark"] = m["event_day"].notna() & (m["event_day"] > m["landmark_day"])
    return m


def summarise(cohort_dir: Path) -> CohortSummary:
    manifest = read_manifest(cohort_dir)
    patients = read_table(
        cohort_dir, "patients", ["patient_id", "product_family", "disease", "car_target"]
    )
    outcomes = read_table(cohort_dir, "outcomes")
    df = patients.merge(outcomes, on="patient_id")
    g = df.groupby("product_family")
    by_family = pd.DataFrame(
        {
            "patients": g.size(),
            "any_icans": g["icans_max_grade"].apply(lambda x: (x >= 1).mean()),
            "grade_3_plus": g["severe_icans"].mean(),
            "steroid_refractory": g["steroid_refractory_icans"].mean(),
            "target": g["severe_or_refractory_icans"].mean(),
            "grade_1_share_of_icans": g["icans_max_grade"].apply(
                lambda x: (x == 1).sum() / max((x >= 1).sum(), 1)
            ),
            "icans_death": g["died_of_icans"].mean(),
            "any_crs": g["crs_max_grade"].apply(lambda x: (x >= 1).mean()),
        }
    ).reindex([f for f in FAMILIES if f in g.groups])
    published = pd.DataFrame(PUBLISHED_SEVERE_ICANS_RANGE, index=["low", "high", "source"]).T
    by_family["published_grade_3_plus"] = [
        f"{published.loc[f, 'low']:.0%}-{published.loc[f, 'high']:.0%}" for f in by_family.index
    ]
    by_family["within_range"] = [
        published.loc[f, "low"] <= v <= published.loc[f, "high"]
        for f, v in by_family["grade_3_plus"].items()
    ]

    grade_distribution = df["icans_max_grade"].value_counts(normalize=True).sort_index()
    cd19_lymphoma = df[
        (df["car_target"] == "CD19") & df["disease"].isin(["LBCL", "PMBCL", "MCL", "FL"])
    ]
    onset = pd.DataFrame(
        {
            "median_onset_day": [
                df["icans_onset_day"].median(),
                cd19_lymphoma["icans_onset_day"].median(),
            ],
            "new_onset_after_day_14": [
                (df["icans_onset_day"] > 14).mean(),
                (cd19_lymphoma["icans_onset_day"] > 14).mean(),
            ],
        },
        index=["all", "CD19 lymphoma"],
    )

    auroc = None
    if "true_risk" in manifest["tables"]:
        m = landmark_labels(read_table(cohort_dir, "true_risk"), outcomes)
        rows = []
        for day, x in m.groupby("landmark_day"):
            y = x["event_after_landmark"]
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
        read_metadata(cohort_dir, manifest), by_family, grade_distribution, onset, auroc
    )
