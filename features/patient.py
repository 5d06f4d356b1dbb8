"""One patient at one prediction day: validation at the boundary and packing into the layout.

The pydantic model uses the data contract's names, types, units and ranges. Every violation is
reported at once, each naming the field (with its position in a list), the value and the rule:

* types, ranges and enumerations of the contract;
* a course observation dated after ``day_since_infusion`` (never silently used);
* a day given twice in one course list;
* negative cell counts; ICANS grades above 2 (grade >= 3 means the event has happened).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.layout import (
    CATEGORY_CODE,
    COLUMN_INDEX,
    COURSE_SERIES,
    N_DAYS,
    NUMERIC_FIELDS,
    RAW_COLUMNS,
)
from icans.contract import (
    CAR_TARGETS,
    COSTIMULATORY_DOMAINS,
    DISEASES,
    HORIZON_DAYS,
    LAB_FIELDS,
    LYMPHODEPLETION_REGIMENS,
    MAX_ICANS_GRADE_BEFORE_EVENT,
)
from icans.errors import InvalidInputError, InvalidPatientError

Day = Annotated[int, Field(ge=0, le=HORIZON_DAYS, description="Day since infusion (0-28).")]


class _Strict(BaseModel):
    # strict: no silent coercion (true is not 1, "5" is not 5, 2.0 is not a day); ints are
    # accepted for float fields.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CrsGradeOnDay(_Strict):
    day: Day
    grade: int = Field(ge=0, le=4, description="ASTCT CRS grade 0-4.")


class IcansGradeOnDay(_Strict):
    day: Day
    grade: int = Field(
        ge=0,
        le=MAX_ICANS_GRADE_BEFORE_EVENT,
        description="ASTCT ICANS grade 0-2 (>= 3 means the event has happened).",
    )


class CellsOnDay(_Strict):
    day: Day
    value: float = Field(
        ge=0, le=100_000, allow_inf_nan=False, description="CAR-T cells per uL of blood (>= 0)."
    )


def _lab(unit: str, high: float) -> Any:
    return Field(
        None,
        ge=0,
        le=high,
        allow_inf_nan=False,
        description=f"Before lymphodepletion, {unit}; may be missing.",
    )


class PatientObservation(_Strict):
    """A patient on ``day_since_infusion``, with the course observed up to that day."""

    patient_id: str | None = Field(
        None, max_length=128, description="Opaque identifier; never logged raw."
    )
    age_years: float = Field(ge=0, le=100, allow_inf_nan=False, description="Years.")
    weight_kg: float | None = Field(None, gt=0, le=300, allow_inf_nan=False, description="kg.")
    disease: Literal[DISEASES]  # type: ignore[valid-type]
    car_target: Literal[CAR_TARGETS]  # type: ignore[valid-type]
    costimulatory_domain: Literal[COSTIMULATORY_DOMAINS]  # type: ignore[valid-type]
    dose_cells_per_kg: float = Field(
        gt=0, le=1e9, allow_inf_nan=False, description="CAR+ cells per kg, e.g. 2.0e6."
    )
    marrow_blasts_pct: float = Field(
        ge=0, le=100, allow_inf_nan=False, description="% before lymphodepletion."
    )
    cns_involvement: bool
    prior_lines: int | None = Field(None, ge=0, le=30)
    neuro_comorbidity: bool | None = None
    lymphodepletion: Literal[LYMPHODEPLETION_REGIMENS] | None = None  # type: ignore[valid-type]
    ldh_u_per_l: float | None = _lab("U/L", 50_000)
    crp_mg_per_l: float | None = _lab("mg/L", 1_000)
    ferritin_ng_per_ml: float | None = _lab("ng/mL", 500_000)
    platelets_10e9_per_l: float | None = Field(
        None,
        gt=0,
        le=2_000,
        allow_inf_nan=False,
        description="Before lymphodepletion, 10^9/L (> 0); may be missing.",
    )
    creatinine_mg_per_dl: float | None = _lab("mg/dL", 30)
    day_since_infusion: Day
    crs_grade_by_day: list[CrsGradeOnDay] = Field(default_factory=list, max_length=N_DAYS)
    cd4_car_t_cells_per_ul: list[CellsOnDay] = Field(default_factory=list, max_length=N_DAYS)
    cd8_car_t_cells_per_ul: list[CellsOnDay] = Field(default_factory=list, max_length=N_DAYS)
    icans_grade_by_day: list[IcansGradeOnDay] = Field(default_factory=list, max_length=N_DAYS)

    @model_validator(mode="after")
    def _course_dates(self) -> PatientObservation:
        errors = course_date_errors(self.model_dump())
        if errors:
            raise InvalidPatientError(errors)
        return self


def course_date_errors(data: Any) -> list[InvalidInputError]:
    """Observations dated after the prediction day, and days given twice, in raw input.

    Works on the raw (possibly otherwise invalid) request so these errors are reported together
    with every other error, not only once the rest of the request is valid.
    """
    if not isinstance(data, dict):
        return []
    day = data.get("day_since_infusion")
    prediction_day = day if isinstance(day, int) and not isinstance(day, bool) else None
    errors = []
    for name in COURSE_SERIES.values():
        items = data.get(name)
        if not isinstance(items, list):
            continue
        seen: set[int] = set()
        for i, obs in enumerate(items):
            d = obs.get("day") if isinstance(obs, dict) else getattr(obs, "day", None)
            if not isinstance(d, int) or isinstance(d, bool):
                continue
            where = f"{name}[{i}].day"
            if prediction_day is not None and d > prediction_day:
                errors.append(
                    InvalidInputError(
                        where,
                        d,
                        f"a day on or before day_since_infusion={prediction_day} "
                        "(an observation dated after the prediction day is not allowed)",
                    )
                )
            if d in seen:
                errors.append(InvalidInputError(where, d, f"each day at most once in {name}"))
            seen.add(d)
    return errors


def parse_patient(data: Any) -> PatientObservation:
    """Validate a JSON-like dict (or pass through a model); every error in one exception."""
    if isinstance(data, PatientObservation):
        return data
    try:
        return PatientObservation.model_validate(data)
    except ValidationError as exc:
        raise InvalidPatientError(
            errors_from_pydantic(exc.errors(include_url=False), data)
        ) from None


def errors_from_pydantic(
    errors: list[dict], data: Any, loc_prefix: tuple = ()
) -> list[InvalidInputError]:
    """Our errors from pydantic's error dicts (also FastAPI's, whose locations start with
    ``loc_prefix``, e.g. ``("body",)``), plus the course-date errors pydantic could not reach."""
    out, dates_checked = _from_pydantic(errors, loc_prefix)
    if not dates_checked:  # field errors stopped the model validator: check dates here
        out += course_date_errors(data)
    return out


def _from_pydantic(errors: list[dict], loc_prefix: tuple) -> tuple[list[InvalidInputError], bool]:
    """Our errors from pydantic's, and whether the course-date validator already ran."""
    out: list[InvalidInputError] = []
    dates_checked = False
    for err in errors:
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, InvalidPatientError):  # raised by our model validator
            out.extend(ctx_error.errors)
            dates_checked = True
            continue
        loc = tuple(err["loc"])
        loc = loc[len(loc_prefix) :] if loc[: len(loc_prefix)] == loc_prefix else loc
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        field = field.lstrip(".") or "body"
        if err["type"] == "missing":  # the input is the whole request: never echo it
            out.append(InvalidInputError(field, None, "a value (this field is required)"))
            continue
        value = _safe_echo(field, err.get("input"))
        out.append(InvalidInputError(field, value, err["msg"]))
    return out, dates_checked


