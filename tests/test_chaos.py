"""Chaos tests against real processes: what a client sees, and what is recorded, when a part of
the product dies or restarts under it. Each test prints one line (``pytest -s`` shows it) with
the requests sent, the failed ones and the records lost, and asserts on them.

* **A replica killed under load**: two replicas of ``bentoml serve`` (two workers each) behind
  the nginx of ``tests/cluster.py`` (the layout of docs/guides/scale-out.md); four clients post
  patients through nginx, each request with its own ``X-Request-ID``; one replica's whole
  process tree gets SIGKILL mid-load and the load goes on. No request fails: nginx passes a
  prediction a dead replica did not answer to the other (``proxy_next_upstream error timeout
  non_idempotent`` on ``/v1/``). Every returned prediction has its audit line; a request the
  dead replica had audited before dying is audited twice (same request id), and counted.
* **PostgreSQL restarted** under the tracking server (``ops.tracking_server``) while one
  replica serves from it under load and an ``icans train`` runs: the replica answers every
  request with the version it holds, its roll-out poll reports the registry unreachable and
  recovers; the training either finishes (and the replica rolls out its version) or ends
  FAILED, and the registry holds no version without its run's tags and artefacts.
* **The tracking server down during a promotion**: the mlflow server killed between the
  registration of a new version and the move of ``@champion`` to it. The replica keeps
  answering with the old version; ``icans train`` exits with code 2 and one line saying which
  version was left how and that no alias moved; the alias stays where it was; the version left
  behind is deleted by the next training (its stale-run clean-up).

Started once per module: the replicas behind nginx (on a copy of the small champion's store),
and the tracking server with one model trained into it; the last two tests share one replica.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import mlflow
import psutil
import pytest
from cluster import CONF, Nginx, Replica, free_port, landmark_requests
from mlflow import MlflowClient
from support import SMALL, small_train_toml

from icans.config import Settings, load_settings
from ops import tracking_server
from ops.tracking_server import ServerPaths
from training.stale_runs import close_stale_runs
from training.train import train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def chaos(test):
    """The markers of a chaos test: real servers, PostgreSQL, nginx, minutes of work, and a
    training of its own (training.train, icans train)."""
    for mark in ("server", "nginx", "postgres", "slow", "champion"):
        test = getattr(pytest.mark, mark)(test)
    return test


ROOT = Path(__file__).resolve().parent.parent
MODEL = "icans-risk"

# support.SMALL as a file for `icans train --config`, with open gates, the champion's too (20
# bootstrap samples: the comparison with the champion needs its interval): every version is
# promoted
TRAIN_TOML = small_train_toml(last="champion_margin = 1.0\n")

# A client's pause between requests while an `icans train` runs beside the replica: two
# clients send hundreds of requests over a training (at 0.02 s: 3,500 a test, and as many
# audit lines to read back, for the same figures), dozens during an outage
PAUSE_S = 0.25


# --------------------------------------------------------------------------------------------
# Load with request ids, and the audit trail read back
# --------------------------------------------------------------------------------------------


@dataclass
class Sent:
    rid: str
    status: int  # 0: no HTTP answer
    version: str | None
    error: str = ""


@dataclass
class Load:
    """``threads`` clients posting ``patients`` in turn to ``url/v1/risk``, each request with
    its own ``X-Request-ID`` (``chaos-<tag>-<n>``), until :meth:`stop`; each client pauses
    ``pause_s`` between its requests (room on 2 cores for a training running meanwhile)."""

    url: str
    patients: list[dict]
    tag: str
    threads: int = 4
    pause_s: float = 0.0
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]
        for t in self._workers:
            t.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                n = next(self._next)
                rid = f"chaos-{self.tag}-{n}"
                patient = self.patients[n % len(self.patients)]
                try:
                    r = client.post(
                        self.url + "/v1/risk", json=patient, headers={"X-Request-ID": rid}
                    )
                    ok = r.status_code == 200
                    version = r.json()["model_version"] if ok else None
                    sent = Sent(rid, r.status_code, version, "" if ok else r.text[:300])
                except httpx.HTTPError as exc:
                    sent = Sent(rid, 0, None, f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self.sent.append(sent)
                if self.pause_s:
                    time.sleep(self.pause_s)

    def count(self) -> int:
        with self._lock:
            return len(self.sent)

    def stop(self) -> list[Sent]:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=60)
        return self.sent


def audit_check(sent: list[Sent], audit_log: Path, tag: str) -> dict:
    """The figures of the load ``tag``: requests sent, failed, predictions returned, their
    audit lines, returned predictions without one (lost), request ids audited more than once
    (the first few), and audited but never answered."""
    lines = Counter(
        json.loads(line)["request_id"]
        for line in audit_log.read_text().splitlines()
        if f'"request_id": "chaos-{tag}-' in line
    )
    returned = {s.rid for s in sent if s.status == 200}
    twice = sorted(rid for rid, n in lines.items() if n > 1)
    return {
        "requests": len(sent),
        "failed": sum(s.status != 200 for s in sent),
        "predictions_returned": len(returned),
        "audit_lines": sum(lines.values()),
        "lost_audit_lines": len(returned - set(lines)),
        "audited_twice": len(twice),
        "audited_twice_ids": twice[:5],
        "audited_not_returned": sorted(set(lines) - returned)[:5],
    }


def tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def kill_tree(pid: int) -> int:
    """SIGKILL to a process and every descendant at once; how many there were."""
    procs = tree(pid)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


def _report(test: str, figures: dict, started: float) -> None:
    figures = figures | {"duration_s": round(time.monotonic() - started, 1)}
    print(f"\nchaos {test}: {json.dumps(figures)}")


# --------------------------------------------------------------------------------------------
# 1. A replica killed under load behind nginx
# --------------------------------------------------------------------------------------------


@dataclass
class Pair:
    settings: Settings
    replicas: list[Replica]
    lb: Nginx


@pytest.fixture(scope="module")
def pair(small_champion, tmp_path_factory):
    """Two replicas on a copy of the small champion's store behind nginx, sharing one audit
    log (the file every replica appends its lines to with O_APPEND)."""
    tmp = tmp_path_factory.mktemp("chaos-pair")
    shutil.copy(small_champion.store / "mlflow.db", tmp / "mlflow.db")
    settings = load_settings(
        tracking_uri=f"sqlite:///{tmp}/mlflow.db",
        artifacts_dir=tmp / "artifacts",
        model_poll_seconds=0,
    )
    ports = [free_port(), free_port()]
    replicas = [Replica(settings, p, tmp / f"replica-{p}.log") for p in ports]
    lb = None
    try:
        for r in replicas:
            r.ready()
        lb = Nginx(tmp / "nginx", free_port(), ports)
        yield Pair(settings, replicas, lb)
    finally:
        if lb is not None:
            lb.stop()
        for r in replicas:
            r.stop()


@chaos
def test_a_replica_killed_under_load_fails_no_request_and_loses_no_audit_line(pair, small_champion):
    started = time.monotonic()
    patients = landmark_requests(small_champion.cohort)
    victim, survivor = pair.replicas
    load = Load(pair.lb.url, patients, "kill")
    deadline = time.monotonic() + 30
    while load.count() < 200 and time.monotonic() < deadline:  # both replicas busy
        time.sleep(0.1)
    before = load.count()
    killed = kill_tree(victim.proc.pid)
    victim.proc.wait()
    after_kill = time.monotonic()
    while load.count() < before + 400 and time.monotonic() < after_kill + 30:
        time.sleep(0.1)
    sent = load.stop()

    figures = audit_check(sent, pair.settings.audit_log, "kill")
    nginx_log = pair.lb.log()
    figures |= {
        "sent_before_kill": before,
        "processes_killed": killed,
        "nginx_passed_on": nginx_log.count("while reading response header")
        + nginx_log.count("while connecting to upstream"),
    }
    _report("replica killed", figures, started)
    failed = [s for s in sent if s.status != 200]
    assert failed == [], f"{len(failed)} of {len(sent)} failed, first: {failed[:3]}"
    assert figures["lost_audit_lines"] == 0
    # a line without an answer is a request the dead replica audited before dying: nginx
    # passed it on, so it was answered (and audited again) by the survivor
    assert figures["audited_not_returned"] == []
    assert len(sent) >= before + 400
    with pytest.raises(httpx.TransportError):
        httpx.get(victim.url + "/readyz", timeout=2)
    assert httpx.get(survivor.url + "/readyz", timeout=5).status_code == 200


# --------------------------------------------------------------------------------------------
# 2-3. The tracking server's PostgreSQL restarted; the tracking server down in a promotion
# --------------------------------------------------------------------------------------------


@dataclass
class Tracked:
    settings: Settings  # tracking_uri: the server's URL
    paths: ServerPaths
    replica: Replica
    cohort: Path
    config: Path
    workdir: Path


@pytest.fixture(scope="module")
def tracked(small_cohort, tmp_path_factory):
    """The tracking server (PostgreSQL and ``mlflow server``) with one small model trained
    into it and promoted, and one replica following ``@champion`` through it every second.
    Made under the system's temporary directory: PostgreSQL runs as ``postgres`` as root."""
    base = Path(tempfile.mkdtemp(prefix="icans-chaos-"))
    base.chmod(0o755)
    tmp = tmp_path_factory.mktemp("chaos-tracked")
    settings = load_settings(
        artifacts_dir=base / "artifacts",
        tracking_server_port=free_port(),
        tracking_db_port=free_port(),
        model_poll_seconds=1.0,
    )
    replica = None
    try:
        server = tracking_server.start(settings).status
        settings = settings.model_copy(update={"tracking_uri": server.tracking_uri})
        result = train(small_cohort, SMALL, settings)
        assert result.promoted and result.model_version == "1"
        replica = Replica(settings, free_port(), tmp / "replica.log")
        assert replica.ready()["model_version"] == "1"
        config = tmp / "train.toml"
        config.write_text(TRAIN_TOML)
        workdir = tmp / "cwd"
        workdir.mkdir()
        paths = ServerPaths(settings.tracking.server_dir.resolve())
        yield Tracked(settings, paths, replica, small_cohort, config, workdir)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        try:
            if replica is not None:
                replica.stop()
        finally:
            tracking_server.stop(settings)
            shutil.rmtree(base, ignore_errors=True)


