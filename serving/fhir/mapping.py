"""FHIR R4 resources of one patient -> the data contract's patient at a prediction time.

The mapping (``docs/fhir-mapping.md``; codes and units in :mod:`serving.fhir.codes`):

* ``Patient``: ``birthDate`` (a full date) -> ``age_years`` at the infusion;
* the CAR-T infusion, a ``MedicationAdministration`` whose medication names the product (or
  its CAR target and costimulatory domain): its date is day 0; ``dosage.dose`` -> the dose
  per kg (a total dose is divided by the body weight);
* ``Condition``: the disease, CNS involvement and neurologic comorbidity (present when
  confirmed or without a verification status, absent when refuted);
* ``Observation``: baseline values (the latest in a window before lymphodepletion), daily
  CRS and ICANS grades (the worst of a day), CAR-T cell counts (the latest of a day), and the
  daily routine series (the day's highest temperature, lowest ICE and highest CAPD score,
  latest laboratory value), each unit converted to the contract's; a laboratory code feeds
  the baseline value or the daily series by its date (:meth:`_Mapping._observations`);
* ``MedicationAdministration``: corticosteroids as dexamethasone-equivalent mg per day
  (summed) and tocilizumab doses per day (counted). The administration record is read as
  complete: a day 0..L without one counts 0.
* ``Procedure``: the lymphodepletion regimen; its date bounds the baseline window.

Days since infusion are computed from the dates (the calendar date as recorded); nothing dated
after the prediction time is used, and each resource left out is listed in the warnings with
the reason. A resource that is not valid FHIR where the mapping reads it is an error naming
the resource and the element (:class:`FhirInputError`, answered with 400); a Bundle that
holds more than one patient is refused. Missing resources are missing inputs, exactly as in
``/v1/risk``: the contract's own validation (:func:`api.patient.parse_patient`) then
judges the patient, and its errors are reported against the resources they came from.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from icans.contract import FIELDS, HORIZON_DAYS
from serving.fhir import codes
from serving.fhir.reading import (
    FhirInputError,
    FhirIssue,
    Located,
    MappedPatient,
    NotApplicable,
    When,
    bundle_resources,
    codings,
    parse_when,
)
from serving.fhir.screen import Screen, screen


def map_patient(resources: list[Located], at: datetime) -> MappedPatient:
    """The contract's patient at prediction time ``at`` (aware) from one patient's resources.

    Raises :class:`FhirInputError` (400) for resources that cannot be read, and
    :class:`NotApplicable` when the patient is outside the service (no CAR-T infusion, ``at``
    outside days 0-28 after it, deceased).
    """
    reader, patient, own = screen(resources, at)
    return _Mapping(reader, patient, own).run()


class _Mapping:
    def __init__(self, reader: Screen, patient: Located, resources: list[Located]):
        self.r = reader
        self.patient = patient
        self.resources = resources
        self.data: dict[str, Any] = {}
        self.refused: list[FhirIssue] = []  # values the contract refuses (422 by to_patient)

    def run(self) -> MappedPatient:
        r = self.r
        infusion = self._infusion()
        if r.issues:
            raise FhirInputError(r.issues)
        if infusion is None:
            raise NotApplicable("no CAR-T infusion (MedicationAdministration) in the record")
        start, res = infusion
        day = (r.at.date() - start.day).days
        if start.after(r.at):
            raise NotApplicable(
                f"the prediction time is before the CAR-T infusion ({start.day.isoformat()}, "
                f"day {day})"
            )
        if not 0 <= day <= HORIZON_DAYS:
            raise NotApplicable(
                f"the prediction time is day {day} after the CAR-T infusion "
                f"({start.day.isoformat()}); the model estimates the risk on days 0-"
                f"{HORIZON_DAYS}"
            )
        self.infusion_day = start.day
        self.data["day_since_infusion"] = day
        self._demographics()
        self._conditions()
        ld_day = self._lymphodepletion()
        self._observations(ld_day)
        self._dose(res)
        self._medications(day)
        if r.issues:
            raise FhirInputError(r.issues)
        return MappedPatient(
            data=self.data,
            basis=r.basis,
            warnings=r.warnings,
            patient_reference=self.patient.reference,
            infusion_date=start.day,
            prediction_time=r.at,
            sources=r.sources,
            refused=self.refused,
        )

    def _day(self, when: When) -> int:
        return (when.day - self.infusion_day).days

    def _set(self, name: str, value: Any, res: Located) -> None:
        self.data[name] = value
        self.r.sources[name] = res.reference
        self.r.use(res)

    # -- infusion and product ------------------------------------------------------------------

    def _infusion(self) -> tuple[When, Located] | None:
        found = []
        for res in self.resources:
            if res.type != "MedicationAdministration":
                continue
            product = self._product(res)
            if product is None or not self.r.status_ok(res):
                continue
            when = self.r.when(res, "effectiveDateTime", "effectivePeriod")
            if when is not None:
                found.append((when, res, product))
        given = [f for f in found if not f[0].after(self.r.at)]
        if not given and found:  # infused after the prediction time: no estimate (run)
            return min(found, key=lambda f: f[0].sort_key())[:2]
        found = given
        if len(found) > 1:
            self.r.issue(
                found[1][1],
                "medicationCodeableConcept",
                [f[1].reference for f in found],
                "one CAR-T infusion: the model covers the first infusion of one product",
            )
            return None
        if not found:
            return None
        when, res, (target, domain) = found[0]
        self._set("car_target", target, res)
        self._set("costimulatory_domain", domain, res)
        return when, res

    def _product(self, res: Located) -> tuple[str, str] | None:
        """(CAR target, costimulatory domain) of a CAR-T medication, None for another drug."""
        found = codings(res.resource.get("medicationCodeableConcept"))
        products = [c for s, c in found if s == codes.CAR_T_PRODUCT]
        targets = {codes.TARGET_CODES[c] for c in found if c in codes.TARGET_CODES}
        domains = {codes.DOMAIN_CODES[c] for c in found if c in codes.DOMAIN_CODES}
        if not (products or targets or domains):
            return None
        known = [codes.PRODUCTS[p] for p in products if p in codes.PRODUCTS]
        targets |= {t for t, _ in known}
        domains |= {d for _, d in known}
        if len(known) < len(products) or len(targets) != 1 or len(domains) != 1:
            self.r.issue(
                res,
                "medicationCodeableConcept.coding",
                found,
                f"a product ({codes.CAR_T_PRODUCT}: {', '.join(codes.PRODUCTS)}) or one CAR "
                f"target ({codes.CAR_TARGET}) and one costimulatory domain "
                f"({codes.COSTIMULATORY_DOMAIN}), all agreeing",
            )
            return None
        return targets.pop(), domains.pop()

    def _dose(self, res: Located) -> None:
        dosage = res.resource.get("dosage")
        dose = dosage.get("dose") if isinstance(dosage, dict) else None
        if dose is None:
            return  # a missing dose is a missing input (the contract requires it: 422)
        value, unit = self._quantity(res, "dosage.dose", dose)
        if value is None:
            return
        if unit in codes.DOSE_PER_KG_UNITS:
            self._set("dose_cells_per_kg", value * codes.DOSE_PER_KG_UNITS[unit], res)
        elif unit in codes.DOSE_TOTAL_UNITS:
            weight = self.data.get("weight_kg")
            if weight is None or weight <= 0:
                self.r.issue(
                    res,
                    "dosage.dose",
                    dose,
                    "a dose per kg ({cells}/kg), or a body "
                    "weight (Observation LOINC 29463-7) to divide a total dose by",
                )
                return
            self._set("dose_cells_per_kg", value * codes.DOSE_TOTAL_UNITS[unit] / weight, res)
        else:
            units = list(codes.DOSE_PER_KG_UNITS) + list(codes.DOSE_TOTAL_UNITS)
            self.r.issue(res, "dosage.dose.code", unit, f"a UCUM unit among {units}")

    def _quantity(self, res: Located, element: str, q: Any) -> tuple[float | None, str | None]:
        if not isinstance(q, dict):
            self.r.issue(res, element, q, "a Quantity (value, unit, system, code)")
            return None, None
        value = q.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            self.r.issue(res, f"{element}.value", value, "a number")
            return None, None
        unit = q.get("code") if isinstance(q.get("code"), str) else q.get("unit")
        return float(value), unit

    # -- patient and conditions ----------------------------------------------------------------

    def _demographics(self) -> None:
        p = self.patient
        birth = parse_when(p.resource.get("birthDate"))
        if p.resource.get("birthDate") is None:
            pass  # a missing input: the contract says what to record (422)
        elif isinstance(birth, str) or birth.instant is not None:
            rule = birth if isinstance(birth, str) else "a date (YYYY-MM-DD)"
            self.r.issue(p, "birthDate", p.resource.get("birthDate"), rule)
        else:
            age = (self.infusion_day - birth.day).days / 365.25
            self._set("age_years", round(age, 2), p)
        died = p.resource.get("deceasedDateTime")
        when = parse_when(died) if died is not None else None
        if isinstance(when, str):
            self.r.issue(p, "deceasedDateTime", died, when)
        # a death dated after the prediction time is not known at it (no estimate is refused
        # for what happened later)
        if p.resource.get("deceasedBoolean") is True or (
            isinstance(when, When) and not when.after(self.r.at)
        ):
            raise NotApplicable("the patient has died")
        self.r.use(p)

    def _conditions(self) -> None:
        diseases: dict[str, Located] = {}
        flags: dict[str, list[tuple[bool, Located]]] = {}
        for res in self.resources:
            if res.type != "Condition":
                continue
            cs = codings(res.resource.get("code"))
            disease = [codes.DISEASE_CODES[c] for c in cs if c in codes.DISEASE_CODES]
            flag = [codes.CONDITION_FLAGS[c] for c in cs if c in codes.CONDITION_FLAGS]
            if not (disease or flag):
                continue
            recorded = res.resource.get("recordedDate") or res.resource.get("onsetDateTime")
            if recorded is not None:
                when = parse_when(recorded)
                if isinstance(when, str):
                    self.r.issue(res, "recordedDate", recorded, when)
                    continue
                if when.after(self.r.at):
                    self.r.warnings.append(
                        f"{res.reference}: recorded after the prediction time: not used"
                    )
                    continue
            status = [c for s, c in codings(res.resource.get("verificationStatus"))]
            if "entered-in-error" in status:
                continue
            if any(s in ("unconfirmed", "provisional", "differential") for s in status):
                self.r.warnings.append(
                    f"{res.reference}: verificationStatus {status[0]}: "
                    "not used (confirmed or refuted only)"
                )
                continue
            present = "refuted" not in status
            for d in disease:
                if present:
                    diseases.setdefault(d, res)
            for f in flag:
                flags.setdefault(f, []).append((present, res))
        if len(diseases) > 1:
            res = list(diseases.values())[1]
            self.r.issue(
                res, "code", sorted(diseases), "one disease (the one the CAR-T product treats)"
            )
        elif diseases:
            ((d, res),) = diseases.items()
            self._set("disease", d, res)
        for name, found in flags.items():
            values = {v for v, _ in found}
            if len(values) > 1:
                self.r.warnings.append(
                    f"{name}: both confirmed and refuted Conditions; read as present"
                )
            chosen = next(res for v, res in found if v == max(values))
            self._set(name, max(values), chosen)

    def _lymphodepletion(self) -> int:
        """The regimen, and the day lymphodepletion started (day -5 if not dated)."""
        best: tuple[int, Located, str] | None = None
        for res in self.resources:
            if res.type != "Procedure":
                continue
            regimen = [
                codes.LYMPHODEPLETION_CODES[c]
                for c in codings(res.resource.get("code"))
                if c in codes.LYMPHODEPLETION_CODES
            ]
            if not regimen or not self.r.status_ok(res):
                continue
            when = self.r.when(res, "performedDateTime", "performedPeriod")
            if when is None:
                continue
            day = self._day(when)
            if day > 0:
                self.r.warnings.append(
                    f"{res.reference}: lymphodepletion after the infusion (day {day}): not used"
                )
                continue
            if best is None or day < best[0]:
                best = (day, res, regimen[0])
        if best is None:
            return codes.DEFAULT_LYMPHODEPLETION_DAY
        self._set("lymphodepletion", best[2], best[1])
        return best[0]

    # -- observations --------------------------------------------------------------------------

    def _observations(self, ld_day: int) -> None:
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
            day = self._day(when)
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
            self._set(name, value, res)
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
        value, unit = self._quantity(res, "valueQuantity", res.resource["valueQuantity"])
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
        age = self.data.get("age_years")
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
        self.data[name] = items

    # -- treatment -----------------------------------------------------------------------------

    def _medications(self, last_day: int) -> None:
        mg: dict[int, float] = {}
        doses: dict[int, int] = {}
        unknown: set[int] = set()
        refs: dict[str, dict[int, list[str]]] = {"dex": {}, "toci": {}}
        for res in self.resources:
            if res.type != "MedicationAdministration":
                continue
            cs = codings(res.resource.get("medicationCodeableConcept"))
            steroid = next((codes.STEROIDS[c] for c in cs if c in codes.STEROIDS), None)
            toci = codes.TOCILIZUMAB in cs
            if (steroid is None and not toci) or not self.r.status_ok(res):
                continue
            when = self.r.when(res, "effectiveDateTime", "effectivePeriod")
            if when is None:
                continue
            day = self._day(when)
            if when.after(self.r.at) or day < 0:
                why = "after the prediction time" if day >= 0 else "before the infusion"
                self.r.warnings.append(
                    f"{res.reference} dated {when.day.isoformat()}, {why}: not used"
                )
                continue
            self.r.use(res)
            if toci:
                doses[day] = doses.get(day, 0) + 1
                refs["toci"].setdefault(day, []).append(res.reference)
                continue
            dosage = res.resource.get("dosage")
            dose = dosage.get("dose") if isinstance(dosage, dict) else None
            if dose is None:
                self.r.warnings.append(
                    f"{res.reference}: no dosage.dose: the corticosteroid dose on day {day} "
                    "is not known"
                )
                unknown.add(day)
                continue
            value, unit = self._quantity(res, "dosage.dose", dose)
            if value is None:
                continue
            if unit not in codes.STEROID_UNITS:
                self.r.warnings.append(
                    f"{res.reference}: dose unit {unit!r} is not mg or g: "
                    f"the corticosteroid dose on day {day} is not known"
                )
                unknown.add(day)
                continue
            assert steroid is not None  # not tocilizumab, so a corticosteroid (checked above)
            mg[day] = mg.get(day, 0.0) + value * codes.STEROID_UNITS[unit] * steroid
            refs["dex"].setdefault(day, []).append(res.reference)
        days = range(last_day + 1)
        series = {
            ("dexamethasone_mg_by_day", "mg", "dex"): [
                {"day": d, "mg": round(mg.get(d, 0.0), 6)} for d in days if d not in unknown
            ],
            ("tocilizumab_doses_by_day", "doses", "toci"): [
                {"day": d, "doses": doses.get(d, 0)} for d in days
            ],
        }
        for (name, key, kind), items in series.items():
            self.data[name] = items
            for i, item in enumerate(items):
                if item["day"] in refs[kind]:
                    self.r.sources[f"{name}[{i}].{key}"] = ", ".join(refs[kind][item["day"]])


def read_bundle(bundle: Any, at: datetime | None = None) -> MappedPatient:
    """A FHIR Bundle of one patient's resources, mapped at ``at`` (default: now, local)."""
    at = at or datetime.now().astimezone()
    return map_patient(bundle_resources(bundle), at)
