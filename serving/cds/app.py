"""The HTTP side of the CDS Hooks service under ``/cds-services``: the FastAPI app, its
client authentication and its error bodies. The routes are the service's methods
(:mod:`serving.service`); what they compute is :mod:`serving.cds.hooks`'.

Every call carries a CDS client's signed JWT (``Authorization: Bearer <jwt>``), verified by
:class:`serving.cds.client_auth.ClientVerifier` with ``aud`` equal to the URL called
(``public_url`` + path, as the CDS Hooks specification asks); the claims go to the route in
``request.state.client``. The two pages a clinician's browser opens from a card (the model
card and the explanation behind its unguessable link) carry no token and need none. When the
replay store or the explanation records cannot be reached (:mod:`serving.cds.stores`), the call
is answered 503 naming the reason, and nothing of it is kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.schemas import ErrorDetail, ErrorResponse
from serving.body_limit import bounded
from serving.cds.client_auth import ClientAuthError
from serving.cds.stores import StateUnavailable
from serving.metrics import RequestMetrics

log = logging.getLogger("icans.serving.cds")
MAX_CDS_BODY_BYTES = 4 * 1024 * 1024  # prefetched resources of one patient
PREFIX = "/cds-services"
PUBLIC = re.compile(r"^/cds-services/[\w-]+/(model-card|explanation)$")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 412, 413, 422, 503)
}

cds = FastAPI(
    title="ICANS risk CDS Hooks service",
    version="2.0",
    description="CDS Hooks 2.0 patient-view service. Decision support only.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,  # the specification's discovery document describes it
)
cds.state.verifier = None
cds.state.public_url = ""


def cds_error(status: int, error: str, message: str, headers: Mapping[str, str] | None = None):
    body = ErrorResponse(error=error, message=message, errors=[], request_id="")
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


class CdsGuard:
    """Pure ASGI middleware: the client's JWT and the body limit."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        path = scope["path"]
        if not PUBLIC.match(path):
            request = Request(scope)
            given = request.headers.get("authorization", "")
            audience = cds.state.public_url + path.rstrip("/")
            try:
                if not given.startswith("Bearer "):
                    raise ClientAuthError("missing 'Authorization: Bearer <JWT>' header")
                # in a thread: the replay store and a jku key set may be a network call away
                scope.setdefault("state", {})["client"] = await run_in_threadpool(
                    cds.state.verifier.verify, given[len("Bearer ") :], audience=audience
                )
            except ClientAuthError as exc:
                log.info("CDS call refused: %s", exc)
                response = cds_error(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})
                return await response(scope, receive, send)
            except StateUnavailable as exc:
                response = _unavailable(exc)
                return await response(scope, receive, send)
        return await bounded(
            self.inner,
            scope,
            receive,
            send,
            MAX_CDS_BODY_BYTES,
            lambda message: cds_error(413, "payload_too_large", message),
        )


cds.add_middleware(CdsGuard)
cds.add_middleware(RequestMetrics)  # outermost: refused calls are counted too


@cds.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        ErrorDetail(
            field=".".join(str(x) for x in e["loc"][1:]) or "body",
            value=None,
            expected=e["msg"],
        )
        for e in exc.errors()
    ]
    body = ErrorResponse(
        error="invalid_input",
        message=f"{len(errors)} invalid field(s) in the CDS Hooks request",
        errors=errors,
        request_id="",
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=400)


@cds.exception_handler(HTTPException)
async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    names = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    return cds_error(
        exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail), exc.headers
    )


def _unavailable(exc: StateUnavailable) -> JSONResponse:
    log.error("CDS call not answered: %s", exc)  # the store and the reason; never the body
    return cds_error(503, "service_unavailable", str(exc), {"Retry-After": "5"})


@cds.exception_handler(StateUnavailable)
async def _state_unavailable(request: Request, exc: StateUnavailable) -> JSONResponse:
    return _unavailable(exc)


@cds.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("CDS call failed: %s", type(exc).__name__)  # never the body: no PHI
    return cds_error(500, "internal_error", "internal error")
