"""The raw observation layout: one numeric row per (patient, prediction day).

Everything the feature pipeline may read about a patient at prediction day L is packed into one
float row, identically for a single request at the endpoint and for a whole cohort:

* baseline fields (categoricals as their position in the contract's enumeration, NaN if missing);
* ``day_since_infusion`` = L;
* four day-indexed blocks for days 0-28: CRS grade, CD4+ and CD8+ CAR-T cells/uL, ICANS grade;
  a day with no observation is NaN.

Days after L are always NaN in a valid row; :func:`mask_after_prediction_day` enforces it again
inside the pipeline (the boundary validators reject such data before it gets here).
"""

from __future__ import annotations

import numpy as np

from icans.contract import (
    CAR_TARGETS,
    COSTIMULATORY_DOMAINS,
    DISEASES,
    HORIZON_DAYS,
    LAB_FIELDS,
    LYMPHODEPLETION_REGIMENS,
)

N_DAYS = HORIZON_DAYS + 1  # days 0..28

CATEGORICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "disease": DISEASES,
    "car_target": CAR_TARGETS,
    "costimulatory_domain": COSTIMULATORY_DOMAINS,
    "lymphodepletion": LYMPHODEPLETION_REGIMENS,
}
NUMERIC_FIELDS = (
    "age_years",
    "weight_kg",
    "dose_cells_per_kg",
    "marrow_blasts_pct",
    "cns_involvement",
    "prior_lines",
    "neuro_comorbidity",
    *LAB_FIELDS,
)
BASELINE_FIELDS = (*NUMERIC_FIELDS, *CATEGORICAL_FIELDS)
COURSE_SERIES = {
    # series name in the layout -> field of the data contract it comes from
    "crs_grade": "crs_grade_by_day",
    "cd4_cells_per_ul": "cd4_car_t_cells_per_ul",
    "cd8_cells_per_ul": "cd8_car_t_cells_per_ul",
    "icans_grade": "icans_grade_by_day",
}


def day_columns(series: str) -> list[str]:
    return [f"{series}_d{d:02d}" for d in range(N_DAYS)]


RAW_COLUMNS: tuple[str, ...] = (
    *BASELINE_FIELDS,
    "day_since_infusion",
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


def mask_after_prediction_day(raw: np.ndarray) -> np.ndarray:
    """A copy of ``raw`` with every course value dated after day_since_infusion set to NaN."""
    out = np.array(raw, dtype=float, copy=True)
    future = np.arange(N_DAYS)[None, :] > col(out, "day_since_infusion")[:, None]
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
