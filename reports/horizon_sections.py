"""The reviewers' report on the horizons (issue 28): performance per horizon the model estimates,
and the lead time of alerts on a threshold, from a :class:`reports.horizon_review.HorizonReview`.

Both are counted on the report's evaluated rows (held-out patients, or every row of another
cohort), so they read beside the day-28 tables of "Performance by landmark day".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from evaluation.held_out import MODEL, TRUE_RISK
from icans.horizons import TARGET_HORIZON, horizon
from reports import html as h
from reports import plots
from reports.horizon_review import DEFAULT_HORIZON, HorizonReview
from reports.horizon_review import horizon_metrics as metrics_table

EARLY_DAYS = (3, 7)  # the landmark days the short horizons are compared on (issue 28)


def _cell(r: Any, metric: str) -> str:
    """'estimate (low to high)' from a :func:`horizon_metrics` row; '-' when not finite."""
    text = h.num(r[metric])
    low, high = r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
    if text != "-" and np.isfinite(low) and np.isfinite(high):
        text += f" ({low:.3f} to {high:.3f})"
    return text


def _title(name: str) -> str:
    return f"{horizon(name).label} ({name})"


METRIC_HEADER = [
    "rows",
    "events",
    "AUROC",
    "true-risk AUROC",
    "AUROC gap to true risk",
    "calibration slope",
    "calibration intercept",
    "Brier",
]


def _metric_cells(r: Any) -> list[str]:
    return [
        f"{int(r['n_rows']):,}",
        f"{int(r['n_events']):,}",
        _cell(r, "auroc"),
        h.num(r["true_risk_auroc"]),
        _cell(r, "auroc_gap_to_true_risk"),
        _cell(r, "calibration_slope"),
        _cell(r, "calibration_intercept"),
        h.num(r["brier"]),
    ]


def early_days_auroc(review: HorizonReview, days: tuple[int, int] = EARLY_DAYS) -> list[list[str]]:
    """Per evaluated horizon, the model's and the true risk's AUROC on the landmark rows of
    ``days`` (inclusive) pooled, against that horizon's events (point estimates)."""
    out = []
    for name, ev in review.evaluations.items():
        rows = ev.predictions
        at = rows["landmark_day"].between(*days).to_numpy()
        y = rows["label"].to_numpy()[at]
        cells = [_title(name), f"{int(at.sum()):,}", f"{int(y.sum()):,}"]
        for predictor in (MODEL, TRUE_RISK):
            has = predictor in rows.columns and 0 < y.sum() < len(y)
            score = rows[predictor].to_numpy(float)[at] if has else None
            cells.append(h.num(roc_auc_score(y, score)) if score is not None else "-")
        out.append(cells)
    return out


def horizons_section(review: HorizonReview, note: str = plots.NOTE) -> str:
    """Every horizon the model estimates: all landmark days together, then each day, against
    the horizon's own events and true risk; the short horizons on days 3-7; calibration by
    decile per horizon (all days; per day: the slope and intercept in the tables)."""
    labels = ", ".join(_title(n) for n in review.estimated)
    parts = [
        h.p(
            f"The model estimates the risk {labels}. Each horizon is judged on the same "
            "landmark rows against its own events (the event on the days after the landmark "
            "day that the window covers, deaths from other causes as today: no event) and, "
            "from a synthetic cohort, against its own exact true risk. Cells are estimate (95% "
            "patient-level bootstrap CI); the gap is model minus true risk."
        )
    ]
    if review.estimated == (TARGET_HORIZON.name,):
        parts.append(
            h.p(
                "This model was fitted for day 28 alone (a version from before the horizons, "
                'or a configuration with horizons = ["day28"]): day 28 is its only horizon.'
            )
        )
    lacking = [n for n in review.estimated if n not in review.evaluations]
    if lacking:
        parts.append(
            h.p("Not evaluated in this report: " + ", ".join(_title(n) for n in lacking) + ".")
        )
    tables = {name: metrics_table(ev) for name, ev in review.evaluations.items()}
    overall = [[_title(n), *_metric_cells(t.iloc[0])] for n, t in tables.items()]
    parts.append(
        "<h3>All landmark days</h3>" + h.table(["horizon", *METRIC_HEADER], overall, "horizons")
    )
    parts.append(
        f"<h3>Landmark days {EARLY_DAYS[0]}-{EARLY_DAYS[1]} pooled</h3>"
        + h.p(
            "Where the short horizons matter most: each horizon's risk against its own events "
            "on the rows of these days together (point estimates)."
        )
        + h.table(
            ["horizon", "rows", "events", "AUROC", "true-risk AUROC"],
            early_days_auroc(review),
            "horizons-early",
        )
    )
    for name, table in tables.items():
        days = [
            [str(int(r["landmark_day"])), *_metric_cells(r)]
            for r in table.iloc[1:].to_dict("records")
        ]
        parts.append(
            f"<h3>{h.e(_title(name))}, by landmark day</h3>"
            + h.table(["landmark day", *METRIC_HEADER], days, f"horizon-{name}")
        )
    if len(review.evaluations) > 1:  # day 28's alone is under "Performance by landmark day"
        fig = plots.horizons_calibration_figure(review.evaluations, note=note)
        parts.append(h.img(plots.to_png(fig), "Calibration by decile per horizon"))
    return "".join(parts)


