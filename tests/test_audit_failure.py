"""Every prediction has an audit line, or is not answered: a full disk or an audit location that
cannot be written, for every route that answers a prediction, in process (BentoML's ASGI app,
as in test_fhir_cds_api.py).

The failures are real, whoever runs the tests (root in CI writes through a mode of 0444, so a
chmod is no failure there): the audit file is ``/dev/full`` (every write ends in ENOSPC, the
kernel's "No space left on device"), or a directory (EISDIR), or, for a user other than root, a
file without write permission (EACCES). A write the disk cuts short (part of the lines written,
then the error) is made real with a file-size limit (``RLIMIT_FSIZE``: the kernel writes up to
the limit, then refuses with EFBIG). Each refused request is looked for, by its request id, in
the audit trail, the prediction log and the explanation records afterwards: it must be in none;
and the same request must be answered once the location is writable again.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir_fixtures import (
    EXAMPLE_AT,
    client_token,
    example_bundle,
    infused_days_ago,
    prefetch_of,
    write_clients_file,
)
from starlette.testclient import TestClient
from support import shared_asgi_app

from api.schemas import ErrorResponse
from serving.fhir.mapping import read_bundle

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://testserver"
SERVICE = "/cds-services/icans-risk"
AT = EXAMPLE_AT.isoformat()


@pytest.fixture(scope="module")
def env(small_champion, tmp_path_factory):
    d = tmp_path_factory.mktemp("audit-failure")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", small_champion.settings.tracking_uri)
        mp.setenv("ICANS_ARTIFACTS_DIR", str(d / "artifacts"))
        mp.setenv("ICANS_AUDIT_LOG", str(d / "audit" / "audit.jsonl"))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(d / "predictions"))
        mp.setenv("ICANS_CDS_CLIENTS", str(write_clients_file(d, [])))
        mp.setenv("ICANS_PUBLIC_URL", BASE)
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        yield d


@pytest.fixture(scope="module")
def client(env):
    with TestClient(shared_asgi_app(), raise_server_exceptions=False) as c:
        yield c


def _patient() -> dict:
    return read_bundle(example_bundle(), EXAMPLE_AT).data


def _cds_body() -> dict:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "example"},
        "prefetch": prefetch_of(infused_days_ago(5)),
    }


def _feedback() -> dict:
    entry = {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": AT}
    return {"feedback": [entry, entry | {"card": str(uuid.uuid4())}]}


# route -> (method and path, body, how the request is sent, the answer's lines: audit, log)
ROUTES = {
    "risk": ("/v1/risk", lambda: {"json": _patient()}, 1, 1),
    "batch": ("/v1/risk/batch", lambda: {"json": {"patients": [_patient()] * 3}}, 3, 3),
    "report": ("/v1/report", lambda: {"json": _patient()}, 1, 1),
    "fhir": (
        "/v1/fhir/risk-assessment",
        lambda: {
            "params": {"at": AT},
            "content": json.dumps(example_bundle()),
            "headers": {"Content-Type": "application/fhir+json"},
        },
        1,
        1,
    ),
    "cds": (SERVICE, lambda: {"json": _cds_body()}, 1, 1),
    "cds-feedback": (f"{SERVICE}/feedback", lambda: {"json": _feedback()}, 2, 0),
}


def _send(client, route: str, rid: str):
    path, body, _, _ = ROUTES[route]
    kw = body()
    headers = kw.pop("headers", {}) | {"X-Request-ID": rid}
    if path.startswith("/cds-services"):
        headers["Authorization"] = f"Bearer {client_token(BASE + path)}"
    return client.post(path, headers=headers, **kw)


@contextlib.contextmanager
def broken(audit: Path, how: str):
    """The audit file made unwritable (``how``) for the block, then put back as it was."""
    kept = audit.with_name("kept.jsonl")
    audit.rename(kept)
    try:
        if how == "full":
            audit.symlink_to("/dev/full")
        elif how == "a directory":
            audit.mkdir()
        else:  # read-only: the file without write permission
            kept.rename(audit)
            audit.chmod(0o444)
        yield
    finally:
        if how == "read-only":
            audit.chmod(0o640)
            audit.rename(kept)
        elif audit.is_dir() and not audit.is_symlink():
            audit.rmdir()
        else:
            audit.unlink()
        kept.rename(audit)


REASONS = {
    "full": "No space left on device (ENOSPC)",
    "a directory": "Is a directory (EISDIR)",
    "read-only": "Permission denied (EACCES)",
}


def _records(env: Path) -> dict[str, str]:
    """Everything the service keeps of its answers, as text: the audit trail, the prediction
    log and the CDS explanation records (which hold no request id: named by count)."""
    predictions = sorted((env / "predictions").glob("*.jsonl"))
    explanations = list((env / "artifacts" / "cds-explanations").glob("*"))
    return {
        "audit": (env / "audit" / "audit.jsonl").read_text(),
        "predictions": "".join(p.read_text() for p in predictions),
        "explanations": f"{len(explanations)} files",
    }


@pytest.mark.parametrize(
    "how",
    [
        "full",
        "a directory",
        pytest.param(
            "read-only",
            marks=pytest.mark.skipif(
                os.geteuid() == 0, reason="root writes through a file's mode (see the docstring)"
            ),
        ),
    ],
)
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_an_answer_whose_audit_line_cannot_be_written_is_refused_with_503(client, env, route, how):
    audit = env / "audit" / "audit.jsonl"
    assert _send(client, route, "warm-up").status_code == 200  # the file exists, as in service
    before = _records(env)
    rid = f"refused-{uuid.uuid4().hex[:12]}"
    with broken(audit, how):
        r = _send(client, route, rid)
    assert r.status_code == 503, r.text
    body = r.json()
    if route == "fhir":
        outcome = OperationOutcome.model_validate(body)
        (issue,) = outcome.issue
        assert (issue.severity, issue.code) == ("error", "no-store")
        message = str(body["issue"][0]["details"]["text"])
    else:
        error = ErrorResponse.model_validate(body)
        assert error.error == "audit_unavailable"
        message = error.message
    assert f"the audit log cannot be written: {REASONS[how]}" in message, message
    assert str(audit) not in r.text  # the reason, not the server's layout
    assert _records(env) == before  # no audit line, no prediction-log line, no explanation
    # and once the location is writable again, the same request is answered and recorded
    again = _send(client, route, rid)
    assert again.status_code == 200, again.text
    after = _records(env)
    _, _, audit_lines, log_lines = ROUTES[route]
    new_audit = after["audit"].removeprefix(before["audit"]).splitlines()
    new_log = after["predictions"].removeprefix(before["predictions"]).splitlines()
    assert len(new_audit) == audit_lines and len(new_log) == log_lines
    if route != "cds-feedback":  # feedback lines carry the card, not the request id
        assert all(json.loads(line)["request_id"].startswith(rid) for line in new_audit)
        # each horizon's probability beside day 28's (the small champion: day 28 alone)
        assert all(
            json.loads(line)["horizons"] == {"day28": json.loads(line)["probability"]}
            for line in new_audit
        )
        assert [json.loads(line)["request_id"] for line in new_log] == [
            json.loads(line)["request_id"] for line in new_audit
        ]


def test_a_write_the_disk_cuts_short_leaves_nothing_of_it(tmp_path):
    """A batch's lines are one write: with a file-size limit 100 bytes past the file's end the
    kernel writes 100 bytes of the batch and refuses the rest (EFBIG); the file must end as it
    was, without the 100 bytes, and take the next batch whole once the limit is gone."""
    audit = tmp_path / "audit.jsonl"
    audit.write_text('{"earlier": "line"}\n')
    size = audit.stat().st_size
    code = (
        "import sys\n"
        "from serving.audit import AuditLog, AuditUnavailable\n"
        "log = AuditLog(sys.argv[1])\n"
        "lines = [{'request_id': f'r.{i}', 'pad': 'x' * 80} for i in range(5)]\n"
        "try:\n"
        "    log.write(lines)\n"
        "except AuditUnavailable as exc:\n"
        "    print(exc)\n"
    )

    def limited(limit: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, str(audit)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
        )

    refused = limited(size + 100)
    assert "the audit log cannot be written: File too large (EFBIG)" in refused.stdout
    assert audit.read_text() == '{"earlier": "line"}\n'
    accepted = limited(resource.RLIM_INFINITY)
    assert accepted.stdout == ""
    lines = audit.read_text().splitlines()
    assert [json.loads(line).get("request_id") for line in lines] == [None] + [
        f"r.{i}" for i in range(5)
    ]
