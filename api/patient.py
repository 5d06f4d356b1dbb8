"""One patient at one prediction day, as a caller sends it: the request model, validated at the
boundary (packing into the raw layout is :mod:`features.packing`).

The pydantic model is derived from the contract's field specifications (:mod:`icans.contract`):
names, types, units and ranges. Every violation is reported at once, each naming the field (with
its position in a list), the value and the rule:

* types, ranges and enumerations of the contract;
* a course observation dated after ``day_since_infusion`` (never silently used);
* a day given twice in one course list;
* a product, disease and age outside the supported combinations
  (:data:`icans.products.SUPPORTED_TARGETS`), and a licensed CAR-T product that contradicts
  the CAR target, costimulatory domain, disease or age (:data:`icans.products.PRODUCT_LABELS`);
* negative cell counts; ICANS grades above 2 (grade >= 3 means the event has happened);
* an ICE score charted for a child or a CAPD score for a patient of 12 or more, by the
  contract's age windows, and an ICANS grade below the grade the same day's ICE or CAPD score
  gives on its own (ASTCT 2019; :mod:`icans.charting`);
* a patient who has already met the other half of the outcome: steroid-refractory ICANS by
  :func:`icans.steroids.refractory_day` (grade >= 2, and not below the start grade, 48 and
  72 h after corticosteroids started, or anakinra or intrathecal therapy after the start),
  judged on the grades and doses sent, on or before ``day_since_infusion``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

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

from features.layout import (
    COURSE_SERIES,
    N_DAYS,
)
from icans.charting import (
    AGE_WINDOWED,
    GRADE_BOUNDING,
    age_window_rule,
    domain_grade,
    grade_floor_rule,
    in_age_window,
)
from icans.contract import (
    BASELINE,
    COURSE,
    FIELDS,
    HORIZON_DAYS,
    PATIENT_ID_MAX_LENGTH,
    PREDICTION_DAY,
)
from icans.errors import InvalidInputError, InvalidPatientError
from icans.field_spec import FieldSpec
from icans.products import combination_errors
from icans.steroids import (
    MIN_REFRACTORY_GRADE,
    PERSISTENCE_DAYS,
    TREATMENT_MG,
    escalation_day,
    persistence_day,
    persistence_threshold,
    refractory_day,
    steroid_start_day,
)


def _whole(value: Any) -> Any:
    """A JSON number with a zero fraction (``10.0``) is an integer, as JSON Schema says; any
    other value is left for the strict check (``10.5``, ``true`` and ``"10"`` stay errors)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole)]
Day = Annotated[
    Whole,
    Field(ge=0, le=HORIZON_DAYS, description=f"Day since infusion (0-{HORIZON_DAYS})."),
]
PredictionDay = Annotated[Whole, Field(ge=PREDICTION_DAY.low, le=PREDICTION_DAY.high)]


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
    real = spec.kind in ("number", "day_list") and not spec.whole
    return out | ({"allow_inf_nan": False} if real else {})


def _annotation(spec: FieldSpec) -> Any:
    if spec.kind == "category":
        return Literal[spec.values]
    return {"number": float, "integer": Whole, "boolean": bool}[spec.kind]


def _scalar(spec: FieldSpec) -> tuple[Any, Any]:
    constraints = _bounds(spec) if spec.kind in ("number", "integer") else {}
    annotation = _annotation(spec)
    if spec.required:
        return annotation, Field(description=_description(spec), **constraints)
    return annotation | None, Field(None, description=_description(spec), **constraints)


