"""One patient at one prediction day: validation at the boundary and packing into the layout.

The pydantic model is derived from the contract's field specifications (:mod:`icans.contract`):
names, types, units and ranges. Every violation is reported at once, each naming the field (with
its position in a list), the value and the rule:

* types, ranges and enumerations of the contract;
* a course observation dated after ``day_since_infusion`` (never silently used);
* a day given twice in one course list;
* a product, disease and age outside the supported combinations
  (:data:`icans.contract.SUPPORTED_TARGETS`);
* negative cell counts; ICANS grades above 2 (grade >= 3 means the event has happened).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from features.layout import CATEGORY_CODE, COLUMN_INDEX, COURSE_SERIES, NUMERIC_FIELDS, RAW_COLUMNS
from icans.contract import (
    BASELINE,
    COURSE,
    PATIENT_ID_MAX_LENGTH,
    PREDICTION_DAY,
    FieldSpec,
    combination_errors,
)
from icans.errors import InvalidInputError, InvalidPatientError


def _whole(value: Any) -> Any:
    """A JSON number with a zero fraction (``10.0``) is an integer, as JSON Schema says; any
    other value is left for the strict check (``10.5``, ``true`` and ``"10"`` stay errors)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole)]
Day = Annotated[
    Whole,
    Field(ge=PREDICTION_DAY.low, le=PREDICTION_DAY.high, description="Day since infusion (0-28)."),
]


class _Strict(BaseModel):
    # strict: no silent coercion (true is not 1, "5" is not 5, 2.5 is not a day); ints are
    # accepted for float fields, and whole floats (2.0) for integer fields (:func:`_whole`).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _description(spec: FieldSpec) -> str:
    parts = [spec.label + (f" ({spec.unit})" if spec.unit else ""), spec.note, spec.rule() + "."]
    return "; ".join(p for p in parts if p)


def _bounds(spec: FieldSpec, high: float | None = None) -> dict[str, Any]:
    """pydantic's constraints for a number of the contract (``high`` overrides the bound)."""
    low = {"gt": spec.low} if spec.low_open else {"ge": spec.low}
    out = low | {"le": spec.high if high is None else high}
    real = spec.kind == "number" or spec.value_key == "value"
    return out | ({"allow_inf_nan": False} if real else {})


def _annotation(spec: FieldSpec) -> Any:
    if spec.kind == "category":
        return Literal[spec.values]  # type: ignore[valid-type]
    return {"number": float, "integer": Whole, "boolean": bool}[spec.kind]


def _scalar(spec: FieldSpec) -> tuple[Any, Any]:
    constraints = _bounds(spec) if spec.kind in ("number", "integer") else {}
    annotation = _annotation(spec)
    if spec.required:
        return annotation, Field(description=_description(spec), **constraints)
    return annotation | None, Field(None, description=_description(spec), **constraints)


def _day_list(spec: FieldSpec) -> tuple[Any, Any]:
    """``list[{day, grade}]`` or ``list[{day, value}]`` with the contract's range of the value."""
    value_type = Whole if spec.value_key == "grade" else float
    item = create_model(
        _ITEM_MODEL_NAMES[spec.name],
        __base__=_Strict,
        day=(Day, ...),
        **{
            spec.value_key: (
                value_type,
                Field(description=_description(spec), **_bounds(spec, spec.request_high)),
            )
        },
    )
    return list[item], Field(default_factory=list, max_length=PREDICTION_DAY.high + 1)


# Names of the list items in the OpenAPI document (kept from the hand-written models).
_ITEM_MODEL_NAMES = {
    "crs_grade_by_day": "CrsGradeOnDay",
    "cd4_car_t_cells_per_ul": "Cd4CellsOnDay",
    "cd8_car_t_cells_per_ul": "Cd8CellsOnDay",
    "icans_grade_by_day": "IcansGradeOnDay",
}


class _PatientBase(_Strict):
    @model_validator(mode="after")
    def _course_dates_and_product(self):
        errors = course_date_errors(self.model_dump())
        errors += [
            InvalidInputError(field, value, rule)
            for field, value, rule in combination_errors(
                self.car_target, self.disease, self.age_years
            )
        ]
        if errors:
            raise InvalidPatientError(errors)
        return self


PatientObservation = create_model(
    "PatientObservation",
    __base__=_PatientBase,
    __doc__="A patient on ``day_since_infusion``, with the course observed up to that day.",
    patient_id=(
        str | None,
        Field(
            None,
            max_length=PATIENT_ID_MAX_LENGTH,
            description="Opaque identifier; never logged raw.",
        ),
    ),
    **{spec.name: _scalar(spec) for spec in BASELINE},
    day_since_infusion=(Day, Field(description=_description(PREDICTION_DAY))),
    **{spec.name: _day_list(spec) for spec in COURSE},
)


def course_date_errors(data: Any) -> list[InvalidInputError]:
    """Observations dated after the prediction day, and days given twice, in raw input.

    Works on the raw (possibly otherwise invalid) request so these errors are reported together
    with every other error, not only once the rest of the request is valid.
    """
    if not isinstance(data, dict):
        return []
    day = _whole(data.get("day_since_infusion"))
    prediction_day = day if isinstance(day, int) and not isinstance(day, bool) else None
    errors = []
    for name in COURSE_SERIES.values():
        items = data.get(name)
        if not isinstance(items, list):
            continue
        seen: set[int] = set()
        for i, obs in enumerate(items):
            d = _whole(obs.get("day") if isinstance(obs, dict) else getattr(obs, "day", None))
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
_VALUE_KEY = {spec.name: spec.value_key for spec in COURSE}


def to_raw(patient) -> np.ndarray:
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
    row[COLUMN_INDEX[PREDICTION_DAY.name]] = patient.day_since_infusion
    for field, start in _SERIES_START.items():
        key = _VALUE_KEY[field]
        for obs in getattr(patient, field):
            row[start + obs.day] = getattr(obs, key)
    return row[None, :]


OPTIONAL_BASELINE = tuple(spec.name for spec in BASELINE if not spec.required)


def missing_inputs(patient) -> list[str]:
    """Optional inputs the request left out (the model treats them as missing, never as 0).

    A course list counts as left out only after day 0: on the day of infusion there is no
    course yet."""
    missing = [f for f in OPTIONAL_BASELINE if getattr(patient, f) is None]
    if patient.day_since_infusion > 0:
        missing += [spec.name for spec in COURSE if not getattr(patient, spec.name)]
    return missing
