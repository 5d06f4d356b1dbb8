"""The FHIR RiskAssessment endpoint and the CDS Hooks service fuzzed past JSON, in process
(BentoML's ASGI app, as in test_serving_schemathesis.py).

Two kinds of generated request for each:

* **FHIR-aware mutations** (hypothesis): the documented example Bundle (with and without the
  daily series, for CDS Hooks moved to today) changed in one to four places: an element given
  the wrong type, removed, or an unknown key added; a date without a time zone, partial, out of
  range or not a date; a unit that is not UCUM; an unknown code; arrays made enormous; values
  nested thousands of levels deep; Bundles with no entries, two Patients, a resource of another
  patient. A CDS Hooks call carries the mutated record as its prefetch, with its own fields
  (hook, context, prefetch keys, fhirServer and fhirAuthorization) mutated too.
* **Schema-driven cases** (schemathesis): the FHIR endpoint's operation in ``/v1/openapi.json``
  and the CDS Hooks routes from the CDS app's own OpenAPI document (not published: the
  specification's discovery describes the service; generated here from its routes), valid and
  invalid.

Properties: no response is a 5xx; a FHIR response is a valid R4 RiskAssessment (200) or
OperationOutcome (4xx) whose every issue names the element at fault (a FHIRPath expression, or
the body or ``at`` parameter); a CDS Hooks response is a valid cards response (200, checked
against the specification's Card attributes) or an error body naming the field, prefetch
element or service at fault; schemathesis' checks hold (documented status codes, content types,
response schemas).

How many cases: ``ICANS_FUZZ_CASES`` per test (default 40, derandomized: the same cases every
run, ~25 s for the module); ``make fuzz`` runs 3,000 per test with fresh random cases.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import uuid
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import pytest
import schemathesis
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment
from fhir_fixtures import (
    EXAMPLE_AT,
    LOINC,
    OURS,
    UCUM,
    client_token,
    example_bundle,
    infused_days_ago,
    prefetch_of,
    with_daily,
    write_clients_file,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from support import shared_asgi_app

from api.schemas import ErrorResponse
from icans.contract import FIELDS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CASES = int(os.environ.get("ICANS_FUZZ_CASES", "40"))
# the default run's cases are the same every time (no flaky suite); a long run explores anew
EXPLORE = "ICANS_FUZZ_CASES" in os.environ
BASE = "http://testserver"
SERVICE = "/cds-services/icans-risk"
AT = EXAMPLE_AT.isoformat()
UNREACHABLE_FHIR = "http://127.0.0.1:9/fhir"  # allow-listed, refuses connections at once
MAX_BODY = 4 * 1024 * 1024  # what either endpoint reads (serving.fhir.output, serving.cds.app)


def _settings(**kw):
    return settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        derandomize=not EXPLORE,
        suppress_health_check=list(HealthCheck),
        **kw,
    )


@pytest.fixture(scope="module")
def app(small_champion, tmp_path_factory):
    """The service in process, with one CDS client allowed one (unreachable) FHIR server."""
    from schemathesis.python.asgi import shutdown_lifespans

    d = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", small_champion.settings.tracking_uri)
        mp.setenv("ICANS_ARTIFACTS_DIR", str(d / "artifacts"))
        mp.setenv("ICANS_AUDIT_LOG", str(d / "audit.jsonl"))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(d / "predictions"))
        mp.setenv("ICANS_CDS_CLIENTS", str(write_clients_file(d, [UNREACHABLE_FHIR])))
        mp.setenv("ICANS_PUBLIC_URL", BASE)
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        app = shared_asgi_app()
        # starts the app's lifespan (a new service instance), kept for the module's calls
        v1 = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
        try:
            yield app, v1
        finally:
            shutdown_lifespans()


@pytest.fixture(scope="module")
def client(app):
    from schemathesis.python.asgi import get_client

    with get_client(app[0]) as c:
        yield c


# --------------------------------------------------------------------------------------------
# Generated values
# --------------------------------------------------------------------------------------------


class Deep:
    """A value nested ``depth`` levels deep, written into the request's text as is (Python's
    own encoder would refuse to build it)."""

    def __init__(self, depth: int, kind: str):
        self.depth, self.kind = depth, kind

    def text(self) -> str:
        return (
            ("[" * self.depth + "]" * self.depth)
            if self.kind == "list"
            else ('{"a":' * self.depth + "1" + "}" * self.depth)
        )


def encode(value: Any) -> bytes:
    """The request body: JSON (NaN and Infinity as Python writes them), with each
    :class:`Deep` written out in place."""
    deep: dict[str, Deep] = {}

    def default(o):
        if isinstance(o, Deep):
            key = f"@@deep{len(deep)}@@"
            deep[key] = o
            return key
        raise TypeError(type(o))

    text = json.dumps(value, default=default)
    for key, d in deep.items():
        text = text.replace(json.dumps(key), d.text(), 1)
    return text.encode()


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
dates = (
    st.sampled_from(
        [
            "2026-03-04T08:00:00",  # no time zone
            "2026-03-04T08:00",
            "2026-03-04 08:00:00+01:00",
            "2026-03",
            "2026",
            "2026-02-30",
            "2026-13-01T00:00:00Z",
            "2026-03-04T25:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "0001-01-01",
            "9999-12-31T23:59:59-12:00",
            "9999-12-31",
            "2026-03-04T08:00:00.123456789+01:00",
            "2026-03-04T08:00:00+01",
            "yesterday",
            "",
        ]
    )
    | st.dates().map(str)
    | st.datetimes().map(lambda d: d.isoformat())
)  # dates without a zone
ucum_not = st.sampled_from(
    ["mg/dl", "MG/DL", "°C", "degrees", "cells/kg", "10^6/kg", "", " ", "mmol", "%", "kg/m2"]
) | st.text(max_size=12)
unknown_codings = st.builds(
    lambda system, code: {"system": system, "code": code},
    st.sampled_from([LOINC, OURS, UCUM, "urn:icans-risk:car-t-product", "", "urn:x"])
    | st.text(max_size=10),
    st.text(max_size=10) | scalars,
)
deep = st.builds(Deep, st.integers(50, 5000), st.sampled_from(["list", "dict"]))
# each item its own object: one item changed later must not change the others, nor the next
# case's (a strategy's constant shared between cases is state hypothesis cannot replay)
enormous = st.builds(
    lambda n, item: [item() for _ in range(n)],
    st.integers(1_000, 60_000),
    st.sampled_from([int, str, dict, lambda: None]),
)
values = st.one_of(
    junk,
    dates,
    ucum_not,
    unknown_codings,
    st.builds(lambda c: {"coding": [c]}, unknown_codings),
    st.builds(lambda u: {"value": 1.5, "unit": u, "system": UCUM, "code": u}, ucum_not),
    deep,
    enormous,
)
# elements the mapping reads, to add or break where the resource does not have them
ELEMENTS = [
    "resourceType",
    "id",
    "status",
    "subject",
    "patient",
    "code",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "valueQuantity",
    "valueInteger",
    "valueBoolean",
    "dosage",
    "medicationCodeableConcept",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "verificationStatus",
    "recordedDate",
    "onsetDateTime",
    "performedDateTime",
    "performedPeriod",
]


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in ``doc`` (dict keys and list indices), the whole document first."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:50]):  # an enormous list: its first items
            out += paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw, doc: Any, max_changes: int = 4) -> Any:
    """``doc`` changed in one to ``max_changes`` places."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_changes))):
        where = draw(st.sampled_from(paths(doc)))
        action = draw(st.sampled_from(["set", "set", "set", "drop", "add", "copy"]))
        if not where:
            if action == "set":
                doc = draw(values)
            continue
        parent = _parent(doc, where)
        if not isinstance(parent, (dict, list)):
            continue
        key = where[-1]
        if action == "set":
            parent[key] = draw(values)
        elif action == "drop":
            del parent[key]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(ELEMENTS) | st.text(max_size=8))] = draw(values)
        elif action == "copy" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return doc