def _day_list(spec: FieldSpec) -> tuple[Any, Any]:
    """``list[{day, <value_key>}]`` (grade, value, mg or doses) with the contract's range of the
    value: a whole number for grades and doses, a finite number otherwise."""
    value_type = Whole if spec.whole else float
    # dict[str, Any]: pyright checks an unpacked dict against create_model's own options
    # (__config__, __doc__ ...) too; a value key is never one of those.
    value: dict[str, Any] = {
        spec.value_key: (
            value_type,
            Field(description=_description(spec), **_bounds(spec, spec.request_high)),
        )
    }
    item = create_model(_ITEM_MODEL_NAMES[spec.name], __base__=_Strict, day=(Day, ...), **value)
    return list[item], Field(default_factory=list, max_length=N_DAYS)  # at most one a day


# Names of the list items in the OpenAPI document (kept from the hand-written models).
_ITEM_MODEL_NAMES = {
    "crs_grade_by_day": "CrsGradeOnDay",
    "cd4_car_t_cells_per_ul": "Cd4CellsOnDay",
    "cd8_car_t_cells_per_ul": "Cd8CellsOnDay",
    "icans_grade_by_day": "IcansGradeOnDay",
    "dexamethasone_mg_by_day": "DexamethasoneMgOnDay",
    "tocilizumab_doses_by_day": "TocilizumabDosesOnDay",
    "anakinra_doses_by_day": "AnakinraDosesOnDay",
    "intrathecal_doses_by_day": "IntrathecalDosesOnDay",
    "temperature_max_c_by_day": "MaxTemperatureOnDay",
    "ice_score_by_day": "IceScoreOnDay",
    "capd_score_by_day": "CapdScoreOnDay",
    "crp_mg_per_l_by_day": "CrpOnDay",
    "ferritin_ng_per_ml_by_day": "FerritinOnDay",
    "il6_pg_per_ml_by_day": "Il6OnDay",
    "platelets_10e9_per_l_by_day": "PlateletsOnDay",
    "fibrinogen_mg_per_dl_by_day": "FibrinogenOnDay",
    "lymphocytes_10e9_per_l_by_day": "LymphocytesOnDay",
    "ldh_u_per_l_by_day": "LdhOnDay",
    "creatinine_mg_per_dl_by_day": "CreatinineOnDay",
}


class _PatientBase(_Strict):
    if TYPE_CHECKING:
        # The fields are the contract's, added at run time (PatientObservation): to a type
        # checker each reads as Any.
        def __getattr__(self, name: str) -> Any: ...

    @model_validator(mode="after")
    def _course_dates_and_product(self):
        errors = course_errors(self.model_dump())
        errors += [
            InvalidInputError(field, value, rule)
            for field, value, rule in combination_errors(
                self.car_target,
                self.disease,
                self.age_years,
                self.costimulatory_domain,
                self.car_product,
            )
        ]
        if errors:
            raise InvalidPatientError(errors)
        return self


# A model built at run time is not a type a type checker can name: to it a patient is a
# _PatientBase, whose fields read as Any.
if TYPE_CHECKING:
    PatientObservation = _PatientBase
else:
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
        day_since_infusion=(PredictionDay, Field(description=_description(PREDICTION_DAY))),
        **{spec.name: _day_list(spec) for spec in COURSE},
    )


def course_date_errors(data: Any) -> list[InvalidInputError]:
    """Observations dated after the prediction day, and days given twice, in raw input.

    Works on the raw (possibly otherwise invalid) request so these errors are reported together
    with every other error, not only once the rest of the request is valid.
    """
    if not isinstance(data, dict):
        return []
    prediction_day = _prediction_day(data)
    errors = []
    for name in COURSE_SERIES.values():
        items = data.get(name)
        if not isinstance(items, list):
            continue
        seen: set[int] = set()
        for i, obs in enumerate(items):
            d = obs.get("day") if isinstance(obs, dict) else getattr(obs, "day", None)
            if type(d) is not int:  # a validated day is an int: no conversion, no checks
                d = _whole(d)
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


def course_errors(data: Any) -> list[InvalidInputError]:
    """Every error of the course as a whole, in raw input: dates (:func:`course_date_errors`),
    scores against the age and the grades (:func:`charting_errors`) and an outcome already met
    (:func:`outcome_errors`)."""
    return course_date_errors(data) + charting_errors(data) + outcome_errors(data)


