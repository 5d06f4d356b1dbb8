"""A real ``bentoml serve`` process on 127.0.0.1, called over HTTP, then stopped.

Also: the endpoint's probabilities equal ``icans evaluate``'s for the same patients and model
version, the server logs carry no patient identifier, ``icans serve`` refuses to start
without a registered model, and ``bentoml serve`` itself (a container's command) refuses a
network address without authentication. The CDS Hooks service is called with JWTs signed here
(each bad one refused with 401, a replay refused whichever of the two workers gets it) and
with data fetched from a FHIR fixture server; the FHIR RiskAssessment equals ``/v1/risk``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import bentoml
import httpx
import numpy as np
import pytest
from cluster import free_port, stop_group, wait_ready
from fhir_fixtures import (
    FixtureFhirServer,
    client_token,
    example_bundle,
    infused_days_ago,
    prefetch_of,
    unsigned_or_hmac_token,
    write_clients_file,
)
from support import FAST
from typer.testing import CliRunner

from cli.main import app as cli
from cohort.reader import read_cohort
from features.landmarks import patient_record
from serving.launch import is_loopback, listening_host, server_command, server_environment
from training.external_validation import evaluate_registered_model

# Each test that starts a server is marked ``server`` (those that start none run in the fast tier).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SECRET_ID = "PATIENT-SECRET-4711"


@pytest.fixture(scope="module")
def model(champion):
    return champion.cohort, champion.settings, champion.result


@pytest.fixture(scope="module")
def fhir_server():
    server = FixtureFhirServer(infused_days_ago(5), FHIR_TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(model, tmp_path_factory, fhir_server):
    _, settings, _ = model
    port = free_port()
    logs = tmp_path_factory.mktemp("logs") / "server.log"
    clients = write_clients_file(tmp_path_factory.mktemp("cds"), [fhir_server.base])
    serve = settings.serve.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    cds = settings.cds.model_copy(update={"clients": clients})
    env = server_environment(settings.model_copy(update={"serve": serve, "cds": cds}))
    with logs.open("w") as out:
        proc = subprocess.Popen(
            server_command("127.0.0.1", port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, logs, timeout=120)
        yield base, logs
    finally:
        stop_group(proc)


@pytest.mark.server
def test_real_server_answers_over_http(server, model):
    base, _ = server
    cohort, _, result = model
    record = patient_record(read_cohort(cohort).tables, "P0000003", 3)
    response = httpx.post(f"{base}/v1/risk", json=record, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == result.model_version
    assert 0 <= body["probability"] <= 1
    assert (
        abs(
            body["base_log_odds"]
            + sum(c["shap_log_odds"] for c in body["contributions"])
            - body["log_odds"]
        )
        < 1e-5
    )
    assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
    bad = httpx.post(f"{base}/v1/risk", json={**record, "day_since_infusion": 1}, timeout=30)
    assert bad.status_code == 422
    assert any("day_since_infusion=1" in e["expected"] for e in bad.json()["errors"])


@pytest.mark.server
@pytest.mark.browser
def test_real_server_returns_the_patient_page_that_chromium_renders(server, model, tmp_path):
    from browser import open_page

    base, _ = server
    cohort, _, result = model
    record = patient_record(read_cohort(cohort).tables, "P0000003", 3)
    risk = httpx.post(f"{base}/v1/risk", json=record, timeout=30).json()
    response = httpx.post(f"{base}/v1/report", json=record, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page_file = tmp_path / "patient.html"
    page_file.write_text(response.text)
    with open_page(page_file) as page:
        assert page.problems() == []
        assert page.images and all(i.loaded for i in page.images)
        shown = float(page.evaluate("document.getElementById('risk').dataset.probability"))
    assert shown == risk["probability"]  # exact: repr of the same one-row assessment path
    assert f"icans-risk version {result.model_version}" in response.text


@pytest.mark.server
def test_endpoint_probabilities_equal_icans_evaluate(server, model):
    """Same patients, same model version: the served probability is exactly the evaluated one."""
    base, _ = server
    cohort, settings, _ = model
    ev = evaluate_registered_model(settings.model_uri, cohort, settings, FAST).evaluation
    rows = ev.predictions.sample(60, random_state=0)
    tables = read_cohort(cohort).tables
    patients = [
        patient_record(tables, pid, int(day))
        for pid, day in zip(rows["patient_id"], rows["landmark_day"], strict=True)
    ]
    response = httpx.post(f"{base}/v1/risk/batch", json={"patients": patients}, timeout=60)
    assert response.status_code == 200, response.text
    served = np.array([r["probability"] for r in response.json()["results"]])
    # exact, though the server is another process: same machine, so the same numpy kernels,
    # and both paths add up the same elementwise terms and xgboost's float32 sums per row in
    # a fixed order (no BLAS, no training); JSON round-trips floats
    np.testing.assert_array_equal(served, rows["model"].to_numpy())


@pytest.mark.server
def test_server_logs_and_audit_never_hold_the_patient_id(server, model):
    base, logs = server
    cohort, settings, _ = model
    record = patient_record(read_cohort(cohort).tables, "P0000010", 5) | {"patient_id": SECRET_ID}
    assert httpx.post(f"{base}/v1/risk", json=record, timeout=30).status_code == 200
    bad = {**record, "age_years": "unknown"}
    assert httpx.post(f"{base}/v1/risk", json=bad, timeout=30).status_code == 422
    time.sleep(0.5)
    assert SECRET_ID not in logs.read_text()
    audit = settings.audit_log
    text = Path(audit).read_text()
    assert text.count("\n") >= 2 and SECRET_ID not in text
    # the workers' prediction log (its directory passed to them by icans serve's environment)
    predictions = "".join(p.read_text() for p in settings.prediction_log_dir.glob("*.jsonl"))
    assert predictions.count("\n") >= 1 and SECRET_ID not in predictions
    assert '"predictors":{' in predictions


@pytest.mark.server
def test_real_server_metrics_count_calls_and_predictions_without_identifiers(server, model):
    """Prometheus text on /metrics (no token): BentoML's series and ours, by route template,
    status and model version; the patient's identifier and the inputs never appear."""
    import re

    base, _ = server
    cohort, _, result = model
    record = patient_record(read_cohort(cohort).tables, "P0000010", 5) | {"patient_id": SECRET_ID}
    assert httpx.post(f"{base}/v1/risk", json=record, timeout=30).status_code == 200
    assert httpx.get(f"{base}/v1/risk", timeout=30).status_code == 405
    text = httpx.get(f"{base}/metrics", timeout=10).text
    ours = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("icans_")
    }
    assert ours['icans_http_requests_total{endpoint="/v1/risk",method="POST",status="200"}'] >= 1
    assert ours['icans_http_requests_total{endpoint="/v1/risk",method="GET",status="405"}'] >= 1
    key = (
        f'icans_predictions_total{{channel="json",model_name="icans-risk",'
        f'model_version="{result.model_version}"}}'
    )
    assert ours[key] >= 1
    assert any(k.startswith("icans_predicted_risk_bucket") for k in ours)
    assert "bentoml_service_request_total" in text
    assert SECRET_ID not in text
    assert not re.search(r"[0-9a-f]{32}", text)  # no explanation link ids, no hashes


