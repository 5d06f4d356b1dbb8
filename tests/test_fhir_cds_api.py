"""The FHIR RiskAssessment endpoint and the CDS Hooks service, in process (BentoML's ASGI app,
as in test_serving_api.py), with real JWTs signed here and a FHIR fixture server on 127.0.0.1.

Numbers are checked against ``/v1/risk`` for the same patient; FHIR output is validated with
the R4B models of ``fhir.resources``; every refused token is a 401.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timedelta

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment
from fhir_fixtures import (
    DAILY,
    EC_KEY,
    EXAMPLE_AT,
    FixtureFhirServer,
    client_token,
    example_bundle,
    infused_days_ago,
    prefetch_of,
    unsigned_or_hmac_token,
    with_daily,
    write_clients_file,
)
from starlette.testclient import TestClient
from support import shared_asgi_app

from icans.config import load_settings
from icans.horizons import horizon
from runtime.assessor import Assessment, HorizonRisk
from serving.cds import hooks
from serving.cds.hooks import SUMMARY_MAX
from serving.fhir import codes as fhir_codes
from serving.fhir.fetch import FhirServer
from serving.fhir.mapping import map_patient, read_bundle

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BASE = "http://testserver"
SERVICE = "/cds-services/icans-risk"
FHIR_TOKEN = "fhir-access-token-123"
AT = EXAMPLE_AT.isoformat()


@pytest.fixture(scope="module")
def fhir_server():
    server = FixtureFhirServer(infused_days_ago(5), FHIR_TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="module")
def env(small_champion, tmp_path_factory, fhir_server):
    d = tmp_path_factory.mktemp("cds")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", small_champion.settings.tracking_uri)
        mp.setenv("ICANS_ARTIFACTS_DIR", str(d / "artifacts"))
        mp.setenv("ICANS_AUDIT_LOG", str(d / "audit.jsonl"))
        mp.setenv("ICANS_CDS_CLIENTS", str(write_clients_file(d, [fhir_server.base])))
        mp.setenv("ICANS_PUBLIC_URL", BASE)
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        yield d


@pytest.fixture(scope="module")
def client(env):
    with TestClient(shared_asgi_app(), raise_server_exceptions=False) as c:
        yield c


def audit_lines(env) -> list[dict]:
    return [json.loads(line) for line in (env / "audit.jsonl").read_text().splitlines()]


def auth(path: str, **kw) -> dict:
    return {"Authorization": f"Bearer {client_token(BASE + path, **kw)}"}


def v1_risk(client, data: dict) -> dict:
    r = client.post("/v1/risk", json=data)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------------------------
# FHIR RiskAssessment
# --------------------------------------------------------------------------------------------


def post_bundle(client, bundle, at=AT):
    return client.post(
        "/v1/fhir/risk-assessment",
        params={"at": at} if at else {},
        content=bundle if isinstance(bundle, bytes) else json.dumps(bundle),
        headers={"Content-Type": "application/fhir+json"},
    )


def test_the_risk_assessment_is_valid_fhir_with_the_numbers_of_v1_risk(client):
    r = post_bundle(client, example_bundle())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    ra = r.json()
    RiskAssessment.model_validate(ra)  # R4B models of fhir.resources
    same = v1_risk(client, read_bundle(example_bundle(), EXAMPLE_AT).data)
    (prediction,) = ra["prediction"]
    # exact here and below: one process, the same one-row assessment of the patient for both
    assert prediction["probabilityDecimal"] == same["probability"]
    (interval,) = prediction["extension"]
    assert interval["url"] == fhir_codes.INTERVAL_EXTENSION
    assert interval["valueRange"]["low"]["value"] == same["probability_interval"]["low"]
    assert interval["valueRange"]["high"]["value"] == same["probability_interval"]["high"]
    assert ra["method"]["coding"][0]["version"] == same["model_version"]
    assert ra["subject"] == {"reference": "Patient/example"}
    assert ra["occurrenceDateTime"] == AT
    assert prediction["whenPeriod"]["end"].startswith("2026-03-30")  # infusion + 28 days
    assert prediction["outcome"]["coding"] == [fhir_codes.OUTCOME_CODING]
    basis = {b["reference"] for b in ra["basis"]}
    assert "Observation/crp" in basis and "Observation/icans-d5-evening" not in basis
    notes = " ".join(n["text"] for n in ra["note"])
    assert same["disclaimer"] in notes and "SYNTHETIC" in notes
    assert "icans-d5-evening" in notes  # listed as not used
    assert same["drivers"][0] in prediction["rationale"]


def test_a_bundle_with_the_daily_series_is_accepted_and_cites_them_in_the_basis(client):
    """The model may not use the daily series yet: only that they are read and accepted."""
    r = post_bundle(client, with_daily())
    assert r.status_code == 200, r.text
    basis = {b["reference"] for b in r.json()["basis"]}
    assert {"Observation/temp-d2-morning", "Observation/ice-d5-late", "Observation/crp-d1"} <= (
        basis
    )
    assert "Observation/ice-d5-evening" not in basis  # after the prediction time


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [
        (lambda b: b"{not json", 400, "not valid JSON"),
        (lambda b: _set(b, "crp", "valueQuantity", {"value": "4.5"}), 400, "valueQuantity.value"),
        (lambda b: _set(b, "crs-d2", "effectiveDateTime", "2026-03"), 400, "full date"),
        (lambda b: _add_patient(b), 400, "exactly one Patient"),
        (lambda b: _drop(b, "cns"), 422, "cns-involvement"),
        (lambda b: _set(b, "icans-d4", "valueInteger", 3), 422, "Observation/icans-d4"),
        (lambda b: _drop(b, "car-t-infusion"), 422, "no CAR-T infusion"),
    ],
)
def test_bad_fhir_gets_an_operation_outcome_naming_resource_and_element(
    client, change, status, expected
):
    r = post_bundle(client, change(example_bundle()))
    assert r.status_code == status, r.text
    outcome = r.json()
    OperationOutcome.model_validate(outcome)
    assert expected in json.dumps(outcome)


def test_a_prediction_time_without_a_time_zone_is_refused(client):
    r = post_bundle(client, example_bundle(), at="2026-03-07T10:00:00")
    assert r.status_code == 400
    assert "time zone" in r.json()["issue"][0]["details"]["text"]


def _set(bundle, rid, element, value):
    next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == rid)[element] = value
    return bundle


def _drop(bundle, rid):
    return bundle | {"entry": [e for e in bundle["entry"] if e["resource"]["id"] != rid]}


def _add_patient(bundle):
    bundle["entry"].append({"resource": {"resourceType": "Patient", "id": "other"}})
    return bundle


# --------------------------------------------------------------------------------------------
# CDS Hooks: prefetch
# --------------------------------------------------------------------------------------------

# The observation codes the service reads, written out by hand (docs/fhir-mapping.md): LOINC for
# the laboratory values, body temperature and weight; the product's own system for the rest.
OBSERVATION_TOKENS = [
    "http://loinc.org|8310-5",  # body temperature
    "http://loinc.org|1988-5",  # CRP
    "http://loinc.org|2276-4",  # ferritin
    "http://loinc.org|26881-3",  # IL-6
    "http://loinc.org|777-3",  # platelets
    "http://loinc.org|3255-7",  # fibrinogen
    "http://loinc.org|731-0",  # lymphocytes
    "http://loinc.org|2532-0",  # LDH
    "http://loinc.org|14804-9",
    "http://loinc.org|2160-0",  # creatinine
    "http://loinc.org|14682-9",
    "http://loinc.org|29463-7",  # body weight
    "urn:icans-risk:observation|",  # grades, ICE and CAPD scores, CAR-T cells, marrow
]


def test_the_observations_prefetch_asks_for_every_code_the_mapping_reads():
    query = hooks.PREFETCH["observations"]
    assert query.startswith("Observation?patient={{context.patientId}}&code=")
    tokens = query.split("&code=", 1)[1].split(",")
    for token in OBSERVATION_TOKENS:
        assert token in tokens, token
    assert len(tokens) == len(set(tokens))  # a code shared by baseline and series: once


def test_what_the_prefetch_queries_fetch_maps_like_the_whole_record():
    """A FHIR server that filters by code returns, for the service's own queries, every daily
    Observation of the record: the patient mapped from what was fetched is the patient mapped
    from the whole Bundle."""
    record = with_daily()
    server = FixtureFhirServer(record, FHIR_TOKEN)
    try:
        request = hooks.CdsRequest.model_validate(hook_call())
        with FhirServer(server.base, FHIR_TOKEN) as fhir:
            resources = hooks.gather(request, fhir.get)
    finally:
        server.close()
    fetched = {r.reference for r in resources}
    assert {f"Observation/{o['id']}" for o in DAILY} <= fetched
    assert map_patient(resources, EXAMPLE_AT).data == read_bundle(record, EXAMPLE_AT).data


# --------------------------------------------------------------------------------------------
# CDS Hooks: authentication
# --------------------------------------------------------------------------------------------


def test_discovery_lists_the_patient_view_service_with_its_prefetch(client):
    r = client.get("/cds-services", headers=auth("/cds-services"))
    assert r.status_code == 200, r.text
    (service,) = r.json()["services"]
    assert (service["hook"], service["id"]) == ("patient-view", "icans-risk")
    assert set(service["prefetch"]) == {
        "patient",
        "conditions",
        "observations",
        "medications",
        "procedures",
    }
    assert "http://loinc.org|8310-5" in service["prefetch"]["observations"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: None, "missing"),
        (lambda: unsigned_or_hmac_token(BASE + "/cds-services", "HS256"), "HS256"),
        (lambda: unsigned_or_hmac_token(BASE + "/cds-services", "none"), "'none'"),
        (
            lambda: client_token(
                BASE + "/cds-services", exp=int(time.time()) - 100, iat=int(time.time()) - 200
            ),
            "expired",
        ),
        (lambda: client_token(BASE + SERVICE), "aud .* is not"),  # a token for another endpoint
        (
            lambda: client_token(BASE + "/cds-services", iss="https://other.example.org"),
            "not allowed",
        ),
        (
            lambda: client_token(BASE + "/cds-services", key=EC_KEY, alg="ES384", kid="rsa-1"),
            "(?i)signature|key",
        ),
    ],
)
def test_bad_client_tokens_are_refused_with_401(client, make, reason):
    token = make()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.get("/cds-services", headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert re.search(reason, r.json()["message"]), r.json()


def test_a_replayed_token_is_refused(client):
    headers = auth("/cds-services")
    assert client.get("/cds-services", headers=headers).status_code == 200
    again = client.get("/cds-services", headers=headers)
    assert again.status_code == 401
    assert "replay" in again.json()["message"]


def test_v1_keeps_its_own_authentication(client):
    """A CDS client's JWT is not a /v1 credential and /v1 needs none here (no API token)."""
    assert client.get("/v1/model").status_code == 200


