"""The prediction log for monitoring: one JSON line per prediction, with no identifier and no
free text, kept for a set number of days.

A line holds the time (UTC), the request id, the model name and version, the channel (json,
report, fhir, cds-hooks), the landmark day, the probability with its 95% interval (the day-28
horizon's, the target, as before horizons), every horizon the model answered
(``"horizons": {"72h": {"probability": p, "interval": [low, high] or null}, "7d": ...,
"day28": ...}``, :mod:`icans.horizons`), and the feature row: every predictor the model used
for day 28, by name (a category as its 0/1 indicators, a missing value as null; a horizon's
row differs only in the window predictor). It is what ``icans monitor`` compares with the
training reference of the model that served it, and what outcomes are joined to, by request
id, once they are known.
The patient's identifier is never in it, nor anything the clinician typed: the predictors are
numbers computed from the validated inputs. (The audit log, :mod:`serving.audit`, stays the
record of who was answered what; this log is for the case mix and the model's behaviour.)

Files: ``<dir>/predictions-YYYY-MM-DD.jsonl``, one per UTC day, so the log rotates daily
without any coordination between the service's workers; every line is one ``write`` in append
mode, safe across threads and processes. Files older than the retention are deleted by the
first prediction of each hour. Directory and retention come from the settings
(``ICANS_PREDICTION_LOG_DIR``, ``ICANS_PREDICTION_LOG_RETENTION_DAYS``).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from icans.horizons import TARGET_HORIZON
from runtime.assessor import Assessment

_NAME = re.compile(r"^predictions-(\d{4}-\d{2}-\d{2})\.jsonl$")


def log_file(directory: Path, day: date) -> Path:
    """The file of one UTC day."""
    return Path(directory) / f"predictions-{day.isoformat()}.jsonl"


class PredictionLog:
    """Appends prediction lines to the day's file and prunes files past the retention."""

    def __init__(self, directory: Path, retention_days: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        self._pruned_hour: datetime | None = None

    def record(
        self,
        request_id: str,
        model_name: str,
        model_version: str,
        channel: str,
        assessment: Assessment,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        entry = {
            "time": now.isoformat(),
            "request_id": request_id,
            "model_name": model_name,
            "model_version": model_version,
            "channel": channel,
            "landmark_day": assessment.landmark_day,
            "probability": assessment.probability,
            "interval": list(assessment.interval) if assessment.interval else None,
            "horizons": _horizons(assessment),
            "predictors": {
                c["feature"]: c["value"] for c in assessment.contributions
            },  # None: missing
        }
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            # pruned before the line is written: an error here leaves no line behind it
            hour = now.replace(minute=0, second=0, microsecond=0)
            if self._pruned_hour != hour:
                self._pruned_hour = hour
                prune(self.directory, now.date() - self.retention)
            path = log_file(self.directory, now.date())
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


def _horizons(assessment: Assessment) -> dict:
    """Every horizon's probability and interval by name, shortest first (an assessment made
    without horizons: its day-28 figures)."""
    risks = [(h.horizon, h.probability, h.interval) for h in assessment.horizons] or [
        (TARGET_HORIZON.name, assessment.probability, assessment.interval)
    ]
    return {
        name: {"probability": p, "interval": list(interval) if interval else None}
        for name, p, interval in risks
    }


def prune(directory: Path, before: date) -> list[Path]:
    """Delete the day files of days before ``before``; return them."""
    removed = []
    for path in Path(directory).glob("predictions-*.jsonl"):
        match = _NAME.match(path.name)
        if match and date.fromisoformat(match.group(1)) < before:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_prediction_log(directory: Path, start: date, end: date) -> pd.DataFrame:
    """The predictions of the UTC days ``start``..``end`` (inclusive), one row each: the line's
    fields (``probability``, ``interval_low``, ``interval_high``: day 28), per horizon ``h``
    ``probability.<h>``, ``interval_low.<h>`` and ``interval_high.<h>`` (NaN where the model
    did not answer that horizon; a line written before horizons were logged gives day 28
    alone), and one ``predictor.<name>`` column per predictor (NaN where missing). A line cut
    short by a crash (the last one of a file) is skipped."""
    rows = []
    day = start
    while day <= end:
        path = log_file(directory, day)
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                values = entry.pop("predictors")
                interval = entry.pop("interval")
                low, high = interval or (None, None)
                horizons = entry.pop("horizons", None) or {
                    TARGET_HORIZON.name: {"probability": entry["probability"], "interval": interval}
                }
                predictors = {
                    f"predictor.{k}": math.nan if v is None else v for k, v in values.items()
                }
                rows.append(
                    entry
                    | {"interval_low": low, "interval_high": high}
                    | _horizon_columns(horizons)
                    | predictors
                )
        day += timedelta(days=1)
    return pd.DataFrame(rows)


def _horizon_columns(horizons: dict) -> dict:
    out = {}
    for name, risk in horizons.items():
        low, high = risk.get("interval") or (math.nan, math.nan)
        out[f"probability.{name}"] = risk["probability"]
        out[f"interval_low.{name}"] = low
        out[f"interval_high.{name}"] = high
    return out
