"""A risk estimate as a FHIR R4 ``RiskAssessment``, and errors as ``OperationOutcome``.

The RiskAssessment carries the same numbers as ``/v1/risk`` for the same patient (one
:class:`runtime.assessor.Assessment` produces both):

* ``status`` final, ``subject`` the Patient, ``occurrenceDateTime`` the prediction time;
* ``method``: the registered model's name and version (``urn:icans-risk:model``);
* ``basis``: references to the resources the mapping actually used;
* one ``prediction``: the coded outcome (severe or steroid-refractory ICANS), its
  ``probabilityDecimal``, the 95% uncertainty interval as an extension
  (``urn:icans-risk:extension:probability-interval``, a Range: R4 has no element for an
  interval beside a decimal probability), ``whenPeriod`` from the prediction time to the end
  of day 28 after the infusion, and a ``rationale`` naming the top drivers;
* ``note``: the intended use (decision support; trained on synthetic data when it was), and
  the inputs left out and missing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from runtime.assessor import Assessment
from serving.fhir import codes
from serving.fhir.reading import FhirIssue, MappedPatient, end_of_window

FHIR_JSON = "application/fhir+json"  # the media type of FHIR R4's JSON format
MAX_FHIR_BODY_BYTES = 4 * 1024 * 1024  # one patient's Bundle with a 28-day course


def risk_assessment(
    mapped: MappedPatient, assessment: Assessment, identity: dict, intended_use: str
) -> dict:
    """The RiskAssessment resource (a JSON-ready dict) for one mapped patient."""
    end = end_of_window(mapped.infusion_date)
    prediction: dict = {
        "outcome": {"coding": [codes.OUTCOME_CODING], "text": codes.OUTCOME_CODING["display"]},
        "probabilityDecimal": assessment.probability,
        "whenPeriod": {
            "start": _instant(mapped.prediction_time),
            "end": f"{end.isoformat()}T23:59:59{_offset(mapped.prediction_time)}",
        },
        "rationale": "Top drivers: " + "; ".join(assessment.drivers)
        if assessment.drivers
        else "No single input dominates the estimate.",
    }
    if assessment.interval is not None:
        low, high = assessment.interval
        prediction["extension"] = [
            {
                "url": codes.INTERVAL_EXTENSION,
                "valueRange": {"low": {"value": low}, "high": {"value": high}},
            }
        ]
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
        "prediction": [prediction],
        "note": [{"text": text} for text in notes],
    }


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
