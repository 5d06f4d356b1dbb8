"""Which of one patient's FHIR resources the mapping may use at a prediction time.

Exactly one Patient; every other resource read must be about that Patient (its ``subject`` or
``patient`` reference), carry a status that means it happened (a ``preliminary`` Observation
counts, an ``entered-in-error`` one does not), and a date; what cannot be read is an issue
naming the resource and the element, what is left out a warning saying why
(``docs/fhir-mapping.md``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from serving.fhir.reading import (
    FhirInputError,
    FhirIssue,
    Located,
    When,
    distinct,
    parse_when,
    short,
)

# The resource types the mapping reads besides Patient; others in a Bundle are ignored.
READ_TYPES = ("Observation", "Condition", "MedicationAdministration", "Procedure")
_USED_STATUS = {
    "Observation": {"final", "amended", "corrected", "preliminary"},
    "MedicationAdministration": {"completed", "in-progress"},
    "Procedure": {"completed", "in-progress"},
}


class Screen:
    """One pass over the resources of one patient: which may be used at the prediction time
    (status, subject, date), with the issues and warnings found, and which were used."""

    def __init__(self, resources: list[Located], at: datetime):
        if at.tzinfo is None:
            raise ValueError("the prediction time must carry a time zone")
        self.resources = resources
        self.at = at
        self.issues: list[FhirIssue] = []
        self.warnings: list[str] = []
        self.basis: list[str] = []
        self._in_basis: set[str] = set()  # basis in order, looked up here (a Bundle of
        # thousands of resources would otherwise cost a scan of the list for each)
        self.sources: dict[str, str] = {}

    # -- helpers -----------------------------------------------------------------------------

    def issue(self, res: Located, element: str, value: Any, rule: str) -> None:
        self.issues.append(FhirIssue(f"{res.path}.{element}", res.reference, short(value), rule))

    def use(self, res: Located) -> None:
        if res.reference not in self._in_basis:
            self._in_basis.add(res.reference)
            self.basis.append(res.reference)

    def when(self, res: Located, *elements: str) -> When | None:
        """The first of ``elements`` present (``effectivePeriod`` reads its start)."""
        for element in elements:
            value = res.resource.get(element)
            if value is None:
                continue
            name = element
            if element.endswith("Period"):
                value = value.get("start") if isinstance(value, dict) else value
                name = f"{element}.start"
            parsed = parse_when(value)
            if isinstance(parsed, str):
                self.issue(res, name, value, parsed)
                return None
            return parsed
        self.warnings.append(f"{res.reference}: no {' or '.join(elements)}: not used")
        return None

    def quantity(self, res: Located, element: str, q: Any) -> tuple[float | None, str | None]:
        """(value, UCUM code or else unit) of the Quantity at ``element``; (None, None) with an
        issue naming the element when it is not a Quantity with a finite number."""
        if not isinstance(q, dict):
            self.issue(res, element, q, "a Quantity (value, unit, system, code)")
            return None, None
        value = q.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            self.issue(res, f"{element}.value", value, "a number")
            return None, None
        code, unit = q.get("code"), q.get("unit")
        # a unit that is not text names no unit (None: "not one this service converts")
        return float(value), code if isinstance(code, str) else unit if isinstance(
            unit, str
        ) else None

    def status_ok(self, res: Located) -> bool:
        allowed = _USED_STATUS.get(res.type)
        status = res.resource.get("status")
        if allowed is None:
            return True
        if status is not None and not isinstance(status, str):  # a list or object: no code
            self.issue(res, "status", status, f"a status code such as {sorted(allowed)[0]!r}")
            return False
        if status in allowed:
            return True
        self.warnings.append(f"{res.reference}: status {status!r}: not used")
        return False

    # -- the patient ---------------------------------------------------------------------------

    def patient(self) -> tuple[Located, set[str]] | None:
        patients = [r for r in self.resources if r.type == "Patient"]
        if len(patients) != 1:
            where = patients[1] if len(patients) > 1 else None
            self.issues.append(
                FhirIssue(
                    where.path if where else "Bundle",
                    where.reference if where else "Bundle",
                    [p.reference for p in patients],
                    "exactly one Patient (a request is for one patient)",
                )
            )
            return None
        p = patients[0]
        return p, {p.reference} | ({p.full_url} if p.full_url else set())

    def subject_ok(self, res: Located, names: set[str]) -> bool:
        subject = res.resource.get("subject", res.resource.get("patient"))
        ref = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(ref, str):
            self.issue(res, "subject.reference", ref, "a reference to the request's Patient")
            return False
        if ref in names or any(ref.endswith("/" + n) for n in names if n.startswith("Patient/")):
            return True
        self.issue(
            res,
            "subject.reference",
            ref,
            f"the request's Patient ({sorted(n for n in names if n.startswith('Patient/'))}): "
            "a request holds the resources of one patient",
        )
        return False


def screen(resources: list[Located], at: datetime) -> tuple[Screen, Located, list[Located]]:
    """The screen over ``resources`` at ``at``, the one Patient, and the resources of the kinds
    the mapping reads that belong to that Patient; :class:`FhirInputError` naming every
    resource that cannot be read or belongs to another patient."""
    issues: list[FhirIssue] = []
    reader = Screen(distinct(resources, issues), at)
    reader.issues += issues
    found = reader.patient()
    if found is None:
        raise FhirInputError(reader.issues)
    patient, names = found
    own = [
        r
        for r in reader.resources
        if r is not patient and r.type in READ_TYPES and reader.subject_ok(r, names)
    ]
    if reader.issues:
        raise FhirInputError(reader.issues)
    return reader, patient, own
