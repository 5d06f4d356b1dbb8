"""Monitoring per horizon (:mod:`icans.horizons`: the next 72 hours, the next 7 days, by day
28): each horizon's outcomes, predicted-risk drift, label-free estimate and realised
performance.

Outcomes (:func:`horizon_outcomes`, the rule in :mod:`monitoring.outcomes`): a horizon's
outcome is known once its window has passed by the outcome's date, so a 72-hour outcome is
known 3 days after the prediction day and realised performance for 72 hours arrives weeks
before day 28's. Each horizon is then judged on its own predicted risk
(``probability.<h>`` of the log, :mod:`serving.prediction_log`; day 28 is ``probability``)
against its own outcomes and its own reference risks (``probability.<h>`` and
``outcome.<h>`` of the training reference, :mod:`registry.reference`; a reference logged
before horizons holds day 28 alone, and a horizon without reference risks has no drift).

The thresholds (:mod:`monitoring.thresholds`) stay on day 28, the target every model
estimates and the one the alerts have always meant; the shorter horizons are reported beside
it, not judged: their few events (a 72-hour event is rarer than a day-28 one) would make a
second set of alerts mostly noise at a centre's volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from icans.horizons import HORIZONS, TARGET_HORIZON
from monitoring.estimate import LabelFreeEstimate, estimate
from monitoring.realised import Realised, realised
from monitoring.risk import RiskDrift, risk_drift


def horizon_outcomes(
    rows: pd.DataFrame,
    outcome: np.ndarray,
    event_day: np.ndarray,
    timed: np.ndarray,
    known_at: pd.Series,
) -> dict[str, np.ndarray]:
    """Per horizon (shortest first), each log row's outcome: 1, 0 or NaN (not known yet).

    ``outcome``: the file's day-28 outcome per row (NaN: not given or not joined);
    ``event_day``: the file's event day (NaN: none); ``timed``: rows joined to a file with
    ``event_day``; ``known_at``: the outcome's date-time (NaT: not given)."""
    landmark = rows["landmark_day"].to_numpy(np.int64)
    made = pd.to_datetime(rows["time"], utc=True, format="ISO8601").dt.normalize()
    elapsed = (known_at.dt.normalize() - made).dt.days.to_numpy(float)  # NaN: no date
    outcome = np.asarray(outcome, dtype=float)
    settled = ~np.isnan(outcome)  # day 28 known: every window has passed
    out = {}
    for h in HORIZONS:
        with np.errstate(invalid="ignore"):
            closed = settled | (elapsed >= h.window(landmark))
        y = np.where(timed & closed, h.event(event_day, landmark).astype(float), np.nan)
        if h is TARGET_HORIZON:
            y = np.where(settled, outcome, y)
        out[h.name] = y
    return out


@dataclass
class HorizonResult:
    """One horizon of one model version's window."""

    horizon: str
    label: str
    predictions: int  # the version's predictions with a risk of this horizon
    risk: RiskDrift  # against the reference's risks of this horizon (NaN: none logged)
    estimate: LabelFreeEstimate
    reference_rows: int  # reference rows with this horizon's risk and outcome
    reference_realised: Realised | None
    known: int | None  # predictions whose outcome is known (None: no outcomes file)
    awaiting: int | None  # ... not known yet (window still open, or no outcome joined)
    realised: Realised | None  # on the known outcomes (None: none known)


def columns(name: str) -> tuple[str, str]:
    """The (risk, outcome) columns of horizon ``name`` in log and reference rows."""
    if name == TARGET_HORIZON.name:
        return "probability", "outcome"
    return f"probability.{name}", f"outcome.{name}"


def horizon_results(
    reference: pd.DataFrame, rows: pd.DataFrame, with_outcomes: bool
) -> list[HorizonResult]:
    """Every horizon the version answered in ``rows`` (shortest first; day 28 always), against
    the ``reference`` rows."""
    out = []
    for h in HORIZONS:
        risk, outcome = columns(h.name)
        if risk not in rows.columns:
            continue
        answered = rows[risk].notna().to_numpy()
        if not answered.any() and h is not TARGET_HORIZON:
            continue
        p = rows[risk].to_numpy(float)[answered]
        if risk in reference.columns and outcome in reference.columns:
            both = reference[[risk, outcome]].to_numpy(float)
            both = both[~np.isnan(both).any(axis=1)]
            ref_p = both[:, 0]
            ref_realised = realised(both[:, 1], ref_p, bootstrap=0)
        else:
            ref_p, ref_realised = np.zeros(0), None
        known = awaiting = done = None
        if with_outcomes:
            y = rows[outcome].to_numpy(float)[answered] if outcome in rows.columns else p * np.nan
            seen = ~np.isnan(y)
            known, awaiting = int(seen.sum()), int((~seen).sum())
            done = realised(y[seen], p[seen]) if seen.any() else None
        out.append(
            HorizonResult(
                horizon=h.name,
                label=h.label,
                predictions=len(p),
                risk=risk_drift(ref_p, p),
                estimate=estimate(p),
                reference_rows=len(ref_p),
                reference_realised=ref_realised,
                known=known,
                awaiting=awaiting,
                realised=done,
            )
        )
    return out
