"""The outcomes file: what happened after each prediction, joined to the log by request id.

Format (CSV with a header row, or Parquet), one row per prediction whose outcome is known (or
partly known, with ``event_day``):

=====================  ========  ====================================================
column                 required  meaning
=====================  ========  ====================================================
``request_id``         yes       the request id the service returned (and logged)
``outcome``            yes [1]_  1: severe (grade 3-4) or steroid-refractory ICANS in
                                 the 28 days after the prediction; 0: not. ``true``
                                 and ``false`` are read as 1 and 0
``event_day``          no        the day since infusion on which the patient first met
                                 the target (an integer 1-28); empty: no event seen by
                                 ``outcome_known_at``. It dates the event, so each
                                 horizon's outcome is known as soon as its window has
                                 passed (below)
``outcome_known_at``   no        when the outcome was known (ISO 8601; no time zone:
                                 UTC); it may not precede the prediction. With
                                 ``event_day``: the date the follow-up had reached
=====================  ========  ====================================================

.. [1] Not with ``event_day``: then ``outcome`` may be left out, or empty on a row whose day-28
   outcome is not known yet; when given it must agree with ``event_day`` (1 with a day, 0
   without).

Other columns are ignored. A prediction whose outcome is not known yet is simply left out (it
counts as awaiting). Every bad row is reported at once (file, line or row, field, value and
rule), and nothing is joined until the file is valid: a request id given twice, an empty one,
an outcome other than 0/1, an event day that is not a day 1-28 (or that contradicts the
outcome), a time that does not parse or precedes its prediction, an event day on or before
the prediction's landmark day (the patient was scored event-free that day).

The join: a prediction gets the outcome of its request id. Each prediction has its own (in a
batch call, ``/v1/risk/batch``, patient ``i``'s is ``<request id>.<i>``); should a log hold one
id for several predictions (batch calls logged so before), an outcome cannot tell them apart:
those predictions are not joined and are counted as ambiguous. Outcomes of request ids outside
the window are counted, not used.

**Per horizon** (:mod:`icans.horizons`; :func:`monitoring.by_horizon.horizon_outcomes`), a
joined prediction on landmark day L made on UTC date D has, for the horizon h:

* day 28's outcome, when ``outcome`` is given: that value (as before horizons). The day-28
  outcome known means every window has passed, so with ``event_day`` the shorter horizons'
  outcomes are known too;
* with ``event_day``, once the window has passed by the outcome's date, i.e. the date of
  ``outcome_known_at`` is at least D + ``h.window(L)`` days (72 hours: 3 days after the
  prediction day; 7 days: 7; day 28: 28 - L; fewer near day 28, where every window ends): the
  event within the window, ``h.event(event_day, L)`` (on days L+1 .. L+window);
* otherwise not known yet (awaiting). A window still open is never judged, not even when the
  event has already happened in it: counting the early events but not the early non-events
  would bias the realised figures.

Without ``event_day`` only day 28 is known (a 1 does not say whether the event fell within 72
hours), which is what a file made before horizons gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from icans.errors import InvalidCohortError, InvalidInputError
from icans.horizons import LAST_DAY, TARGET_HORIZON
from monitoring.by_horizon import horizon_outcomes

REQUIRED = ("request_id", "outcome")
KNOWN_AT = "outcome_known_at"
EVENT_DAY = "event_day"
EVENT_DAY_RULE = "a day since infusion 1-28 (the event's), or empty: no event seen"
_TRUE, _FALSE = {"1", "1.0", "true"}, {"0", "0.0", "false"}
OUTCOME_RULE = "0 or 1 (1: severe or steroid-refractory ICANS within 28 days)"
JOINED, AWAITING, AMBIGUOUS = "joined", "awaiting", "ambiguous"


@dataclass(frozen=True)
class JoinSummary:
    joined: int  # predictions with their outcome
    awaiting: int  # predictions of the window without an outcome yet
    ambiguous: int  # predictions sharing their request id (a batch call): not joined
    outside_window: int  # outcomes whose request id is not in the window
    median_days_to_outcome: float | None  # from prediction to outcome_known_at


def read_outcomes(path: Path) -> pd.DataFrame:
    """The outcomes file, validated: ``request_id`` (str), ``outcome`` (0/1 as floats; NaN
    where not given, only with ``event_day``), ``outcome_known_at`` (UTC, NaT when not given)
    and, when the file has it, ``event_day`` (float: NaN no event seen); InvalidCohortError
    listing every bad row."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InvalidInputError("outcomes", str(path), "a .csv or .parquet file")
    if not path.is_file():
        raise InvalidInputError("outcomes", str(path), "an existing outcomes file")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InvalidInputError(
            "outcomes", str(path), f"a readable {suffix[1:]} file ({exc})"
        ) from None
    timed = EVENT_DAY in frame.columns
    if timed and "outcome" not in frame.columns:
        frame["outcome"] = None  # the day-28 outcomes follow from the event days
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            "outcomes",
            str(path),
            f"the columns request_id and outcome (missing: {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns)) or 'none'})",
        )

    def where(k: int) -> str:  # a CSV's line (the header is line 1), a Parquet file's row
        return f"{path.name} line {k + 2}" if suffix == ".csv" else f"{path.name} row {k + 1}"

    errors: list[InvalidInputError] = []
    ids, outcomes, known, event_days = [], [], [], []
    first_line: dict[str, int] = {}
    stamps = frame[KNOWN_AT].tolist() if KNOWN_AT in frame.columns else [None] * len(frame)
    days = frame[EVENT_DAY].tolist() if timed else [None] * len(frame)
    for k, (rid, value, known_at, day) in enumerate(
        zip(frame["request_id"].tolist(), frame["outcome"].tolist(), stamps, days, strict=True)
    ):
        rid_text = "" if _missing(rid) else str(rid).strip()
        if not rid_text:
            errors.append(InvalidInputError("request_id", rid, "a request id", where(k)))
        elif rid_text in first_line:
            errors.append(
                InvalidInputError(
                    "request_id",
                    rid_text,
                    f"one outcome per prediction (also on {where(first_line[rid_text])})",
                    where(k),
                )
            )
        else:
            first_line[rid_text] = k
        outcome = _outcome(value)
        empty = timed and (_missing(value) or (isinstance(value, str) and not value.strip()))
        if outcome is None and not empty:
            errors.append(InvalidInputError("outcome", _plain(value), OUTCOME_RULE, where(k)))
        event_day = _event_day(day) if timed else math.nan
        if event_day is None:
            errors.append(InvalidInputError(EVENT_DAY, _plain(day), EVENT_DAY_RULE, where(k)))
        elif outcome is not None and timed and outcome != (not math.isnan(event_day)):
            rule = (
                "a day since infusion 1-28 (the outcome is 1: an event)"
                if outcome
                else "empty (the outcome is 0: no event by day 28)"
            )
            errors.append(InvalidInputError(EVENT_DAY, _plain(day), rule, where(k)))
        stamp = _timestamp(known_at)
        if stamp is None:
            errors.append(
                InvalidInputError(
                    KNOWN_AT,
                    _plain(known_at),
                    "a date-time in ISO 8601 (2026-03-07T10:00:00+01:00), or empty",
                    where(k),
                )
            )
        ids.append(rid_text)
        outcomes.append(math.nan if outcome is None else outcome)
        known.append(stamp)
        event_days.append(event_day)
    if errors:
        raise InvalidCohortError(errors, table=f"outcomes file {path}")
    out = pd.DataFrame(
        {
            "request_id": pd.Series(ids, dtype=object),
            "outcome": np.asarray(outcomes, dtype=float),
            KNOWN_AT: pd.to_datetime(pd.Series(known, dtype=object), utc=True),
        }
    )
    if timed:
        out[EVENT_DAY] = np.asarray(event_days, dtype=float)
    return out


