"""The raw observation layout: one numeric row per (patient, prediction day).

Everything the feature pipeline may read about a patient at prediction day L is packed into one
float row, identically for a single request at the endpoint and for a whole cohort, in the order
the contract's field specifications give (:mod:`icans.contract`):

* the baseline fields (categoricals as their position in the contract's enumeration, booleans as
  0/1, NaN if missing);
* ``day_since_infusion`` = L;
* one day-indexed block per course field, days 0-28 (CRS grade, CD4+ and CD8+ CAR-T cells/uL,
  ICANS grade, corticosteroid mg, tocilizumab doses, the daily routine series, anakinra and
  intrathecal doses); a day with no observation is NaN;

each generation's fields in that order (baseline, then course blocks), generation after
generation: marrow involvement and the CAR-T product, baseline fields added later, come after
the course blocks of the generations before theirs.

**The layout grows by generations, and a column never moves.** Models already logged read
their columns by position (the feature steps by name through :data:`COLUMN_INDEX`, but a
logged row, an input example or an older caller's array is positional). So the fields of
generation 1 (the first 16 baseline fields, the prediction day, 4 course series: 133 columns)
keep their places, and the fields the contract gained later follow them, generation by
generation, each generation's baseline fields before its course blocks (:data:`GENERATIONS`).
Every field added after generation 1 is optional, so a row written for an older generation
reads as the same patient with the newer fields missing: :func:`as_raw` pads it with NaN.

Days after L are always NaN in a valid row; :func:`mask_after_prediction_day` enforces it again
inside the pipeline (the boundary validators reject such data before it gets here), and
:func:`check_prediction_day` refuses a row with no valid L.
"""

from __future__ import annotations

import numpy as np

from icans.contract import BASELINE, COURSE, HORIZON_DAYS, PREDICTION_DAY
from icans.errors import InvalidInputError

N_DAYS = HORIZON_DAYS + 1  # days 0..28

# How many of the contract's BASELINE and COURSE fields each generation of the layout reaches
# (cumulative). Generation 1: the layout of every model logged before the treatment course
# (tests/fixtures/legacy-v1); generation 2 added marrow involvement, corticosteroid mg and
# tocilizumab doses; generation 3 the eleven series a ward charts daily (contract DAILY_ROUTINE:
# temperature, ICE and CAPD scores, CRP ... creatinine), no baseline field; generation 4 the
# second-line therapy of ICANS (anakinra and intrathecal doses, read by the refractory rule of
# icans.steroids, not by any feature); generation 5 the CAR-T product (car_product, a baseline
# field appended to BASELINE after marrow involvement, so its column comes after the last
# course block of generation 4: a model of generations 1-4 reads its own columns and never the
# product). A field appended to the contract after the last entry lands in one more generation
# at the end; record it here once a model has been logged with it, so that the next field
# added cannot move it (a test pins the layout).
GENERATIONS: tuple[tuple[int, int], ...] = ((16, 4), (17, 6), (17, 17), (17, 19), (18, 19))

CATEGORICAL_FIELDS: dict[str, tuple[str, ...]] = {
    f.name: f.values for f in BASELINE if f.kind == "category"
}
NUMERIC_FIELDS = tuple(f.name for f in BASELINE if f.kind != "category")
BASELINE_FIELDS = tuple(f.name for f in BASELINE)
# series name in the layout -> the contract's course field it comes from
COURSE_SERIES = {f.layout: f.name for f in COURSE}


def day_columns(series: str) -> list[str]:
    return [f"{series}_d{d:02d}" for d in range(N_DAYS)]


def _generations() -> list[tuple[str, ...]]:
    """The columns each generation adds, in layout order."""
    bounds = list(GENERATIONS)
    if bounds[-1] != (len(BASELINE), len(COURSE)):
        bounds.append((len(BASELINE), len(COURSE)))
    out, previous = [], (0, 0)
    for k, (n_baseline, n_course) in enumerate(bounds):
        columns = [f.name for f in BASELINE[previous[0] : n_baseline]]
        if k == 0:
            columns.append(PREDICTION_DAY.name)
        columns += [c for f in COURSE[previous[1] : n_course] for c in day_columns(f.layout)]
        out.append(tuple(columns))
        previous = (n_baseline, n_course)
    return out


_ADDED = _generations()
RAW_COLUMNS: tuple[str, ...] = tuple(c for columns in _ADDED for c in columns)
# width of a row of each generation: the first WIDTHS[k] columns are generation k + 1's layout
WIDTHS: tuple[int, ...] = tuple(sum(len(c) for c in _ADDED[: k + 1]) for k in range(len(_ADDED)))
COLUMN_INDEX = {name: i for i, name in enumerate(RAW_COLUMNS)}
BASELINE_INDEX = np.array([COLUMN_INDEX[f] for f in BASELINE_FIELDS])
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


# the day of every course column (NaN for the baseline columns and the prediction day)
_COLUMN_DAY = np.full(len(RAW_COLUMNS), np.nan)
for _s in SERIES_SLICE.values():
    _COLUMN_DAY[_s] = np.arange(N_DAYS)
_IS_COURSE = ~np.isnan(_COLUMN_DAY)


def mask_after_prediction_day(raw: np.ndarray) -> np.ndarray:
    """A copy of ``raw`` with every course value dated after day_since_infusion set to NaN (a
    missing day masks every course value), every series in one assignment."""
    out = np.array(raw, dtype=float, copy=True)
    day = col(out, PREDICTION_DAY.name)
    future = _IS_COURSE[None, :] & ~(_COLUMN_DAY[None, :] <= day[:, None])
    out[future] = np.nan
    return out


def as_raw(x) -> np.ndarray:
    """Rows in the current layout from a DataFrame with the raw columns (any order) or an array
    in layout order, of this generation of the layout or an earlier one: the columns a row of
    an earlier generation lacks are fields added later (all optional), missing (NaN)."""
    if hasattr(x, "columns"):
        present = set(x.columns)
        width = next(
            (
                w
                for w in reversed(WIDTHS)
                if present.issuperset(RAW_COLUMNS[:w]) and present.isdisjoint(RAW_COLUMNS[w:])
            ),
            None,
        )
        if width is None:
            missing = [c for c in RAW_COLUMNS if c not in present]
            raise ValueError(
                f"raw observation table lacks columns: {missing[:5]}... (expected the columns "
                "of one generation of the layout, features.layout.RAW_COLUMNS[:n] for n in "
                f"{list(WIDTHS)})"
            )
        arr = x.loc[:, list(RAW_COLUMNS[:width])].to_numpy(dtype=float)
    else:
        arr = np.asarray(x, dtype=float)
        if arr.ndim != 2 or arr.shape[1] not in WIDTHS:
            raise ValueError(
                f"expected shape (n, {len(RAW_COLUMNS)}) (or an earlier layout's width, one of "
                f"{list(WIDTHS)}), got {arr.shape}"
            )
    if arr.shape[1] == len(RAW_COLUMNS):
        return arr
    padded = np.full((len(arr), len(RAW_COLUMNS)), np.nan)
    padded[:, : arr.shape[1]] = arr
    return padded
