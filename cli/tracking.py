"""``icans tracking start|stop|status``: the local shared MLflow tracking server.

A thin layer over :mod:`ops.tracking_server` (PostgreSQL backend store, artefacts served
by the server, everything under ``tracking.server_dir``; for local and development use). Ports
and directory come from the settings (``ICANS_TRACKING_SERVER_PORT``, ``ICANS_TRACKING_DB_PORT``,
``ICANS_TRACKING_SERVER_DIR`` or ``[settings]`` of ``--config``), so the three commands always
agree on which server they mean. Errors print one line (with the log's tail) and exit with 2.

``start`` leaves the servers running after it returns (that is its job); ``stop`` ends them. The
mlflow server's recorded process (the PID ``status`` prints) runs under :mod:`ops.supervisor`:
SIGTERM or SIGINT to it alone stops mlflow's launcher, uvicorn and its workers and frees the
port (:mod:`ops.tracking_server`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.guards import user_errors
from icans.config import load_settings

app = typer.Typer(
    help="A local shared MLflow tracking server on PostgreSQL (local/dev use; a centre points "
    "MLFLOW_TRACKING_URI at its own server).",
    no_args_is_help=True,
)

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file whose \\[settings] hold the ports and directory."),
]


@app.command("start")
@user_errors
def start_cmd(config: ConfigFile = None) -> None:
    """Start PostgreSQL and the MLflow server (what runs is kept); print the line to export."""
    from ops.tracking_server import start

    result = start(load_settings(config))
    started = ", ".join(result.started) if result.started else "nothing: it was running"
    typer.echo(f"{result.status.describe()}\nStarted: {started}.\nUse it from this shell with:")
    typer.echo(result.status.export_line())


@app.command("stop")
@user_errors
def stop_cmd(config: ConfigFile = None) -> None:
    """Stop the MLflow server and PostgreSQL; no process of either is left."""
    from ops.tracking_server import stop

    stopped = stop(load_settings(config))
    typer.echo(f"Stopped: {', '.join(stopped)}." if stopped else "Nothing was running.")


@app.command("status")
@user_errors
def status_cmd(config: ConfigFile = None) -> None:
    """Say what runs; exit code 0 when the server answers, 3 when it does not."""
    from ops.tracking_server import status

    now = status(load_settings(config))
    typer.echo(now.describe())
    if now.running:
        typer.echo(now.export_line())
    else:
        raise typer.Exit(code=3)
