"""The JSON API's routes under ``/v1``: one patient's risk, a batch, the HTML page, the model.

Every route answers from the worker's live model version, read once per request
(:class:`serving.worker.Worker`), and records each prediction (audit line, prediction-log
line, metrics) under the request id it answers with. A prediction whose audit line cannot be
written is not answered: the route answers 503 naming the reason (``audit_unavailable``).

A risk answers for every horizon the model estimates (:mod:`icans.horizons`: the next 72 hours,
the next 7 days, by day 28), each with its interval and explanation, the day-28 figures also at
the top as before; the ``horizons`` query parameter selects some of them, and a horizon that
does not exist or that the model does not estimate is a 422 naming the parameter, the value and
the rule, before anything is computed or recorded.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from api.patient import PatientObservation
from api.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorDetail,
    ErrorResponse,
    ModelInfo,
    RiskResponse,
    RolloutStatus,
)
from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES, horizon
from reports.patient import build_patient_report
from runtime.assessor import Assessment, HorizonRisk
from serving.audit import AuditUnavailable
from serving.json_app import ERRORS, JSON_ERRORS, request_id
from serving.model_version import ModelRuntime
from serving.worker import Worker, current_worker

router = APIRouter()
CurrentWorker = Annotated[Worker, Depends(current_worker)]
WITHHELD_DOC = (
    "The audit log cannot be written (a full disk, a location not writable): no prediction is "
    "answered without its audit line, so none is; the message says why. Nothing of the "
    "request was recorded: it may be sent again."
)
WITHHELD: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": WITHHELD_DOC}
}
# the HTML page's 503 is JSON, as its other errors (serving.json_app.JSON_ERRORS)
WITHHELD_JSON: dict[int | str, dict[str, Any]] = {
    503: {
        "description": WITHHELD_DOC,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
}


HorizonsQuery = Annotated[
    str | None,
    Query(
        description="Which horizons to answer, comma-separated, e.g. '72h,day28' (shortest "
        f"first in the answer whatever the order given): of {', '.join(HORIZON_NAMES)} (the "
        "next 72 hours, the next 7 days, by day 28), those the model estimates. Default: every "
        "horizon the model estimates. An unknown horizon, or one the model does not estimate, "
        "is a 422 naming the parameter. The day-28 figures at the top of each result are "
        "always given.",
        examples=["72h,7d,day28", "72h"],
    ),
]


def selected_horizons(given: str | None, fitted: tuple[str, ...]) -> tuple[str, ...]:
    """The horizons a request asks for (``given``: the ``horizons`` query parameter), in the
    model's order (shortest first); None: every ``fitted`` one. A name that is no horizon
    (:func:`icans.horizons.horizon`) or one the model does not estimate raises
    :class:`InvalidInputError` naming the parameter ``horizons``."""
    if given is None:
        return fitted
    names = [name.strip() for name in given.split(",")]
    for name in names:
        try:
            horizon(name)
        except InvalidInputError as exc:
            rule = f"comma-separated horizon names, each {exc.expected}"
            raise InvalidInputError("horizons", name, rule) from None
        if name not in fitted:
            rule = f"a horizon this model estimates: one of {', '.join(fitted)}"
            raise InvalidInputError("horizons", name, rule)
    return tuple(name for name in fitted if name in names)


def refused(exc: InvalidInputError, rid: str) -> JSONResponse:
    """A query parameter breaking its rule: 422 in the API's error format, nothing recorded."""
    detail = ErrorDetail(field=exc.field, value=exc.as_dict()["value"], expected=exc.expected)
    body = ErrorResponse(
        error="invalid_input", message="1 invalid field(s)", errors=[detail], request_id=rid
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


def withheld(exc: AuditUnavailable, rid: str) -> JSONResponse:
    """The answer to a request whose predictions could not be audited: 503 with the reason."""
    body = ErrorResponse(error="audit_unavailable", message=str(exc), request_id=rid)
    return JSONResponse(body.model_dump(mode="json"), status_code=503)


def assess(
    worker: Worker,
    patients: list[PatientObservation],
    rid: str,
    batch: bool = False,
    horizons: str | None = None,
) -> list[RiskResponse]:
    """Assess, record and answer, with the ``horizons`` asked for (:func:`selected_horizons`:
    :class:`InvalidInputError` before anything is assessed or recorded). In a batch, patient
    ``i``'s result, audit line and prediction-log line carry ``<request id>.<i>``: one id per
    prediction, the key an outcome is later joined on (``icans monitor``); a batch's audit
    lines are written all or none. Raises :class:`AuditUnavailable` (nothing recorded) when
    they cannot be."""
    runtime = worker.runtime  # read once: one version answers the whole request
    shown = selected_horizons(horizons, runtime.model.horizons_)
    assessments = runtime.assess(patients)
    ids = [f"{rid}.{i}" for i in range(len(patients))] if batch else [rid]
    worker.record(runtime.identity(), "json", list(zip(ids, patients, assessments, strict=True)))
    return [_response(a, runtime, pid, shown) for pid, a in zip(ids, assessments, strict=True)]


def _horizon(h: HorizonRisk) -> dict:
    return {
        "horizon": h.horizon,
        "label": h.label,
        "end_day": h.end_day,
        "probability": h.probability,
        "probability_interval": None
        if h.interval is None
        else {"low": h.interval[0], "high": h.interval[1]},
        "base_log_odds": h.base_log_odds,
        "log_odds": h.log_odds,
        "input_contributions": h.input_contributions,
        "drivers": h.drivers,
    }


def _response(
    a: Assessment, runtime: ModelRuntime, rid: str, shown: tuple[str, ...]
) -> RiskResponse:
    # validated in one call from plain data (pydantic's core walks the nested lists), not
    # built one sub-model at a time: a response holds a hundred or more contributions
    return RiskResponse.model_validate(
        {
            "probability": a.probability,
            "probability_interval": None
            if a.interval is None
            else {"low": a.interval[0], "high": a.interval[1]},
            "landmark_day": a.landmark_day,
            "model_name": runtime.ref.name,
            "model_version": runtime.ref.version,
            "base_log_odds": a.base_log_odds,
            "log_odds": a.log_odds,
            "contributions": a.contributions,
            "input_contributions": a.input_contributions,
            "drivers": a.drivers,
            "warnings": a.warnings,
            "missing_inputs": a.missing_inputs,
            "request_id": rid,
            "disclaimer": runtime.intended_use,
            "horizons": [_horizon(h) for h in a.horizons if h.horizon in shown],
        }
    )


def validated_json(body: BaseModel) -> Response:
    """A response model already validated, as JSON: returned as a ``Response``, FastAPI sends
    it as it is instead of dumping, validating and encoding it again against the route's
    ``response_model`` (which still documents it). The same fields and values as FastAPI's own
    path (a float's text may differ: pydantic writes 1e-5 where Python writes 1e-05)."""
    return Response(body.model_dump_json(), media_type="application/json")


@router.post("/risk", response_model=RiskResponse, responses=ERRORS | WITHHELD)
async def risk(
    patient: PatientObservation,
    request: Request,
    worker: CurrentWorker,
    horizons: HorizonsQuery = None,
):
    """Risk for one patient on day_since_infusion, with its explanation: per horizon the model
    estimates (next 72 hours, next 7 days, by day 28; ``horizons`` selects), the day-28 figures
    also at the top."""
    # computed on the event loop, not handed to a thread: a millisecond or two of CPU,
    # which a thread hop (and its hand-back) would add to, and a worker's CPU is the
    # limit either way (batches and pages, longer, still go to the threadpool)
    rid = request_id(request)
    try:
        return validated_json(assess(worker, [patient], rid, horizons=horizons)[0])
    except AuditUnavailable as exc:
        return withheld(exc, rid)
    except InvalidInputError as exc:
        return refused(exc, rid)


@router.post(
    "/report",
    response_class=HTMLResponse,
    responses=JSON_ERRORS
    | WITHHELD_JSON
    | {200: {"content": {"text/html": {}}, "description": "HTML page"}},
)
def report(patient: PatientObservation, request: Request, worker: CurrentWorker):
    """The per-patient explanation as one self-contained HTML page (no JavaScript): the
    probability with its uncertainty, the landmark day, a waterfall of contributions in
    clinical units, the top drivers, warnings and caveats. Same numbers as /risk."""
    rid = request_id(request)
    runtime = worker.runtime
    assessment = runtime.assess([patient])[0]
    ident = runtime.identity()
    try:
        worker.record(ident, "report", [(rid, patient, assessment)])
    except AuditUnavailable as exc:
        return withheld(exc, rid)
    page = build_patient_report(patient, assessment, ident, request_id=rid)
    return HTMLResponse(page, headers={"X-Request-ID": rid, "Cache-Control": "no-store"})


@router.post("/risk/batch", response_model=BatchResponse, responses=ERRORS | WITHHELD)
def risk_batch(
    body: BatchRequest, request: Request, worker: CurrentWorker, horizons: HorizonsQuery = None
):
    """Risk for up to 256 patients in one call; one result per patient, in order, each with
    its horizons (as /risk)."""
    rid = request_id(request)
    try:
        results = assess(worker, body.patients, rid, batch=True, horizons=horizons)
    except AuditUnavailable as exc:
        return withheld(exc, rid)
    except InvalidInputError as exc:
        return refused(exc, rid)
    return validated_json(BatchResponse(results=results, request_id=rid))


@router.get("/model", response_model=ModelInfo, responses={401: ERRORS[401]})
def model(worker: CurrentWorker) -> ModelInfo:
    """Which model answers: name, version, training date, cohort, headline metrics."""
    runtime = worker.runtime
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
        rollout=RolloutStatus.model_validate(worker.live.status()),
    )
