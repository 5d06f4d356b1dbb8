"""Validation of cohort tables at the boundary (pandera), reporting every bad row at once.

A new cohort brought by a data scientist must have the generator's tables (``patients``,
``daily``, ``measurements``, ``outcomes``) in the data contract's vocabulary. Each violation
becomes an :class:`~icans.errors.InvalidInputError` naming the patient, the field, the value and
the rule; all of them are raised together as one :class:`~icans.errors.InvalidCohortError`.
"""

from __future__ import annotations

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
        "weight_kg": _num(0.5, 300, nullable=True),
        "disease": pa.Column(str, pa.Check.isin(DISEASES)),
        "car_target": pa.Column(str, pa.Check.isin(CAR_TARGETS)),
        "costimulatory_domain": pa.Column(str, pa.Check.isin(COSTIMULATORY_DOMAINS)),
        "dose_cells_per_kg": pa.Column(float, pa.Check.in_range(1.0, 1e9), coerce=True),
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
        "platelets_10e9_per_l": _num(0, 2_000, nullable=True),
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
        raise InvalidCohortError(_errors(exc, frame), table=name) from None


def _errors(exc: SchemaErrors, frame: pd.DataFrame) -> list[InvalidInputError]:
    out = []
    for case in exc.failure_cases.itertuples(index=False):
        index = case.index
        where = "table"
        if index is not None and not pd.isna(index) and "patient_id" in frame.columns:
            try:
                where = f"patient {frame['patient_id'].iloc[int(index)]} (row {int(index)})"
            except (IndexError, ValueError):
                where = f"row {index}"
        field = case.column if isinstance(case.column, str) else str(case.column)
        out.append(InvalidInputError(field, case.failure_case, str(case.check), where=where))
    return out
