"""The CDS Hooks 2.0 routes under ``/cds-services``: discovery, the patient-view call, feedback,
and the two pages a card links to (the model card and the patient's explanation).

What the routes compute is :mod:`serving.cds.hooks`' (prefetch, cards, the explanation store);
the client's JWT is checked before a route runs (:mod:`serving.cds.app`), and its claims are in
``request.state.client``. A card whose audit line cannot be written is not returned, nor is
feedback taken that cannot be recorded: 503 naming the reason (``audit_unavailable``), and the
card's explanation record is removed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.patient import parse_patient
from api.schemas import ErrorResponse
from reports.patient import build_patient_report
from serving.audit import AuditLog, AuditUnavailable
from serving.cds import hooks
from serving.cds.app import ERRORS, cds_error
from serving.fhir.fetch import FhirFetchError, FhirServer
from serving.fhir.mapping import map_patient
from serving.fhir.reading import FhirInputError, MappedPatient, NotApplicable
from serving.json_app import request_id
from serving.worker import Worker, current_worker

router = APIRouter()
CurrentWorker = Annotated[Worker, Depends(current_worker)]
WITHHELD: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorResponse,
        "description": "The audit log cannot be written: nothing answered, nothing recorded.",
    }
}


@router.get("/cds-services", responses=ERRORS)
def cds_discovery() -> dict:
    """CDS Hooks discovery: the patient-view service and its prefetch templates."""
    return hooks.discovery()


@router.post("/cds-services/{service_id}", responses=ERRORS | WITHHELD)
def cds_call(service_id: str, body: hooks.CdsRequest, request: Request, worker: CurrentWorker):
    """A patient-view call: one card with the risk, or none for a patient outside the
    service; 412 when the data it needs is neither prefetched nor fetchable."""
    if service_id != hooks.SERVICE_ID:
        return cds_error(404, "not_found", f"no CDS service {service_id!r}")
    if body.hook != hooks.HOOK:
        return cds_error(
            400, "invalid_input", f"hook {body.hook!r}: this service answers {hooks.HOOK!r}"
        )
    client = request.state.client
    try:
        with contextlib.ExitStack() as opened:  # the FHIR server's connections, if any
            resources = hooks.gather(body, _fetcher(worker, body, client["iss"], opened))
        mapped = map_patient(resources, datetime.now().astimezone())
    except hooks.PrefetchUnavailable as exc:
        return cds_error(412, "precondition_failed", str(exc))
    except FhirFetchError as exc:
        return cds_error(412, "precondition_failed", f"fhirServer: {exc}")
    except FhirInputError as exc:
        return cds_error(400, "invalid_fhir", "; ".join(str(i) for i in exc.issues[:20]))
    except NotApplicable:
        return {"cards": []}
    if mapped.patient_reference != f"Patient/{body.context.patientId}":
        return cds_error(
            400,
            "invalid_fhir",
            f"the Patient read ({mapped.patient_reference}) is not context.patientId "
            f"({body.context.patientId})",
        )
    try:
        return {"cards": [_card(worker, mapped, request)]}
    except AuditUnavailable as exc:
        return cds_error(503, "audit_unavailable", str(exc))


def _fetcher(worker: Worker, body: hooks.CdsRequest, issuer: str, opened: contextlib.ExitStack):
    """How to read a prefetch key from the client's FHIR server (its connections closed
    by ``opened``); None without a server and token. A server not allow-listed for this
    client is refused when a key would be fetched from it (a call with everything
    prefetched does not need it)."""
    server, auth = body.fhirServer, body.fhirAuthorization
    if not server or auth is None:
        return None
    if server.rstrip("/") in worker.fhir_servers.get(issuer, ()):
        return opened.enter_context(FhirServer(server, auth.access_token)).get

    def refuse(_url: str):
        raise hooks.PrefetchUnavailable(
            f"fhirServer {server!r} is not allow-listed for {issuer!r} (fhir_servers in "
            "the CDS clients file)"
        )

    return refuse


def _card(worker: Worker, mapped: MappedPatient, request: Request) -> dict:
    """The card for the mapped patient, recorded; :class:`AuditUnavailable` (and nothing
    kept: no audit line, no prediction-log line, no explanation record) when its audit line
    cannot be written."""
    runtime = worker.runtime
    ident = runtime.identity()
    settings = worker.settings
    base = f"{settings.serve.public_url}/cds-services/{hooks.SERVICE_ID}"
    try:
        patient = mapped.to_patient()
    except FhirInputError as exc:
        return hooks.info_card(
            "ICANS risk not estimated: the record does not allow it (see details)",
            "\n".join(f"- {i}" for i in exc.issues),
            ident,
            f"{base}/model-card",
        )
    a = runtime.assess([patient])[0]
    record = {
        "patient": patient.model_dump(mode="json", exclude={"patient_id"}),
        "warnings": mapped.warnings,
        "model_version": ident["version"],
    }
    page_id = worker.explanations.put(record)
    links = {
        "model_card": f"{base}/model-card",
        "explanation": f"{base}/explanation?id={page_id}",
    }
    card = hooks.risk_card(
        mapped,
        a,
        ident,
        runtime.intended_use,
        settings.cds,
        links,
        runtime.synthetic,
    )
    try:
        worker.record(ident, "cds-hooks", [(request_id(request), patient, a)], card=card["uuid"])
    except AuditUnavailable:
        worker.explanations.discard(page_id)  # the link is never sent: nothing to open
        raise
    return card


@router.post("/cds-services/{service_id}/feedback", responses=ERRORS | WITHHELD)
def cds_feedback(service_id: str, body: hooks.Feedback, worker: CurrentWorker):
    """Accepted and overridden cards, recorded in the audit log without identifiers or
    free text (the card's id, the outcome, the coded override reason): the lines of one call
    all or none, and 503 when they cannot be written (the EHR may send them again)."""
    if service_id != hooks.SERVICE_ID:
        return cds_error(404, "not_found", f"no CDS service {service_id!r}")
    lines = []
    for entry in body.feedback:
        reason = (entry.overrideReason.reason or {}) if entry.overrideReason else {}
        lines.append(
            AuditLog.feedback(
                card=entry.card,
                outcome=entry.outcome,
                override_reason=f"{reason.get('system', '')}|{reason.get('code', '')}"
                if reason
                else None,
                accepted_suggestions=len(entry.acceptedSuggestions),
            )
        )
    try:
        worker.audit.write(lines)
    except AuditUnavailable as exc:
        return cds_error(503, "audit_unavailable", str(exc))
    return JSONResponse({}, status_code=200)


@router.get("/cds-services/{service_id}/model-card", response_class=HTMLResponse)
def cds_model_card(service_id: str, worker: CurrentWorker) -> HTMLResponse:
    """The model card (the version's reviewers' report), linked from every card."""
    page = worker.runtime.model_card_page
    if service_id != hooks.SERVICE_ID or page is None:
        return HTMLResponse("<p>No model card for this service.</p>", status_code=404)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/cds-services/{service_id}/explanation", response_class=HTMLResponse)
def cds_explanation(service_id: str, worker: CurrentWorker, id: str = "") -> HTMLResponse:
    """A card's explanation page, while it lasts (``cds.page_ttl_s``): the same page as
    /v1/report, with the mapping's warnings, rendered now from the stored record."""
    # the id is a query parameter, never part of the path: paths are metric labels
    record = worker.explanations.get(id) if service_id == hooks.SERVICE_ID else None
    runtime = worker.runtime
    ident = runtime.identity()
    if record is None or record["model_version"] != ident["version"]:
        return HTMLResponse(
            "<p>This explanation has expired (or the model has changed); open the chart again.</p>",
            status_code=404,
        )
    patient = parse_patient(record["patient"])
    a = runtime.assess([patient])[0]
    shown = dataclasses.replace(a, warnings=record["warnings"] + a.warnings)
    page = build_patient_report(patient, shown, ident, request_id=None)
    return HTMLResponse(
        page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )
