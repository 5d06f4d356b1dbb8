"""The reviewers' questions about a model of several horizons (issue 28), answered on one
evaluation: how each horizon the model estimates does, and how early a threshold on one
horizon's risk flags the patients who will have the event (lead time, :mod:`evaluation.lead_time`).

Shared by the model report (:mod:`reports.horizon_sections`) and ``icans evaluate`` (console and
JSON), so both say the same figures for the same rows.

* **Per horizon**: day 28 is the main evaluation; each shorter horizon's
  :class:`~evaluation.held_out.Evaluation` is the model's risk within it against that horizon's
  own events and (synthetic cohorts) its exact true risk, on the same rows
  (:func:`training.fit.evaluate_horizons`, ``FitResult.horizons``). A model fitted for day 28
  alone (an older version, the tests' small models) has day 28 alone.
* **Lead time**: needs each row's event day, which the landmark rows do not carry (only whether
  the event falls in each window): it is read from the evaluated cohort's outcome table
  (``event_day``, :func:`event_days`), and checked against the rows' day-28 labels, so the
  figures never come from another cohort's outcomes.

Defaults (stated in the report and the command's output): the lead-time horizon is the next
72 hours when the model estimates it and it was evaluated (the horizon admission, ICU transfer
and escalation are decided on), else day 28; the threshold is :data:`DEFAULT_THRESHOLD`, the
risk at which the CDS Hooks card warns on day 28 by default (``cds.warning_at``,
:mod:`icans.config`; the shorter horizons' card thresholds have no default, a local decision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from cohort.reader import CohortMetadata
from cohort.store import read_table
from evaluation.held_out import MODEL, TRUE_RISK, Evaluation, ordered_subsets
from evaluation.lead_time import lead_time, lead_time_by_landmark, lead_time_curve
from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES, TARGET_HORIZON, horizon

DEFAULT_THRESHOLD = 0.10  # the CDS card's default day-28 warning threshold (cds.warning_at)
DEFAULT_HORIZON = "72h"  # when the model estimates it; else day 28
CURVE_THRESHOLDS = np.round(np.arange(0.01, 0.601, 0.01), 2)  # the plot's thresholds
THRESHOLD_RULE = "a risk strictly between 0 and 1 (0 < threshold < 1)"
# per-horizon metrics reported (and written by icans evaluate --json)
HORIZON_METRICS = (
    "auroc",
    "auroc_gap_to_true_risk",
    "calibration_slope",
    "calibration_intercept",
    "brier",
)


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float strictly between 0 and 1, else refused naming the rule (0 alerts
    every row and 1 none: neither is a threshold a team would act on)."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InvalidInputError("threshold", threshold, THRESHOLD_RULE) from None
    if not (0.0 < value < 1.0):  # NaN fails too
        raise InvalidInputError("threshold", threshold, THRESHOLD_RULE)
    return value


def estimated_horizons(model: Any) -> tuple[str, ...]:
    """The horizons ``model`` estimates, shortest first (a model from before horizons: day 28)."""
    return tuple(getattr(model, "horizons_", (TARGET_HORIZON.name,)))


def lead_horizon(name: str | None, estimated: tuple[str, ...]) -> str:
    """The horizon the lead time is computed on: ``name`` (a known horizon the model estimates,
    else refused naming the rule), or by default :data:`DEFAULT_HORIZON` when estimated, else
    day 28."""
    if name is None:
        return DEFAULT_HORIZON if DEFAULT_HORIZON in estimated else TARGET_HORIZON.name
    horizon(name)  # unknown: refused, naming the known ones
    if name not in estimated:
        raise InvalidInputError(
            "horizon", name, "a horizon this model estimates: " + ", ".join(estimated)
        )
    return name


def event_days(cohort: CohortMetadata) -> tuple[pd.Series | None, str]:
    """The evaluated cohort's event day per patient (:func:`events_of`), read from its outcome
    table; None and why when it cannot be read."""
    try:
        outcomes = read_table(Path(cohort.directory), "outcomes", ["patient_id", "event_day"])
    except (OSError, KeyError, ValueError) as exc:
        return None, f"the cohort's outcome table could not be read ({type(exc).__name__})"
    return events_of(outcomes), ""


def events_of(outcomes: pd.DataFrame) -> pd.Series:
    """The event day per patient (``patient_id`` index; NaN: no event by day 28) of a cohort's
    outcome table."""
    days = pd.Series(outcomes["event_day"].to_numpy(float), index=outcomes["patient_id"].to_numpy())
    return cast(pd.Series, days[~days.index.duplicated()])


@dataclass
class HorizonReview:
    """Each estimated horizon's evaluation and the lead time of a threshold on one of them."""

    estimated: tuple[str, ...]  # the model's horizons, shortest first
    evaluations: dict[str, Evaluation]  # the estimated horizons that were evaluated
    horizon: str  # the lead time's horizon
    threshold: float
    horizon_default: bool  # the horizon was the default (not chosen)
    threshold_default: bool
    lead: dict[str, float] = field(default_factory=dict)  # lead_time(); empty: not computed
    by_landmark: pd.DataFrame = field(default_factory=pd.DataFrame)
    curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: str = ""  # why there is no lead time (empty when there is)

    def record(self) -> dict[str, Any]:
        """Everything as plain JSON values (NaN as None): what ``icans evaluate --json`` writes."""
        out: dict[str, Any] = {"horizons": {}, "estimated_horizons": list(self.estimated)}
        for name, ev in self.evaluations.items():
            out["horizons"][name] = {
                "label": horizon(name).label,
                "n_rows": ev.meta.get("n_rows"),
                "n_events": ev.meta.get("n_events"),
                "by_subset": horizon_metrics(ev).to_dict("records"),
            }
        out["lead_time"] = {
            "horizon": self.horizon,
            "horizon_label": horizon(self.horizon).label,
            "threshold": self.threshold,
            "horizon_is_default": self.horizon_default,
            "threshold_is_default": self.threshold_default,
            "overall": self.lead or None,
            "by_landmark": self.by_landmark.to_dict("records"),
            "curve": self.curve.to_dict("records"),
            "not_computed_because": self.missing or None,
        }
        return _json_safe(out)


