"""Honest evaluation on held-out patients: per landmark day and overall, with bootstrap CIs.

The same rows are scored by the model, the baselines, the generator's true risk (when the
cohort has one) and the registry's current champion (when there is one), so the gap between the
model and the best possible (the true risk), and between the model and the champion it would
replace, are measured with a paired bootstrap: every replicate re-weights the same patients for
every predictor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from evaluation.metrics import (
    METRICS,
    PreparedScores,
    bootstrap_weights,
    calibration_bins,
    net_benefit,
    treat_all_net_benefit,
)
from features.landmarks import LandmarkDataset

TRUE_RISK = "true_risk"
MODEL = "model"
CHAMPION = "champion"  # the registry's current champion, scored on the same rows
# predictors other predictors are compared with, pairwise on the same bootstrap replicates
REFERENCES = {TRUE_RISK: None, CHAMPION: (MODEL,)}  # reference -> who is compared (None: all)


def subgroup_masks(ds: LandmarkDataset) -> dict[str, np.ndarray]:
    """Subgroups of the model card: CAR target, costimulation, CAR-T product (where recorded),
    disease, age < 12, sex (where recorded), CNS."""
    s = ds.subgroups
    out: dict[str, np.ndarray] = {}
    for column in ("car_target", "costimulatory_domain", "car_product", "disease"):
        if column in s.columns:
            for value in sorted(s[column].dropna().unique()):
                out[f"{column}={value}"] = (s[column] == value).to_numpy()
    if "age_years" in s.columns:
        age = s["age_years"].to_numpy(dtype=float)
        child = age < 12
        out["age<12 (CAPD)"], out["age>=12 (ICE)"] = child, ~child
        out["age 12-17"] = (age >= 12) & (age < 18)
        out["age 18-64"] = (age >= 18) & (age < 65)
        out["age>=65"] = age >= 65
    if "sex" in s.columns:
        for value in sorted(s["sex"].dropna().unique()):
            out[f"sex={value}"] = (s["sex"] == value).to_numpy()
    if "cns_involvement" in s.columns:
        cns = s["cns_involvement"].astype(bool).to_numpy()
        out["cns_involvement=yes"], out["cns_involvement=no"] = cns, ~cns
    return out


@dataclass
class Evaluation:
    """Metrics (long table), decision curves, calibration bins and the scored rows."""

    metrics: pd.DataFrame
    decision_curve: pd.DataFrame
    calibration: pd.DataFrame
    predictions: pd.DataFrame
    subgroups: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def value(self, predictor: str, metric: str, subset: str = "overall") -> float:
        row = self.metrics.query(
            "subset == @subset and predictor == @predictor and metric == @metric"
        )
        return float(row["estimate"].iloc[0]) if len(row) else float("nan")

    def flat_metrics(self) -> dict[str, float]:
        """``<predictor>.<subset>.<metric>`` -> estimate (for MLflow)."""
        out = {}
        # rows are namedtuples of the columns; pandas types them as bare tuples
        for r in cast("Iterable[Any]", self.metrics.itertuples(index=False)):
            key = f"{r.predictor}.{r.subset}.{r.metric}".replace("=", "_").replace(" ", "")
            if np.isfinite(r.estimate):
                out[key] = float(r.estimate)
        return out


def evaluate(
    ds: LandmarkDataset,
    predictions: dict[str, np.ndarray],
    n_boot: int,
    seed: int,
    thresholds: tuple[float, float, float],
) -> Evaluation:
    """Score every predictor on the same rows; CIs from ``n_boot`` patient-level replicates;
    the decision curves on ``np.arange(*thresholds)`` (start, stop, step)."""
    preds = dict(predictions)
    missing_truth = int(np.isnan(ds.true_risk).sum())
    if missing_truth == 0:
        preds[TRUE_RISK] = ds.true_risk  # only when every row has it: same rows for all
    y = ds.label.astype(float)
    subsets = {"overall": np.ones(len(y), dtype=bool)}
    subsets |= {f"L={d}": ds.landmark_day == d for d in np.unique(ds.landmark_day)}

    prepared = {
        (s, name): PreparedScores(y[mask], p[mask])
        for s, mask in subsets.items()
        for name, p in preds.items()
    }
    point = {key: sc.metrics() for key, sc in prepared.items()}
    weights = np.array(list(bootstrap_weights(ds.patient_id, n_boot, seed))).reshape(n_boot, len(y))
    reps = {
        (s, name): sc.metrics_batch(weights[:, subsets[s]]) for (s, name), sc in prepared.items()
    }

    rows = []
    for (s, name), est in point.items():
        mask = subsets[s]
        for metric in METRICS:
            draws = reps[(s, name)][metric]
            lo, hi = _ci(draws)
            rows.append(
                {
                    "subset": s,
                    "predictor": name,
                    "metric": metric,
                    "estimate": est[metric],
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_rows": int(mask.sum()),
                    "n_events": int(y[mask].sum()),
                }
            )
        for ref, compared in REFERENCES.items():
            if ref not in preds or name in (ref, TRUE_RISK) or (compared and name not in compared):
                continue
            for metric in ("auroc", "brier"):
                gap = reps[(s, name)][metric] - reps[(s, ref)][metric]
                lo, hi = _ci(gap)
                rows.append(
                    {
                        "subset": s,
                        "predictor": name,
                        "metric": f"{metric}_gap_to_{ref}",
                        "estimate": est[metric] - point[(s, ref)][metric],
                        "ci_low": lo,
                        "ci_high": hi,
                        "n_rows": int(mask.sum()),
                        "n_events": int(y[mask].sum()),
                    }
                )
    metrics = pd.DataFrame(rows)

    grid = np.arange(*thresholds)
    curves = [
        pd.DataFrame({"predictor": name, "threshold": grid, "net_benefit": net_benefit(y, p, grid)})
        for name, p in preds.items()
    ]
    curves.append(
        pd.DataFrame(
            {
                "predictor": "treat all",
                "threshold": grid,
                "net_benefit": treat_all_net_benefit(y, grid),
            }
        )
    )
    curves.append(
        pd.DataFrame(
            {"predictor": "treat none", "threshold": grid, "net_benefit": np.zeros_like(grid)}
        )
    )

    calib = []
    for s, mask in subsets.items():
        for name, p in preds.items():
            b = calibration_bins(y[mask], p[mask])
            calib.append(pd.DataFrame({"subset": s, "predictor": name, **b}))

    sub_rows = []
    for group, mask in subgroup_masks(ds).items():
        for name, p in preds.items():
            if mask.sum() == 0:
                continue
            scores = PreparedScores(y[mask], p[mask])
            m = scores.metrics()
            row = {
                "subgroup": group,
                "predictor": name,
                "n_rows": int(mask.sum()),
                "n_patients": len(np.unique(ds.patient_id[mask])),
                "n_events": int(y[mask].sum()),
                "auroc": m["auroc"],
                "brier": m["brier"],
                "calibration_intercept": m["calibration_intercept"],
                "calibration_slope": m["calibration_slope"],
                "observed_rate": float(y[mask].mean()),
                "mean_predicted": float(p[mask].mean()),
                "too_small": too_small(y[mask]),
            }
            if name == MODEL:  # intervals for the model (the same patient replicates)
                draws = scores.metrics_batch(weights[:, mask])
                for metric in ("auroc", "calibration_intercept", "calibration_slope"):
                    row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = _ci(draws[metric])
            sub_rows.append(row)
    table = pd.DataFrame(
        {"patient_id": ds.patient_id, "landmark_day": ds.landmark_day, "label": ds.label, **preds}
    )
    return Evaluation(
        metrics,
        pd.concat(curves, ignore_index=True),
        pd.concat(calib, ignore_index=True),
        table,
        pd.DataFrame(sub_rows),
        {
            "n_boot": n_boot,
            "n_patients": len(np.unique(ds.patient_id)),
            "n_rows": len(y),
            "n_events": int(y.sum()),
            "rows_without_true_risk": missing_truth,
        },
    )


MIN_SUBGROUP_EVENTS = 10  # fewer events (or non-events) than this: too small to judge


def too_small(y: np.ndarray) -> bool:
    """A subgroup with fewer than :data:`MIN_SUBGROUP_EVENTS` rows with and without the event:
    its AUROC and calibration intervals are too wide to judge the model there (a common rule
    of thumb; Riley et al., BMJ 2020, ask for far more to estimate calibration)."""
    events = int(np.sum(y))
    return events < MIN_SUBGROUP_EVENTS or len(y) - events < MIN_SUBGROUP_EVENTS


def _ci(draws: np.ndarray) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if len(draws) < 10:
        return float("nan"), float("nan")
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return float(lo), float(hi)


def ordered_subsets(names) -> list[str]:
    """'overall' first, then landmark subsets by day ('L=0', 'L=1', ...)."""
    days = sorted({n for n in names if n != "overall"}, key=lambda n: int(n.split("=")[1]))
    return ["overall", *days]