@st.composite
def bundle_changes(draw, bundle: dict) -> Any:
    """Changes of the Bundle as a whole: no entries, a resource alone, a second Patient, a
    resource of another patient, a resource copied with another content under the same id,
    thousands of resources; then the element mutations."""
    bundle = copy.deepcopy(bundle)
    kind = draw(
        st.sampled_from(
            ["none", "none", "none", "empty", "single", "patient", "other", "same-id", "many"]
        )
    )
    entries = bundle["entry"]
    if kind == "empty":
        bundle["entry"] = []
    elif kind == "single":
        return draw(st.sampled_from([e["resource"] for e in entries]))
    elif kind == "patient":
        entries.append({"resource": {"resourceType": "Patient", "id": "other"}})
    elif kind in ("other", "same-id"):
        resource = copy.deepcopy(draw(st.sampled_from(entries[1:]))["resource"])
        if kind == "other":
            resource["subject"] = {"reference": "Patient/other"}
        else:
            resource["status"] = "amended" if resource.get("status") != "amended" else "final"
        entries.append({"resource": resource})
    elif kind == "many":
        template = draw(st.sampled_from(entries[1:]))["resource"]
        for i in range(draw(st.integers(1_000, 12_000))):
            entries.append({"resource": template | {"id": f"copy-{i}"}})
    if kind == "many" or (draw(st.booleans()) is False and kind != "none"):
        return bundle
    return draw(mutated(bundle))


