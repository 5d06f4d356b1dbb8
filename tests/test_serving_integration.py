"""A real ``bentoml serve`` process on 127.0.0.1, called over HTTP, then stopped.

Also: the endpoint's probabilities equal ``icans evaluate``'s for the same patients and model
version, the server logs carry no patient identifier, and ``icans serve`` refuses to start
without a registered model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from support import FAST
from typer.testing import CliRunner

from cli.main import app as cli
from cohort.reader import read_cohort
from features.landmarks import patient_record
from serving.launch import server_command, server_environment
from training.assess import assess_registered_model

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

SECRET_ID = "PATIENT-SECRET-4711"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model(champion):
    return champion.cohort, champion.settings, champion.result


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    _, settings, _ = model
    port = _free_port()
    logs = tmp_path_factory.mktemp("logs") / "server.log"
    env = server_environment(settings)
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
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited early:\n{logs.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"server not ready in 120 s:\n{logs.read_text()[-3000:]}")
        yield base, logs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


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
    assert shown == risk["probability"]
    assert f"icans-risk version {result.model_version}" in response.text


def test_endpoint_probabilities_equal_icans_evaluate(server, model):
    """Same patients, same model version: the served probability is exactly the evaluated one."""
    base, _ = server
    cohort, settings, _ = model
    ev = assess_registered_model(settings.model_uri, cohort, settings, FAST).evaluation
    rows = ev.predictions.sample(60, random_state=0)
    tables = read_cohort(cohort).tables
    patients = [
        patient_record(tables, pid, int(day))
        for pid, day in zip(rows["patient_id"], rows["landmark_day"], strict=True)
    ]
    response = httpx.post(f"{base}/v1/risk/batch", json={"patients": patients}, timeout=60)
    assert response.status_code == 200, response.text
    served = np.array([r["probability"] for r in response.json()["results"]])
    np.testing.assert_array_equal(served, rows["model"].to_numpy())


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


def test_serve_refuses_to_start_without_a_registered_model(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["serve", "--tracking-uri", f"sqlite:///{tmp_path}/empty.db", "--port", str(_free_port())],
    )
    assert result.exit_code == 2
    assert "icans train" in result.output


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
