"""Reading FHIR R4 JSON: resources and where they sit, dates, codings, and the errors that
name a resource and an element.

The building blocks of the mapping (:mod:`serving.fhir.mapping`): :func:`bundle_resources`
unpacks a Bundle (or takes a single resource) keeping each resource's location as a FHIRPath
expression (``Bundle.entry[3].resource``), so that every problem found later can say which
resource and element it is about (:class:`FhirIssue`); :func:`parse_when` reads FHIR dates
and dateTimes (a partial date cannot be placed on a day since infusion and is refused);
:class:`MappedPatient` is the mapping's result, and reports the contract's errors against the
resources the values came from.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from api.patient import PatientObservation, parse_patient
from icans.errors import IcansError, InvalidPatientError
from serving.fhir import codes

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_PARTIAL = re.compile(r"^\d{4}(-\d{2})?$")


@dataclass(frozen=True)
class FhirIssue:
    """One problem with the FHIR input: where (a FHIRPath expression), which resource,
    the value and the rule it breaks."""

    expression: str
    resource: str
    value: Any
    rule: str

    def __str__(self) -> str:
        return f"{self.resource} {self.expression}: {self.value!r} is invalid: expected {self.rule}"


class FhirInputError(IcansError, ValueError):
    """The FHIR input cannot be read (400), or the patient it describes breaks the contract
    (``status`` 422); ``issues`` lists every problem."""

    def __init__(self, issues: list[FhirIssue], status: int = 400):
        self.issues = issues
        self.status = status
        super().__init__("; ".join(str(i) for i in issues[:20]))


class NotApplicable(IcansError):
    """The patient is outside what the service estimates (no CAR-T infusion, a prediction
    time outside days 0-28, a patient who has died): no estimate, and why."""


@dataclass(frozen=True)
class Located:
    """A resource and where it sits in the request (``Bundle.entry[3].resource``)."""

    path: str
    resource: dict
    full_url: str = ""  # the Bundle entry's fullUrl (a reference may use it)

    @property
    def type(self) -> str:
        return self.resource.get("resourceType", "")

    @property
    def reference(self) -> str:
        rid = self.resource.get("id")
        return f"{self.type}/{rid}" if isinstance(rid, str) and rid else self.path


@dataclass
class MappedPatient:
    """What the mapping read: the contract's patient (a dict), the references of the
    resources used, the resources left out (warnings), and where each value came from."""

    data: dict
    basis: list[str]
    warnings: list[str]
    patient_reference: str
    infusion_date: date
    prediction_time: datetime
    sources: dict[str, str] = field(default_factory=dict)
    # values the contract refuses that the mapping itself found (a score charted outside its
    # age window), left out of ``data`` and reported with the contract's errors
    refused: list[FhirIssue] = field(default_factory=list)

    def to_patient(self) -> PatientObservation:
        """The validated patient; the contract's errors name the resources (422)."""
        try:
            patient = parse_patient(self.data)
        except InvalidPatientError as exc:
            issues = self.refused + [self._issue(e) for e in exc.errors]
            raise FhirInputError(issues, status=422) from None
        if self.refused:
            raise FhirInputError(self.refused, status=422)
        return patient

    def _issue(self, error) -> FhirIssue:
        top = error.field.split("[")[0].split(".")[0]
        source = self.sources.get(error.field) or self.sources.get(top)
        if source is None:
            rule = f"{error.expected}; {where_recorded(top)}"
            return FhirIssue(top, "(not in the request)", error.value, rule)
        return FhirIssue(error.field, source, error.value, error.expected)


