"""Validation of cohort tables at the boundary (pandera), reporting every bad row at once.

The schema of each table is derived from the contract's field specifications
(:mod:`icans.contract`): the same ranges, enumerations and required fields the endpoint checks,
so training and serving cannot drift apart. Tables: ``patients`` (one row per patient, baseline
fields), ``daily`` (one row per patient and observed day: CRS and ICANS grades, and, when the
cohort records them, corticosteroid mg and tocilizumab doses),
``measurements`` (one row per CAR-T blood sample) and ``outcomes`` (one row per patient).
Columns outside the contract are allowed and left alone; an optional column (``optional_column``
in the contract) may be absent, and is checked when present. A patient whose product, disease and
age fall outside the supported combinations is refused, as the endpoint refuses it.

Each violation becomes an :class:`~icans.errors.InvalidInputError` naming the patient and row,
the field, the value and the rule; all of them are raised together as one
:class:`~icans.errors.InvalidCohortError`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from icans.contract import BASELINE, COURSE, HORIZON_DAYS, OUTCOMES, RECORD
from icans.errors import InvalidCohortError, InvalidInputError
from icans.field_spec import FieldSpec
from icans.products import (
    ADULT_AGE_YEARS,
    ADULT_ONLY_DISEASES,
    PRODUCT_LABELS,
    SUPPORTED_TARGETS,
    combination_errors,
)

TABLES = ("patients", "daily", "measurements", "outcomes")
_DAY = FieldSpec("day", "integer", "day since infusion", low=0, high=HORIZON_DAYS, table="")


def _whole(spec: FieldSpec) -> pa.Check:
    return pa.Check(lambda s: s.isna() | (s % 1 == 0), element_wise=False, error=spec.rule())


def _column(spec: FieldSpec, nullable: bool) -> pa.Column:
    """The column a field becomes: numbers, whole numbers and booleans are read as floats (so a
    missing value is NaN and a wrong type is reported per row) and checked against the rule."""
    if spec.kind == "category":
        # no dtype check: a column of a CSV left empty reads as float NaN, which is "missing"
        return pa.Column(None, pa.Check.isin(spec.values, error=spec.rule()), nullable=nullable)
    if spec.kind == "boolean":
        check = [pa.Check.isin([0.0, 1.0], error=spec.rule())]
    else:
        check = [
            pa.Check.in_range(spec.low, spec.high, include_min=not spec.low_open, error=spec.rule())
        ]
        if spec.whole:
            check.append(_whole(spec))
    return pa.Column(float, check, nullable=nullable, coerce=True)


def _fields(name: str) -> list[tuple[FieldSpec, bool]]:
    """The contract's fields stored in table ``name``, each with whether a cell may be empty."""
    if name in ("daily", "measurements"):
        return [(_DAY, False)] + [(f, f.column_nullable) for f in COURSE if f.table == name]
    fields = {"patients": BASELINE + RECORD, "outcomes": OUTCOMES}[name]
    return [(f, not f.required) for f in fields]


def _table_schema(name: str) -> pa.DataFrameSchema:
    columns = {"patient_id": pa.Column(str, unique=name in ("patients", "outcomes"))}
    for spec, nullable in _fields(name):
        column = _column(spec, nullable)
        column.required = not spec.optional_column  # an optional column is checked if present
        columns[spec.table_column] = column
    unique = ["patient_id", "day"] if name in ("daily", "measurements") else None
    return pa.DataFrameSchema(columns, unique=unique, strict=False, name=name)


SCHEMAS = {name: _table_schema(name) for name in TABLES}
# After validation, whole numbers that may not be missing become integers and required booleans
# become bool (the dtypes the generator writes); the rest stay floats with NaN for missing.
_CAST = {
    name: {
        spec.table_column: bool if spec.kind == "boolean" else np.int64
        for spec, nullable in _fields(name)
        if not nullable and (spec.whole or spec.kind == "boolean")
    }
    for name in TABLES
}


def validate_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate (and coerce) one table; raise InvalidCohortError listing every failure."""
    try:
        out = SCHEMAS[name].validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise InvalidCohortError(
            _errors(exc, frame, list(SCHEMAS[name].unique or [])), table=name
        ) from None
    if name == "patients" and (errors := _unsupported(out)):
        raise InvalidCohortError(errors, table=name)
    return out.astype({c: t for c, t in _CAST[name].items() if c in out.columns})


def _unsupported(patients: pd.DataFrame) -> list[InvalidInputError]:
    """Patients whose product, disease and age fall outside the supported combinations, or
    whose licensed CAR-T product contradicts its label (an optional column), by the contract's
    own rule (:func:`icans.products.combination_errors`), one row at a time only where the
    quick test finds a candidate."""
    pairs = {(t, d) for t, diseases in SUPPORTED_TARGETS.items() for d in diseases}
    key = pd.Series(list(zip(patients["car_target"], patients["disease"], strict=True)))
    suspect = ~key.isin(pairs).to_numpy() | (
        patients["disease"].isin(ADULT_ONLY_DISEASES).to_numpy()
        & (patients["age_years"] < ADULT_AGE_YEARS).to_numpy()
    )
    product = patients.get("car_product")
    if product is not None:
        # a licensed product whose target, domain or disease is not its label's, or whose label
        # limits the age in that disease (then judged row by row)
        plain = {
            (p, label.car_target, label.costimulatory_domain, d)
            for p, label in PRODUCT_LABELS.items()
            for d, ages in label.diseases.items()
            if ages is None
        }
        licensed = product.isin(list(PRODUCT_LABELS)).to_numpy()
        columns = (product, patients["car_target"], patients["costimulatory_domain"])
        four = zip(*columns, patients["disease"], strict=True)
        suspect |= licensed & ~pd.Series(list(four)).isin(plain).to_numpy()
    out = []
    for label in patients.index[suspect]:
        row = patients.loc[label]
        given = row.get("car_product")
        for field, value, rule in combination_errors(
            row["car_target"],
            row["disease"],
            row["age_years"],
            row["costimulatory_domain"],
            given if isinstance(given, str) else None,
        ):
            out.append(InvalidInputError(field, value, rule, where=_where(patients, label)))
    return out


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


# pandera's own checks (types, missing values, uniqueness) in words; the contract's rules carry
# their words as the check's error.
_RULES = [
    (
        re.compile(r"coerce_dtype\('(float|int|bool|str).*'\)|dtype\('(float|int|bool|str).*'\)"),
        lambda m: {
            "float": "a number",
            "int": "a whole number",
            "bool": "true or false",
            "str": "text",
        }[m[1] or m[2]],
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


def _plain(value):
    """A numpy scalar as the Python value it holds (so a message shows 20, not np.int64(20))."""
    return value.item() if isinstance(value, np.generic) else value


def _errors(
    exc: SchemaErrors, frame: pd.DataFrame, unique_keys: list[str]
) -> list[InvalidInputError]:
    out: list[InvalidInputError] = []
    cases = exc.failure_cases
    dup = cases["check"].astype(str) == "multiple_fields_uniqueness"
    if not set(unique_keys) <= set(frame.columns):
        dup[:] = False  # a key column is missing: reported as such, no duplicates to name
        cases = cases[cases["check"].astype(str) != "multiple_fields_uniqueness"]
        dup = dup.loc[cases.index]
    for label in cases.loc[dup, "index"].dropna().unique():  # one error per duplicated row
        value = tuple(_plain(frame.loc[label, c]) for c in unique_keys) if unique_keys else label
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
