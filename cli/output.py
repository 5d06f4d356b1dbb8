"""What the command line prints: the cohort summary and the evaluation tables (rich)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from evaluation.held_out import ordered_subsets

# Pipes and CI logs get a fixed width wide enough for the summary tables.
console = Console() if sys.stdout.isatty() else Console(width=130)


def print_summary(s: Any) -> None:
    """A generated cohort's realism summary (:func:`data.synthetic.summary.summarise`)."""
    console.print(f"[bold]{s.metadata.describe()}[/] (SYNTHETIC data, not patients)")
    t = Table(title="Realism against published ranges (data/synthetic/targets.py)")
    for c in ("metric", "group", "n", "value", "published", "in range", "source"):
        t.add_column(c, justify="left" if c in ("metric", "group", "source") else "right")
    for _, row in s.realism.iterrows():
        share = row["high"] <= 1.0
        shown = (lambda v: f"{v:.1%}") if share else (lambda v: f"{v:g}")
        t.add_row(
            row["metric"],
            row["group"],
            f"{row['patients']:,}",
            shown(row["value"]),
            f"{shown(row['low'])}-{shown(row['high'])}",
            "yes"
            if row["within"]
            else ("[yellow]NO: known departure[/]" if row["departure"] else "[red]NO[/]"),
            f"{row['source']}; departure: {row['departure']}"
            if row["departure"]
            else row["source"],
        )
    if s.realism.empty:
        from data.synthetic.summary import MIN_PATIENTS

        console.print(
            f"Realism: no product family has the {MIN_PATIENTS} patients a stable rate needs."
        )
    else:
        console.print(t)
    console.print(
        "ICANS max grade distribution: "
        + ", ".join(f"{g}: {v:.1%}" for g, v in s.grade_distribution.items())
    )
    console.print(
        "Patients like the source papers': "
        + "; ".join(f"{k.strip()}: {v:,}" for k, v in s.seed_phenotypes.items())
    )
    if s.true_risk_auroc is not None:
        t = Table(title="True risk by landmark day (event after the landmark, through day 28)")
        for c in ["landmark day", "at risk", "events after", "mean true risk", "AUROC"]:
            t.add_column(c, justify="right")
        for day, row in s.true_risk_auroc.iterrows():
            t.add_row(
                str(day),
                f"{int(row['at_risk']):,}",
                f"{int(row['events_after']):,}",
                f"{row['mean_true_risk']:.3f}",
                f"{row['auroc']:.3f}",
            )
        console.print(t)


def print_evaluation(ev: Any, title: str, synthetic: bool = True) -> None:
    """Model vs true risk per landmark (95% bootstrap CIs), then the baselines overall."""
    m = ev.metrics.set_index(["subset", "predictor", "metric"])

    def cell(subset: str, predictor: str, metric: str, ci: bool = True) -> str:
        if (subset, predictor, metric) not in m.index:
            return "-"
        r = m.loc[(subset, predictor, metric)]
        if not np.isfinite(r["estimate"]):
            return "-"
        text = f"{r['estimate']:.3f}"
        if ci and np.isfinite(r["ci_low"]):
            text += f" ({r['ci_low']:.3f}-{r['ci_high']:.3f})"
        return text

    t = Table(title=f"{title}: model vs true risk" + (" (SYNTHETIC data)" if synthetic else ""))
    for c in (
        "landmark",
        "rows",
        "events",
        "AUROC model",
        "AUROC true risk",
        "gap",
        "cal. slope",
        "cal. intercept",
        "Brier",
    ):
        t.add_column(c, justify="right")
    subsets = ordered_subsets(s for s, _, _ in m.index)
    for s in subsets:
        r = m.loc[(s, "model", "auroc")]
        t.add_row(
            s.replace("L=", "day "),
            f"{int(r['n_rows']):,}",
            f"{int(r['n_events']):,}",
            cell(s, "model", "auroc"),
            cell(s, "true_risk", "auroc", ci=False),
            cell(s, "model", "auroc_gap_to_true_risk"),
            cell(s, "model", "calibration_slope"),
            cell(s, "model", "calibration_intercept", ci=False),
            cell(s, "model", "brier", ci=False),
        )
    console.print(t)
    base = [p for p in ("logistic", "m_easix") if ("overall", p, "auroc") in m.index]
    if base:
        console.print(
            "Baselines, all landmarks: "
            + "; ".join(f"{p} AUROC {cell('overall', p, 'auroc')}" for p in base)
        )