def where_recorded(field_name: str) -> str:
    """Which resource and code the mapping reads ``field_name`` from (for a missing input)."""
    for q in codes.QUANTITIES:
        if q.field == field_name:
            return "recorded as an Observation " + " or ".join(f"{s}|{c}" for s, c in q.codes)
    for v in codes.VALUES:
        if v.field == field_name:
            return f"recorded as an Observation {v.code[0]}|{v.code[1]}"
    for (system, code), name in codes.CONDITION_FLAGS.items():
        if name == field_name:
            return f"recorded as a Condition {system}|{code} (verificationStatus refuted if absent)"
    return {
        "disease": f"recorded as a Condition coded in {codes.DISEASE}",
        "age_years": "recorded as Patient.birthDate",
        "dose_cells_per_kg": "recorded as the CAR-T MedicationAdministration's dosage.dose",
        "car_target": f"recorded as the CAR-T MedicationAdministration ({codes.CAR_T_PRODUCT})",
        "costimulatory_domain": f"recorded in the CAR-T MedicationAdministration "
        f"({codes.CAR_T_PRODUCT})",
        "car_product": f"recorded as the CAR-T MedicationAdministration's product code "
        f"({codes.CAR_T_PRODUCT}; a medication coded by target and domain names no product)",
        "lymphodepletion": f"recorded as a Procedure coded in {codes.LYMPHODEPLETION}",
    }.get(field_name, "see docs/fhir-mapping.md")


# --------------------------------------------------------------------------------------------
# Reading the request
# --------------------------------------------------------------------------------------------


def bundle_resources(bundle: Any, path: str = "Bundle") -> list[Located]:
    """The resources of a Bundle (or of a single resource), each with its location."""
    if not isinstance(bundle, dict) or not isinstance(bundle.get("resourceType"), str):
        raise FhirInputError(
            [
                FhirIssue(
                    path, path, short(bundle), "a FHIR resource (a JSON object with resourceType)"
                )
            ]
        )
    if bundle["resourceType"] != "Bundle":
        return [Located(path, bundle)]
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirInputError([FhirIssue(f"{path}.entry", path, short(entries), "a list")])
    out, issues = [], []
    for i, entry in enumerate(entries):
        where = f"{path}.entry[{i}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            issues.append(
                FhirIssue(
                    f"{where}.resource",
                    where,
                    short(resource),
                    "a FHIR resource (a JSON object with resourceType)",
                )
            )
            continue
        url = entry.get("fullUrl")
        out.append(Located(f"{where}.resource", resource, url if isinstance(url, str) else ""))
    if issues:
        raise FhirInputError(issues)
    return out


def short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class When:
    """A FHIR date or dateTime: the calendar date as recorded and, with a time, the instant."""

    day: date
    instant: datetime | None

    def after(self, at: datetime) -> bool:
        if self.instant is not None:
            return self.instant > at
        return self.day > at.date()

    def sort_key(self) -> tuple:
        return (self.day, self.instant.timestamp() if self.instant else math.inf)


def parse_when(text: Any) -> When | str:
    """A :class:`When`, or the rule the text breaks (partial dates cannot be placed on a day)."""
    if not isinstance(text, str):
        return "a FHIR date (YYYY-MM-DD) or dateTime with a time zone"
    if _DATE.match(text):
        try:
            return When(date.fromisoformat(text), None)
        except ValueError:
            return "a real calendar date"
    if _DATETIME.match(text):
        try:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return "a real date and time"
        return When(instant.date(), instant)
    if _PARTIAL.match(text):
        return "a full date (YYYY-MM-DD): a year or month alone cannot be placed on a day"
    return "a FHIR date (YYYY-MM-DD) or dateTime with a time zone (YYYY-MM-DDThh:mm:ss+01:00)"


def codings(concept: Any) -> list[tuple[str, str]]:
    """(system, code) of each coding with a text code; a system that is not text (missing,
    or not a string) reads as "", which names no code system this service knows."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding", []), list):
        return []
    return [
        (c["system"] if isinstance(c.get("system"), str) else "", c["code"])
        for c in concept.get("coding", [])
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


def distinct(resources: list[Located], issues: list[FhirIssue]) -> list[Located]:
    """Each resource once: a copy of one already read (the same type and id, as search pages
    or prefetch and fetch may both hold it) is dropped; a different one with the same id is an
    error."""
    seen: dict[str, Located] = {}
    out = []
    for res in resources:
        rid = res.resource.get("id")
        key = f"{res.type}/{rid}" if isinstance(rid, str) and rid else None
        if key is None or key not in seen:
            out.append(res)
            if key is not None:
                seen[key] = res
        elif res.resource != seen[key].resource:
            issues.append(FhirIssue(res.path, key, seen[key].path, "one content per resource id"))
    return out