# --------------------------------------------------------------------------------------------
# CDS Hooks: cards
# --------------------------------------------------------------------------------------------


def hook_call(patient_id="example", prefetch=None, **extra) -> dict:
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/123", "patientId": patient_id},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body | extra


def call(client, body):
    return client.post(SERVICE, json=body, headers=auth(SERVICE))


def test_a_call_with_prefetch_returns_one_card_with_the_risk_of_v1_risk(client, env):
    bundle = infused_days_ago(5)
    r = call(client, hook_call(prefetch=prefetch_of(bundle)))
    assert r.status_code == 200, r.text
    (card,) = r.json()["cards"]
    assert len(card["summary"]) < SUMMARY_MAX
    assert "day 5" in card["summary"]
    assert card["source"]["url"] == f"{BASE}{SERVICE}/model-card"
    assert "Top drivers" in card["detail"] and "synthetic" in card["detail"]
    line = next(a for a in audit_lines(env) if a.get("card") == card["uuid"])
    probability = line["probability"]
    expected = "critical" if probability >= 0.25 else "warning" if probability >= 0.1 else "info"
    assert card["indicator"] == expected
    assert f"{100 * probability:.0f}%" in card["summary"]
    page = client.get(card["links"][0]["url"].removeprefix(BASE))  # no token: a browser
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "Observation/crp-day-1" in page.text  # the mapping's warnings are on the page
    assert client.get(f"{SERVICE}/model-card").status_code == 200


