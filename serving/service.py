"""The BentoML prediction service: ``bentoml serve serving.service:IcansRisk``.

The versioned JSON API is a FastAPI app mounted at ``/v1`` (full control over 4xx bodies,
authentication and limits); BentoML runs it and provides ``/livez`` and ``/readyz``. The model
is loaded from the MLflow registry when a worker starts; if that fails the worker does not
start, so the service is never half ready. Nothing clinical lives here: features, model and
explanations are imported from ``features``, ``model`` and ``reports``; nothing from
``training``.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import uuid

import bentoml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from features.patient import PatientObservation, errors_from_pydantic
from icans.config import INTENDED_USE, load_settings
from icans.errors import InvalidInputError
from reports.patient import build_patient_report, waterfall_png
from serving.audit import AuditLog
from serving.runtime import Assessment, ModelRuntime
from serving.schemas import (
    MAX_BATCH,
    MAX_BATCH_BODY_BYTES,
    MAX_BODY_BYTES,
    BatchRequest,
    BatchResponse,
    Contribution,
    ErrorResponse,
    ModelInfo,
    ProbabilityInterval,
    RiskResponse,
)

log = logging.getLogger("icans.serving")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 413, 422)}

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
    status: int, error: str, message: str, request: Request, errors: list | None = None
) -> JSONResponse:
    body = ErrorResponse(
        error=error, message=message, errors=errors or [], request_id=_request_id(request)
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


class Guard:
    """Pure ASGI middleware: bearer token (when configured) and request-size limits.

    The token comparison is constant-time (``hmac.compare_digest``). Bodies are counted as they
    arrive, so a missing or false Content-Length cannot get round the limit.
    """

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
        limit = MAX_BATCH_BODY_BYTES if scope["path"].endswith("/batch") else MAX_BODY_BYTES
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = _error(
                413,
                "payload_too_large",
                f"request body of {declared} bytes exceeds {limit} bytes",
                request,
            )
            return await response(scope, receive, send)
        seen = 0

        async def counted_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        return await self.inner(scope, counted_receive, send)


app.add_middleware(Guard)


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
    return _error(
        exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail), request
    )


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = _request_id(request)
    log.error("request %s failed: %s", rid, type(exc).__name__)  # never the body: no PHI
    return _error(500, "internal_error", f"internal error (request {rid})", request)


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
        drivers=a.drivers,
        warnings=a.warnings,
        missing_inputs=a.missing_inputs,
        request_id=rid,
        disclaimer=runtime.intended_use,
    )


@bentoml.service(name="icans_risk", workers=2, traffic={"timeout": 30, "max_concurrency": 256})
@bentoml.asgi_app(app, path="/v1")
class IcansRisk:
    """Loads the registered model once per worker; refuses to start without one."""

    def __init__(self) -> None:
        settings = load_settings()
        self.runtime = ModelRuntime.load(settings.model_uri, settings)
        self.audit = AuditLog(settings.audit_log)
        app.state.api_token = settings.api_token.get_secret_value() if settings.api_token else None
        waterfall_png([], 0.0, 0.0)  # loads matplotlib and its fonts now, not on a request
        log.info("serving %s version %s", self.runtime.ref.name, self.runtime.ref.version)

    def _assess(self, patients: list[PatientObservation], rid: str) -> list[RiskResponse]:
        results = [_response(a, self.runtime, rid) for a in self.runtime.assess(patients)]
        for patient, r in zip(patients, results, strict=True):
            self.audit.record(rid, r.model_name, r.model_version, patient, r.probability)
        return results

    @app.post("/risk", response_model=RiskResponse, responses=ERRORS)
    def risk(self, patient: PatientObservation, request: Request) -> RiskResponse:
        """Risk for one patient on day_since_infusion, with its explanation."""
        return self._assess([patient], _request_id(request))[0]

    @app.post(
        "/report",
        response_class=HTMLResponse,
        responses=ERRORS | {200: {"content": {"text/html": {}}, "description": "HTML page"}},
    )
    def report(self, patient: PatientObservation, request: Request) -> HTMLResponse:
        """The per-patient explanation as one self-contained HTML page (no JavaScript): the
        probability with its uncertainty, the landmark day, a waterfall of contributions in
        clinical units, the top drivers, warnings and caveats. Same numbers as /risk."""
        rid = _request_id(request)
        assessment = self.runtime.assess([patient])[0]
        ident = self.runtime.identity()
        self.audit.record(rid, ident["name"], ident["version"], patient, assessment.probability)
        page = build_patient_report(patient, assessment, ident, request_id=rid)
        return HTMLResponse(page, headers={"X-Request-ID": rid, "Cache-Control": "no-store"})

    @app.post("/risk/batch", response_model=BatchResponse, responses=ERRORS)
    def risk_batch(self, body: BatchRequest, request: Request) -> BatchResponse:
        """Risk for up to 256 patients in one call; one result per patient, in order."""
        rid = _request_id(request)
        return BatchResponse(results=self._assess(body.patients, rid), request_id=rid)

    @app.get("/model", response_model=ModelInfo, responses={401: {"model": ErrorResponse}})
    def model(self) -> ModelInfo:
        """Which model answers: name, version, training date, cohort, headline metrics."""
        card, ref = self.runtime.card, self.runtime.ref
        return ModelInfo(
            name=ref.name,
            version=ref.version,
            alias=ref.alias,
            trained_at=self.runtime.trained_at,
            run_id=ref.run_id,
            cohort_fingerprint=card.get("cohort_fingerprint", ""),
            headline_metrics={  # a metric that could not be computed (NaN) is left out
                k: float(v)
                for k, v in card.get("headline_metrics", {}).items()
                if v is not None and math.isfinite(float(v))
            },
            gate=card.get("gate", {}),
            feature_names=card.get("feature_names", []),
            intended_use=self.runtime.intended_use,
            synthetic_data=self.runtime.synthetic,
            training_data=card.get("training_data", {}),
        )
