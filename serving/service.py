"""The BentoML prediction service: ``bentoml serve serving.service:IcansRisk``.

The versioned JSON API is a FastAPI app mounted at ``/v1`` (full control over 4xx bodies,
authentication and limits), with the FHIR RiskAssessment endpoint; the CDS Hooks service
answers under ``/cds-services`` (:mod:`serving.cds_app`). BentoML runs both and provides
``/livez`` and ``/readyz``. The model is loaded from the MLflow registry when a worker starts;
if that fails, or the worker listens on a network address without authentication, the worker
does not start, so the service is never half ready nor open by accident. Nothing clinical
lives here: features, model and explanations are imported from ``features``, ``model`` and
``reports``; nothing from ``training``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import logging
import math
import re
import uuid
from datetime import datetime

import bentoml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from features.patient import PatientObservation, errors_from_pydantic, parse_patient
from icans.config import INTENDED_USE, load_settings
from icans.errors import InvalidInputError
from reports.patient import build_patient_report, waterfall_png
from serving import cds_hooks
from serving.audit import AuditLog
from serving.body_limit import bounded
from serving.cds_app import ERRORS as CDS_ERRORS
from serving.cds_app import cds, cds_error
from serving.client_auth import ClientVerifier, SqliteReplayCache, load_clients
from serving.fhir_fetch import FhirFetchError, FhirServer
from serving.fhir_input import map_patient, read_bundle
from serving.fhir_output import operation_outcome, outcome_message, risk_assessment
from serving.fhir_resources import FhirInputError, MappedPatient, NotApplicable
from serving.launch import check_exposure, listening_host
from serving.metrics import RequestMetrics, metrics, record_prediction
from serving.prediction_log import PredictionLog
from serving.rollout import LiveModel, ReadinessDetail, settle_heap
from serving.runtime import Assessment, ModelRuntime
from serving.schemas import (
    MAX_BATCH,
    MAX_BATCH_BODY_BYTES,
    MAX_BODY_BYTES,
    BatchRequest,
    BatchResponse,
    Contribution,
    ErrorResponse,
    InputContribution,
    ModelInfo,
    ProbabilityInterval,
    RiskResponse,
)

log = logging.getLogger("icans.serving")
FHIR_JSON = "application/fhir+json"
MAX_FHIR_BODY_BYTES = 4 * 1024 * 1024  # one patient's Bundle with a 28-day course
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 413, 422)}
# For an HTML route: its errors are JSON all the same (FastAPI would document them as HTML).
JSON_ERRORS = {
    status: {
        "description": "Error (JSON)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for status in ERRORS
}

app = FastAPI(
    title="ICANS risk service",
    version="1",
    description=(
        "Risk of severe (ASTCT grade 3-4) or steroid-refractory ICANS after CAR-T therapy, "
        f"with exact TreeSHAP explanations. {INTENDED_USE} Batch calls take at most "
        f"{MAX_BATCH} patients."
    ),
)
app.state.api_token = None


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _error(
    status: int,
    error: str,
    message: str,
    request: Request,
    errors: list | None = None,
    headers: dict | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=error, message=message, errors=errors or [], request_id=_request_id(request)
    )
    headers = dict(headers or {}) | ({"WWW-Authenticate": "Bearer"} if status == 401 else {})
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


class Guard:
    """Pure ASGI middleware: bearer token (when configured) and request-size limits
    (:func:`serving.body_limit.bounded`). The token comparison is constant-time
    (``hmac.compare_digest``)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        request = Request(scope)
        token = app.state.api_token
        if token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                response = _error(
                    401,
                    "unauthorized",
                    "missing or wrong 'Authorization: Bearer <token>' header",
                    request,
                )
                return await response(scope, receive, send)
        limit = (
            MAX_BATCH_BODY_BYTES
            if scope["path"].endswith("/batch")
            else MAX_FHIR_BODY_BYTES
            if scope["path"].endswith("/fhir/risk-assessment")
            else MAX_BODY_BYTES
        )
        return await bounded(
            self.inner,
            scope,
            receive,
            send,
            limit,
            lambda message: _error(413, "payload_too_large", message, request),
        )