def test_the_card_and_v1_risk_agree_for_the_same_patient(client, env):
    bundle = infused_days_ago(4)
    r = call(client, hook_call(prefetch=prefetch_of(bundle)))
    (card,) = r.json()["cards"]
    line = next(a for a in audit_lines(env) if a.get("card") == card["uuid"])
    data = read_bundle(bundle, datetime.now().astimezone()).data
    # exact: one process, the same one-row assessment of the patient for both
    assert line["probability"] == v1_risk(client, data)["probability"]


def test_without_prefetch_or_fhir_server_the_answer_is_412(client):
    r = call(client, hook_call())
    assert r.status_code == 412, r.text
    assert "not prefetched" in r.json()["message"]


def test_what_is_not_prefetched_is_fetched_from_the_fhir_server(client, env, fhir_server):
    prefetched = call(client, hook_call(prefetch=prefetch_of(infused_days_ago(5))))
    before = len(fhir_server.requests)
    partial = prefetch_of(infused_days_ago(5))
    del partial["observations"], partial["medications"]
    auth_block = {
        "access_token": FHIR_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "icans-risk",
    }
    r = call(
        client,
        hook_call(prefetch=partial, fhirServer=fhir_server.base, fhirAuthorization=auth_block),
    )
    assert r.status_code == 200, r.text
    fetched = fhir_server.requests[before:]
    assert any(p.startswith("/fhir/Observation?") for p in fetched)
    assert any("_offset=" in p for p in fetched)  # the server's paging was followed
    assert not any(p.startswith("/fhir/Patient") for p in fetched)  # prefetched: not fetched
    probabilities = [
        next(a for a in audit_lines(env) if a.get("card") == resp.json()["cards"][0]["uuid"])[
            "probability"
        ]
        for resp in (prefetched, r)
    ]
    assert probabilities[0] == probabilities[1]  # exact: the same row through the same code
    wrong = call(
        client,
        hook_call(
            fhirServer=fhir_server.base, fhirAuthorization=auth_block | {"access_token": "bad"}
        ),
    )
    assert wrong.status_code == 412 and "401" in wrong.json()["message"]
    elsewhere = call(
        client, hook_call(fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization=auth_block)
    )
    assert elsewhere.status_code == 412 and "not allow-listed" in elsewhere.json()["message"]


