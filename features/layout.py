"""The raw observation layout: one numeric row per (patient, prediction day).

Everything the feature pipeline may read about a patient at prediction day L is packed into one
float row, identically for a single request at the endpoint and for a whole cohort, in the order
the contract's field specifications give (:mod:`icans.contract`):

* the baseline fields (categoricals as their position in the contract's enumeration, booleans as
  0/1, NaN if missing);
* ``day_since_infusion`` = L;
* one day-indexed block per course field, days 0-28 (CRS grade, CD4+ and CD8+ CAR-T cells/uL,
  ICANS grade); a day with no observation is NaN.

Days after L are always NaN in a valid row; :func:`mask_after_prediction_day` enforces it again
inside the pipeline (the boundary validators reject such data before it gets here), and
:func:`check_prediction_day` refuses a row with no valid L.
"""

from __future__ import annotations

import numpy as np

from icans.contract import BASELINE, COURSE, HORIZON_DAYS, PREDICTION_DAY
from icans.errors import InvalidInputError

N_DAYS = HORIZON_DAYS + 1  # days 0..28

CATEGORICAL_FIELDS: dict[str, tuple[str, ...]] = {
    f.name: f.values for f in BASELINE if f.kind == "category"
}
NUMERIC_FIELDS = tuple(f.name for f in BASELINE if f.kind != "category")
BASELINE_FIELDS = tuple(f.name for f in BASELINE)
# series name in the layout -> the contract's course field it comes from
COURSE_SERIES = {f.layout: f.name for f in COURSE}


def day_columns(series: str) -> list[str]:
    return [f"{series}_d{d:02d}" for d in range(N_DAYS)]


RAW_COLUMNS: tuple[str, ...] = (
    *BASELINE_FIELDS,
    PREDICTION_DAY.name,
    *(c for s in COURSE_SERIES for c in day_columns(s)),
)
COLUMN_INDEX = {name: i for i, name in enumerate(RAW_COLUMNS)}
SERIES_SLICE = {
    s: slice(COLUMN_INDEX[f"{s}_d00"], COLUMN_INDEX[f"{s}_d00"] + N_DAYS) for s in COURSE_SERIES
}
CATEGORY_CODE = {
    field: {value: float(i) for i, value in enumerate(values)}
    for field, values in CATEGORICAL_FIELDS.items()
}


def col(raw: np.ndarray, name: str) -> np.ndarray:
    """One baseline column of a raw matrix."""
    return raw[:, COLUMN_INDEX[name]]


def series(raw: np.ndarray, name: str) -> np.ndarray:
    """One day-indexed block (rows x 29 days) of a raw matrix (a view)."""
    return raw[:, SERIES_SLICE[name]]


def check_prediction_day(raw: np.ndarray) -> None:
    """Refuse rows whose prediction day is missing, fractional or outside 0-28: such a row
    cannot be placed in time, so nothing in it could be told apart from the future."""
    day = col(raw, PREDICTION_DAY.name)
    bad = ~((day >= PREDICTION_DAY.low) & (day <= PREDICTION_DAY.high) & (day % 1 == 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            PREDICTION_DAY.name,
            float(day[row]),
            f"{PREDICTION_DAY.rule()} on every row ({int(bad.sum())} row(s) without one)",
            where=f"row {row}",
        )


def mask_after_prediction_day(raw: np.ndarray) -> np.ndarray:
    """A copy of ``raw`` with every course value dated after day_since_infusion set to NaN."""
    out = np.array(raw, dtype=float, copy=True)
    day = col(out, PREDICTION_DAY.name)
    future = ~(np.arange(N_DAYS)[None, :] <= day[:, None])  # a NaN day masks every day
    for name in COURSE_SERIES:
        block = series(out, name)
        block[future] = np.nan
    return out


def as_raw(x) -> np.ndarray:
    """Accept a DataFrame with the raw columns (any order) or an array in layout order."""
    if hasattr(x, "columns"):
        missing = [c for c in RAW_COLUMNS if c not in x.columns]
        if missing:
            raise ValueError(f"raw observation table lacks columns: {missing[:5]}...")
        return x.loc[:, list(RAW_COLUMNS)].to_numpy(dtype=float)
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != len(RAW_COLUMNS):
        raise ValueError(f"expected shape (n, {len(RAW_COLUMNS)}), got {arr.shape}")
    return arr