def print_horizons(review: Any, synthetic: bool = True) -> None:
    """Every horizon the model estimates (all landmark days, then AUROC by day), then the lead
    time of the threshold (:class:`reports.horizon_review.HorizonReview`)."""
    from icans.horizons import horizon
    from reports.horizon_review import horizon_metrics

    def ci(r: Any, metric: str) -> str:
        if not np.isfinite(r[metric]):
            return "-"
        low, high = r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
        text = f"{r[metric]:.3f}"
        return text + (f" ({low:.3f}-{high:.3f})" if np.isfinite(low) else "")

    def num(x: Any, fmt: str = "{:.3f}") -> str:
        return fmt.format(x) if x is not None and np.isfinite(x) else "-"

    tables = {name: horizon_metrics(ev) for name, ev in review.evaluations.items()}
    suffix = " (SYNTHETIC data)" if synthetic else ""
    t = Table(title=f"Every horizon the model estimates, all landmark days{suffix}")
    for c in ("horizon", "rows", "events", "AUROC model", "AUROC true risk", "gap", "cal. slope"):
        t.add_column(c, justify="right")
    for name, table in tables.items():
        r = table.iloc[0]
        t.add_row(
            name,
            f"{int(r['n_rows']):,}",
            f"{int(r['n_events']):,}",
            ci(r, "auroc"),
            num(r["true_risk_auroc"]),
            ci(r, "auroc_gap_to_true_risk"),
            ci(r, "calibration_slope"),
        )
    console.print(t)
    t = Table(title="AUROC by landmark day and horizon: model (true risk)")
    t.add_column("landmark", justify="right")
    for name in tables:
        t.add_column(name, justify="right")
    first = next(iter(tables.values()))
    for k in range(1, len(first)):
        cells = [
            f"{t_.iloc[k]['auroc']:.3f} ({num(t_.iloc[k]['true_risk_auroc'])})"
            if np.isfinite(t_.iloc[k]["auroc"])
            else "-"
            for t_ in tables.values()
        ]
        t.add_row(f"day {int(first.iloc[k]['landmark_day'])}", *cells)
    console.print(t)

    why = " (default: the CDS card's day-28 warning threshold)" if review.threshold_default else ""
    console.print(
        f"Lead time: first alert with the risk {horizon(review.horizon).label} "
        f"({review.horizon}) >= {review.threshold:g}{why}."
    )
    if not review.lead:
        console.print(f"No lead time: {review.missing}.")
        return
    a = review.lead
    console.print(
        f"{a['alerted_before_event']:,} of {a['event_patients']:,} patients with the event "
        f"alerted before their event day ({num(a['share_alerted_before_event'], '{:.1%}')}); "
        f"days ahead median {num(a['lead_time_median_days'], '{:.1f}')} (quartiles "
        f"{num(a['lead_time_q1_days'], '{:.1f}')}-{num(a['lead_time_q3_days'], '{:.1f}')}); "
        f"{a['alerted_patients']:,} patients alerted, {a['alerted_without_event']:,} without "
        f"the event: {num(a['alerted_per_event_alerted'], '{:.2f}')} alerted per event alerted."
    )
    t = Table(title=f"Lead time by landmark day ({review.horizon} >= {review.threshold:g})")
    for c in (
        "landmark",
        "rows",
        "events in window",
        "alerts",
        "sensitivity",
        "PPV",
        "median days to event",
    ):
        t.add_column(c, justify="right")
    for r in review.by_landmark.to_dict("records"):
        t.add_row(
            f"day {int(r['landmark_day'])}",
            f"{int(r['rows']):,}",
            f"{int(r['events_in_window']):,}",
            f"{int(r['alerts']):,}",
            num(r["sensitivity"]),
            num(r["ppv"]),
            num(r["median_days_to_event"], "{:.1f}"),
        )
    console.print(t)
