"""A risk estimate as a FHIR R4 ``RiskAssessment``, and errors as ``OperationOutcome``.

The RiskAssessment carries the same numbers as ``/v1/risk`` for the same patient (one
:class:`runtime.assessor.Assessment` produces both):

* ``status`` final, ``subject`` the Patient, ``occurrenceDateTime`` the prediction time;
* ``method``: the registered model's name and version (``urn:icans-risk:model``);
* ``basis``: references to the resources the mapping actually used;
* one ``prediction`` per horizon the model estimates (:mod:`icans.horizons`): by day 28
  first, where clients of the one-prediction resource read it (``prediction[0]``), then the
  shorter horizons, shortest first (within the next 72 hours, within the next 7 days). Each
  holds the coded outcome (severe or steroid-refractory ICANS; the same code for every
  horizon, which ``whenPeriod`` tells apart), its ``probabilityDecimal``, its 95%
  uncertainty interval as an extension (``urn:icans-risk:extension:probability-interval``,
  a Range: R4 has no element for an interval beside a decimal probability), ``whenPeriod``
  the horizon's window (the start of day L + 1 to the end of its last day, ``end_day``,
  counted from the infusion date, in the prediction time's UTC offset: a risk estimated on
  day L is the event's on days L + 1 .. end_day) and a ``rationale`` naming the horizon, its
  days and its top drivers;
* ``note``: the intended use (decision support; trained on synthetic data when it was), and
  the inputs left out and missing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from icans.horizons import TARGET_HORIZON
from runtime.assessor import Assessment, HorizonRisk
from serving.fhir import codes
from serving.fhir.reading import FhirIssue, MappedPatient

FHIR_JSON = "application/fhir+json"  # the media type of FHIR R4's JSON format
MAX_FHIR_BODY_BYTES = 4 * 1024 * 1024  # one patient's Bundle with a 28-day course


def risk_assessment(
    mapped: MappedPatient, assessment: Assessment, identity: dict, intended_use: str
) -> dict:
    """The RiskAssessment resource (a JSON-ready dict) for one mapped patient."""
    day28 = [r for r in assessment.horizons if r.horizon == TARGET_HORIZON.name]
    shorter = [r for r in assessment.horizons if r.horizon != TARGET_HORIZON.name]
    predictions = [prediction(mapped, risk, assessment.landmark_day) for risk in day28 + shorter]
    notes = [intended_use, f"Estimated on day {assessment.landmark_day} after the infusion."]
    if mapped.warnings or assessment.warnings:
        notes.append("Warnings: " + " | ".join(mapped.warnings + assessment.warnings))
    return {
        "resourceType": "RiskAssessment",
        "id": str(uuid.uuid4()),
        "status": "final",
        "subject": {"reference": mapped.patient_reference},
        "occurrenceDateTime": _instant(mapped.prediction_time),
        "method": {
            "coding": [
                {
                    "system": codes.MODEL,
                    "code": identity["name"],
                    "version": str(identity["version"]),
                    "display": f"{identity['name']} version {identity['version']}",
                }
            ],
            "text": f"{identity['name']} version {identity['version']} (gradient-boosted "
            "trees with an additive part; exact TreeSHAP explanations)",
        },
        "basis": [{"reference": ref} for ref in mapped.basis],
        "prediction": predictions,
        "note": [{"text": text} for text in notes],
    }


def prediction(mapped: MappedPatient, risk: HorizonRisk, landmark_day: int) -> dict:
    """One horizon's ``prediction``: its risk, interval, window and rationale."""
    first = landmark_day + 1
    start = mapped.infusion_date + timedelta(days=first)
    end = mapped.infusion_date + timedelta(days=risk.end_day)
    offset = _offset(mapped.prediction_time)
    days = f"day {first}" if first == risk.end_day else f"days {first}-{risk.end_day}"
    drivers = (
        "top drivers: " + "; ".join(risk.drivers)
        if risk.drivers
        else "no single input dominates the estimate"
    )
    out: dict = {
        # one code for every horizon (the event is the same; whenPeriod says when), the text
        # the horizon's: day 28's is the code's display, as before horizons
        "outcome": {
            "coding": [codes.OUTCOME_CODING],
            "text": codes.OUTCOME_CODING["display"]
            if risk.horizon == TARGET_HORIZON.name
            else f"Severe (ASTCT grade 3-4) or steroid-refractory ICANS {risk.label}",
        },
        "probabilityDecimal": risk.probability,
        "whenPeriod": {
            "start": f"{start.isoformat()}T00:00:00{offset}",
            "end": f"{end.isoformat()}T23:59:59{offset}",
        },
        "rationale": f"Risk {risk.label} ({days} after the infusion); {drivers}.",
    }
    if risk.interval is not None:
        low, high = risk.interval
        out["extension"] = [
            {
                "url": codes.INTERVAL_EXTENSION,
                "valueRange": {"low": {"value": low}, "high": {"value": high}},
            }
        ]
    return out


def operation_outcome(issues: list[FhirIssue], code: str = "invalid") -> dict:
    """An OperationOutcome with one error issue per problem, each naming the resource and
    element (``expression``, FHIRPath) and the rule."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": code,
                "details": {"text": str(issue)},
                "expression": [issue.expression],
            }
            for issue in issues
        ],
    }


def outcome_message(text: str, code: str) -> dict:
    """An OperationOutcome with one error issue and no location (e.g. not applicable)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "details": {"text": text}}],
    }


def _instant(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _offset(t: datetime) -> str:
    text = t.isoformat(timespec="seconds")
    return text[19:] or "Z"
