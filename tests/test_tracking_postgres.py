"""The shared tracking server (``ops.tracking_server``): a real PostgreSQL and a real
``mlflow server`` started in a temporary directory on free ports, used exactly as a centre's
server would be, through ``MLFLOW_TRACKING_URI=http://...`` only.

Two ``icans train`` processes record into it at the same time; ``icans evaluate``, ``icans
report`` and a real ``icans serve`` then read the champion through it (artefacts through the
server's proxy). A server killed outright starts again over its stale pid files, and a stop
leaves no process behind. PostgreSQL's programs must be installed: ``make postgres`` (which
``make test`` runs) installs Debian's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import mlflow
import psutil
import pytest
from cluster import free_port, stop_group, wait_ready
from mlflow import MlflowClient
from support import small_train_toml
from typer.testing import CliRunner

from cli.main import app
from cohort.reader import read_cohort
from features.landmarks import patient_record
from icans.config import Settings, load_settings
from icans.errors import InvalidInputError
from ops import postgres_cluster
from ops.tracking_server import TrackingServerError, start, status, stop

ROOT = Path(__file__).resolve().parent.parent
MODEL = "icans-risk"

# As tests.support.SMALL (a model that registers, not a good one: open gates), on three
# landmark days with some bootstrap samples: two of these train at once on the two cores.
TRAIN_TOML = small_train_toml(first="landmarks = [0, 3, 7]\n")


def _processes_of(pids: list[int]) -> list[psutil.Process]:
    """The processes (and all their descendants) with these ids, as they are now."""
    found = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                found[p.pid] = p
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def _alive(procs: list[psutil.Process]) -> list[str]:
    """Those of ``procs`` still running (the same process: is_running checks its start time);
    a zombie waiting for init to reap it runs nothing."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


def _using(directory: Path) -> list[str]:
    """Every running process whose command line names the server directory (postgres -D,
    mlflow --artifacts-destination) or whose environment marks it as that server's."""
    left = []
    for p in psutil.process_iter():
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            marked = p.environ().get("ICANS_TRACKING_SERVER") == str(directory)
            if marked or any(str(directory) in part for part in p.cmdline()):
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            continue
    return left


@pytest.fixture
def server_settings():
    """Settings of a tracking server in a fresh directory on free ports; stopped and removed
    afterwards whatever happened. The directory is made under the system's temporary directory
    (not pytest's, which only root may enter): PostgreSQL runs as the ``postgres`` user."""
    base = Path(tempfile.mkdtemp(prefix="icans-tracking-"))
    base.chmod(0o755)
    settings = load_settings(
        artifacts_dir=base / "artifacts",
        tracking_server_port=free_port(),
        tracking_db_port=free_port(),
    )
    try:
        postgres_cluster.bin_dir()
    except TrackingServerError as exc:
        pytest.fail(f"{exc} (CI runs it through 'make test')")
    try:
        yield settings
    finally:
        try:
            stop(settings)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _started(settings: Settings):
    result = start(settings)
    assert result.started == ("postgres", "mlflow")
    assert result.status.running, result.status.describe()
    return result.status


def _stop_and_check_nothing_left(settings: Settings) -> None:
    now = status(settings)
    procs = _processes_of([p for p in (now.postgres_pid, now.mlflow_pid) if p])
    assert len(procs) >= 4  # postmaster and its helpers; mlflow, uvicorn and its workers
    assert set(stop(settings)) == {"mlflow", "postgres"}
    assert _alive(procs) == []
    assert _using(settings.tracking.server_dir.resolve()) == []
    after = status(settings)
    assert (after.postgres_pid, after.mlflow_pid, after.answering) == (None, None, False)
    assert stop(settings) == ()  # stopping a stopped server: nothing to do, no error