_GRADES = FIELDS[COURSE_SERIES["icans_grade"]]
_STEROIDS = FIELDS[COURSE_SERIES["dexamethasone_mg"]]
# Second-line therapy for ICANS, whose use after the steroid start is refractory ICANS.
_SECOND_LINE = tuple(FIELDS[COURSE_SERIES[s]] for s in ("anakinra_doses", "intrathecal_doses"))


def _prediction_day(data: dict) -> int | None:
    day = _whole(data.get(PREDICTION_DAY.name))
    return day if isinstance(day, int) and not isinstance(day, bool) else None


def _valid_course(data: dict, spec: FieldSpec, last_day: int) -> dict[int, tuple[int, float]]:
    """day -> (position in the list, value) of the observations of ``spec`` that are valid
    and dated 0..``last_day``; anything else is reported by its own rule, not judged here."""
    items = data.get(spec.name)
    low, high = spec.low, spec.high if spec.request_high is None else spec.request_high
    assert low is not None and high is not None  # a day list's value has both bounds
    out: dict[int, tuple[int, float]] = {}
    for i, obs in enumerate(items if isinstance(items, list) else []):
        if not isinstance(obs, dict):
            continue
        d, v = _whole(obs.get("day")), obs.get(spec.value_key)
        if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= last_day:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:
            continue
        out.setdefault(d, (i, float(v)))
    return out


