"""The BentoML prediction service: ``bentoml serve serving.service:IcansRisk``.

Wiring only. The versioned JSON API is a FastAPI app mounted at ``/v1``
(:mod:`serving.json_app`: full control over 4xx bodies, authentication and limits) holding the
JSON routes (:mod:`serving.json_api`) and the FHIR RiskAssessment endpoint
(:mod:`serving.fhir.router`); the CDS Hooks service answers under ``/cds-services``
(:mod:`serving.cds.app`, routes in :mod:`serving.cds.router`). BentoML runs both and provides
``/livez`` and ``/readyz``.

Each worker builds its :class:`serving.worker.Worker` when it starts: the model from the MLflow
registry, the audit and prediction logs. If that fails, or the worker listens on a network
address without authentication, the worker does not start, so the service is never half ready
nor open by accident. Before any worker starts, ``bentoml serve`` runs the service's
``on_deployment`` hook once in its arbiter: every setting and file checked
(:mod:`serving.preflight`), a bad one ending the command with code 2 and one line; a worker that
still fails to start stops the server instead of being restarted in a loop. Nothing clinical
lives in ``serving``: features, model and explanations come from ``features``, ``runtime`` and
``reports``; nothing from ``training``.
"""

from __future__ import annotations

import logging

import bentoml

from icans.config import load_settings
from reports.patient import waterfall_png
from serving import json_api
from serving.cds import router as cds_routes
from serving.cds.app import cds
from serving.cds.client_auth import ClientVerifier, load_clients
from serving.fhir import router as fhir_routes
from serving.json_app import app
from serving.launch import listening_host
from serving.metrics import metrics
from serving.preflight import arbiter_check, check_exposure, worker_cannot_start
from serving.rollout import ReadinessDetail, settle_heap
from serving.whole_response import WholeResponses
from serving.worker import Worker

log = logging.getLogger("icans.serving")

app.include_router(json_api.router)
app.include_router(fhir_routes.router)
cds.include_router(cds_routes.router)


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


# Per-request work BentoML does that this service does not use, off by configuration: its
# access-log line (the service counts and times every call itself, serving.metrics, and audits
# every prediction) and its OpenTelemetry span (no exporter is configured: tracing.sample_rate
# is 0, so the span was made and dropped on every call). An operator who sets up tracing sets
# tracing.excluded_urls too (BENTOML_CONFIG). BentoML's own /metrics and its request metrics
# stay on: they serve the service's metrics as well.
BENTOML_SETTINGS = {
    "logging": {"access": {"enabled": False}},
    "tracing": {"excluded_urls": [".*"]},
}


@bentoml.service(
    name="icans_risk",
    workers=2,
    traffic={"timeout": 30, "max_concurrency": 256},
    **BENTOML_SETTINGS,
)
@bentoml.asgi_app(app, path="/v1")
@bentoml.asgi_app(cds, path="/")
class IcansRisk:
    """Loads the registered model once per worker; refuses to start without one, or on a
    network address without authentication, and then stops the server (a worker that cannot
    start is not restarted in a loop: :func:`serving.preflight.worker_cannot_start`)."""

    @bentoml.on_deployment
    def _check_before_workers() -> None:
        """In ``bentoml serve``'s arbiter, once, before any worker: every setting and file
        (:func:`serving.preflight.arbiter_check`; exit code 2 and one line on a bad one)."""
        arbiter_check()

    def __init__(self) -> None:
        try:
            self._start()
        except Exception as exc:
            worker_cannot_start(exc)  # served: the arbiter stops; in process: nothing
            raise

    def _start(self) -> None:
        settings = load_settings()
        host = listening_host()  # None in process (tests); the socket BentoML handed us
        if host is not None:
            serve = settings.serve.model_copy(update={"host": host})
            check_exposure(settings.model_copy(update={"serve": serve}))
        _log_with_bentoml()
        clients = load_clients(settings.cds.clients) if settings.cds.clients else []
        self.worker = Worker(settings, clients)
        token = settings.serve.api_token
        app.state.api_token = token.get_secret_value() if token else None
        cds.state.public_url = settings.serve.public_url
        cds.state.verifier = ClientVerifier(
            clients,
            audience=settings.serve.public_url,
            replays=self.worker.replays,
        )
        metrics()  # made now that BentoML has set up multiprocess collection
        waterfall_png([], 0.0, 0.0)  # loads matplotlib and its fonts now, not on a request
        ref = self.worker.runtime.ref
        log.info("serving %s version %s", ref.name, ref.version)
        app.state.live = self.worker.live  # for /readyz's detail (ReadinessDetail)
        settle_heap()  # no full garbage collection of start-up objects during a request
        self.worker.live.start()  # follows the alias from now on (serve.model_poll_seconds)

    @bentoml.on_shutdown
    def _stop_following(self) -> None:
        self.worker.live.stop()


# /readyz answers with the worker's roll-out state (serving.rollout). BentoML annotates the
# argument as type[AsgiMiddleware], a class whose instances are called with the app, but calls
# the class itself with the app (starlette's Middleware), as ReadinessDetail expects.
IcansRisk.add_asgi_middleware(
    ReadinessDetail,  # pyright: ignore[reportArgumentType]  # BentoML's annotation: see above
    live=lambda: getattr(app.state, "live", None),
)


class _WholeResponsesService(bentoml.Service):
    """BentoML's service with :class:`serving.whole_response.WholeResponses` around its whole
    application, outside BentoML's own middlewares (``add_asgi_middleware`` places a
    middleware inside them): each worker's server gets the app from ``to_asgi``."""

    __slots__ = ()  # the same layout as BentoML's (slotted) service, so the class can change

    def to_asgi(self, is_main: bool = True):
        return WholeResponses(super().to_asgi(is_main))


IcansRisk.__class__ = _WholeResponsesService
