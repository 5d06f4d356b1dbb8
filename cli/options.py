"""What the commands share: the options that name a config file, a tracking store, a model or
an output file, and the progress display of long jobs."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from icans.config import ServeSettings, Settings
from icans.progress import PROGRESS_LOGGER

DEFAULT = {name: field.default for name, field in Settings.model_fields.items()}
SERVE = {name: field.default for name, field in ServeSettings.model_fields.items()}
CHAMPION = f"models:/{DEFAULT['model_name']}@{DEFAULT['model_alias']}"


class StageLines:
    """Progress as plain lines, for a log file or CI (stderr is not a terminal, so a live bar
    would print nothing): a line when a stage starts, with the wall time since the job started,
    a line at each quarter of a counted stage, and the total at the end. The differences between
    successive lines are the stages' timings. The same calls as :class:`rich.progress.Progress`
    (``add_task``, ``update``, ``advance``), so the commands use either."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.started = time.perf_counter()
        self.tasks: list[dict] = []

    def line(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[{elapsed:7.1f} s] {text}", file=self.stream, flush=True)

    def add_task(self, description: str, total: float | None = None) -> TaskID:
        self.tasks.append({"description": description, "total": total, "done": 0, "quarter": 0})
        self.line(description if total is None else f"{description} ({total:,.0f})")
        return TaskID(len(self.tasks) - 1)

    def update(self, task: TaskID, description: str) -> None:
        self.tasks[task]["description"] = description
        self.line(description)

    def advance(self, task: TaskID, k: float = 1) -> None:
        t = self.tasks[task]
        t["done"] += k
        if t["total"]:
            quarter = int(4 * t["done"] / t["total"])
            if quarter > t["quarter"]:
                t["quarter"] = quarter
                self.line(f"{t['description']}: {t['done']:,.0f} of {t['total']:,.0f}")

    def note(self, message: str) -> None:
        """A sub-step reported by the library (:mod:`icans.progress`)."""
        self.line(f"  {message}")

    def __enter__(self) -> StageLines:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None and self.tasks:
            self.line("done")


class BarProgress(Progress):
    """The live bar in a terminal; a sub-step reported by the library replaces the description
    of the latest task after its stage name."""

    def note(self, message: str) -> None:
        if self.task_ids:
            task = self.task_ids[-1]
            stage = self._tasks[task].fields.setdefault("stage", self._tasks[task].description)
            self.update(task, description=f"{stage}: {message}")

    def update(self, task_id, **kwargs) -> None:  # a new stage forgets the last sub-step
        if "description" in kwargs and task_id in self._tasks:
            self._tasks[task_id].fields.pop("stage", None)
        super().update(task_id, **kwargs)


class _ToProgress(logging.Handler):
    def __init__(self, display: StageLines | BarProgress):
        super().__init__(logging.INFO)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        self.display.note(record.getMessage())


@contextmanager
def progress() -> Iterator[StageLines | BarProgress]:
    """The progress display of a long job: a live bar with elapsed time in a terminal, one line
    per stage with timings otherwise (:class:`StageLines`); the library's sub-steps
    (:mod:`icans.progress`) shown in it while it is open."""
    display: StageLines | BarProgress
    if sys.stderr.isatty():
        display = BarProgress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
    else:
        display = StageLines(sys.stderr)
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler, level, disabled = _ToProgress(display), logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # a logging.config.dictConfig elsewhere in the process (a library's own set-up) disables
    # the loggers that existed before it unless told otherwise: this one must speak while open
    logger.disabled = False
    try:
        with display:
            yield display
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled


def stepper(bar: StageLines | BarProgress) -> Callable[[str], None]:
    """``step(name)``: the job has moved to stage ``name`` (one task, its description the
    stage)."""
    task: list = []

    def step(name: str) -> None:
        if task:
            bar.update(task[0], description=name)
        else:
            task.append(bar.add_task(name, total=None))

    return step


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