def horizon_metrics(ev: Evaluation) -> pd.DataFrame:
    """One row per subset (all landmark days, then each day): rows, events, the model's
    :data:`HORIZON_METRICS` with their 95% interval, and the true risk's AUROC (NaN without)."""
    m = ev.metrics.set_index(["subset", "predictor", "metric"])
    rows = []
    for s in ordered_subsets(ev.metrics["subset"].unique()):
        first = ev.metrics[ev.metrics["subset"] == s].iloc[0]
        row: dict[str, Any] = {
            "subset": s,
            "landmark_day": None if s == "overall" else int(s[2:]),
            "n_rows": int(first["n_rows"]),
            "n_events": int(first["n_events"]),
        }
        for metric in HORIZON_METRICS:
            key = (s, MODEL, metric)
            r = m.loc[key] if key in m.index else None
            row[metric] = float(r["estimate"]) if r is not None else np.nan
            row[f"{metric}_ci_low"] = float(r["ci_low"]) if r is not None else np.nan
            row[f"{metric}_ci_high"] = float(r["ci_high"]) if r is not None else np.nan
        key = (s, TRUE_RISK, "auroc")
        row["true_risk_auroc"] = float(m.loc[key]["estimate"]) if key in m.index else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def review_horizons(
    model: Any,
    evaluation: Evaluation,
    horizons: Mapping[str, Evaluation] | None,
    events: pd.Series | None,
    *,
    horizon_name: str | None = None,
    threshold: float | None = None,
    missing_events: str = "",
) -> HorizonReview:
    """The review of ``model`` on the rows of ``evaluation`` (day 28) and ``horizons`` (the
    shorter horizons' evaluations of the same rows, ``FitResult.horizons``; None or missing
    ones: not evaluated), with the lead time of ``threshold`` on ``horizon_name`` (defaults:
    module docstring) from ``events`` (:func:`event_days`; None: no lead time, because
    ``missing_events``). A bad horizon or threshold is refused before anything is computed."""
    estimated = estimated_horizons(model)
    value = DEFAULT_THRESHOLD if threshold is None else check_threshold(threshold)
    lead_horizon(horizon_name, estimated)  # refused before anything is computed
    given = {
        h: evaluation if h == TARGET_HORIZON.name else (horizons or {}).get(h)
        for h in HORIZON_NAMES
        if h in estimated
    }
    evaluations = {h: ev for h, ev in given.items() if ev is not None}
    # the default among the evaluated horizons (a report given day 28's evaluation alone)
    name = lead_horizon(horizon_name, estimated if horizon_name else tuple(evaluations))
    review = HorizonReview(
        estimated,
        evaluations,
        name,
        value,
        horizon_name is None,
        threshold is None,
    )
    if name not in review.evaluations:
        review.missing = f"the {name} horizon's evaluation was not given to this report"
        return review
    rows = review.evaluations[name].predictions
    per_row, problem = _row_event_days(rows, evaluation, events, missing_events)
    if per_row is None:
        review.missing = problem
        return review
    patient, day, risk = (
        rows["patient_id"].to_numpy(),
        rows["landmark_day"].to_numpy(),
        rows[MODEL].to_numpy(float),
    )
    review.lead = lead_time(patient, day, risk, per_row, value)
    review.by_landmark = lead_time_by_landmark(day, risk, per_row, value, name)
    grid = np.union1d(CURVE_THRESHOLDS, [value])
    review.curve = lead_time_curve(patient, day, risk, per_row, grid)
    return review


def _row_event_days(
    rows: pd.DataFrame, evaluation: Evaluation, events: pd.Series | None, missing: str
) -> tuple[np.ndarray | None, str]:
    """Each row's event day from ``events``, or None and why: no outcome table, patients it
    lacks, or event days that do not give the rows' own day-28 labels (another cohort's)."""
    if events is None:
        return None, missing or "the evaluated cohort's outcome table was not available"
    patients = rows["patient_id"].to_numpy()
    lacking = int((~np.isin(patients, events.index.to_numpy())).sum())
    if lacking:
        return None, f"{lacking:,} evaluated rows have no patient in the cohort's outcome table"
    per_row = events.reindex(patients).to_numpy(float)
    labels = evaluation.predictions["label"].to_numpy()
    same_rows = len(labels) == len(per_row) and bool(
        (evaluation.predictions["patient_id"].to_numpy() == rows["patient_id"].to_numpy()).all()
    )
    if not same_rows:
        return None, "the horizons' evaluations are not of the same rows"
    if (
        TARGET_HORIZON.event(per_row, rows["landmark_day"].to_numpy()) != labels.astype(bool)
    ).any():
        return None, "the cohort's outcome table does not give the evaluated rows' day-28 labels"
    return per_row, ""


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
