"""``icans monitor``: the command over :func:`monitoring.monitor.run_monitor`.

Registered in :mod:`cli.main` (with its ``user_errors`` and ``sigterm_unwinds`` wrappers).
Exit codes: 0 no threshold crossed; 1 at least one crossed (listed on stdout and in
``monitor.json``); 2 bad input (an option, the outcomes file, no predictions in the window, a
model version without a training reference), with one line naming the field, value and rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from icans.config import MonitorSettings, load_settings

_D = {name: field.default for name, field in MonitorSettings.model_fields.items()}


Limit = float | None  # a threshold's option: None keeps the setting


def _limit(name: str, text: str):
    """The option of one threshold, its help naming the setting's default."""
    return typer.Option(help=f"{text} (default {_D[name]}).")


def monitor_cmd(
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Prediction log directory (default: the prediction_log_dir setting)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="First UTC day of the window, YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last UTC day of the window, YYYY-MM-DD (default today).")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(help="The last N days up to --until (default 28; not with --since)."),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(
            help="Only this model version (default: every version in the window, each against "
            "its own training reference)."
        ),
    ] = None,
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="CSV or Parquet of known outcomes: request_id, outcome (0/1, day 28), "
            "optionally outcome_known_at and event_day (the event's day since infusion: each "
            "horizon's outcome then counts once its window has passed)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for monitor.html, monitor.json and Evidently's drift reports "
            "(default <artifacts>/monitor)."
        ),
    ] = None,
    max_drifted_share: Annotated[
        Limit, _limit("max_drifted_share", "Largest share of inputs drifted")
    ] = None,
    max_risk_psi: Annotated[
        Limit, _limit("max_risk_psi", "Largest PSI of the predicted risks")
    ] = None,
    min_estimated_auroc: Annotated[
        Limit, _limit("min_estimated_auroc", "Lowest AUROC estimated without outcomes")
    ] = None,
    min_auroc: Annotated[Limit, _limit("min_auroc", "Lowest realised AUROC")] = None,
    max_calibration_error: Annotated[
        Limit, _limit("max_calibration_error", "Largest realised calibration error (ICI)")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file; \\[settings] monitor_* set the thresholds."),
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: the setting).")
    ] = None,
) -> None:
    """Compare a window of served predictions with each model version's training reference:
    input drift (Evidently), predicted-risk drift, a label-free AUROC estimate, and realised
    performance once outcomes are joined. Exit code 1 when a threshold is crossed."""
    from monitoring.monitor import run_monitor
    from monitoring.window import resolve_window

    settings = load_settings(
        config,
        tracking_uri=tracking_uri,
        monitor_max_drifted_share=max_drifted_share,
        monitor_max_risk_psi=max_risk_psi,
        monitor_min_estimated_auroc=min_estimated_auroc,
        monitor_min_auroc=min_auroc,
        monitor_max_calibration_error=max_calibration_error,
    )
    window = resolve_window(since, until, days)
    result = run_monitor(
        log_dir or settings.prediction_log_dir,
        window,
        out or settings.artifacts_dir / "monitor",
        settings,
        model_version=model_version,
        outcomes=outcomes,
    )
    for v in result.versions:
        drifted = ", ".join(c.column for c in v.drift.drifted) or "none"
        typer.echo(
            f"{v.name} v{v.version}: {v.predictions:,} predictions in {window}; inputs "
            f"drifted: {drifted}; PSI of risk {v.risk.psi:.3f}; estimated AUROC "
            f"{v.estimate.expected_auroc:.3f} (reference realised "
            f"{v.reference_realised.auroc:.3f})"
            + (
                f"; outcomes joined {v.join.joined:,}, awaiting {v.join.awaiting:,}"
                if v.join
                else ""
            )
            + (
                f"; realised AUROC {v.realised.auroc:.3f}, ICI {v.realised.ici:.3f}"
                if v.realised
                else ""
            )
        )
        for r in v.horizons:
            typer.echo(
                f"  {r.horizon}: PSI of risk {r.risk.psi:.3f}; estimated AUROC "
                f"{r.estimate.expected_auroc:.3f}"
                + ("" if r.known is None else f"; outcomes known {r.known:,}")
                + ("" if r.realised is None else f", realised AUROC {r.realised.auroc:.3f}")
            )
        typer.echo(v.intended_use)
    for v, check in result.crossed:
        typer.echo(f"THRESHOLD CROSSED: {v.name} v{v.version}: {check.describe()}")
    typer.echo(str(result.files["monitor.html"]))
    typer.echo(str(result.files["monitor.json"]))
    if result.exit_code:
        raise typer.Exit(code=result.exit_code)