def test_a_patient_beyond_day_28_gets_no_card(client):
    r = call(client, hook_call(prefetch=prefetch_of(infused_days_ago(40))))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_a_record_that_allows_no_estimate_gets_an_info_card_saying_what_to_record(client):
    bundle = _drop(infused_days_ago(5), "cns")
    (card,) = call(client, hook_call(prefetch=prefetch_of(bundle))).json()["cards"]
    assert card["indicator"] == "info"
    assert "cns-involvement" in card["detail"]


def test_malformed_prefetched_fhir_is_a_400_naming_the_resource(client):
    bundle = _set(infused_days_ago(5), "crp", "valueQuantity", {"value": "high"})
    r = call(client, hook_call(prefetch=prefetch_of(bundle)))
    assert r.status_code == 400
    assert "Observation/crp" in r.json()["message"]
    assert "prefetch.observations.entry" in r.json()["message"]


def test_a_prefetched_patient_other_than_the_context_is_refused(client):
    r = call(
        client, hook_call(patient_id="someone-else", prefetch=prefetch_of(infused_days_ago(5)))
    )
    assert r.status_code == 400
    assert "context.patientId" in r.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"hook": "patient-view"},
        hook_call() | {"context": {"userId": "u", "patientId": "../../etc"}},
        hook_call(prefetch={"patient": "not a resource"}),
    ],
)
def test_an_invalid_hook_request_is_a_400(client, body):
    assert call(client, body).status_code == 400


def test_feedback_is_recorded_without_identifiers_or_free_text(client, env):
    (card,) = call(client, hook_call(prefetch=prefetch_of(infused_days_ago(5)))).json()["cards"]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"system": "http://example.org/reasons", "code": "not-relevant"},
                    "userComment": "patient Jane Doe already on high-dose steroids",
                },
                "outcomeTimestamp": "2026-03-07T10:05:00Z",
            }
        ]
    }
    path = f"{SERVICE}/feedback"
    r = client.post(path, json=feedback, headers=auth(path))
    assert r.status_code == 200, r.text
    text = (env / "audit.jsonl").read_text()
    (line,) = [a for a in audit_lines(env) if a.get("event") == "feedback"]
    assert line["card"] == card["uuid"] and line["outcome"] == "overridden"
    assert line["override_reason"] == "http://example.org/reasons|not-relevant"
    assert "Jane" not in text and "example" not in text.replace("example.org", "")