# mostly the example's own time (the record then reaches the mapping), else anything
prediction_times = st.integers(0, 9).flatmap(
    lambda n: (
        st.just(AT)
        if n < 7
        else st.one_of(
            st.none(),
            dates,
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
            st.text(max_size=30),
        )
    )
)


# --------------------------------------------------------------------------------------------
# What every answer must be
# --------------------------------------------------------------------------------------------

# An issue without a FHIRPath expression names the body, the ``at`` parameter, or (no
# estimate) the resource and element the service looked for.
LOCATED = re.compile(
    r"^(the body is not valid JSON|at=|no estimate: .*(MedicationAdministration|infusion|"
    r"Patient\.deceased))"
)


def check_fhir(status: int, content_type: str, body: dict) -> None:
    assert status < 500, (status, body)
    assert content_type.startswith("application/fhir+json") or status == 413, content_type
    if status == 200:
        RiskAssessment.model_validate(body)
        probability = body["prediction"][0]["probabilityDecimal"]
        assert 0 <= probability <= 1
        return
    if status == 413:  # the body limit, answered by the /v1 guard in the API's format
        assert ErrorResponse.model_validate(body).error == "payload_too_large"
        return
    assert status in (400, 422), (status, body)
    outcome = OperationOutcome.model_validate(body)
    assert outcome.issue, body
    for issue in body["issue"]:
        text = issue["details"]["text"]
        if "expression" in issue:
            (where,) = issue["expression"]
            # a resource's element, or the contract's field with the resources it came from
            assert where.startswith("Bundle") or where.split("[")[0] in FIELDS, issue
            assert where in text, issue
        else:
            assert LOCATED.match(text), issue


