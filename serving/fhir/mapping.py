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
  the baseline value or the daily series by its date (:mod:`serving.fhir.observations`);
* ``MedicationAdministration``: corticosteroids as dexamethasone-equivalent mg per day
  (summed); tocilizumab and anakinra doses per day (counted); intrathecal therapy, any drug
  given by the intrathecal route (``dosage.route``), per day (counted, and not as systemic
  corticosteroid mg: intrathecal dexamethasone is an escalation, icans.steroids). The
  administration record is read as complete: a day 0..L without one counts 0. Anakinra is
  read as given for ICANS (the contract's series), as the record seldom says why.
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

from datetime import datetime
from typing import Any

from icans.contract import HORIZON_DAYS, PREDICTION_DAY
from serving.fhir import codes
from serving.fhir.observations import map_observations
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

# the last prediction day: day 27 (every horizon ends by day 28, icans.horizons)
LAST_PREDICTION_DAY = int(PREDICTION_DAY.high or HORIZON_DAYS - 1)


def map_patient(resources: list[Located], at: datetime) -> MappedPatient:
    """The contract's patient at prediction time ``at`` (aware) from one patient's resources.

    Raises :class:`FhirInputError` (400) for resources that cannot be read, and
    :class:`NotApplicable` when the patient is outside the service (no CAR-T infusion, ``at``
    outside days 0-27 after it, deceased).
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
        if not 0 <= day <= LAST_PREDICTION_DAY:
            raise NotApplicable(
                f"the prediction time is day {day} after the CAR-T infusion "
                f"({start.day.isoformat()}); the model estimates the risk on days 0-"
                f"{LAST_PREDICTION_DAY} (every horizon ends by day {HORIZON_DAYS}: on day "
                f"{HORIZON_DAYS} no day is left to predict)"
            )
        self.infusion_day = start.day
        self.data["day_since_infusion"] = day
        self._demographics()
        self._conditions()
        ld_day = self._lymphodepletion()
        values, refused = map_observations(
            r, self.resources, start.day, ld_day, self.data.get("age_years")
        )
        self.data.update(values)
        self.refused.extend(refused)
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
        when, res, (target, domain, product) = found[0]
        self._set("car_target", target, res)
        self._set("costimulatory_domain", domain, res)
        if product is not None:  # coded by target and domain only: the product is not given
            self._set("car_product", codes.CAR_PRODUCT_OF[product], res)
        return when, res

    def _product(self, res: Located) -> tuple[str, str, str | None] | None:
        """(CAR target, costimulatory domain, product code or None) of a CAR-T medication, None
        for another drug."""
        found = codings(res.resource.get("medicationCodeableConcept"))
        products = [c for s, c in found if s == codes.CAR_T_PRODUCT]
        targets = {codes.TARGET_CODES[c] for c in found if c in codes.TARGET_CODES}
        domains = {codes.DOMAIN_CODES[c] for c in found if c in codes.DOMAIN_CODES}
        if not (products or targets or domains):
            return None
        known = [codes.PRODUCTS[p] for p in products if p in codes.PRODUCTS]
        targets |= {t for t, _ in known}
        domains |= {d for _, d in known}
        if (
            len(known) < len(products)
            or len(set(products)) > 1
            or len(targets) != 1
            or len(domains) != 1
        ):
            self.r.issue(
                res,
                "medicationCodeableConcept.coding",
                found,
                f"a product ({codes.CAR_T_PRODUCT}: {', '.join(codes.PRODUCTS)}) or one CAR "
                f"target ({codes.CAR_TARGET}) and one costimulatory domain "
                f"({codes.COSTIMULATORY_DOMAIN}), all agreeing",
            )
            return None
        return targets.pop(), domains.pop(), products[0] if products else None

    def _dose(self, res: Located) -> None:
        dosage = res.resource.get("dosage")
        dose = dosage.get("dose") if isinstance(dosage, dict) else None
        if dose is None:
            return  # a missing dose is a missing input (the contract requires it: 422)
        value, unit = self.r.quantity(res, "dosage.dose", dose)
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

    # -- treatment -----------------------------------------------------------------------------

    def _medications(self, last_day: int) -> None:
        mg: dict[int, float] = {}
        # administrations counted per day, by kind (_counted_kind)
        counted: dict[str, dict[int, int]] = {"toci": {}, "anakinra": {}, "it": {}}
        unknown: set[int] = set()
        refs: dict[str, dict[int, list[str]]] = {"dex": {}, **{k: {} for k in counted}}
        for res in self.resources:
            if res.type != "MedicationAdministration":
                continue
            cs = codings(res.resource.get("medicationCodeableConcept"))
            dosage = res.resource.get("dosage")
            route = codings(dosage.get("route")) if isinstance(dosage, dict) else []
            steroid = next((codes.STEROIDS[c] for c in cs if c in codes.STEROIDS), None)
            kind = _counted_kind(cs, route)
            if (steroid is None and kind is None) or not self.r.status_ok(res):
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
            if kind is not None:
                counted[kind][day] = counted[kind].get(day, 0) + 1
                refs[kind].setdefault(day, []).append(res.reference)
                continue
            dose = dosage.get("dose") if isinstance(dosage, dict) else None
            if dose is None:
                self.r.warnings.append(
                    f"{res.reference}: no dosage.dose: the corticosteroid dose on day {day} "
                    "is not known"
                )
                unknown.add(day)
                continue
            value, unit = self.r.quantity(res, "dosage.dose", dose)
            if value is None:
                continue
            if unit not in codes.STEROID_UNITS:
                self.r.warnings.append(
                    f"{res.reference}: dose unit {unit!r} is not mg or g: "
                    f"the corticosteroid dose on day {day} is not known"
                )
                unknown.add(day)
                continue
            assert steroid is not None  # not counted by kind, so a corticosteroid (above)
            mg[day] = mg.get(day, 0.0) + value * codes.STEROID_UNITS[unit] * steroid
            refs["dex"].setdefault(day, []).append(res.reference)
        days = range(last_day + 1)
        series = {
            ("dexamethasone_mg_by_day", "mg", "dex"): [
                {"day": d, "mg": round(mg.get(d, 0.0), 6)} for d in days if d not in unknown
            ],
            **{
                (name, "doses", kind): [{"day": d, "doses": counted[kind].get(d, 0)} for d in days]
                for name, kind in (
                    ("tocilizumab_doses_by_day", "toci"),
                    ("anakinra_doses_by_day", "anakinra"),
                    ("intrathecal_doses_by_day", "it"),
                )
            },
        }
        for (name, key, kind), items in series.items():
            self.data[name] = items
            for i, item in enumerate(items):
                if item["day"] in refs[kind]:
                    self.r.sources[f"{name}[{i}].{key}"] = ", ".join(refs[kind][item["day"]])


def _counted_kind(medication: list[codes.Coding], route: list[codes.Coding]) -> str | None:
    """The series an administration is counted in, by its route first (intrathecal, whatever
    the drug), then its drug (anakinra, tocilizumab); None for a corticosteroid given
    systemically (summed as mg) or a drug the mapping does not read."""
    if codes.INTRATHECAL_ROUTE in route:
        return "it"
    if codes.ANAKINRA in medication:
        return "anakinra"
    if codes.TOCILIZUMAB in medication:
        return "toci"
    return None


def read_bundle(bundle: Any, at: datetime | None = None) -> MappedPatient:
    """A FHIR Bundle of one patient's resources, mapped at ``at`` (default: now, local)."""
    at = at or datetime.now().astimezone()
    return map_patient(bundle_resources(bundle), at)
