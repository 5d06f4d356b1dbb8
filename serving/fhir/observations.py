"""FHIR Observations of one patient -> the contract's baseline values and day-by-day series.

Part of the FHIR mapping (:mod:`serving.fhir.mapping`, ``docs/fhir-mapping.md``), kept apart
because it is the one part that routes by date: one laboratory code feeds either a baseline
field (a value before lymphodepletion) or the matching daily series (a value since the
infusion), each series keeps one value a day by its own rule (the worst grade, the highest
temperature, the lowest ICE and highest CAPD score, the latest laboratory value), every value
is converted to the contract's unit (:data:`serving.fhir.codes.ROUTES`), and a score charted
outside its age window is refused as the contract refuses it (ASTCT 2019: the ICE score from 12
years, CAPD below). The mapping calls :func:`map_observations` once and merges what it returns.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from icans.contract import FIELDS
from serving.fhir import codes
from serving.fhir.reading import FhirIssue, Located, codings
from serving.fhir.screen import Screen


def map_observations(
    reader: Screen,
    resources: list[Located],
    infusion_day: date,
    ld_day: int,
    age_years: float | None,
) -> tuple[dict[str, Any], list[FhirIssue]]:
    """The contract's values read from the Observations among ``resources``, and the values the
    contract refuses (a score outside its age window, answered 422 with the contract's errors).

    ``infusion_day`` is day 0; ``ld_day`` the day lymphodepletion started (it closes the
    laboratory baseline window); ``age_years`` the patient's age at the infusion (None when not
    known: no age window is checked). Each value's source and the resources used are recorded
    on ``reader``; problems reading a resource are its issues, values left out its warnings.
    """
    router = _Observations(reader, resources, infusion_day, age_years)
    router.route(ld_day)
    return router.values, router.refused


class _Observations:
    def __init__(
        self,
        reader: Screen,
        resources: list[Located],
        infusion_day: date,
        age_years: float | None,
    ):
        self.r = reader
        self.resources = resources
        self.infusion_day = infusion_day
        self.age_years = age_years
        self.values: dict[str, Any] = {}
        self.refused: list[FhirIssue] = []

    def route(self, ld_day: int) -> None:
        """Observations -> baseline values and course series, each routed by its date.

        One code may feed a baseline field and a course series (:data:`codes.ROUTES`: a CRP
        before lymphodepletion is the baseline CRP, a CRP since the infusion that day's CRP).
        An Observation dated day 0 or later goes to its code's course series when there is one;
        one dated before the infusion to its code's baseline field, counted only in that
        field's window (for the laboratory values, up to the start of lymphodepletion, as the
        contract's "before lymphodepletion" says). A value dated after the start of
        lymphodepletion and before the infusion is therefore neither baseline nor course: it is
        listed in the warnings and not used (lymphodepletion itself moves blood counts and
        inflammation markers). Nothing dated after the prediction time is used.

        A course series keeps one value a day (``per_day`` of its code): the worst grade,
        the highest temperature, the lowest (worst) ICE score, the highest (worst) CAPD score,
        the latest laboratory value or cell count. A score charted outside its age window
        (:attr:`icans.field_spec.FieldSpec.age_window`: ASTCT 2019 grades ICANS with the ICE
        score from 12 years and with CAPD below) is refused, as the contract refuses it.
        """
        baseline: dict[str, tuple[tuple, float | bool, Located]] = {}
        course: dict[str, dict[int, list[tuple[tuple, float | bool, Located]]]] = {}
        course_specs: dict[str, codes.ObservationCode] = {}
        for res in self.resources:
            if res.type != "Observation":
                continue
            route = next(
                (codes.ROUTES[c] for c in codings(res.resource.get("code")) if c in codes.ROUTES),
                None,
            )
            if route is None or not self.r.status_ok(res):
                continue
            when = self.r.when(res, "effectiveDateTime", "effectivePeriod", "effectiveInstant")
            if when is None:
                continue
            day = (when.day - self.infusion_day).days
            spec = route.on_day(day)
            if when.after(self.r.at):
                self.r.warnings.append(
                    f"{res.reference} ({spec.field}) dated "
                    f"{when.day.isoformat()}, after the prediction time: "
                    "not used"
                )
                continue
            value = self._value(res, spec)
            if value is None:
                continue
            if spec.lookback_days is None:
                if day < 0:
                    self.r.warnings.append(
                        f"{res.reference} ({spec.field}) dated day {day}, "
                        "before the infusion: not used"
                    )
                    continue
                if self._outside_age_window(res, spec, value):
                    continue
                course_specs[spec.field] = spec
                course.setdefault(spec.field, {}).setdefault(day, []).append(
                    (when.sort_key(), value, res)
                )
                continue
            cutoff = 0 if spec.until == "infusion" else ld_day
            if not cutoff - spec.lookback_days <= day <= cutoff:
                between = ""
                if cutoff < day < 0:
                    between = " (after lymphodepletion began, before the infusion)"
                self.r.warnings.append(
                    f"{res.reference} ({spec.field}) dated day {day}{between}: outside the "
                    f"baseline window (days {cutoff - spec.lookback_days} to {cutoff}): not used"
                )
                continue
            key = when.sort_key()
            if spec.field not in baseline or key > baseline[spec.field][0]:
                baseline[spec.field] = (key, value, res)
        for name, (_, value, res) in baseline.items():
            self.values[name] = value
            self.r.sources[name] = res.reference
            self.r.use(res)
        for name, days in course.items():
            self._series(course_specs[name], days)

    def _value(self, res: Located, spec: codes.ObservationCode) -> float | bool | None:
        """The Observation's value in the contract's unit; None (with an issue or a warning
        saying why) when it cannot be read or its unit is not one the table converts."""
        if isinstance(spec, codes.ValueCode):
            value = res.resource.get(spec.value_type)
            expected = bool if spec.value_type == "valueBoolean" else int
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                self.r.issue(
                    res,
                    spec.value_type,
                    value,
                    "true or false" if expected is bool else "an integer",
                )
                return None
            return value
        if "valueQuantity" not in res.resource:
            self.r.issue(res, "valueQuantity", None, f"a Quantity in {', '.join(spec.units)}")
            return None
        value, unit = self.r.quantity(res, "valueQuantity", res.resource["valueQuantity"])
        if value is None:
            return None
        if unit not in spec.units:
            self.r.warnings.append(
                f"{res.reference} ({spec.field}): unit {unit!r} is not one this service "
                f"converts ({', '.join(spec.units)}): not used"
            )
            return None
        return spec.units[unit](value)

    def _outside_age_window(
        self, res: Located, spec: codes.ObservationCode, value: float | bool
    ) -> bool:
        """Whether the field is charted only at other ages than the patient's (the contract's
        ``age_window``); if so the value is refused with an issue naming the resource, the
        field, the value and the rule (answered 422 with the contract's own errors)."""
        field = FIELDS[spec.field]
        age = self.age_years
        if field.age_window is None or age is None:
            return False
        low, high = field.age_window
        if low <= age < high:
            return False
        if low <= 0:
            ages = f"under {high:g} years"
        elif math.isinf(high):
            ages = f"{low:g} years or older"
        else:
            ages = f"from {low:g} to under {high:g} years"
        element = spec.value_type if isinstance(spec, codes.ValueCode) else "valueQuantity"
        self.refused.append(
            FhirIssue(
                f"{res.path}.{element}",
                res.reference,
                value,
                f"{spec.field}: the {field.label} is charted for patients aged {ages} "
                f"(ASTCT 2019); this patient was {age:g} years old at the infusion",
            )
        )
        return True

    def _series(self, spec: codes.ObservationCode, days: dict[int, list]) -> None:
        """One value a day (``spec.per_day``), each with the resource it came from."""
        name, key = spec.field, FIELDS[spec.field].value_key
        items = []
        for i, day in enumerate(sorted(days)):
            found = sorted(days[day], key=lambda t: t[0])  # in time
            if spec.per_day == "latest":
                _, value, res = found[-1]
            else:  # the first of the day's highest (lowest) values
                pick = max if spec.per_day == "highest" else min
                _, value, res = pick(found, key=lambda t: t[1])
            items.append({"day": day, key: value})
            self.r.sources[f"{name}[{i}].{key}"] = res.reference
            self.r.sources[f"{name}[{i}].day"] = res.reference
            for _, _, used in found:
                self.r.use(used)
        self.values[name] = items