def lead_time_section(review: HorizonReview, synthetic: bool, note: str = plots.NOTE) -> str:
    """The first alert at or above the threshold on one horizon's risk: patients (overall), per
    landmark day, and across thresholds (figure); the horizon and threshold stated."""
    name, t = review.horizon, review.threshold
    chosen = (
        f"Horizon: the risk {_title(name)}"
        + (
            f" (the default: {DEFAULT_HORIZON} when the model estimates it, else day 28)"
            if review.horizon_default
            else " (chosen)"
        )
        + f". Threshold: {t:g}"
        + (
            " (the default: the CDS Hooks card's default warning threshold on day 28; the "
            "shorter horizons' card thresholds are a local decision)"
            if review.threshold_default
            else " (chosen)"
        )
        + ". 'icans evaluate --horizon --threshold' answers for any other."
    )
    parts = [
        h.p(
            "When a team acts on every score at or above a threshold: how many days before "
            "the event the first alert came, what share of the patients who had the event were "
            "alerted before their event day, and how many patients were alerted per patient "
            "alerted who had it (1 is a perfect alarm). Only the scored landmark days count: "
            "an alert a daily score would give between two landmark days is first seen on the "
            "next one. Decision support only: an alert asks for a look at the patient, it "
            "does not decide treatment."
        ),
        h.p(chosen),
    ]
    if synthetic:
        parts.append(
            h.p(
                "Counted on SYNTHETIC patients: what alerting would give if the generator's "
                "world were true, not clinical evidence of it."
            )
        )
    if not review.lead:
        return "".join(parts) + h.p(f"No lead time in this report: {review.missing}.")
    a = review.lead
    facts = [
        ("patients with the event by day 28", f"{a['event_patients']:,}"),
        (
            "alerted before their event day",
            f"{a['alerted_before_event']:,} ({h.num(a['share_alerted_before_event'], '{:.1%}')})",
        ),
        (
            "days from first alert to the event, median (quartiles)",
            f"{h.num(a['lead_time_median_days'], '{:.1f}')} "
            f"({h.num(a['lead_time_q1_days'], '{:.1f}')} to "
            f"{h.num(a['lead_time_q3_days'], '{:.1f}')})",
        ),
        ("patients alerted at least once", f"{a['alerted_patients']:,}"),
        ("alerted without the event", f"{a['alerted_without_event']:,}"),
        ("alerted patients per event patient alerted", h.num(a["alerted_per_event_alerted"])),
    ]
    parts.append("<h3>All landmark days (patients)</h3>" + h.table([], facts, "lead-time"))
    parts.append(
        "<h3>By landmark day (rows)</h3>"
        + h.p(
            f"On each landmark day, the rows alerted, and of the rows with the event "
            f"{horizon(name).label} of that day, the share alerted (sensitivity); of the "
            "alerted rows, the share with it (positive predictive value); and the median "
            "days from the landmark to the event of the alerted rows that had it."
        )
        + h.table(LANDMARK_HEADER, landmark_rows(review.by_landmark), "lead-time-by-landmark")
    )
    fig = plots.lead_time_figure(review.curve, t, horizon(name).label, note=note)
    parts.append(h.img(plots.to_png(fig), f"Lead time across thresholds, {name}"))
    return "".join(parts)


LANDMARK_HEADER = [
    "landmark day",
    "rows",
    "events in the window",
    "alerts",
    "sensitivity",
    "positive predictive value",
    "median days to the event (alerted)",
]


def landmark_rows(table: pd.DataFrame) -> list[list[str]]:
    """The cells of :func:`evaluation.lead_time.lead_time_by_landmark`'s table as shown."""
    return [
        [
            str(int(r["landmark_day"])),
            f"{int(r['rows']):,}",
            f"{int(r['events_in_window']):,}",
            f"{int(r['alerts']):,}",
            h.num(r["sensitivity"]),
            h.num(r["ppv"]),
            h.num(r["median_days_to_event"], "{:.1f}"),
        ]
        for r in table.to_dict("records")
    ]
