"""What one service worker holds while it answers: the live model and where each answer is
recorded.

A worker answers every route (the JSON API, the FHIR endpoint, the CDS Hooks service) from one
:class:`Worker`: the registered model version that follows its alias (:mod:`serving.rollout`),
the audit trail, the prediction log for monitoring, the CDS Hooks service's state (the
explanation records behind card links and the replay store of the clients' tokens: on this host,
or in the database the replicas share, :mod:`serving.cds.state`), and the FHIR servers each CDS
client allows. The routers reach it through :func:`current_worker`, a FastAPI dependency on
BentoML's current service instance, so a router module holds no state of its own and a new
worker (a new service instance) starts clean.
"""

from __future__ import annotations

import logging

import bentoml

from api.patient import PatientObservation
from icans.config import Settings
from runtime.assessor import Assessment
from serving.audit import AuditLog
from serving.cds.client_auth import TrustedIssuer
from serving.cds.state import open_state
from serving.metrics import record_prediction
from serving.model_version import ModelRuntime
from serving.prediction_log import PredictionLog
from serving.rollout import LiveModel

log = logging.getLogger("icans.serving")


class Worker:
    """One worker's model and records, built from the settings when the worker starts."""

    def __init__(self, settings: Settings, clients: list[TrustedIssuer]):
        self.settings = settings
        self.live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings)
        self.audit = AuditLog(settings.audit_log)
        self.predictions = PredictionLog(
            settings.prediction_log_dir, settings.prediction_log_retention_days
        )
        state = open_state(settings)
        self.explanations = state.explanations
        self.replays = state.replays  # the CDS client verifier's (serving.service)
        self.fhir_servers = {c.iss: c.fhir_servers for c in clients}

    @property
    def runtime(self) -> ModelRuntime:
        """The version answering now; a handler reads it once, so one version produces
        everything in a response (its numbers, its version, its audit and log lines)."""
        return self.live.runtime

    def record(
        self,
        ident: dict,
        channel: str,
        predictions: list[tuple[str, PatientObservation, Assessment]],
        card: str | None = None,
    ) -> None:
        """The predictions of one response (request id, patient, assessment each) in the audit
        log (each horizon's probability beside day 28's), then the prediction log and the
        metrics. The audit lines go first, in one write, all or none: when they cannot be
        written, :class:`serving.audit.AuditUnavailable` is raised before anything else is
        written, and the caller answers 503 instead. A prediction-log line that cannot be
        written is logged and left out: the answer is on record in the audit trail, and
        monitoring's sample is no reason to withhold it."""
        name, version = ident["name"], ident["version"]
        self.audit.write(
            [
                AuditLog.prediction(
                    rid, name, version, p, a.probability, card, horizons=_horizons(a)
                )
                for rid, p, a in predictions
            ]
        )
        for rid, _, a in predictions:
            try:
                self.predictions.record(rid, name, version, channel, a)
            except OSError as exc:
                log.error("prediction log line of %s not written: %s", rid, exc)
            record_prediction(name, version, channel, a.probability)


def _horizons(a: Assessment) -> dict[str, float]:
    """Each horizon's probability by name, shortest first (the audit line's ``horizons``)."""
    return {h.horizon: h.probability for h in a.horizons}


async def current_worker() -> Worker:
    """The worker of the running service instance (a FastAPI dependency of every route).

    ``async`` although it awaits nothing: FastAPI runs a plain function dependency in its
    thread pool, a hand-off to another thread and back on every request (~15% of a
    single-patient request's time, sampled); a coroutine runs on the event loop."""
    return bentoml.get_current_service().worker
