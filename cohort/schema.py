"""Validation of cohort tables at the boundary (pandera), reporting every bad row at once.

A new cohort brought by a data scientist must have the generator's tables (``patients``,
``daily``, ``measurements``, ``outcomes``) in the data contract's vocabulary. Each violation
becomes an :class:`~icans.errors.InvalidInputError` naming the patient, the field, the value and
the rule; all of them are raised together as one :class:`~icans.errors.InvalidCohortError`.
"""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from icans.contract import (
    CAR_TARGETS,
    COSTIMULATORY_DOMAINS,
    DISEASES,
    HORIZON_DAYS,
    LYMPHODEPLETION_REGIMENS,
)
from icans.errors import InvalidCohortError, InvalidInputError


def _num(low: float, high: float, nullable: bool = False) -> pa.Column:
    return pa.Column(float, [pa.Check.in_range(low, high)], nullable=nullable, coerce=True)


_DAY = pa.Column(int, pa.Check.in_range(0, HORIZON_DAYS), coerce=True)

PATIENTS = pa.DataFrameSchema(
    {
        "patient_id": pa.Column(str, unique=True),
        "age_years": _num(0, 100),
        "weight_kg": pa.Column(
            float, pa.Check.in_range(0, 300, include_min=False), nullable=True, coerce=True
        ),
        "disease": pa.Column(str, pa.Check.isin(DISEASES)),
        "car_target": pa.Column(str, pa.Check.isin(CAR_TARGETS)),
        "costimulatory_domain": pa.Column(str, pa.Check.isin(COSTIMULATORY_DOMAINS)),
        "dose_cells_per_kg": pa.Column(
            float, pa.Check.in_range(0, 1e9, include_min=False), coerce=True
        ),
        "marrow_blasts_pct": _num(0, 100),
        "cns_involvement": pa.Column(bool, coerce=True),
        "prior_lines": pa.Column(float, pa.Check.in_range(0, 30), nullable=True, coerce=True),
        "neuro_comorbidity": pa.Column(
            float, pa.Check.isin([0.0, 1.0]), nullable=True, coerce=True
        ),
        "lymphodepletion": pa.Column(
            str, pa.Check.isin(LYMPHODEPLETION_REGIMENS), nullable=True, required=False
        ),
        "ldh_u_per_l": _num(0, 50_000, nullable=True),
        "crp_mg_per_l": _num(0, 1_000, nullable=True),
        "ferritin_ng_per_ml": _num(0, 500_000, nullable=True),
        "platelets_10e9_per_l": pa.Column(
            float, pa.Check.in_range(0, 2_000, include_min=False), nullable=True, coerce=True
        ),
        "creatinine_mg_per_dl": _num(0, 30, nullable=True),
    },
    strict=False,
    name="patients",
)

DAILY = pa.DataFrameSchema(
    {
        "patient_id": pa.Column(str),
        "day": _DAY,
        "crs_grade": pa.Column(int, pa.Check.in_range(0, 4), coerce=True),
        "icans_grade": pa.Column(int, pa.Check.in_range(0, 4), coerce=True),
    },
    unique=["patient_id", "day"],
    strict=False,
    name="daily",
)

MEASUREMENTS = pa.DataFrameSchema(
    {
        "patient_id": pa.Column(str),
        "day": _DAY,
        "cd4_car_t_cells_per_ul": _num(0, 100_000, nullable=True),
        "cd8_car_t_cells_per_ul": _num(0, 100_000, nullable=True),
    },
    unique=["patient_id", "day"],
    strict=False,
    name="measurements",
)

OUTCOMES = pa.DataFrameSchema(
    {
        "patient_id": pa.Column(str, unique=True),
        "severe_or_refractory_icans": pa.Column(bool, coerce=True),
        "event_day": pa.Column(
            float, pa.Check.in_range(0, HORIZON_DAYS), nullable=True, coerce=True
        ),
    },
    strict=False,
    name="outcomes",
)

SCHEMAS = {"patients": PATIENTS, "daily": DAILY, "measurements": MEASUREMENTS, "outcomes": OUTCOMES}


def validate_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate (and coerce) one table; raise InvalidCohortError listing every failure."""
    try:
        return SCHEMAS[name].validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise InvalidCohortError(
            _errors(exc, frame, list(SCHEMAS[name].unique or [])), table=name
        ) from None


def validate_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Validate every table before raising, so one error lists the bad rows of all of them."""
    out, errors = dict(tables), []
    for name in SCHEMAS:
        try:
            out[name] = validate_table(name, tables[name])
        except InvalidCohortError as exc:
            errors += [
                InvalidInputError(e.field, e.value, e.expected, where=f"{name}: {e.where}")
                for e in exc.errors
            ]
    if errors:
        raise InvalidCohortError(errors, table="cohort tables")
    return out


_RULES = [
    (re.compile(r"in_range\((.+), (.+)\)"), lambda m: f"a value from {m[1]} to {m[2]}"),
    (re.compile(r"isin\((.+)\)"), lambda m: f"one of {m[1]}"),
    (
        re.compile(r"coerce_dtype\('(float|int|bool).*'\)|dtype\('(float|int|bool).*'\)"),
        lambda m: {"float": "a number", "int": "a whole number", "bool": "true or false"}[
            m[1] or m[2]
        ],
    ),
    (re.compile(r"not_nullable"), lambda m: "a value (missing is not allowed)"),
    (re.compile(r"field_uniqueness"), lambda m: "a value that appears only once"),
    (re.compile(r"column_in_dataframe"), lambda m: "a column present in the table"),
]


def _rule(check: str) -> str:
    for pattern, text in _RULES:
        m = pattern.search(check)
        if m:
            return text(m)
    return check


def _where(frame: pd.DataFrame, label) -> str:
    """'patient <id> (row <label>)' by index label; the table when no row is involved."""
    if label is None or (not isinstance(label, str) and pd.isna(label)):
        return "table"
    if "patient_id" in frame.columns and label in frame.index:
        pid = frame.loc[label, "patient_id"]
        if not isinstance(pid, pd.Series):
            return f"patient {pid} (row {label})"
    return f"row {label}"


def _errors(
    exc: SchemaErrors, frame: pd.DataFrame, unique_keys: list[str]
) -> list[InvalidInputError]:
    out: list[InvalidInputError] = []
    cases = exc.failure_cases
    dup = cases["check"].astype(str) == "multiple_fields_uniqueness"
    for label in cases.loc[dup, "index"].dropna().unique():  # one error per duplicated row
        value = tuple(frame.loc[label, c] for c in unique_keys) if unique_keys else label
        out.append(
            InvalidInputError(
                "+".join(unique_keys) or "row",
                value,
                f"each ({', '.join(unique_keys)}) at most once",
                where=_where(frame, label),
            )
        )
    seen = set()
    for case in cases[~dup].itertuples(index=False):
        value = case.failure_case
        if isinstance(value, str) and value.startswith("TypeError("):
            continue  # a consequence of a value that could not be converted, reported already
        key = (case.index, case.column)
        if key in seen and str(case.check).startswith("dtype("):
            continue  # coerce_dtype and dtype report the same bad value twice
        seen.add(key)
        out.append(
            InvalidInputError(
                str(case.column), value, _rule(str(case.check)), where=_where(frame, case.index)
            )
        )
    return out