def test_serve_refuses_to_start_without_a_registered_model(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["serve", "--tracking-uri", f"sqlite:///{tmp_path}/empty.db", "--port", str(free_port())],
    )
    assert result.exit_code == 2
    assert "icans train" in result.output


@pytest.mark.slow
def test_bentoml_build_produces_a_bento(tmp_path):
    env = dict(os.environ, BENTOML_HOME=str(tmp_path / "bentoml"))
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "bentoml" / "bentos" / "icans_risk").is_dir()


# --------------------------------------------------------------------------------------------
# FHIR and CDS Hooks over real HTTP
# --------------------------------------------------------------------------------------------

FHIR_TOKEN = "fhir-token-for-the-real-server"
SERVICE = "/cds-services/icans-risk"


def _hook(prefetch=None, **extra) -> dict:
    body = {
        "hook": "patient-view",
        "hookInstance": "0b4a3a8e-5f38-4f5e-9f0a-5b8f2d6c1a11",
        "context": {"userId": "Practitioner/1", "patientId": "example"},
    }
    return body | ({"prefetch": prefetch} if prefetch is not None else {}) | extra


@pytest.mark.server
def test_real_server_fhir_risk_assessment_equals_v1_risk(server):
    from fhir.resources.R4B.riskassessment import RiskAssessment

    from serving.fhir.mapping import read_bundle

    base, _ = server
    at = "2026-03-07T10:00:00+01:00"
    response = httpx.post(
        f"{base}/v1/fhir/risk-assessment",
        params={"at": at},
        content=json.dumps(example_bundle()),
        headers={"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    RiskAssessment.model_validate(response.json())
    data = read_bundle(example_bundle(), datetime.fromisoformat(at)).data
    risk = httpx.post(f"{base}/v1/risk", json=data, timeout=30).json()
    assert response.json()["prediction"][0]["probabilityDecimal"] == risk["probability"]


@pytest.mark.server
def test_real_server_cds_hooks_with_jwts(server, fhir_server):
    base, logs = server
    url = base + SERVICE
    body = _hook(prefetch_of(infused_days_ago(5)))
    good = client_token(url)
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {good}"}, timeout=30)
    assert r.status_code == 200, r.text
    (card,) = r.json()["cards"]
    assert len(card["summary"]) < 140
    page = httpx.get(card["links"][0]["url"], timeout=10)  # a browser: no token
    assert page.status_code == 200 and "ICANS" in page.text
    # The same token again, several times: whichever worker answers, it is a replay.
    for _ in range(4):
        again = httpx.post(url, json=body, headers={"Authorization": f"Bearer {good}"}, timeout=30)
        assert again.status_code == 401 and "replay" in again.json()["message"]
    now = int(time.time())
    bad = {
        "expired": client_token(url, iat=now - 400, exp=now - 100),
        "wrong audience": client_token(base + "/cds-services"),
        "HS256": unsigned_or_hmac_token(url, "HS256"),
        "none": unsigned_or_hmac_token(url, "none"),
    }
    for name, token in bad.items():
        refused = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert refused.status_code == 401, (name, refused.text)
    # Nothing prefetched: read from the FHIR server with the client's access token.
    auth = {
        "access_token": FHIR_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "icans-risk",
    }
    fetched = httpx.post(
        url,
        json=_hook(fhirServer=fhir_server.base, fhirAuthorization=auth),
        headers={"Authorization": f"Bearer {client_token(url)}"},
        timeout=30,
    )
    assert fetched.status_code == 200, fetched.text
    assert (
        fetched.json()["cards"][0]["summary"].split(" on ")[0] == card["summary"].split(" on ")[0]
    )
    assert any(p.startswith("/fhir/Patient/example") for p in fhir_server.requests)
    assert "PATIENT" not in logs.read_text().upper().replace("PATIENT-VIEW", "")


def test_listening_host_is_where_a_served_worker_listens(monkeypatch):
    assert listening_host() is None  # in process, not a BentoML worker: no check
    monkeypatch.setattr(bentoml.server_context, "worker_index", 1)  # as in a served worker
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        assert listening_host() == "0.0.0.0"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert is_loopback(listening_host() or "")


@pytest.mark.server
def test_bentoml_serve_on_the_network_without_authentication_refuses(model, tmp_path):
    """The container path: ``bentoml serve --host 0.0.0.0`` directly, no ``icans serve``."""
    _, settings, _ = model
    env = server_environment(settings)
    env.pop("ICANS_API_TOKEN", None)
    env.pop("ICANS_ALLOW_UNAUTHENTICATED_NETWORK", None)
    port = free_port()
    logs = tmp_path / "server.log"
    with logs.open("w") as out:
        proc = subprocess.Popen(
            server_command("0.0.0.0", port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "ICANS_API_TOKEN" not in logs.read_text():
            time.sleep(0.5)
        assert "a loopback address" in logs.read_text()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1/model", timeout=3)
    finally:
        stop_group(proc)
