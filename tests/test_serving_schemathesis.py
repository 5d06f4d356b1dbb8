"""Property-based contract test of the HTTP API against its own OpenAPI document (schemathesis).

The schema is loaded from the running in-process service (BentoML's ASGI app, ``/v1/openapi.json``,
``schemathesis.openapi.from_asgi``), and schemathesis generates valid and invalid requests for
every operation: none may cause a server error, every response must match the documented
status codes, content types, headers and schemas, invalid data must be rejected, and a method
an operation does not allow must get a 405 with an ``Allow`` header. (Not "valid data accepted":
the contract's cross-field rules, a product outside its diseases say, are not expressible in
JSON Schema, so schema-valid requests can be rightly refused with 422.) The run is bounded: at
most 50 examples per operation, five operations, no example database, derandomized.

The operations are driven with ``operation.as_strategy()`` and ``hypothesis.given`` rather than
``schemathesis.pytest.from_fixture(...).parametrize()``: with pytest 9.2 the lazy fixture mode of
schemathesis 4.32 fails (it reads ``request.node._nodeid``, which pytest no longer has), and a
schema loaded at import time would need a trained model during collection.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from support import shared_asgi_app

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EXAMPLES_PER_OPERATION = 50
OPERATIONS = {
    ("POST", "/risk"),
    ("POST", "/risk/batch"),
    ("POST", "/report"),
    ("GET", "/model"),
    ("POST", "/fhir/risk-assessment"),
}
# Every check, documented status codes included (a malformed body's 400 is documented).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
]


@pytest.fixture(scope="module")
def store(small_champion):
    return small_champion.store


@pytest.fixture(scope="module")
def api_schema(store, tmp_path_factory):
    """The service's OpenAPI document, loaded from the running app (which it keeps serving)."""
    from schemathesis.python.asgi import shutdown_lifespans

    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
        mp.setenv("ICANS_AUDIT_LOG", str(audit))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(audit.parent / "predictions"))
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        # Starts the app's lifespan (the service's __init__ loads the small champion) and keeps it
        # running for the generated calls.
        schema = schemathesis.openapi.from_asgi("/v1/openapi.json", shared_asgi_app())
        try:
            yield schema
        finally:
            shutdown_lifespans()


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
def test_api_conforms_to_its_openapi_document(api_schema, method, path):
    operation = api_schema[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    if operation.body:  # invalid data only where there is an input to break
        strategy = st.one_of(strategy, operation.as_strategy(GenerationMode.NEGATIVE))
    statuses: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call_and_validate(checks=CHECKS)
        statuses.append(response.status_code)

    run()
    assert 0 < len(statuses) <= EXAMPLES_PER_OPERATION, len(statuses)
    assert all(s < 500 for s in statuses)


def test_openapi_lists_operations_and_error_responses(api_schema):
    raw = api_schema.raw_schema
    assert raw["servers"] == [{"url": "/v1"}]
    paths = raw["paths"]
    assert set(paths) >= {"/risk", "/risk/batch", "/model"}
    for path in ("/risk", "/risk/batch"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "401", "413", "422"} <= set(responses), (path, responses)
        for status in ("401", "413", "422"):
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorResponse"), (path, status, ref)
    model = paths["/model"]["get"]["responses"]
    assert {"200", "401"} <= set(model)
    assert model["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    error = raw["components"]["schemas"]["ErrorResponse"]
    assert {"error", "message", "request_id"} <= set(error["required"])
    risk = raw["components"]["schemas"]["RiskResponse"]["properties"]
    for field in ("probability", "landmark_day", "model_name", "model_version", "contributions"):
        assert field in risk


@pytest.mark.parametrize("path", ["/risk", "/risk/batch"])
def test_undecodable_body_gets_a_documented_status(api_schema, path):
    from schemathesis.python.asgi import get_client

    documented = {int(s) for s in api_schema.raw_schema["paths"][path]["post"]["responses"]}
    with get_client(shared_asgi_app()) as client:
        response = client.post(
            f"/v1{path}",
            data=b'{"disease": "\xff\xfe"}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code < 500
    assert response.status_code in documented, (response.status_code, response.text)