def test_an_explanation_link_expires_or_never_existed(client):
    assert client.get(f"{SERVICE}/explanation", params={"id": "0" * 32}).status_code == 404
    assert client.get(f"{SERVICE}/explanation", params={"id": "../etc"}).status_code == 404
    assert client.get(f"{SERVICE}/explanation").status_code == 404


def test_pages_expire_after_their_time(env, tmp_path):
    from serving.cds.hooks import ExplanationStore

    store = ExplanationStore(tmp_path, ttl_s=60)
    page_id = store.put({"patient": {"age_years": 60}})
    assert store.get(page_id) == {"patient": {"age_years": 60}}
    old = time.time() - timedelta(minutes=2).total_seconds()
    os.utime(tmp_path / f"{page_id}.json", (old, old))
    assert store.get(page_id) is None


# --------------------------------------------------------------------------------------------
# A model of every horizon: one prediction per horizon, the card's two risks and its indicator
# --------------------------------------------------------------------------------------------

IDENTITY = {"name": "icans-risk", "version": "7"}
LINKS = {"model_card": f"{BASE}{SERVICE}/model-card", "explanation": f"{BASE}{SERVICE}/x"}


@pytest.fixture(scope="module")
def every_horizon(horizon_model):
    """The example patient (day 5) assessed by the model of every horizon, and its risks per
    horizon computed apart from the Assessor, through the model's own ``predict_horizons``."""
    from features.packing import to_raw
    from runtime.assessor import Assessor

    mapped = read_bundle(example_bundle(), EXAMPLE_AT)
    patient = mapped.to_patient()
    (a,) = Assessor(horizon_model).assess([patient])
    (risk,) = horizon_model.predict_horizons(to_raw(patient).reshape(1, -1))
    return mapped, a, dict(zip(horizon_model.horizons_, risk.tolist(), strict=True))


def test_every_horizon_is_one_prediction_with_its_window_day_28_first(every_horizon):
    from serving.fhir.output import risk_assessment

    mapped, a, expected = every_horizon
    ra = risk_assessment(mapped, a, IDENTITY, "Decision support only.")
    RiskAssessment.model_validate(ra)
    # infusion 2026-03-02 (day 0), estimated on day 5: the windows start on day 6 (03-08) and
    # end on day 8 (72 hours), day 12 (7 days) and day 28 (03-30), written out by hand
    windows = [
        ("2026-03-08T00:00:00+01:00", "2026-03-30T23:59:59+01:00"),  # by day 28, where it was
        ("2026-03-08T00:00:00+01:00", "2026-03-10T23:59:59+01:00"),  # within 72 hours
        ("2026-03-08T00:00:00+01:00", "2026-03-14T23:59:59+01:00"),  # within 7 days
    ]
    assert [(p["whenPeriod"]["start"], p["whenPeriod"]["end"]) for p in ra["prediction"]] == windows
    names = ["day28", "72h", "7d"]
    texts = ["by day 28 (days 6-28", "within the next 72 hours (days 6-8", "7 days (days 6-12"]
    outcomes = ["ICANS through day 28", "ICANS within the next 72 hours", "the next 7 days"]
    for p, name, text, outcome in zip(ra["prediction"], names, texts, outcomes, strict=True):
        # through xgboost both ways (compiled trees, predict_horizons): floating-point order
        assert p["probabilityDecimal"] == pytest.approx(expected[name], rel=1e-12, abs=1e-15)
        assert p["outcome"]["coding"] == [fhir_codes.OUTCOME_CODING]
        assert text in p["rationale"] and outcome in p["outcome"]["text"]
        ((interval),) = p["extension"]
        low, high = interval["valueRange"]["low"]["value"], interval["valueRange"]["high"]["value"]
        assert interval["url"] == fhir_codes.INTERVAL_EXTENSION and low <= high
    p28, p72, p7 = (p["probabilityDecimal"] for p in ra["prediction"])
    assert p72 <= p7 <= p28  # nested windows, nested risks
    assert a.probability == p28  # the day-28 figures at the top, as /v1/risk gives them


