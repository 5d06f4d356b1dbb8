"""What the commands share: the options that name a config file, a tracking store, a model or
an output file, and the progress display of long jobs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from icans.config import ServeSettings, Settings

DEFAULT = {name: field.default for name, field in Settings.model_fields.items()}
SERVE = {name: field.default for name, field in ServeSettings.model_fields.items()}
CHAMPION = f"models:/{DEFAULT['model_name']}@{DEFAULT['model_alias']}"


def progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


def stepper(bar: Progress):
    task = bar.add_task("starting", total=None)
    return lambda name: bar.update(task, description=name)


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        # rich reads [..] as markup: escaped so the table names show
        help="TOML file: \\[train] for training options, \\[settings] for paths/URIs.",
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        help=f"MLflow tracking URI (default: MLFLOW_TRACKING_URI, else {DEFAULT['tracking_uri']})."
    ),
]
ModelUri = Annotated[
    str | None,
    typer.Option(
        help="Registry URI: models:/<name>@<alias> or models:/<name>/<version> "
        f"(default: the champion, {CHAMPION})."
    ),
]
HtmlOut = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="HTML file to write (self-contained; written atomically; default under "
        "the artifacts directory).",
    ),
]