def _icans_train(t: Tracked, seed: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    """``icans train`` into the tracking server, in a process of its own."""
    env = (
        os.environ
        | {
            "MLFLOW_TRACKING_URI": t.settings.tracking_uri,
            "PYTHONPATH": str(ROOT),
            "ICANS_ARTIFACTS_DIR": str(t.settings.artifacts_dir),
        }
        | (env or {})
    )
    cmd = [sys.executable, "-m", "cli.main", "train", "--cohort", str(t.cohort)]
    cmd += ["--config", str(t.config), "--seed", str(seed)]
    with log.open("w") as out:
        return subprocess.Popen(
            cmd,
            cwd=t.workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _finished(proc: subprocess.Popen, log: Path, timeout: float = 400) -> tuple[int, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"icans train still running after {timeout} s:\n{log.read_text()[-3000:]}")
    return proc.returncode, log.read_text()


def _whole_versions(client: MlflowClient) -> dict[str, str]:
    """Every registered version -> its run's status, checking each is whole: its run tagged
    with it, its gate tags, its model card among its run's artefacts. A failure names the
    version."""
    out = {}
    for mv in client.search_model_versions(f"name = '{MODEL}'"):
        run = client.get_run(mv.run_id)
        assert run.data.tags.get("registered_version") == str(mv.version), (mv.version, run)
        assert {"gate", "run_id", "cohort_fingerprint"} <= set(mv.tags), (mv.version, mv.tags)
        names = {a.path for a in client.list_artifacts(mv.run_id)}
        assert "model_card.json" in names, (mv.version, names)
        out[str(mv.version)] = run.info.status
    return out


def _champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def _new_run_recording(paths: ServerPaths, known: set[Path], proc, timeout: float = 300):
    """Wait until a run not in ``known`` has artefacts in the server (the training is
    recording: metrics, tables, models, registration follow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        new = [d for d in paths.artifacts.glob("*/*/artifacts") if d not in known]
        if any(any(d.iterdir()) for d in new):
            return
        time.sleep(0.1)
    pytest.fail("the training did not start recording")


@chaos
def test_postgres_restarted_during_training_and_serving(tracked, small_cohort, tmp_path):
    started = time.monotonic()
    t = tracked
    client = MlflowClient(t.settings.tracking_uri, t.settings.tracking_uri)
    before = _champion(client)
    # two clients, ~4 requests a second each: hundreds over the training, dozens while
    # PostgreSQL is down
    load = Load(t.replica.url, landmark_requests(small_cohort), "pg", threads=2, pause_s=PAUSE_S)
    log = tmp_path / "train.log"
    known = set(t.paths.artifacts.glob("*/*/artifacts"))
    training = _icans_train(t, 2, log)
    try:
        _new_run_recording(t.paths, known, training)
        postgres = t.paths.cluster(t.settings.tracking.db_port)
        down = time.monotonic()
        postgres.stop()
        time.sleep(3)  # the server's pooled connections die, new ones are refused
        postgres.start()
        outage_s = time.monotonic() - down
        rc, out = _finished(training, log)
    finally:
        if training.poll() is None:
            os.killpg(training.pid, signal.SIGKILL)
    versions = _whole_versions(client)  # nothing half-registered
    after = _champion(client)
    if rc == 0:  # the restart was survived: the run finished, its version was promoted
        new = re.search(r"registered icans-risk version (\d+)", out)[1]
        assert versions[new] == "FINISHED" and after == new
        # the replica's poll (retried by MLflow's client) rolls it out
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if httpx.get(t.replica.url + "/readyz", timeout=5).json()["model_version"] == new:
                break
            time.sleep(0.5)
        time.sleep(1)
    else:  # the run ended FAILED and left no version
        assert after == before and set(versions) == {before}, out[-3000:]
    sent = load.stop()
    ready = httpx.get(t.replica.url + "/readyz", timeout=5).json()
    figures = audit_check(sent, t.settings.audit_log, "pg") | {
        "postgres_down_s": round(outage_s, 1),
        "training": "finished" if rc == 0 else f"failed (exit {rc})",
        "versions": versions,
        "champion": f"{before} -> {after}",
        "answered_by": dict(Counter(s.version for s in sent if s.version)),
        "replica_on": ready["model_version"],
    }
    _report("postgres restarted", figures, started)
    assert figures["failed"] == 0 and figures["lost_audit_lines"] == 0
    assert ready["model_version"] == after and ready["failed_rollout"] is None, ready
    assert {s.version for s in sent if s.version} <= {before, after}


@chaos
def test_tracking_server_down_during_a_promotion(tracked, small_cohort, tmp_path):
    started = time.monotonic()
    t = tracked
    client = MlflowClient(t.settings.tracking_uri, t.settings.tracking_uri)
    old = _champion(client)
    had = {str(mv.version) for mv in client.search_model_versions(f"name = '{MODEL}'")}
    load = Load(t.replica.url, landmark_requests(small_cohort), "promo", threads=2, pause_s=PAUSE_S)
    log = tmp_path / "train.log"
    # MLflow's client retries a failed call for about 4 minutes by default; here for seconds
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    training = _icans_train(t, 3, log, quick)
    try:
        # the version is registered: kill the server before the alias moves to it
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and training.poll() is None:
            now = {str(mv.version) for mv in client.search_model_versions(f"name = '{MODEL}'")}
            if now - had:
                break
            time.sleep(0.05)
        (new,) = now - had
        mlflow_pid = tracking_server._mlflow_pid(t.paths)
        assert mlflow_pid is not None
        killed_at = time.monotonic()
        kill_tree(mlflow_pid)
        rc, out = _finished(training, log)
        failed_after_s = time.monotonic() - killed_at
        during = load.count()
        time.sleep(2)  # the replica polls the dead server meanwhile (MLflow's client retries)
        ready_down = httpx.get(t.replica.url + "/readyz", timeout=5).json()
    finally:
        if training.poll() is None:
            os.killpg(training.pid, signal.SIGKILL)
        tracking_server.start(t.settings)  # back (over the stale pid file)
    sent = load.stop()
    assert _champion(client) == old  # the alias stayed where it was
    left = {str(mv.version) for mv in client.search_model_versions(f"name = '{MODEL}'")} - had
    # the next training's first step closes the dead run and deletes what it left
    experiment = client.get_experiment_by_name("icans-risk").experiment_id
    closed = close_stale_runs(client, experiment, MODEL, t.settings.stale_run_hours)
    versions = _whole_versions(client)
    time.sleep(2)
    ready = httpx.get(t.replica.url + "/readyz", timeout=5).json()
    errors = re.findall(r"^error: .*$", out, re.M)
    figures = audit_check(sent, t.settings.audit_log, "promo") | {
        "sent_while_down": during,
        "training_exit": rc,
        "training_error": [e[:200] for e in errors],
        "training_failed_after_s": round(failed_after_s, 1),
        "version_left_by_failed_promotion": sorted(left),
        "closed_by_next_training": [c.summary() for c in closed],
        "champion": old,
        "replica_while_down": {k: ready_down[k] for k in ("model_version", "failed_rollout")},
        "answered_by": dict(Counter(s.version for s in sent if s.version)),
    }
    _report("tracking server down in a promotion", figures, started)
    assert figures["failed"] == 0 and figures["lost_audit_lines"] == 0
    assert {s.version for s in sent if s.version} == {old}
    assert rc == 2, out[-3000:]
    (error,) = errors  # one line: what was left, and how
    assert f"{MODEL}" in error and "no alias moved" in error and "icans train" in error, error
    assert new not in versions and set(versions) == had
    assert ready_down["model_version"] == old
    assert ready["model_version"] == old and ready["failed_rollout"] is None, ready


def test_the_tested_nginx_retries_are_the_documented_ones():
    """The layout tested here is the one docs/guides/scale-out.md shows: for each location,
    the same proxy_next_upstream line (predictions sent again, non_idempotent; the rest not)."""

    def retries(conf: str) -> dict[str, str]:
        found = re.findall(r"location (\S+) \{+[^}]*?proxy_next_upstream ([^;]+);", conf)
        return dict(found)

    guide = (ROOT / "docs" / "guides" / "scale-out.md").read_text()
    documented = re.search(r"```nginx\n(.*?)```", guide, re.S)[1]
    expected = {"/": "error timeout", "/v1/": "error timeout non_idempotent"}
    assert retries(documented) == expected
    assert retries(CONF) == expected


# --------------------------------------------------------------------------------------------
# What the chaos tests rely on, in process: the errors a failing registry gives
# --------------------------------------------------------------------------------------------


def test_a_registry_that_cannot_be_reached_fails_registration_with_one_clear_error(
    monkeypatch,
):
    from registry.store import RegistryUnavailableError, registering

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_registry_uri(uri)
    try:
        with (
            pytest.raises(RegistryUnavailableError, match=r"icans-risk could not be registered"),
            registering("runs:/0123/model", MODEL, MlflowClient(uri, uri), "", {}, "sha256:0"),
        ):
            pytest.fail("registered without a registry")
    finally:
        mlflow.set_registry_uri(None)


def test_a_project_error_followed_by_a_failed_clean_up_is_printed_as_one_line(capsys):
    import typer

    from cli.guards import user_errors
    from registry.store import RegistryUnavailableError

    @user_errors
    def promote():
        try:
            raise RegistryUnavailableError("version 3 of icans-risk could not be deleted")
        finally:
            raise ConnectionError("ending the run failed too")

    with pytest.raises(typer.Exit) as exit_:
        promote()
    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err == (
        "error: version 3 of icans-risk could not be deleted (then ConnectionError in a clean-up)\n"
    )

    @user_errors
    def bug():
        raise KeyError("not a project error")

    with pytest.raises(KeyError):  # anything else keeps its traceback
        bug()
