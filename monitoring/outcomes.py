"""The outcomes file: what happened after each prediction, joined to the log by request id.

Format (CSV with a header row, or Parquet), one row per prediction whose outcome is known:

=====================  ========  ====================================================
column                 required  meaning
=====================  ========  ====================================================
``request_id``         yes       the request id the service returned (and logged)
``outcome``            yes       1: severe (grade 3-4) or steroid-refractory ICANS in
                                 the 28 days after the prediction; 0: not. ``true``
                                 and ``false`` are read as 1 and 0
``outcome_known_at``   no        when the outcome was known (ISO 8601; no time zone:
                                 UTC); it may not precede the prediction
=====================  ========  ====================================================

Other columns are ignored. A prediction whose outcome is not known yet is simply left out (it
counts as awaiting). Every bad row is reported at once (file, line or row, field, value and
rule), and nothing is joined until the file is valid: a request id given twice, an empty one,
an outcome other than 0/1, a time that does not parse or precedes its prediction.

The join: a prediction gets the outcome of its request id. Each prediction has its own (in a
batch call, ``/v1/risk/batch``, patient ``i``'s is ``<request id>.<i>``); should a log hold one
id for several predictions (batch calls logged so before), an outcome cannot tell them apart:
those predictions are not joined and are counted as ambiguous. Outcomes of request ids outside
the window are counted, not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from icans.errors import InvalidCohortError, InvalidInputError

REQUIRED = ("request_id", "outcome")
KNOWN_AT = "outcome_known_at"
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
    """The outcomes file, validated: ``request_id`` (str), ``outcome`` (0/1) and
    ``outcome_known_at`` (UTC, NaT when not given); InvalidCohortError listing every bad row."""
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
    ids, outcomes, known = [], [], []
    first_line: dict[str, int] = {}
    stamps = frame[KNOWN_AT].tolist() if KNOWN_AT in frame.columns else [None] * len(frame)
    for k, (rid, value, known_at) in enumerate(
        zip(frame["request_id"].tolist(), frame["outcome"].tolist(), stamps, strict=True)
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
        if outcome is None:
            errors.append(InvalidInputError("outcome", _plain(value), OUTCOME_RULE, where(k)))
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
        outcomes.append(outcome)
        known.append(stamp)
    if errors:
        raise InvalidCohortError(errors, table=f"outcomes file {path}")
    return pd.DataFrame(
        {
            "request_id": pd.Series(ids, dtype=object),
            "outcome": np.asarray(outcomes, dtype=np.int64),
            KNOWN_AT: pd.to_datetime(pd.Series(known, dtype=object), utc=True),
        }
    )


def join_outcomes(rows: pd.DataFrame, outcomes: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``rows`` (the window's log rows) with ``outcome`` (NaN: none joined),
    ``outcome_status`` (joined, awaiting or ambiguous) and ``days_to_outcome`` (from the
    prediction to ``outcome_known_at``), and the number of outcomes outside the window;
    InvalidCohortError when an outcome is dated before its prediction."""
    rows = rows.copy()
    rid = cast(pd.Series, rows["request_id"]).astype(str)
    shared = rid.duplicated(keep=False).to_numpy()
    by_id = outcomes.set_index("request_id")
    matched = rid.isin(by_id.index).to_numpy()
    use = matched & ~shared
    outcome = np.full(len(rows), np.nan)
    outcome[use] = by_id.loc[rid[use], "outcome"].to_numpy(float)
    rows["outcome"] = outcome
    rows["outcome_status"] = np.where(use, JOINED, np.where(matched, AMBIGUOUS, AWAITING))
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
    outside = int((~cast(pd.Series, outcomes["request_id"]).isin(set(rid))).sum())
    return rows, outside


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
