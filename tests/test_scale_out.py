"""Two running replicas behind a real nginx, sharing a real PostgreSQL for the CDS Hooks state:
a promotion reaches them while load runs, and what the replicas must share is shared.

Two replicas of ``bentoml serve`` (two workers each) share one registry (a copy of the
session's champion store) and follow ``@champion`` every second; each has an artifacts
directory of its own, so what they share of the CDS Hooks state they share through the
database of ``cds.state_uri`` only. A second version, the champion recalibrated on a
myeloid-centre cohort (so its numbers differ), is registered under another alias while they
start.

* Roll-out: four clients post patients through nginx; the champion alias moves to the new
  version; the load runs until every worker answers with it. Then: every request got a 200,
  each answer's probability is exactly what the version it names gives that patient (both
  versions computed here, in process), both versions answered during the roll-out, and each
  replica's ``/readyz`` names the new version.
* Shared state: a signed CDS client token used on one replica is refused as a replay by the
  other and through nginx; a card's explanation link made on one replica opens on the other,
  until its record expires (its expiry moved into the past in the database); with the database
  gone, a CDS call and a link are answered 503 naming the setting, and nothing is recorded.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from cluster import (
    Nginx,
    Replica,
    free_port,
    landmark_requests,
    probabilities,
    recalibrated_version,
    roll_out_under_load,
)
from fhir_fixtures import client_token, infused_days_ago, prefetch_of, write_clients_file
from mlflow import MlflowClient
from postgres_db import close_database, new_database, running_postgres

from icans.config import Settings, load_settings
from ops.postgres_cluster import Cluster

pytestmark = [
    pytest.mark.server,
    pytest.mark.nginx,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

POLL_S = 1.0
SERVICE = "/cds-services/icans-risk"


@dataclass
class Layout:
    settings: Settings
    replicas: list[Replica]
    lb: Nginx
    old: str  # the champion's version when the replicas started
    new: str  # the next version, registered as "candidate"
    postgres: Cluster
    database: str  # its name
    state_uri: str
    audit_log: Path


@pytest.fixture(scope="module")
def layout(champion, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale-out")
    shutil.copy(champion.store / "mlflow.db", tmp / "mlflow.db")
    with running_postgres() as postgres:
        state_uri = new_database(postgres, "icans_cds")
        settings = load_settings(
            tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            artifacts_dir=tmp / "artifacts",
            model_poll_seconds=POLL_S,
            cds_clients=write_clients_file(tmp, []),
            cds_state_uri=state_uri,
        )
        client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
        old = champion.result.model_version
        assert str(client.get_model_version_by_alias(settings.model_name, "champion").version) == (
            old
        )
        lb_port, ports = free_port(), [free_port(), free_port()]
        lb_url = f"http://127.0.0.1:{lb_port}"
        # the proxy's URL is the public one (the JWTs' audience, the cards' links); each
        # replica's own directory for what would be per host without the database
        replicas = [
            Replica(
                settings,
                p,
                tmp / f"replica-{p}.log",
                env={"ICANS_PUBLIC_URL": lb_url, "ICANS_ARTIFACTS_DIR": str(tmp / f"own-{p}")},
            )
            for p in ports
        ]
        lb = None
        try:
            # meanwhile: the next version, registered but not yet promoted
            new = recalibrated_version(settings, old, tmp / "myeloid")
            assert new is not None and new != old
            for r in replicas:
                assert r.ready()["model_version"] == old
            lb = Nginx(tmp / "nginx", lb_port, ports)
            yield Layout(
                settings,
                replicas,
                lb,
                old,
                new,
                postgres,
                "icans_cds",
                state_uri,
                settings.audit_log,
            )
        finally:
            if lb is not None:
                lb.stop()
            for r in replicas:
                r.stop()
    for r in replicas:
        assert r.proc.poll() is not None


def test_a_promotion_rolls_out_under_load_with_no_failed_request(layout, champion):
    settings, old, new = layout.settings, layout.old, layout.new
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    patients = landmark_requests(champion.cohort)
    expected = {v: probabilities(settings, v, patients) for v in (old, new)}
    assert max(abs(a - b) for a, b in zip(*expected.values(), strict=True)) > 1e-3

    roll_out = roll_out_under_load(
        layout.lb.url,
        patients,
        lambda: client.set_registered_model_alias(settings.model_name, "champion", new),
        old,
        new,
    )
    failed = roll_out.failed()
    answers = roll_out.answers
    assert not failed, f"{len(failed)} of {len(answers)} failed, first: {failed[0]}"
    assert roll_out.inconsistent(expected) == []
    assert all("SYNTHETIC" in a.body["disclaimer"] for a in answers)
    summary = roll_out.summary()
    assert summary["by_version"][old] > 0 and summary["by_version"][new] > 0, summary
    assert [a.body["model_version"] for a in answers[-40:]] == [new] * 40
    print(json.dumps(summary))
    for r in layout.replicas:  # each replica says which version it answers with, and why
        ready = httpx.get(r.url + "/readyz", timeout=5).json()
        assert ready["model_version"] == new and ready["failed_rollout"] is None
        assert "now answering with icans-risk version " + new in r.log.read_text()


def _bearer(lb: Nginx, path: str, token: str | None = None) -> dict:
    """A CDS client's header for ``path``: the audience is the public URL (nginx's)."""
    return {"Authorization": f"Bearer {token or client_token(lb.url + path)}"}


def _card(base: str, lb: Nginx) -> dict:
    """A patient-view call posted to ``base`` (a replica or nginx); its one card."""
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/123", "patientId": "example"},
        "prefetch": prefetch_of(infused_days_ago(5)),
    }
    r = httpx.post(base + SERVICE, json=body, headers=_bearer(lb, SERVICE), timeout=30)
    assert r.status_code == 200, r.text
    (card,) = r.json()["cards"]
    return card


def test_replicas_share_the_replay_store_and_the_explanation_records(layout):
    lb, (a, b) = layout.lb, layout.replicas

    # a token used on one replica is a replay on the other, and through nginx (both replicas)
    token = client_token(lb.url + "/cds-services")
    assert httpx.get(a.url + "/cds-services", headers=_bearer(lb, "", token)).status_code == 200
    for base in (b.url, lb.url, lb.url, a.url):
        again = httpx.get(base + "/cds-services", headers=_bearer(lb, "", token))
        assert again.status_code == 401 and "replay" in again.json()["message"], base
    via_lb = client_token(lb.url + "/cds-services")
    assert httpx.get(lb.url + "/cds-services", headers=_bearer(lb, "", via_lb)).status_code == 200
    for base in (a.url, b.url):
        assert httpx.get(base + "/cds-services", headers=_bearer(lb, "", via_lb)).status_code == 401

    # a card's link, made on one replica, opens on the other (and through nginx)
    for made, other in ((a, b), (b, a)):
        link = _card(made.url, lb)["links"][0]["url"]
        assert link.startswith(lb.url + SERVICE + "/explanation?id=")
        page = httpx.get(link.replace(lb.url, other.url), timeout=30)
        assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
        assert httpx.get(link, timeout=30).status_code == 200
    # until its record expires: no replica serves it any more
    key = link.split("id=")[1]
    with psycopg.connect(layout.state_uri, autocommit=True) as conn:
        conn.execute(
            "UPDATE icans_cds_explanations SET expires_at = now() - interval '1 s' WHERE id = %s",
            [key],
        )
    for base in (a.url, b.url):
        gone = httpx.get(link.replace(lb.url, base), timeout=30)
        assert gone.status_code == 404 and "expired" in gone.text


def test_with_the_database_gone_calls_are_answered_503_and_nothing_is_recorded(layout):
    lb = layout.lb
    link = _card(lb.url, lb)["links"][0]["url"]
    audit_lines = len(layout.audit_log.read_text().splitlines())
    close_database(layout.postgres, layout.database)
    try:
        for base in (r.url for r in layout.replicas):
            # refused before its body is read: the token's jti cannot be recorded
            r = httpx.post(base + SERVICE, json={}, headers=_bearer(lb, SERVICE), timeout=30)
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "service_unavailable"
            assert "cds_state_uri" in r.json()["message"]
            assert "not-a-real-secret" not in r.text
            page = httpx.get(link.replace(lb.url, base), timeout=30)
            assert page.status_code == 503 and "cds_state_uri" in page.text
        assert len(layout.audit_log.read_text().splitlines()) == audit_lines
    finally:
        close_database(layout.postgres, layout.database, closed=False)
    # back: each worker connects again on its next call (after at most a second's pause)
    for base in [r.url for r in layout.replicas] + [lb.url]:
        r = _until_not_503(
            lambda base=base: httpx.get(
                base + "/cds-services", headers=_bearer(lb, "/cds-services")
            )
        )
        assert r.status_code == 200, r.text
    assert _until_not_503(lambda: httpx.get(link, timeout=30)).status_code == 200


def _until_not_503(call, timeout_s: float = 20) -> httpx.Response:
    """``call()`` again while it answers 503, until ``timeout_s``; its last answer."""
    deadline = time.monotonic() + timeout_s
    while (r := call()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.25)
    return r
