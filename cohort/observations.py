"""A centre's daily series as one observation per row: checked, converted and pivoted into the
``daily`` table.

A hospital system exports what the ward charts as a long table, one row per observation:
``patient_id, day, series, value, unit`` (``series`` is the contract's column of the ``daily``
table, e.g. ``crp_mg_per_l``). The import format accepts such a file, ``observations.csv`` or
``.parquet``, beside the wide ``daily`` table, for the series charted on some days and not
others (the contract's nullable ``daily`` columns: temperature, the ICE and CAPD scores and the
laboratory values). Each row is read as follows:

* ``unit``: the contract's unit, or another unit of the same quantity from :data:`UNITS`,
  converted (CRP mg/dL x 10 = mg/L; fibrinogen g/L x 100 = mg/dL; creatinine umol/L / 88.42 =
  mg/dL, its molar mass 113.12 g/mol; LDH ukat/L x 60 = U/L; temperature (°F - 32) x 5/9 = °C).
  Units are matched ignoring case and spaces, with µ written ``u`` or ``µ``; a unit not listed
  is refused (naming the accepted ones), never guessed.
* the converted value must meet the field's rule in the contract, as a ``daily`` cell would.
* several values of one series on one day make the day's value the contract speaks of
  (:data:`DAY_VALUE`): the highest temperature, the lowest ICE score, the highest CAPD score,
  the last laboratory value in file order (the day's latest draw, as the contract says and as
  the FHIR mapping reads a day).
* the patient and day must have a row in the ``daily`` table (which holds the day's CRS and
  ICANS grades, required on every row); a value for a cell the ``daily`` table already fills is
  refused (one source per value).

Every problem is reported at once, naming the file's line (CSV) or row, the patient, the
series, the value and the rule, at most :data:`NAMED_PER_RULE` rows per rule (a whole file in a
wrong unit is one problem, stated once with its count). The work is vectorised: a 100,000-
patient export holds about ten million rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import pandas as pd

from icans.contract import COURSE, HORIZON_DAYS, FieldSpec
from icans.errors import InvalidInputError

NAME = "observations"
COLUMNS = ("patient_id", "day", "series", "value", "unit")
N_DAYS = HORIZON_DAYS + 1
NAMED_PER_RULE = 20

#: The series an observations file may hold: the ``daily`` columns that may be empty on a row.
SERIES: dict[str, FieldSpec] = {
    f.table_column: f for f in COURSE if f.table == "daily" and f.column_nullable
}

#: How a day's several values of a series become its one value (pandas aggregation), by the
#: contract's meaning of the day's value; every other series takes the last in file order.
DAY_VALUE: dict[str, str] = {"temperature_max_c": "max", "ice_score": "min", "capd_score": "max"}

_PER_UL = {"10^9/L": 1.0, "G/L": 1.0, "x10^3/uL": 1.0, "K/uL": 1.0, "/uL": 1e-3}
#: Units accepted besides the contract's own, by series: unit -> (factor, offset), value in the
#: contract's unit = value x factor + offset.
UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "temperature_max_c": {"C": (1.0, 0.0), "°F": (5 / 9, -160 / 9), "F": (5 / 9, -160 / 9)},
    "ice_score": {"": (1.0, 0.0)},  # a score's unit may be left empty
    "capd_score": {"": (1.0, 0.0)},
    "crp_mg_per_l": {"mg/dL": (10.0, 0.0)},
    "ferritin_ng_per_ml": {"ug/L": (1.0, 0.0)},
    "il6_pg_per_ml": {"ng/L": (1.0, 0.0)},
    "platelets_10e9_per_l": {u: (f, 0.0) for u, f in _PER_UL.items()},
    "fibrinogen_mg_per_dl": {"g/L": (100.0, 0.0)},
    "lymphocytes_10e9_per_l": {u: (f, 0.0) for u, f in _PER_UL.items()},
    "ldh_u_per_l": {"IU/L": (1.0, 0.0), "ukat/L": (60.0, 0.0)},
    "creatinine_mg_per_dl": {"umol/L": (1 / 88.42, 0.0)},
}
assert set(UNITS) == set(SERIES) and set(DAY_VALUE) <= set(SERIES)


def _key(unit: str) -> str:
    """A unit as matched: case, spaces and the two micro signs do not matter."""
    return "".join(str(unit).split()).casefold().replace("μ", "u").replace("deg", "°")


def accepted_units(series: str) -> dict[str, tuple[float, float]]:
    """The units of ``series`` as written in the documentation (the contract's first)."""
    return {SERIES[series].unit: (1.0, 0.0)} | UNITS[series]


_LOOKUP = {
    (series, _key(unit)): conversion
    for series in SERIES
    for unit, conversion in accepted_units(series).items()
}


def conversion_text(factor: float, offset: float) -> str:
    """A conversion in words: 'x 10', '(value - 32) x 0.5556'."""
    if offset:
        sign = "-" if offset < 0 else "+"
        return f"(value {sign} {abs(offset / factor):.4g}) x {factor:.4g}"
    return f"x {factor:.4g}"


def day_value(series: str) -> str:
    return DAY_VALUE.get(series, "last")


def _numbers(values: pd.Series) -> np.ndarray:
    if values.dtype.kind in "iuf":
        return values.to_numpy(dtype=float)
    return cast(pd.Series, pd.to_numeric(values, errors="coerce")).to_numpy(dtype=float)


class _Report:
    """The errors of one file, at most :data:`NAMED_PER_RULE` rows named per rule."""

    def __init__(self, obs: pd.DataFrame, patient_ids: pd.Series):
        self.obs, self.ids, self.errors = obs, patient_ids, cast(list[InvalidInputError], [])

    def rows(self, mask: np.ndarray, field: str, values, rule: str | Callable[[int], str]) -> None:
        """``rule`` is the rule's words, or a function of the row's position giving them."""
        positions = np.flatnonzero(mask)
        for pos in positions[:NAMED_PER_RULE].tolist():
            if values is None:
                value = None
            elif isinstance(values, pd.Series):  # read one cell: never the whole column
                value = values.iloc[pos]
            else:
                value = values[pos]
            value = value.item() if isinstance(value, np.generic) else value
            if isinstance(value, float) and np.isnan(value):
                value = None
            where = f"{NAME}: patient {self.ids.iloc[pos]} (row {self.obs.index[pos]})"
            text = rule(pos) if callable(rule) else rule
            self.errors.append(InvalidInputError(field, value, text, where=where))
        if len(positions) > NAMED_PER_RULE:
            first = rule(int(positions[0])) if callable(rule) else rule
            self.errors.append(
                InvalidInputError(
                    field,
                    f"{len(positions) - NAMED_PER_RULE:,} more rows",
                    f"{first} (the same problem: {len(positions):,} rows in all)",
                    where=f"{NAME}: table",
                )
            )


def merge_observations(
    daily: pd.DataFrame, obs: pd.DataFrame
) -> tuple[pd.DataFrame, list[InvalidInputError]]:
    """``daily`` with the observations' series filled in (a column per series, index and rows
    unchanged), and every problem of the observations; the values of a row with a problem are
    left out. Each step is one pass over the rows through small look-up tables (by series, by
    (series, unit) pair), never a loop over rows."""
    absent = [c for c in COLUMNS if c not in obs.columns]
    if absent:
        return daily, [
            InvalidInputError(c, None, "a column present in the table", where=f"{NAME}: table")
            for c in absent
        ]
    ids, series, unit = (_categories(cast(pd.Series, obs[c])) for c in COLUMNS[::2])
    report = _Report(obs, ids)
    names = list(SERIES)
    specs = list(SERIES.values())

    # the series, then its (series, unit) pair, by code: a few dozen distinct pairs at most
    s_of_cat = np.array([names.index(s) if s in SERIES else -1 for s in series.cat.categories])
    s_code = series.cat.codes.to_numpy()
    s_idx = np.append(s_of_cat, -1)[s_code]  # code -1 (empty) -> the appended -1
    known = s_idx >= 0
    report.rows(
        ~known,
        "series",
        series,
        f"a daily series, one of {', '.join(names)} (the grades and treatment come in the "
        "daily table)",
    )
    unit_names = [*map(str, unit.cat.categories), ""]  # code -1 (empty) -> ""
    n_units = len(unit_names)
    u_idx = np.where(unit.cat.codes.to_numpy() >= 0, unit.cat.codes.to_numpy(), n_units - 1)
    factor_of, offset_of = (
        np.full(len(names) * n_units + 1, np.nan),
        np.zeros(len(names) * n_units + 1),
    )
    for k, name in enumerate(names):
        for j, written in enumerate(unit_names):
            conversion = _LOOKUP.get((name, _key(written)))
            if conversion is not None:
                factor_of[k * n_units + j], offset_of[k * n_units + j] = conversion
    pair = np.where(known, s_idx * n_units + u_idx, len(names) * n_units)  # last: unknown
    factor, offset = factor_of[pair], offset_of[pair]
    bad_unit = known & np.isnan(factor)
    report.rows(
        bad_unit,
        "unit",
        unit,
        lambda pos: (
            f"a unit of {names[s_idx[pos]]}: one of "
            + ", ".join(u or "(empty)" for u in accepted_units(names[s_idx[pos]]))
        ),
    )

    # values in the contract's unit, against the contract's rule (bounds by series)
    raw = _numbers(cast(pd.Series, obs["value"]))
    report.rows(
        np.isnan(raw) & known,
        "value",
        obs["value"],
        "a number (a row without a value is not an observation: leave it out)",
    )
    value = raw * factor + offset
    k = np.where(known, s_idx, 0)
    low = np.array([f.low for f in specs], dtype=float)[k]
    high = np.array([f.high for f in specs], dtype=float)[k]
    low_open = np.array([f.low_open for f in specs])[k]
    whole = np.array([f.whole for f in specs])[k]
    with np.errstate(invalid="ignore"):  # an infinite value is outside, not a warning
        inside = np.where(low_open, value > low, value >= low) & (value <= high)
        inside &= ~whole | (value % 1 == 0)
    out_of_range = known & ~np.isnan(value) & ~inside
    for k_bad in np.unique(s_idx[out_of_range]).tolist():
        name = names[k_bad]
        report.rows(
            out_of_range & (s_idx == k_bad),
            name,
            raw,
            lambda pos, name=name: (
                f"{_conversion_text(name, unit_names[u_idx[pos]], float(value[pos]))}"
                f"{SERIES[name].rule()} {SERIES[name].unit}"
            ).rstrip(),
        )

    # the daily row of each observation: (patient, day) -> row position in ``daily``
    daily_pid = cast(pd.Series, daily["patient_id"]).astype(str)
    daily_ids = pd.Index(daily_pid.unique())
    d_code = daily_ids.get_indexer(daily_pid)
    d_day = _numbers(cast(pd.Series, daily["day"]))
    ok = (d_code >= 0) & (d_day >= 0) & (d_day < N_DAYS) & (d_day % 1 == 0)
    lookup = np.full(len(daily_ids) * N_DAYS + 1, -1, dtype=np.int64)  # last: no such row
    lookup[d_code[ok] * N_DAYS + d_day[ok].astype(np.int64)] = np.flatnonzero(ok)
    o_code = np.append(daily_ids.get_indexer(ids.cat.categories.astype(str)), -1)[
        ids.cat.codes.to_numpy()
    ]
    day = _numbers(cast(pd.Series, obs["day"]))
    day_ok = (o_code >= 0) & (day >= 0) & (day < N_DAYS) & (day % 1 == 0)
    row = lookup[np.where(day_ok, o_code * N_DAYS + np.nan_to_num(day).astype(np.int64), -1)]
    report.rows(
        row < 0,
        "day",
        day,
        f"a day 0-{HORIZON_DAYS} with a row of this patient in the daily table (observations "
        "fill the daily rows, which hold the day's CRS and ICANS grades)",
    )

    # a value the daily table already gives (only series it has as a column)
    valid = known & ~bad_unit & ~np.isnan(value) & ~out_of_range & (row >= 0)
    for k_have, name in enumerate(names):
        if name not in daily.columns:
            continue
        filled = np.append(daily[name].notna().to_numpy(), False)
        twice = valid & (s_idx == k_have) & filled[row]
        report.rows(
            twice,
            name,
            raw,
            lambda pos, name=name: (
                f"a value given once: the daily table's row "
                f"{daily.index[row[pos]]} has {name} for this patient and day already"
            ),
        )
        valid &= ~twice

    # the pivot: one value per (daily row, series), by the series' rule for a day's values
    out = daily.copy()
    rules = sorted({day_value(n) for n in names})
    rule_of = np.array([rules.index(day_value(n)) for n in names], dtype=np.int8)[k]
    for r, rule in enumerate(rules):
        at = valid & (rule_of == r)
        if not at.any():
            continue
        key = row[at] * len(names) + s_idx[at]
        day_values = pd.Series(value[at]).groupby(key, sort=False).agg(rule)
        cell = day_values.index.to_numpy()
        cell_series, cell_row = cell % len(names), cell // len(names)
        for k_fill in np.flatnonzero(np.bincount(cell_series, minlength=len(names))).tolist():
            mine = cell_series == k_fill
            _fill(out, names[k_fill], cell_row[mine], day_values.to_numpy()[mine])
    return out, report.errors


def _fill(out: pd.DataFrame, name: str, rows: np.ndarray, values: np.ndarray) -> None:
    """Set ``out[name]`` at row positions ``rows`` (a new column empty elsewhere)."""
    existing = out[name] if name in out.columns else None
    if existing is None or existing.dtype.kind in "iuf":
        column = (
            np.full(len(out), np.nan)
            if existing is None
            else existing.to_numpy(dtype=float, copy=True)
        )
        column[rows] = values
        out[name] = column
    else:  # text as read (the schema reports what cannot be read): fill the gaps
        merged = existing.astype(object).to_numpy(copy=True)
        merged[rows] = values
        out[name] = merged


def _categories(values: pd.Series) -> pd.Series:
    """A column of few distinct texts as categories (as read, so "007" stays "007")."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    return values.astype("category")


def _conversion_text(series: str, unit: str, converted: float) -> str:
    """'120 mg/L in the contract's unit; expected ' when the row came in another unit."""
    contract_unit = SERIES[series].unit
    if _key(unit) == _key(contract_unit) or np.isnan(converted):
        return ""
    return f"{converted:.4g} {contract_unit} once converted, so "