def _icans(*args: str, env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    """``icans ARGS`` in its own process, its output to ``log`` (no pipe to fill up)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.champion  # two trainings, in processes of their own
def test_two_trainings_at_once_then_evaluate_report_and_serve_through_the_server(
    server_settings, small_cohort, tmp_path, monkeypatch
):
    settings = server_settings
    server = _started(settings)
    uri = server.tracking_uri
    assert uri == f"http://127.0.0.1:{settings.tracking.server_port}"
    cohort = small_cohort  # the session's 400 patients: only read
    config = tmp_path / "train.toml"
    config.write_text(TRAIN_TOML)
    workdir = tmp_path / "cwd"  # where the commands run: nothing may be written here
    workdir.mkdir()
    env = os.environ | {
        "MLFLOW_TRACKING_URI": uri,
        "PYTHONPATH": str(ROOT),
        "ICANS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }

    # two trainings started together, both recording into the server
    train = ["train", "--cohort", str(cohort), "--config", str(config), "--seed"]
    logs = {seed: tmp_path / f"train-{seed}.log" for seed in ("1", "2")}
    trainings = {
        seed: _icans(*train, seed, env=env, cwd=workdir, log=log) for seed, log in logs.items()
    }
    said = {}
    try:
        for seed, proc in trainings.items():
            proc.wait(timeout=600)
            out = logs[seed].read_text()
            assert proc.returncode == 0, f"training {seed}:\n{out[-4000:]}"
            m = re.search(r"MLflow run (\w+); registered icans-risk version (\d+)", out)
            assert m, out[-2000:]
            said[m[1]] = m[2]
    finally:  # a failure above leaves no training running
        for proc in trainings.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    client = MlflowClient(uri, uri)
    versions = {
        mv.run_id: str(mv.version) for mv in client.search_model_versions(f"name = '{MODEL}'")
    }
    assert versions == said  # two distinct versions, each of the run that says it made it
    assert sorted(versions.values()) == ["1", "2"]
    runs = {run_id: client.get_run(run_id) for run_id in versions}
    for run_id, run in runs.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["registered_version"] == versions[run_id]
        # artefacts went through the server's proxy into its directory, not to a local path
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
        stored = settings.tracking.server_dir / "artifacts" / run.info.experiment_id / run_id
        assert (stored / "artifacts" / "model_card.json").is_file()
    assert len({run.data.tags["icans.pid"] for run in runs.values()}) == 2  # two processes
    promoted = {
        str(mv.version)
        for mv in client.search_model_versions(f"name = '{MODEL}'")
        if mv.tags.get("gate") == "passed"
    }
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) in promoted
    for run_id, version in versions.items():
        assert client.get_model_version(MODEL, version).run_id == run_id

    # a real icans serve loads the champion through the server (it boots meanwhile)
    port = free_port()
    log = tmp_path / "serve.log"
    serve = _icans("serve", "--port", str(port), env=env, cwd=workdir, log=log)
    try:
        # icans evaluate and icans report, against the server only
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("ICANS_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
        runner = CliRunner()
        try:
            result = runner.invoke(
                app, ["evaluate", "--cohort", str(cohort), "--config", str(config)]
            )
            assert result.exit_code == 0, result.output
            assert f"icans-risk v{champion.version} on" in result.output
            evaluation_run = re.search(r"Recorded as MLflow run (\w+)", result.output)[1]
            recorded = client.get_run(evaluation_run)
            assert recorded.data.tags["model_version"] == str(champion.version)
            assert recorded.info.status == "FINISHED"

            report = tmp_path / "report.html"
            result = runner.invoke(app, ["report", "--out", str(report)])
            assert result.exit_code == 0, result.output
            assert champion.run_id in report.read_text(encoding="utf-8")  # the champion's own
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)

        base = f"http://127.0.0.1:{port}"
        wait_ready(base, serve, log)
        record = patient_record(read_cohort(cohort).tables, "P0000003", 3)
        response = httpx.post(f"{base}/v1/risk", json=record, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == str(champion.version)
        assert 0 <= body["probability"] <= 1
    finally:
        stop_group(serve, timeout=60)

    assert sorted(p.name for p in workdir.iterdir()) == []  # no local mlruns/ nor mlflow.db
    _stop_and_check_nothing_left(settings)


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.postgres
def test_a_start_after_a_kill_replaces_stale_pid_files_and_keeps_the_data(server_settings):
    settings = server_settings
    server = _started(settings)
    client = MlflowClient(server.tracking_uri, server.tracking_uri)
    experiment = client.create_experiment("kept-across-a-crash")
    pgdata = settings.tracking.server_dir.resolve() / "pgdata"
    mlflow_group = _processes_of([server.mlflow_pid])
    assert len(mlflow_group) >= 3  # mlflow server, uvicorn, its workers
    postgres = _processes_of([server.postgres_pid])

    # killed outright: the mlflow server's leader only (its workers stay, holding the port),
    # and the postmaster, whose process id then names another process (this one)
    os.kill(server.mlflow_pid, signal.SIGKILL)
    os.kill(server.postgres_pid, signal.SIGKILL)
    psutil.wait_procs(postgres, timeout=30)  # its helpers follow it (as after a power cut)
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    (pgdata / "postmaster.pid").write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    assert (settings.tracking.server_dir / "mlflow.pid").is_file()
    stale = status(settings)
    assert (stale.postgres_pid, stale.mlflow_pid, stale.running) == (None, None, False)

    again = start(settings)
    assert again.started == ("postgres", "mlflow")
    assert again.status.running
    assert _alive(mlflow_group) == []  # the killed server's workers were stopped
    client = MlflowClient(again.status.tracking_uri, again.status.tracking_uri)
    assert client.get_experiment(experiment).name == "kept-across-a-crash"
    assert start(settings).started == ()  # idempotent: all runs already
    _stop_and_check_nothing_left(settings)


def test_missing_postgres_programs_say_how_to_install_them(monkeypatch):
    monkeypatch.setattr(postgres_cluster, "BIN_GLOB", "/nonexistent/postgresql/*/bin")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TrackingServerError, match="'make postgres' installs"):
        postgres_cluster.bin_dir()


def test_bad_settings_name_the_field_the_value_and_the_rule(tmp_path):
    same = load_settings(tracking_server_port=5999, tracking_db_port=5999)
    with pytest.raises(InvalidInputError, match=r"tracking_db_port=5999 .*other than"):
        start(same)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InvalidInputError, match=rf"tracking_db_port={port} .*free TCP port"):
            postgres_cluster.check_free_port(port, "tracking_db_port")
    with pytest.raises(InvalidInputError, match="tracking_server_port"):
        load_settings(tracking_server_port=70000)
    deep = tmp_path / ("d" * 90)
    cluster = postgres_cluster.Cluster(deep / "pgdata", deep / "run", deep / "pg.log", 5433)
    with pytest.raises(InvalidInputError, match=r"tracking_server_dir=.*unix socket"):
        cluster._prepare()


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: PostgreSQL then runs as postgres")
def test_a_directory_postgres_cannot_reach_is_refused_with_the_fix(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    cluster = postgres_cluster.Cluster(
        closed / "srv" / "pgdata", closed / "srv" / "run", closed / "srv" / "pg.log", 5433
    )
    with pytest.raises(InvalidInputError, match=rf"cannot enter {closed} .*chmod o\+x {closed}"):
        cluster._prepare()
