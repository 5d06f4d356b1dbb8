"""The FHIR R4 endpoint under ``/v1``: a Bundle of one patient's resources in, a RiskAssessment
out (``docs/fhir-mapping.md``).

The Bundle is read into the contract's patient (:func:`serving.fhir.mapping.read_bundle`, nothing
dated after the prediction time), assessed by the live model as ``/v1/risk`` would, recorded, and
answered as a RiskAssessment; every refusal is an OperationOutcome naming the resource and the
element. A RiskAssessment whose audit line cannot be written is not answered: 503, an
OperationOutcome with the reason (issue code ``no-store``: the persistent store is unavailable).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.schemas import ErrorResponse
from serving.audit import AuditUnavailable
from serving.fhir.mapping import read_bundle
from serving.fhir.output import FHIR_JSON, operation_outcome, outcome_message, risk_assessment
from serving.fhir.reading import FhirInputError, NotApplicable
from serving.json_app import request_id
from serving.worker import Worker, current_worker

router = APIRouter()

_BODY = {
    "requestBody": {
        "required": True,
        "content": {FHIR_JSON: {"schema": {"type": "object"}}, "application/json": {}},
        "description": "A FHIR R4 Bundle holding one patient's resources (docs/fhir-mapping.md).",
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "A FHIR R4 RiskAssessment."},
    400: {"content": {FHIR_JSON: {}}, "description": "OperationOutcome: unreadable FHIR."},
    422: {"content": {FHIR_JSON: {}}, "description": "OperationOutcome: no estimate."},
    503: {
        "content": {FHIR_JSON: {}},
        "description": "OperationOutcome: the audit log cannot be written, so no estimate is "
        "answered (nothing was recorded: the request may be sent again).",
    },
    401: {"model": ErrorResponse},
    413: {"model": ErrorResponse},
}


def _fhir(status: int, body: dict, rid: str) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, media_type=FHIR_JSON, headers={"X-Request-ID": rid}
    )


@router.post(
    "/fhir/risk-assessment",
    response_class=JSONResponse,
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
async def fhir_risk_assessment(
    request: Request,
    worker: Annotated[Worker, Depends(current_worker)],
    at: str | None = None,
):
    """The risk as a FHIR R4 RiskAssessment, from a Bundle of one patient's resources
    (docs/fhir-mapping.md). ``at``: the prediction time (a dateTime with a time zone;
    default now); nothing dated after it is used. Errors are OperationOutcomes naming the
    resource and element. Same numbers as /risk for the same patient."""
    rid = request_id(request)
    body = await request.body()
    return await run_in_threadpool(assess_bundle, worker, body, at, rid)


def assess_bundle(worker: Worker, body: bytes, at_text: str | None, rid: str) -> JSONResponse:
    """The endpoint's work, off the event loop: parse, map, assess, record, answer."""
    try:
        bundle = json.loads(body)
    except ValueError as exc:
        return _fhir(400, outcome_message(f"the body is not valid JSON ({exc})", "structure"), rid)
    except RecursionError:  # the parser's stack is Python's: nesting deeper than it can read
        return _fhir(
            400, outcome_message("the body is not valid JSON: nested too deeply", "structure"), rid
        )
    try:
        at = datetime.fromisoformat(at_text) if at_text else datetime.now().astimezone()
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        return _fhir(
            400,
            outcome_message(
                f"at={at_text!r}: a dateTime with a time zone (2026-03-07T10:00:00+01:00)",
                "value",
            ),
            rid,
        )
    try:
        mapped = read_bundle(bundle, at)
        patient = mapped.to_patient()
    except FhirInputError as exc:
        return _fhir(exc.status, operation_outcome(exc.issues), rid)
    except NotApplicable as exc:
        return _fhir(422, outcome_message(f"no estimate: {exc}", "not-supported"), rid)
    runtime = worker.runtime
    a = runtime.assess([patient])[0]
    ident = runtime.identity()
    try:
        worker.record(ident, "fhir", [(rid, patient, a)])
    except AuditUnavailable as exc:
        return _fhir(503, outcome_message(str(exc), "no-store"), rid)
    return _fhir(200, risk_assessment(mapped, a, ident, runtime.intended_use), rid)
