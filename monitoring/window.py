"""Which predictions are monitored: a window of UTC days of the prediction log.

The window is ``--since``..``--until`` (inclusive; ``--until`` defaults to today, UTC), or the
last ``--days`` days up to ``--until`` (28 by default: about the time an outcome takes to be
known). The log is read with the service's own reader
(:func:`serving.prediction_log.read_prediction_log`), optionally for one model version only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

import pandas as pd

from icans.errors import InvalidInputError
from serving.prediction_log import read_prediction_log

DEFAULT_DAYS = 28


@dataclass(frozen=True)
class Window:
    start: date
    end: date

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def parse_day(name: str, text: str | date | None) -> date | None:
    """A UTC day given as YYYY-MM-DD (InvalidInputError naming the option otherwise)."""
    if text is None or isinstance(text, date):
        return text
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(name, text, "a date YYYY-MM-DD (a UTC day)") from None


def resolve_window(
    since: str | date | None = None,
    until: str | date | None = None,
    days: int | None = None,
    today: date | None = None,
) -> Window:
    """The window the options describe (see the module docstring)."""
    start, end = parse_day("since", since), parse_day("until", until)
    end = end or today or datetime.now(UTC).date()
    if start is not None and days is not None:
        raise InvalidInputError("days", days, "either --days or --since, not both")
    if days is not None and days < 1:
        raise InvalidInputError("days", days, "a whole number of days, at least 1")
    if start is None:
        start = end - timedelta(days=(days or DEFAULT_DAYS) - 1)
    if start > end:
        raise InvalidInputError("since", start.isoformat(), f"a day on or before {end}")
    return Window(start, end)


def read_window(log_dir: Path, window: Window, model_version: str | None = None) -> pd.DataFrame:
    """The prediction log's rows in the window (of one model version, if given); an error
    naming the directory and the window when there are none."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise InvalidInputError("log_dir", str(log_dir), "an existing prediction log directory")
    rows = read_prediction_log(log_dir, window.start, window.end)
    if len(rows) and model_version is not None:
        versions = sorted(rows["model_version"].astype(str).unique())
        rows = cast(pd.DataFrame, rows[rows["model_version"].astype(str) == str(model_version)])
        if not len(rows):
            raise InvalidInputError(
                "model_version",
                model_version,
                f"a version that answered in {window} (the log has {', '.join(versions)})",
            )
    if not len(rows):
        raise InvalidInputError(
            "window", str(window), f"a window with predictions in {log_dir} (none found)"
        )
    rows = rows.reset_index(drop=True)
    rows["model_version"] = rows["model_version"].astype(str)
    return rows