app.add_middleware(Guard)
app.add_middleware(RequestMetrics, prefix="/v1")  # outermost: sees every call and status


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("patients"), list):
        errors = _batch_errors(exc.errors(), body["patients"])
    elif any(e["type"] == "json_invalid" for e in exc.errors()):
        err = next(e for e in exc.errors() if e["type"] == "json_invalid")
        where = err["loc"][-1] if len(err["loc"]) > 1 else "?"
        errors = [
            InvalidInputError(
                "body",
                None,
                f"valid JSON (parse error at character "
                f"{where}: {(err.get('ctx') or {}).get('error', '')})",
            )
        ]
    else:
        errors = errors_from_pydantic(list(exc.errors()), body, loc_prefix=("body",))
    details = [
        {"field": e.field, "value": e.as_dict()["value"], "expected": e.expected} for e in errors
    ]
    return _error(422, "invalid_input", f"{len(details)} invalid field(s)", request, details)


def _batch_errors(errors, patients: list) -> list:
    """Per patient: pydantic's errors, plus course-date errors its validator did not reach."""
    by_patient: dict[int, list] = {}
    other = []
    for err in errors:
        loc = tuple(err["loc"])
        if len(loc) >= 3 and loc[:2] == ("body", "patients") and isinstance(loc[2], int):
            by_patient.setdefault(loc[2], []).append(err)
        else:
            other.append(err)
    out = errors_from_pydantic(other, None, loc_prefix=("body",)) if other else []
    for i, errs in sorted(by_patient.items()):
        found = errors_from_pydantic(
            errs, patients[i] if i < len(patients) else None, loc_prefix=("body", "patients", i)
        )
        for e in found:
            e.field = f"patients[{i}]" if e.field == "body" else f"patients[{i}].{e.field}"
        out.extend(found)
    return out


@app.exception_handler(HTTPException)
async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    names = {
        400: "malformed_body",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }
    return _error(  # the exception's headers kept: a 405's Allow
        exc.status_code,
        names.get(exc.status_code, "http_error"),
        str(exc.detail),
        request,
        headers=exc.headers,
    )


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = _request_id(request)
    log.error("request %s failed: %s", rid, type(exc).__name__)  # never the body: no PHI
    return _error(500, "internal_error", f"internal error (request {rid})", request)


def _log_with_bentoml() -> None:
    """The service's own log lines (``icans.*``: which version answers, roll-outs, failures;
    never a patient's data) through BentoML's handlers, at INFO, so they reach the server's
    log in its format."""
    ours = logging.getLogger("icans")
    if not ours.handlers:
        for handler in logging.getLogger("bentoml").handlers:
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False  # once, not again through the root logger


def _response(a: Assessment, runtime: ModelRuntime, rid: str) -> RiskResponse:
    return RiskResponse(
        probability=a.probability,
        probability_interval=None
        if a.interval is None
        else ProbabilityInterval(low=a.interval[0], high=a.interval[1]),
        landmark_day=a.landmark_day,
        model_name=runtime.ref.name,
        model_version=runtime.ref.version,
        base_log_odds=a.base_log_odds,
        log_odds=a.log_odds,
        contributions=[
            Contribution(**{k: c[k] for k in Contribution.model_fields}) for c in a.contributions
        ],
        input_contributions=[InputContribution(**c) for c in a.input_contributions],
        drivers=a.drivers,
        warnings=a.warnings,
        missing_inputs=a.missing_inputs,
        request_id=rid,
        disclaimer=runtime.intended_use,
    )


def _fhir(status: int, body: dict, rid: str) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, media_type=FHIR_JSON, headers={"X-Request-ID": rid}
    )


_FHIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {FHIR_JSON: {"schema": {"type": "object"}}, "application/json": {}},
        "description": "A FHIR R4 Bundle holding one patient's resources (docs/fhir-mapping.md).",
    }
}
_FHIR_RESPONSES = {
    200: {"content": {FHIR_JSON: {}}, "description": "A FHIR R4 RiskAssessment."},
    400: {"content": {FHIR_JSON: {}}, "description": "OperationOutcome: unreadable FHIR."},
    422: {"content": {FHIR_JSON: {}}, "description": "OperationOutcome: no estimate."},
    401: {"model": ErrorResponse},
    413: {"model": ErrorResponse},
}


