"""A promotion reaches two running replicas behind a real nginx while load runs: no failed
request, and every answer is the one its named version gives.

Two replicas of ``bentoml serve`` (two workers each) share one registry (a copy of the
session's champion store) and follow ``@champion`` every second. A second version, the champion
recalibrated on a myeloid-centre cohort (so its numbers differ), is registered under another
alias while they start. Four clients post patients through nginx; the champion alias moves to
the new version; the load runs until every worker answers with it. Then: every request got a
200, each answer's probability is exactly what the version it names gives that patient (both
versions computed here, in process), both versions answered during the roll-out, and each
replica's ``/readyz`` names the new version.
"""

from __future__ import annotations

import json
import shutil

import httpx
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
from mlflow import MlflowClient

from icans.config import load_settings

pytestmark = [
    pytest.mark.server,
    pytest.mark.nginx,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

POLL_S = 1.0


def test_a_promotion_rolls_out_under_load_with_no_failed_request(champion, tmp_path):
    shutil.copy(champion.store / "mlflow.db", tmp_path / "mlflow.db")
    settings = load_settings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        artifacts_dir=tmp_path / "artifacts",
        model_poll_seconds=POLL_S,
    )
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    old = champion.result.model_version
    assert str(client.get_model_version_by_alias(settings.model_name, "champion").version) == old

    ports = [free_port(), free_port()]
    replicas = [Replica(settings, p, tmp_path / f"replica-{p}.log") for p in ports]
    lb = None
    try:
        # meanwhile: the next version, registered but not yet promoted
        new = recalibrated_version(settings, old, tmp_path / "myeloid")
        assert new is not None and new != old

        patients = landmark_requests(champion.cohort)
        expected = {v: probabilities(settings, v, patients) for v in (old, new)}
        assert max(abs(a - b) for a, b in zip(*expected.values(), strict=True)) > 1e-3

        for r in replicas:
            assert r.ready()["model_version"] == old
        lb = Nginx(tmp_path / "nginx", free_port(), ports)

        roll_out = roll_out_under_load(
            lb.url,
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
        for r in replicas:  # each replica says which version it answers with, and why
            ready = httpx.get(r.url + "/readyz", timeout=5).json()
            assert ready["model_version"] == new and ready["failed_rollout"] is None
            assert "now answering with icans-risk version " + new in r.log.read_text()
    finally:
        if lb is not None:
            lb.stop()
        for r in replicas:
            r.stop()
    for r in replicas:
        assert r.proc.poll() is not None