def _number(value: Any) -> float | None:
    """A finite number of the raw request, else None (a bool, text, or an integer too large
    for a float is reported by the field's own rule)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def charting_errors(data: Any) -> list[InvalidInputError]:
    """Scores that do not fit the patient or the day (:mod:`icans.charting`), in raw input.

    An ICE or CAPD score outside its age window (the contract's ``age_window``: ASTCT 2019
    charts the ICE score from 12 years, the CAPD below), one error per score sent; and an ICANS
    grade lower than the grade that day's ICE or CAPD score gives on its own (the ICANS grade is
    the worst of its domains). Only values valid by their own rules are judged here.
    """
    if not isinstance(data, dict):
        return []
    errors = []
    age = _number(data.get("age_years"))
    for spec in AGE_WINDOWED:
        items = data.get(spec.name)
        if age is None or not isinstance(items, list) or in_age_window(spec, [age])[0]:
            continue
        for i, obs in enumerate(items):
            value = obs.get(spec.value_key) if isinstance(obs, dict) else None
            where = f"{spec.name}[{i}].{spec.value_key}"
            errors.append(InvalidInputError(where, value, age_window_rule(spec, age)))
    last = N_DAYS - 1
    grades = _valid_course(data, _GRADES, last)
    for spec in GRADE_BOUNDING:
        scores = sorted(_valid_course(data, spec, last).items())
        floors = domain_grade(spec, np.array([score for _, (_, score) in scores])).tolist()
        for (day, (_, score)), floor in zip(scores, floors, strict=True):
            if day in grades and grades[day][1] < floor:
                position, grade = grades[day]
                errors.append(
                    InvalidInputError(
                        f"{_GRADES.name}[{position}].{_GRADES.value_key}",
                        int(grade),
                        f"on day {day}, " + grade_floor_rule(spec, score, floor),
                    )
                )
    return errors


def outcome_errors(data: Any) -> list[InvalidInputError]:
    """A patient who has already met the outcome: steroid-refractory ICANS.

    Judged by the one definition (:func:`icans.steroids.refractory_day`) on the ICANS grades,
    corticosteroid doses and second-line doses (anakinra and intrathecal therapy) sent, dated
    up to ``day_since_infusion``: the risk of an event that has happened is not a prediction.
    (Severe ICANS, grade >= 3, is refused by the grade's own bound.) The error names what shows
    it: the ICANS grade read 72 h after the start when the ICANS persisted, or the first
    second-line dose after the start when the treating team escalated.
    """
    if not isinstance(data, dict) or (day := _prediction_day(data)) is None:
        return []
    last = min(day, N_DAYS - 1)
    grades = _valid_course(data, _GRADES, last)
    doses = _valid_course(data, _STEROIDS, last)
    if not any(
        grades[d][1] >= 1 and mg >= TREATMENT_MG for d, (_, mg) in doses.items() if d in grades
    ):
        return []  # steroids never started for ICANS (steroid_start_day): nothing to judge
    second_line = {spec: _valid_course(data, spec, last) for spec in _SECOND_LINE}
    grade, mg = _row(grades), _row(doses)
    given = np.vstack([_row(course) for course in second_line.values()])
    # a day's second-line doses: their sum where any was recorded, NaN where none was
    total = np.where(np.isnan(given).all(axis=0), np.nan, np.nansum(given, axis=0))[None, :]
    if np.isnan(refractory_day(grade, mg, total)[0]):
        return []  # the usual case: what met the outcome is worked out only when it was met
    persisted = persistence_day(grade, mg)[0]
    escalated = escalation_day(grade, mg, total)[0]
    start = int(steroid_start_day(grade, mg)[0])
    started = (
        f"corticosteroids for ICANS started on day {start} (grade {grade[0, start]:g}, "
        f"{mg[0, start]:g} mg dexamethasone-equivalent, at least {TREATMENT_MG:g} mg)"
    )
    outcome = (
        "that is steroid-refractory ICANS, the outcome itself (icans.steroids); the risk is "
        "estimated only before it"
    )
    if np.isnan(escalated) or persisted <= escalated:
        judged = int(persisted)
        readings = ", ".join(
            f"day {start + k}: grade {grade[0, start + k]:g}" for k in PERSISTENCE_DAYS
        )
        threshold = float(persistence_threshold(grade[0, start]))
        position, value = grades[judged]
        return [
            InvalidInputError(
                f"{_GRADES.name}[{position}].{_GRADES.value_key}",
                int(value),
                f"a patient who has not met the outcome: {started}, and the grade 48 and 72 h "
                f"later ({readings}) is still at least {threshold:g} (the start grade, and at "
                f"least {MIN_REFRACTORY_GRADE}): {outcome}",
            )
        ]
    when = int(escalated)
    spec, (position, value) = next(
        (spec, course[when]) for spec, course in second_line.items() if course.get(when, (0, 0))[1]
    )
    return [
        InvalidInputError(
            f"{spec.name}[{position}].{spec.value_key}",
            int(value),
            f"a patient who has not met the outcome: {started}, and {spec.label} was given on "
            f"day {when}, after the start, an escalation to second-line therapy for ICANS "
            f"(anakinra or intrathecal therapy): {outcome}",
        )
    ]


def _row(course: dict[int, tuple[int, float]]) -> np.ndarray:
    """One patient's course (:func:`_valid_course`) as a row of days 0-28, NaN where not sent."""
    row = np.full((1, N_DAYS), np.nan)
    for d, (_, v) in course.items():
        row[0, d] = v
    return row


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
    errors: Sequence[Mapping[str, Any]], data: Any, loc_prefix: tuple = ()
) -> list[InvalidInputError]:
    """Our errors from pydantic's error dicts (also FastAPI's, whose locations start with
    ``loc_prefix``, e.g. ``("body",)``), plus the course-date errors pydantic could not reach."""
    out, dates_checked = _from_pydantic(errors, loc_prefix)
    if not dates_checked:  # field errors stopped the model validator: check the course here
        out += course_errors(data)
    return out


def _from_pydantic(
    errors: Sequence[Mapping[str, Any]], loc_prefix: tuple
) -> tuple[list[InvalidInputError], bool]:
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