def test_the_summary_holds_the_72_hour_and_day_28_risks(every_horizon):
    mapped, a, expected = every_horizon
    card = hooks.risk_card(mapped, a, IDENTITY, "Use.", load_settings().cds, LINKS, True)
    summary = card["summary"]
    assert len(summary) < SUMMARY_MAX
    assert f"{100 * expected['72h']:.0f}% " in summary and "within 72 h" in summary
    assert f"{100 * expected['day28']:.0f}% " in summary and "by day 28" in summary
    assert "day 5" in summary and "7 days" not in summary  # 7 days: the detail's
    assert "within the next 7 days (days 6-12)" in card["detail"]


def test_the_indicator_follows_the_configured_horizon_and_its_thresholds(every_horizon):
    """Thresholds around the patient's own risks: the 72-hour risk crosses its warning
    threshold while the day-28 risk stays below its own."""
    mapped, a, expected = every_horizon
    p72, p28 = expected["72h"], expected["day28"]
    assert p72 < p28 < 0.8
    day28 = {"cds_warning_at": p28 + 0.05, "cds_critical_at": p28 + 0.1}
    short = {"cds_thresholds": {"72h": [p72 * 0.95, p72 * 1.05], "7d": [0.98, 0.99]}}

    def indicator(**settings) -> str:
        cds = load_settings(**day28, **short, **settings).cds
        return hooks.risk_card(mapped, a, IDENTITY, "Use.", cds, LINKS, True)["indicator"]

    cds = load_settings(cds_indicator_horizon="7d", cds_thresholds={"7d": [0.125, 0.5]}).cds
    detail = hooks.risk_card(mapped, a, IDENTITY, "Use.", cds, LINKS, True)["detail"]
    assert "follows the risk within the next 7 days (warning from 12.5%, critical from 50%)" in (
        detail
    )
    assert indicator() == "info"  # day 28 by default: below its warning threshold
    assert indicator(cds_indicator_horizon="72h") == "warning"
    assert indicator(cds_indicator_horizon="7d") == "info"
    critical = {"cds_thresholds": {"72h": [p72 / 3, p72 / 2]}, "cds_indicator_horizon": "72h"}
    assert (
        hooks.risk_card(
            mapped, a, IDENTITY, "Use.", load_settings(**day28, **critical).cds, LINKS, True
        )["indicator"]
        == "critical"
    )


def _risk(name: str, p: float, day: int) -> HorizonRisk:
    return HorizonRisk(
        name, horizon(name).label, int(horizon(name).end_day(day)), p, (p, p), 0.0, 0.0, [], [], []
    )


@pytest.mark.parametrize(
    "fitted", [("day28",), ("72h", "day28"), ("7d", "day28"), ("72h", "7d", "day28")]
)
def test_the_summary_stays_under_140_characters_in_the_worst_case(fitted):
    """Every probability and bound 100% (the most digits), day 27 (two digits), every
    combination of fitted horizons and indicator horizon."""
    for flagged in fitted:
        risks = [_risk(name, 0.999, 27) for name in fitted]
        a = Assessment(0.999, (0.999, 0.999), 0.0, 0.0, [], [], [], [], 27, horizons=risks)
        text = hooks.summary(a, flagged)
        assert len(text) < SUMMARY_MAX, text
        shown = {"72h", "day28", flagged} & set(fitted)
        assert text.count("100%") >= len(shown), text
        for name in shown:
            assert hooks.SHORT_LABELS[name] in text, text
        assert "day 27" in text
    two = hooks.summary(
        Assessment(
            0.999,
            (0.999, 0.999),
            0.0,
            0.0,
            [],
            [],
            [],
            [],
            27,
            horizons=[_risk("72h", 0.999, 27), _risk("day28", 0.999, 27)],
        ),
        "day28",
    )
    assert "95% CI" in two  # the two risks keep their intervals even then


def test_a_model_without_the_indicator_horizon_is_refused_at_load(small_champion):
    """The small champion estimates day 28 alone: a service told to colour its cards by the
    72-hour risk does not load it (a worker does not start; a roll-out keeps its version)."""
    from icans.errors import InvalidInputError
    from serving.model_version import ModelRuntime

    settings = small_champion.settings.model_copy(
        update={
            "cds": load_settings(
                cds_indicator_horizon="72h", cds_thresholds={"72h": [0.05, 0.15]}
            ).cds
        }
    )
    with pytest.raises(InvalidInputError) as caught:
        ModelRuntime.load(settings.model_uri, settings)
    assert caught.value.field == "cds_indicator_horizon" and caught.value.value == "72h"
    assert "estimates day28" in str(caught.value)