def _safe_echo(field: str, value: Any) -> Any:
    """What an error may repeat back: never an identifier, a raw body or a long blob."""
    if field == "patient_id" or field.endswith(".patient_id"):
        return None
    if isinstance(value, (dict, list)):
        return f"<{type(value).__name__} of {len(value)} item(s)>"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > 120:
        return f"<text of {len(value)} characters>"
    return value


_BASELINE_INDEX = {f: COLUMN_INDEX[f] for f in NUMERIC_FIELDS}
_SERIES_START = {field: COLUMN_INDEX[f"{s}_d00"] for s, field in COURSE_SERIES.items()}


def to_raw(patient: PatientObservation) -> np.ndarray:
    """The patient as one row of the raw layout (shape (1, n)), without building a DataFrame."""
    row = np.full(len(RAW_COLUMNS), np.nan)
    for field, i in _BASELINE_INDEX.items():
        value = getattr(patient, field)
        if value is not None:
            row[i] = float(value)
    for field, codes in CATEGORY_CODE.items():
        value = getattr(patient, field)
        if value is not None:
            row[COLUMN_INDEX[field]] = codes[value]
    row[COLUMN_INDEX["day_since_infusion"]] = patient.day_since_infusion
    for field, start in _SERIES_START.items():
        for obs in getattr(patient, field):
            row[start + obs.day] = obs.grade if hasattr(obs, "grade") else obs.value
    return row[None, :]


def missing_inputs(patient: PatientObservation) -> list[str]:
    """Optional inputs the request left out (the model treats them as missing, never as 0)."""
    missing = [
        f
        for f in ("weight_kg", "prior_lines", "neuro_comorbidity", "lymphodepletion", *LAB_FIELDS)
        if getattr(patient, f) is None
    ]
    if patient.day_since_infusion > 0:
        missing += [f for f in COURSE_SERIES.values() if not getattr(patient, f)]
    return missing
