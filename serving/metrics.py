"""Prometheus metrics for operators, beside BentoML's own on ``GET /metrics``.

* ``icans_http_requests_total{endpoint, method, status}`` and
  ``icans_http_request_duration_seconds{endpoint, method}``: every call to ``/v1`` and
  ``/cds-services``, by route template (``/cds-services/{service_id}``, never the path as sent),
  method and status;
* ``icans_predictions_total{model_name, model_version, channel}``: estimates made, by the model
  version that made them and the way they were asked for (``json``, ``fhir``, ``cds-hooks``,
  ``report``);
* ``icans_predicted_risk{model_version}``: a histogram of the predicted probabilities;
* ``icans_model_rollouts_total{outcome}``: versions a worker swapped to (``swapped``) or could
  not load and kept its old one (``failed``), :mod:`serving.rollout`.

Labels come from fixed sets (route templates, methods, status codes, model versions, channels):
no identifier, no input and no free text can reach a label, so the scraper never sees one.
The metric objects are made once per process, after BentoML has set up its multiprocess
collection (``PROMETHEUS_MULTIPROC_DIR``), which is why they are created lazily.
"""

from __future__ import annotations

import time
from functools import cache

RISK_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@cache
def metrics():
    """The metric objects (one set per process)."""
    import prometheus_client as prom  # after BentoML set PROMETHEUS_MULTIPROC_DIR

    return {
        "requests": prom.Counter(
            "icans_http_requests",
            "HTTP calls to /v1 and /cds-services by route template, method and status.",
            ["endpoint", "method", "status"],
        ),
        "latency": prom.Histogram(
            "icans_http_request_duration_seconds",
            "Time to answer, by route template and method.",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
        ),
        "predictions": prom.Counter(
            "icans_predictions",
            "Estimates made, by model and the way they were asked for.",
            ["model_name", "model_version", "channel"],
        ),
        "risk": prom.Histogram(
            "icans_predicted_risk",
            "Predicted probabilities, by model version.",
            ["model_version"],
            buckets=RISK_BUCKETS,
        ),
        "rollouts": prom.Counter(
            "icans_model_rollouts",
            "Roll-outs of a promoted version in a worker: swapped, or failed (old kept).",
            ["outcome"],
        ),
    }


def record_prediction(model_name: str, model_version: str, channel: str, p: float) -> None:
    m = metrics()
    m["predictions"].labels(model_name, model_version, channel).inc()
    m["risk"].labels(model_version).observe(p)


class RequestMetrics:
    """Pure ASGI middleware: counts and times each HTTP call by its route template."""

    def __init__(self, inner, prefix: str = ""):
        self.inner = inner
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, send_status)
        finally:
            route = scope.get("route")
            endpoint = self.prefix + route.path if route is not None else "unmatched"
            m = metrics()
            m["requests"].labels(endpoint, scope["method"], str(status["code"])).inc()
            m["latency"].labels(endpoint, scope["method"]).observe(time.perf_counter() - start)