# The CDS Hooks 2.0 response: cards with the Card attributes of the specification
# (https://cds-hooks.org/specification/current/#card-attributes).
CDS_RESPONSE = jsonschema_rs.validator_for(
    {
        "type": "object",
        "required": ["cards"],
        "properties": {
            "cards": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["summary", "indicator", "source"],
                    "properties": {
                        "uuid": {"type": "string", "format": "uuid"},
                        "summary": {"type": "string", "maxLength": 139},
                        "detail": {"type": "string"},
                        "indicator": {"enum": ["info", "warning", "critical"]},
                        "source": {
                            "type": "object",
                            "required": ["label"],
                            "properties": {
                                "label": {"type": "string"},
                                "url": {"type": "string", "format": "uri"},
                            },
                        },
                        "links": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["label", "url", "type"],
                                "properties": {
                                    "label": {"type": "string"},
                                    "url": {"type": "string", "format": "uri"},
                                    "type": {"enum": ["absolute", "smart"]},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
    validate_formats=True,
)
# what each refusal of a call names: the fields (invalid_input), the prefetch element or the
# FHIR server (invalid_fhir, precondition_failed), the hook or the service
CDS_LOCATED = {
    "invalid_fhir": re.compile(r"(prefetch\.\w+|fhirServer:\w+)[\w.\[\]]*|context\.patientId"),
    "precondition_failed": re.compile(r"^(not prefetched: \w+|fhirServer)"),
    "invalid_input": re.compile(r"^hook "),
    "not_found": re.compile(r"^no CDS service "),
    "payload_too_large": re.compile(r"."),
    "http_error": re.compile(r"\bbody\b"),  # the body as a whole cannot be parsed
}


def check_cds(status: int, body: dict, feedback: bool = False) -> None:
    assert status < 500, (status, body)
    if status == 200:
        if feedback:  # taken: nothing to say
            assert body == {}, body
        else:
            CDS_RESPONSE.validate(body)
        return
    assert status in (400, 404, 412, 413, 422), (status, body)
    error = ErrorResponse.model_validate(body)
    if error.errors:
        assert all(e.field for e in error.errors), body
    else:
        assert CDS_LOCATED[error.error].search(error.message), body


# --------------------------------------------------------------------------------------------
# FHIR-aware mutations
# --------------------------------------------------------------------------------------------


@functools.cache
def _bases() -> tuple[dict, ...]:
    return (example_bundle(), with_daily())


def test_fhir_endpoint_takes_mutated_bundles(client):
    sent: list[int] = []

    @given(
        bundle=st.sampled_from(_bases()).flatmap(bundle_changes),
        at=prediction_times,
    )
    @_settings()
    def run(bundle, at):
        body = encode(bundle)
        r = client.post(
            "/v1/fhir/risk-assessment",
            params={"at": at} if at is not None else {},
            data=body,
            headers={"Content-Type": "application/fhir+json"},
        )
        check_fhir(r.status_code, r.headers.get("content-type", ""), r.json())
        sent.append(r.status_code)

    run()
    report("FHIR mutations", sent)


@functools.cache
def _today_bases() -> tuple[dict, ...]:
    return tuple(infused_days_ago(day, b) for day in (3, 5) for b in _bases())


CDS_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "hook": st.just("patient-view") | junk,
        "hookInstance": st.just(str(uuid.uuid4())) | junk,
        "context": st.fixed_dictionaries(
            {},
            optional={"userId": junk, "patientId": st.just("example") | junk},
        )
        | junk,
        "fhirServer": st.sampled_from([UNREACHABLE_FHIR, "http://10.0.0.1/fhir"]) | junk,
        "fhirAuthorization": st.fixed_dictionaries(
            {
                "access_token": st.text(max_size=10),
                "token_type": st.just("Bearer"),
                "expires_in": st.integers(),
                "scope": st.just("patient/*.read"),
                "subject": st.just("icans-risk"),
            }
        )
        | junk,
        "prefetch": junk,
    },
)


@st.composite
def hook_calls(draw) -> dict:
    """A patient-view call prefetching a (mutated) record, its own fields changed too."""
    record = draw(st.sampled_from(_today_bases()).flatmap(bundle_changes))
    prefetch = (
        prefetch_of(record)
        if isinstance(record, dict)
        and isinstance(record.get("entry"), list)
        and all(
            isinstance(e, dict)
            and isinstance(e.get("resource"), dict)
            and isinstance(e["resource"].get("resourceType"), str)
            for e in record["entry"]
        )
        else {"patient": record}
    )
    for key in draw(st.sets(st.sampled_from(sorted(prefetch)), max_size=3)):
        if draw(st.booleans()):
            del prefetch[key]
        else:
            prefetch[key] = draw(values)
    call = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/123", "patientId": "example"},
        "prefetch": prefetch,
    }
    changes = draw(CDS_FIELDS) if draw(st.booleans()) else {}
    return call | changes


def post_cds(client, path: str, body: bytes):
    token = client_token(BASE + path)
    return client.post(
        path,
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )


def test_cds_service_takes_mutated_hook_calls(client):
    sent: list[int] = []

    @given(call=hook_calls())
    @_settings()
    def run(call):
        r = post_cds(client, SERVICE, encode(call))
        check_cds(r.status_code, r.json())
        sent.append(r.status_code)

    run()
    report("CDS mutations", sent)


# --------------------------------------------------------------------------------------------
# Schema-driven cases
# --------------------------------------------------------------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_fhir_operation_by_its_openapi_schema(app):
    _, v1 = app
    operation = v1["/fhir/risk-assessment"]["POST"]
    sent: list[int] = []

    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    )
    @_settings()
    def run(case):
        response = case.call_and_validate(checks=CHECKS)
        content_type = response.headers.get("content-type", [""])[0]
        check_fhir(response.status_code, content_type, response.json())
        sent.append(response.status_code)

    run()
    report("FHIR schema", sent)


