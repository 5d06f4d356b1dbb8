"""The JSON summary of a monitoring run (``monitor.json``): what a scheduler or an alerting job
reads.

Top level: ``generated_at``, the ``window``, ``log_dir``, ``outcomes_file``, the
``thresholds``, ``exit_code`` (0 none crossed, 1 crossed), ``crossed`` (one entry per crossed
check: model, version, check, value, rule), ``files`` and one entry per model version under
``versions`` with its predictions, drifted inputs (and every column's test), predicted-risk
drift, the label-free estimate, the reference's own figures, the joined outcomes, realised
performance, every check (on day 28), and ``horizons``: per horizon the version answered
(``72h``, ``7d``, ``day28``), its predictions, predicted-risk drift against the reference's
risks of that horizon, label-free estimate, reference, outcomes known and awaiting (a
horizon's outcome is known once its window has passed) and realised performance. Numbers
that do not exist (no outcomes, too few rows) are ``null``, never NaN (which is not JSON).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np


def summary_json(result) -> str:
    """``result`` (:class:`monitoring.monitor.MonitorResult`) as indented JSON."""
    return json.dumps(_clean(summary(result)), indent=2, allow_nan=False) + "\n"


def summary(result) -> dict:
    return {
        "generated_at": result.generated_at,
        "window": {
            "start": result.window.start.isoformat(),
            "end": result.window.end.isoformat(),
            "days": result.window.days,
        },
        "log_dir": str(result.log_dir),
        "model_version": result.model_version,
        "outcomes_file": None if result.outcomes_file is None else str(result.outcomes_file),
        "outcomes_outside_window": result.outside_window if result.outcomes_file else None,
        "thresholds": result.thresholds.as_dict(),
        "exit_code": result.exit_code,
        "crossed": [
            {"model_name": v.name, "model_version": v.version} | c.as_dict()
            for v, c in result.crossed
        ],
        "files": {name: str(path) for name, path in result.files.items()},
        "versions": [_version(v) for v in result.versions],
    }


def _version(v) -> dict:
    drift = v.drift
    return {
        "model_name": v.name,
        "model_version": v.version,
        "run_id": v.run_id,
        "trained_on_synthetic_data": v.synthetic,
        "intended_use": v.intended_use,
        "predictions": v.predictions,
        "channels": v.channels,
        "landmark_days": {str(k): n for k, n in v.landmark_days.items()},
        "drift": {
            "tested": len(drift.tested),
            "drifted": [c.column for c in drift.drifted],
            "drifted_share": drift.drifted_share,
            "report": v.drift_file or None,
            "columns": [asdict(c) for c in drift.columns],
        },
        "predicted_risk": asdict(v.risk),
        "estimate": asdict(v.estimate) | {"assumption": "the model is calibrated on this traffic"},
        "reference": {
            "rows": v.reference_rows,
            "estimate": asdict(v.reference_estimate),
            "realised": asdict(v.reference_realised),
        },
        "outcomes": None
        if v.join is None
        else {
            "joined": v.join.joined,
            "awaiting": v.join.awaiting,
            "ambiguous": v.join.ambiguous,
            "median_days_to_outcome": v.join.median_days_to_outcome,
            "realised": None if v.realised is None else asdict(v.realised),
        },
        "checks": [c.as_dict() for c in v.checks],
        "crossed": [c.name for c in v.crossed],
        "horizons": {r.horizon: _horizon(r) for r in v.horizons},
    }


def _horizon(r) -> dict:
    return {
        "label": r.label,
        "predictions": r.predictions,
        "predicted_risk": asdict(r.risk),
        "estimate": asdict(r.estimate),
        "reference": {
            "rows": r.reference_rows,
            "realised": None if r.reference_realised is None else asdict(r.reference_realised),
        },
        "outcomes": None
        if r.known is None
        else {
            "known": r.known,
            "awaiting": r.awaiting,
            "realised": None if r.realised is None else asdict(r.realised),
        },
    }


def _clean(value):
    """JSON-ready: NaN and infinities as null, numpy scalars as Python numbers, tuples as
    lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