def join_outcomes(rows: pd.DataFrame, outcomes: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``rows`` (the window's log rows) with ``outcome_status`` (joined, awaiting or
    ambiguous), ``days_to_outcome`` (from the prediction to ``outcome_known_at``), each
    horizon's outcome ``outcome.<h>`` (NaN: not known yet; see the module docstring) and
    ``outcome`` (day 28's), and the number of outcomes outside the window; InvalidCohortError
    when an outcome is dated before its prediction or its event on or before the prediction's
    landmark day."""
    rows = rows.copy()
    rid = cast(pd.Series, rows["request_id"]).astype(str)
    shared = rid.duplicated(keep=False).to_numpy()
    by_id = outcomes.set_index("request_id")
    matched = rid.isin(by_id.index).to_numpy()
    use = matched & ~shared
    outcome = np.full(len(rows), np.nan)
    outcome[use] = by_id.loc[rid[use], "outcome"].to_numpy(float)
    rows["outcome_status"] = np.where(use, JOINED, np.where(matched, AMBIGUOUS, AWAITING))
    event_day = np.full(len(rows), np.nan)
    timed = np.zeros(len(rows), dtype=bool)
    if EVENT_DAY in by_id.columns:
        event_day[use] = by_id.loc[rid[use], EVENT_DAY].to_numpy(float)
        timed = use
        _check_event_days(rows, event_day, rid)
    known_at = pd.to_datetime(
        pd.Series(by_id.loc[rid[use], KNOWN_AT].to_numpy(), index=rows.index[use]).reindex(
            rows.index
        ),
        utc=True,
    )
    delay = np.full(len(rows), np.nan)
    known = by_id.loc[rid[use], KNOWN_AT].reset_index(drop=True)
    if len(known) and known.notna().any():
        made = pd.to_datetime(rows.loc[use, "time"], utc=True, format="ISO8601")
        gap = (known - made.reset_index(drop=True)).dt.total_seconds().to_numpy(float) / 86400
        early = np.flatnonzero(gap < 0)
        if len(early):
            ids = cast(pd.Series, rid[use]).to_numpy()
            errors = [
                InvalidInputError(
                    KNOWN_AT,
                    known.iloc[k].isoformat(),
                    f"not before its prediction ({made.iloc[k].isoformat()})",
                    f"request_id {ids[k]}",
                )
                for k in early
            ]
            raise InvalidCohortError(errors, table="outcomes file")
        delay[use] = gap
    rows["days_to_outcome"] = delay
    for name, y in horizon_outcomes(rows, outcome, event_day, timed, known_at).items():
        rows[f"outcome.{name}"] = y
    rows["outcome"] = rows[f"outcome.{TARGET_HORIZON.name}"]
    outside = int((~cast(pd.Series, outcomes["request_id"]).isin(set(rid))).sum())
    return rows, outside


def _check_event_days(rows: pd.DataFrame, event_day: np.ndarray, rid: pd.Series) -> None:
    """An event on or before the landmark day contradicts the prediction (a patient is scored
    only while event-free): refused, naming the request id."""
    landmark = rows["landmark_day"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        early = np.flatnonzero(event_day <= landmark)
    if len(early):
        errors = [
            InvalidInputError(
                EVENT_DAY,
                int(event_day[k]),
                f"a day after the prediction's landmark day {int(landmark[k])} (the patient "
                "was scored event-free that day)",
                f"request_id {rid.iloc[k]}",
            )
            for k in early
        ]
        raise InvalidCohortError(errors, table="outcomes file")


def join_summary(rows: pd.DataFrame, outside_window: int) -> JoinSummary:
    """The counts of joined rows (:func:`join_outcomes`), of a version or of the window."""
    status = cast(pd.Series, rows["outcome_status"])
    days = cast(pd.Series, rows["days_to_outcome"]).dropna()
    return JoinSummary(
        joined=int((status == JOINED).sum()),
        awaiting=int((status == AWAITING).sum()),
        ambiguous=int((status == AMBIGUOUS).sum()),
        outside_window=outside_window,
        median_days_to_outcome=float(days.median()) if len(days) else None,
    )


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _plain(value):
    return None if _missing(value) else value


def _outcome(value) -> int | None:
    if _missing(value) or isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value) if value in (0, 1) else None
    text = str(value).strip().lower()
    return 1 if text in _TRUE else 0 if text in _FALSE else None


def _event_day(value) -> float | None:
    """An event day 1-28 as a float (NaN: empty, no event), or None when it breaks the rule."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, (bool, np.bool_, bytes, bytearray)):
        return None
    try:
        day = float(str(value).strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    if not day.is_integer() or not 1 <= day <= LAST_DAY:
        return None
    return day


def _timestamp(value):
    """A UTC timestamp (NaT when empty), or None when it does not parse."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return pd.NaT
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if stamp is pd.NaT:
        return pd.NaT
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