@pytest.fixture(scope="module")
def cds_schema(app):
    """The CDS app's OpenAPI document (generated from its routes; the service publishes the
    specification's discovery document instead), the service id fixed to the one served."""
    from serving.cds.app import cds

    raw = copy.deepcopy(cds.openapi())
    for item in raw["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "service_id":
                    parameter["schema"] = {"type": "string", "enum": ["icans-risk"]}
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = app[0]
    return schema


@pytest.mark.parametrize(
    "path", ["/cds-services/{service_id}", "/cds-services/{service_id}/feedback"]
)
def test_cds_operations_by_their_openapi_schema(cds_schema, path):
    operation = cds_schema[path]["POST"]
    sent: list[int] = []

    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    )
    @_settings()
    def run(case):
        token = client_token(BASE + case.formatted_path)
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(headers=headers)
        if "\n" in unquote(case.formatted_path):
            # Starlette's Mount pattern stops at a line break: such a path never reaches the
            # CDS app, and BentoML's own router answers 404 in plain text
            assert response.status_code == 404, response.text
            sent.append(response.status_code)
            return
        case.validate_response(response, checks=CHECKS, headers=headers)
        if response.status_code != 401:
            check_cds(response.status_code, response.json(), feedback=path.endswith("feedback"))
        sent.append(response.status_code)

    run()
    report(f"CDS schema {path}", sent)


def report(name: str, statuses: list[int]) -> None:
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"{name}: {len(statuses)} cases, statuses {counts}")
    assert len(statuses) >= CASES, (name, len(statuses))


# --------------------------------------------------------------------------------------------
# What the fuzzing found (each was a 500)
# --------------------------------------------------------------------------------------------


def _with(resource_id: str, **elements) -> dict:
    bundle = example_bundle()
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == resource_id:
            entry["resource"].update(elements)
    return bundle


def _entry(bundle: dict, resource_id: str) -> int:
    return next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["id"] == resource_id)


def test_a_body_nested_too_deeply_to_parse_is_a_400(client):
    r = client.post(
        "/v1/fhir/risk-assessment",
        params={"at": AT},
        data=b'{"resourceType": "Bundle", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["details"]["text"] == (
        "the body is not valid JSON: nested too deeply"
    )


def test_a_status_that_is_not_a_code_is_a_400_naming_it(client):
    """A status given as an object or a list (it was looked up in a set: TypeError)."""
    for status in ({"code": "final"}, ["final"]):
        bundle = _with("crp", status=status)
        r = client.post(
            "/v1/fhir/risk-assessment",
            params={"at": AT},
            data=encode(bundle),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert r.status_code == 400, r.text
        (issue,) = r.json()["issue"]
        assert issue["expression"] == [f"Bundle.entry[{_entry(bundle, 'crp')}].resource.status"]
        # and in a CDS Hooks prefetch
        call = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "example"},
            "prefetch": prefetch_of(infused_days_ago(5, bundle)),
        }
        r = post_cds(client, SERVICE, encode(call))
        assert r.status_code == 400, r.text
        assert re.search(r"prefetch\.observations\.entry\[\d+\]\.resource\.status", r.text)


def test_a_unit_that_is_not_text_is_no_unit(client):
    """A Quantity whose unit is a list and has no code (it was looked up in a dict: TypeError):
    an Observation's value is then not used (a warning), a dose is refused naming it."""
    crp = example_bundle()["entry"][_entry(example_bundle(), "crp")]["resource"]
    observation = {"value": crp["valueQuantity"]["value"], "unit": ["mg/L"]}
    r = client.post(
        "/v1/fhir/risk-assessment",
        params={"at": AT},
        data=encode(_with("crp", valueQuantity=observation)),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 200, r.text
    assert "Observation/crp (crp_mg_per_l): unit None is not one this service converts" in r.text
    dose = {"dose": {"value": 160000000, "unit": {"text": "cells"}}}
    bundle = _with("car-t-infusion", dosage=dose)
    r = client.post(
        "/v1/fhir/risk-assessment",
        params={"at": AT},
        data=encode(bundle),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 400, r.text
    (issue,) = r.json()["issue"]
    where = f"Bundle.entry[{_entry(bundle, 'car-t-infusion')}].resource.dosage.dose.code"
    assert issue["expression"] == [where]
