"""The versioned JSON API's FastAPI app, mounted at ``/v1``: its guard and its errors.

The app owns what every ``/v1`` route shares: the bearer token (when configured), the body
limits, the request id, the Prometheus request metrics, and error bodies that name the field,
the value and the rule (:class:`api.schemas.ErrorResponse`); never a 500 with a body from a
library. The routes are included by :mod:`serving.service`: the JSON API's
(:mod:`serving.json_api`) and the FHIR endpoint (:mod:`serving.fhir.router`).
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.patient import errors_from_pydantic
from api.schemas import (
    MAX_BATCH,
    MAX_BATCH_BODY_BYTES,
    MAX_BODY_BYTES,
    ErrorResponse,
)
from icans.config import INTENDED_USE
from icans.errors import InvalidInputError
from serving.body_limit import bounded
from serving.fhir.output import MAX_FHIR_BODY_BYTES
from serving.metrics import RequestMetrics

log = logging.getLogger("icans.serving")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 413, 422)
}
# For an HTML route: its errors are JSON all the same (FastAPI would document them as HTML).
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
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


def request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _error(
    status: int,
    error: str,
    message: str,
    request: Request,
    errors: list | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=error, message=message, errors=errors or [], request_id=request_id(request)
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
    rid = request_id(request)
    log.error("request %s failed: %s", rid, type(exc).__name__)  # never the body: no PHI
    return _error(500, "internal_error", f"internal error (request {rid})", request)