@bentoml.service(name="icans_risk", workers=2, traffic={"timeout": 30, "max_concurrency": 256})
@bentoml.asgi_app(app, path="/v1")
@bentoml.asgi_app(cds, path="/")
class IcansRisk:
    """Loads the registered model once per worker; refuses to start without one, or on a
    network address without authentication."""

    def __init__(self) -> None:
        settings = load_settings()
        host = listening_host()  # None in process (tests); the socket BentoML handed us
        if host is not None:
            check_exposure(settings.model_copy(update={"serve_host": host}))
        self.settings = settings
        _log_with_bentoml()
        self.live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings)
        self.audit = AuditLog(settings.audit_log)
        self.predictions = PredictionLog(
            settings.prediction_log_dir, settings.prediction_log_retention_days
        )
        app.state.api_token = settings.api_token.get_secret_value() if settings.api_token else None
        clients = load_clients(settings.cds_clients) if settings.cds_clients else []
        self.fhir_servers = {c.iss: c.fhir_servers for c in clients}
        cds.state.public_url = settings.public_url
        cds.state.verifier = ClientVerifier(
            clients,
            audience=settings.public_url,
            replays=SqliteReplayCache(settings.artifacts_dir / "cds-jti.sqlite"),
        )
        self.explanations = cds_hooks.ExplanationStore(
            settings.cds_explanations_dir, settings.cds_page_ttl_s
        )
        metrics()  # made now that BentoML has set up multiprocess collection
        waterfall_png([], 0.0, 0.0)  # loads matplotlib and its fonts now, not on a request
        ref = self.live.runtime.ref
        log.info("serving %s version %s", ref.name, ref.version)
        app.state.live = self.live  # for /readyz's detail (ReadinessDetail)
        settle_heap()  # no full garbage collection of start-up objects during a request
        self.live.start()  # follows the alias from now on (model_poll_seconds)

    @bentoml.on_shutdown
    def _stop_following(self) -> None:
        self.live.stop()

    def _record(self, rid, ident, patient, assessment, channel: str, card=None) -> None:
        """One prediction in the audit log, the prediction log and the metrics."""
        name, version = ident["name"], ident["version"]
        self.audit.record(rid, name, version, patient, assessment.probability, card=card)
        self.predictions.record(rid, name, version, channel, assessment)
        record_prediction(name, version, channel, assessment.probability)

    def _assess(
        self, patients: list[PatientObservation], rid: str, batch: bool = False
    ) -> list[RiskResponse]:
        """Assess, answer and record. In a batch, patient ``i``'s result, audit line and
        prediction-log line carry ``<request id>.<i>``: one id per prediction, the key an
        outcome is later joined on (``icans monitor``)."""
        runtime = self.live.runtime  # read once: one version answers the whole request
        assessments = runtime.assess(patients)
        ids = [f"{rid}.{i}" for i in range(len(patients))] if batch else [rid]
        ident = runtime.identity()
        for pid, patient, a in zip(ids, patients, assessments, strict=True):
            self._record(pid, ident, patient, a, "json")
        return [_response(a, runtime, pid) for pid, a in zip(ids, assessments, strict=True)]

    @app.post("/risk", response_model=RiskResponse, responses=ERRORS)
    async def risk(self, patient: PatientObservation, request: Request) -> RiskResponse:
        """Risk for one patient on day_since_infusion, with its explanation."""
        # computed on the event loop, not handed to a thread: a millisecond or two of CPU,
        # which a thread hop (and its hand-back) would add to, and a worker's CPU is the
        # limit either way (batches and pages, longer, still go to the threadpool)
        return self._assess([patient], _request_id(request))[0]

    @app.post(
        "/report",
        response_class=HTMLResponse,
        responses=JSON_ERRORS | {200: {"content": {"text/html": {}}, "description": "HTML page"}},
    )
    def report(self, patient: PatientObservation, request: Request) -> HTMLResponse:
        """The per-patient explanation as one self-contained HTML page (no JavaScript): the
        probability with its uncertainty, the landmark day, a waterfall of contributions in
        clinical units, the top drivers, warnings and caveats. Same numbers as /risk."""
        rid = _request_id(request)
        runtime = self.live.runtime
        assessment = runtime.assess([patient])[0]
        ident = runtime.identity()
        self._record(rid, ident, patient, assessment, "report")
        page = build_patient_report(patient, assessment, ident, request_id=rid)
        return HTMLResponse(page, headers={"X-Request-ID": rid, "Cache-Control": "no-store"})

    @app.post("/risk/batch", response_model=BatchResponse, responses=ERRORS)
    def risk_batch(self, body: BatchRequest, request: Request) -> BatchResponse:
        """Risk for up to 256 patients in one call; one result per patient, in order."""
        rid = _request_id(request)
        return BatchResponse(results=self._assess(body.patients, rid, batch=True), request_id=rid)

    @app.get("/model", response_model=ModelInfo, responses={401: {"model": ErrorResponse}})
    def model(self) -> ModelInfo:
        """Which model answers: name, version, training date, cohort, headline metrics."""
        runtime = self.live.runtime
        card, ref = runtime.card, runtime.ref
        return ModelInfo(
            name=ref.name,
            version=ref.version,
            alias=ref.alias,
            trained_at=runtime.trained_at,
            run_id=ref.run_id,
            cohort_fingerprint=card.get("cohort_fingerprint", ""),
            headline_metrics={  # a metric that could not be computed (NaN) is left out
                k: float(v)
                for k, v in card.get("headline_metrics", {}).items()
                if v is not None and math.isfinite(float(v))
            },
            gate=card.get("gate", {}),
            feature_names=card.get("feature_names", []),
            intended_use=runtime.intended_use,
            synthetic_data=runtime.synthetic,
            training_data=card.get("training_data", {}),
            rollout=self.live.status(),
        )

    # -- FHIR ----------------------------------------------------------------------------------

    @app.post(
        "/fhir/risk-assessment",
        response_class=JSONResponse,
        responses=_FHIR_RESPONSES,
        openapi_extra=_FHIR_BODY,
    )
    async def fhir_risk_assessment(self, request: Request, at: str | None = None):
        """The risk as a FHIR R4 RiskAssessment, from a Bundle of one patient's resources
        (docs/fhir-mapping.md). ``at``: the prediction time (a dateTime with a time zone;
        default now); nothing dated after it is used. Errors are OperationOutcomes naming the
        resource and element. Same numbers as /risk for the same patient."""
        rid = _request_id(request)
        body = await request.body()
        return await run_in_threadpool(self._fhir_assess, body, at, rid)

    def _fhir_assess(self, body: bytes, at_text: str | None, rid: str) -> JSONResponse:
        try:
            bundle = json.loads(body)
        except ValueError as exc:
            return _fhir(
                400, outcome_message(f"the body is not valid JSON ({exc})", "structure"), rid
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
        runtime = self.live.runtime
        a = runtime.assess([patient])[0]
        ident = runtime.identity()
        self._record(rid, ident, patient, a, "fhir")
        return _fhir(200, risk_assessment(mapped, a, ident, runtime.intended_use), rid)

    # -- CDS Hooks -----------------------------------------------------------------------------

    @cds.get("/cds-services", responses=CDS_ERRORS)
    def cds_discovery(self) -> dict:
        """CDS Hooks discovery: the patient-view service and its prefetch templates."""
        return cds_hooks.discovery()

    @cds.post("/cds-services/{service_id}", responses=CDS_ERRORS)
    def cds_call(self, service_id: str, body: cds_hooks.CdsRequest, request: Request):
        """A patient-view call: one card with the risk, or none for a patient outside the
        service; 412 when the data it needs is neither prefetched nor fetchable."""
        if service_id != cds_hooks.SERVICE_ID:
            return cds_error(404, "not_found", f"no CDS service {service_id!r}")
        if body.hook != cds_hooks.HOOK:
            return cds_error(
                400, "invalid_input", f"hook {body.hook!r}: this service answers {cds_hooks.HOOK!r}"
            )
        client = request.state.client
        try:
            with contextlib.ExitStack() as opened:  # the FHIR server's connections, if any
                resources = cds_hooks.gather(body, self._fetcher(body, client["iss"], opened))
            mapped = map_patient(resources, datetime.now().astimezone())
        except cds_hooks.PrefetchUnavailable as exc:
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
        return {"cards": [self._card(mapped, request)]}

    def _fetcher(self, body: cds_hooks.CdsRequest, issuer: str, opened: contextlib.ExitStack):
        """How to read a prefetch key from the client's FHIR server (its connections closed
        by ``opened``); None without a server and token. A server not allow-listed for this
        client is refused when a key would be fetched from it (a call with everything
        prefetched does not need it)."""
        server, auth = body.fhirServer, body.fhirAuthorization
        if not server or auth is None:
            return None
        if server.rstrip("/") in self.fhir_servers.get(issuer, ()):
            return opened.enter_context(FhirServer(server, auth.access_token)).get

        def refuse(_url: str):
            raise cds_hooks.PrefetchUnavailable(
                f"fhirServer {server!r} is not allow-listed for {issuer!r} (fhir_servers in "
                "the CDS clients file)"
            )

        return refuse

    def _card(self, mapped: MappedPatient, request: Request) -> dict:
        runtime = self.live.runtime
        ident = runtime.identity()
        base = f"{self.settings.public_url}/cds-services/{cds_hooks.SERVICE_ID}"
        try:
            patient = mapped.to_patient()
        except FhirInputError as exc:
            return cds_hooks.info_card(
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
        links = {
            "model_card": f"{base}/model-card",
            "explanation": f"{base}/explanation?id={self.explanations.put(record)}",
        }
        card = cds_hooks.risk_card(
            mapped,
            a,
            ident,
            runtime.intended_use,
            (self.settings.cds_warning_at, self.settings.cds_critical_at),
            links,
            runtime.synthetic,
        )
        self._record(_request_id(request), ident, patient, a, "cds-hooks", card=card["uuid"])
        return card

    @cds.post("/cds-services/{service_id}/feedback", responses=CDS_ERRORS)
    def cds_feedback(self, service_id: str, body: cds_hooks.Feedback):
        """Accepted and overridden cards, recorded in the audit log without identifiers or
        free text (the card's id, the outcome, the coded override reason)."""
        if service_id != cds_hooks.SERVICE_ID:
            return cds_error(404, "not_found", f"no CDS service {service_id!r}")
        for entry in body.feedback:
            reason = (entry.overrideReason.reason or {}) if entry.overrideReason else {}
            self.audit.feedback(
                card=entry.card,
                outcome=entry.outcome,
                override_reason=f"{reason.get('system', '')}|{reason.get('code', '')}"
                if reason
                else None,
                accepted_suggestions=len(entry.acceptedSuggestions),
            )
        return JSONResponse({}, status_code=200)

    @cds.get("/cds-services/{service_id}/model-card", response_class=HTMLResponse)
    def cds_model_card(self, service_id: str) -> HTMLResponse:
        """The model card (the version's reviewers' report), linked from every card."""
        page = self.live.runtime.model_card_page
        if service_id != cds_hooks.SERVICE_ID or page is None:
            return HTMLResponse("<p>No model card for this service.</p>", status_code=404)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @cds.get("/cds-services/{service_id}/explanation", response_class=HTMLResponse)
    def cds_explanation(self, service_id: str, id: str = "") -> HTMLResponse:
        """A card's explanation page, while it lasts (``cds_page_ttl_s``): the same page as
        /v1/report, with the mapping's warnings, rendered now from the stored record."""
        # the id is a query parameter, never part of the path: paths are metric labels
        record = self.explanations.get(id) if service_id == cds_hooks.SERVICE_ID else None
        runtime = self.live.runtime
        ident = runtime.identity()
        if record is None or record["model_version"] != ident["version"]:
            return HTMLResponse(
                "<p>This explanation has expired (or the model has changed); open the chart "
                "again.</p>",
                status_code=404,
            )
        patient = parse_patient(record["patient"])
        a = runtime.assess([patient])[0]
        shown = dataclasses.replace(a, warnings=record["warnings"] + a.warnings)
        page = build_patient_report(patient, shown, ident, request_id=None)
        return HTMLResponse(
            page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )


# /readyz answers with the worker's roll-out state (serving.rollout)
IcansRisk.add_asgi_middleware(ReadinessDetail, live=lambda: getattr(app.state, "live", None))
