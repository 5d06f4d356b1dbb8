"""Runs left RUNNING by a training process that died (``training.stale_runs``), on a real sqlite
store: a real process is killed with SIGKILL in the middle of registering a version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from training.stale_runs import HOST, PID, PID_STARTED, STALE_REASON, close_stale_runs, owner_tags

ROOT = Path(__file__).resolve().parent.parent

# Starts a run as `icans train` does (owner tags), logs and registers a model version, prints the
# run id, then dies the way a killed trainer does: SIGKILL, no clean-up of any kind.
_DYING_TRAINER = """
import os, signal, sys
import mlflow
from sklearn.dummy import DummyClassifier
from training.stale_runs import owner_tags
uri, name = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
mlflow.set_experiment("training")
run = mlflow.start_run()
mlflow.set_tags(owner_tags())
info = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model")
mlflow.register_model(info.model_uri, name)
print(run.info.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("training", artifact_location=(tmp_path / "a").as_uri())
    yield uri, client, experiment
    mlflow.set_tracking_uri(None)


def _killed_run(uri: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _DYING_TRAINER, uri, "icans-risk"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    return done.stdout.split()[0]


@pytest.mark.slow
def test_a_run_whose_process_was_killed_is_failed_and_its_version_deleted(store):
    uri, client, experiment = store
    run_id = _killed_run(uri)
    assert client.get_run(run_id).info.status == "RUNNING"  # what SIGKILL leaves
    assert [str(mv.version) for mv in client.search_model_versions("name = 'icans-risk'")] == ["1"]

    closed = close_stale_runs(client, experiment, "icans-risk", after_hours=24)

    assert [c.run_id for c in closed] == [run_id]
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert "is gone" in run.data.tags[STALE_REASON]
    assert closed[0].deleted_versions == ("1",)
    assert client.search_model_versions("name = 'icans-risk'") == []
    assert close_stale_runs(client, experiment, "icans-risk", after_hours=24) == []  # once


@pytest.mark.slow
def test_a_killed_run_whose_version_holds_the_alias_keeps_it(store):
    uri, client, experiment = store
    run_id = _killed_run(uri)
    client.set_registered_model_alias("icans-risk", "champion", "1")

    closed = close_stale_runs(client, experiment, "icans-risk", after_hours=24)

    assert closed[0].run_id == run_id and closed[0].kept_versions == ("1",)
    assert str(client.get_model_version_by_alias("icans-risk", "champion").version) == "1"
    assert "hold an alias and were kept" in closed[0].summary()


def test_live_runs_are_left_alone_and_old_foreign_ones_closed(store):
    _, client, experiment = store
    # this process is alive: its run stays RUNNING
    mine = client.create_run(experiment, tags=owner_tags())
    # another host's run that started an hour ago: it may be a colleague's training
    hour_ago = int((time.time() - 3600) * 1000)
    theirs = client.create_run(
        experiment, start_time=hour_ago, tags={HOST: "other-host", PID: "1", PID_STARTED: "1"}
    )
    # another host's run (and one without owner) running for two days
    two_days = int((time.time() - 48 * 3600) * 1000)
    old = client.create_run(experiment, start_time=two_days, tags={HOST: "other-host", PID: "1"})
    ownerless = client.create_run(experiment, start_time=two_days)
    # a process id of this host reused by another process: the start time tells
    reused = client.create_run(
        experiment, tags=owner_tags() | {PID_STARTED: f"{time.time() - 10 * 86400:.3f}"}
    )

    closed = {c.run_id: c.reason for c in close_stale_runs(client, experiment, "icans-risk", 24)}

    assert set(closed) == {old.info.run_id, ownerless.info.run_id, reused.info.run_id}
    assert "on host other-host, longer than 24 h" in closed[old.info.run_id]
    assert "without an owner" in closed[ownerless.info.run_id]
    assert "the id now names another process" in closed[reused.info.run_id]
    for run in (mine, theirs):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"


def test_training_runs_name_their_process(champion):
    client = MlflowClient(champion.settings.tracking_uri)
    tags = client.get_run(champion.result.run_id).data.tags
    assert tags[PID] == str(champion.trained_by)  # the worker that trained it, maybe not this one
    assert champion.result.closed_runs == []
