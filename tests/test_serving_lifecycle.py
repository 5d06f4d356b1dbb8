"""Fail fast, say why; stop means stop: the service's start and stop as an operator meets them.

* A bad setting or file (here the CDS clients file, ``ICANS_CDS_CLIENTS``) ends ``icans serve``
  and ``bentoml serve serving.service:IcansRisk`` (a container's command) with exit code 2 and
  one line naming it, before any worker starts (:mod:`serving.preflight`); a worker that
  cannot start anyway (its model version cannot be loaded) stops ``bentoml serve`` instead of
  being restarted in a loop.
* SIGTERM to ``icans serve``'s own process id (not its group) stops the BentoML arbiter and its
  workers and frees the port; SIGTERM to the tracking server's process (the id ``icans tracking
  status`` prints) stops mlflow's launcher, uvicorn and its workers. SIGINT, and a tree whose
  processes hang or are orphaned, are checked on a small tree (:mod:`ops.supervisor`).

The real starts run at once, in the background (:func:`starts`), each test waiting for its own:
one real server start costs tens of seconds on two busy cores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from cluster import free_port, wait_ready
from fhir_fixtures import write_clients_file

from icans.config import load_settings
from icans.errors import InvalidInputError
from ops.supervisor import running
from serving.launch import PROJECT_ROOT, server_command, server_environment
from serving.preflight import check

FAIL_FAST_S = 90  # a failed start: the command's imports (bentoml, mlflow) on two busy cores
# a worker that fails: the arbiter's start, then a worker's (imports, the registry, the model's
# files) and the arbiter's stop, on two cores busy with the rest of the suite
WORKER_FAIL_S = 180
STOP_S = 30  # serve.stop_timeout_s (10 s) of drain, the kill, and a margin


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind it
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {proc.status()} {' '.join(proc.cmdline())[:100]}"
    except psutil.Error as exc:
        return f"{proc.pid} ({type(exc).__name__})"


def _running(procs: list[psutil.Process]) -> list[str]:
    return [_describe(p) for p in procs if running(p)]


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while _running(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _running(procs)


# --------------------------------------------------------------------------------------------
# The checks, in process
# --------------------------------------------------------------------------------------------


def _bad_settings(tmp_path: Path) -> dict[str, tuple[dict, str, str]]:
    """case -> (settings, the setting the error must name, a fragment of its rule)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[[client]\n")
    no_keys = tmp_path / "no-keys.toml"
    no_keys.write_text('[[client]]\niss = "https://ehr.example.org"\njwks_file = "gone.json"\n')
    return {
        "clients file missing": (
            {"cds_clients": tmp_path / "missing.toml"},
            "cds_clients",
            "an existing TOML file",
        ),
        "clients file not TOML": ({"cds_clients": bad_toml}, "cds_clients", "valid TOML"),
        "key set missing": ({"cds_clients": no_keys}, "jwks_file", "a readable JWKS file"),
        "artifacts under a file": (
            {"artifacts_dir": a_file / "artifacts"},
            "artifacts_dir",
            "is not a directory",
        ),
        "audit log a directory": ({"audit_log": tmp_path}, "audit_log", "a file"),
        "prediction log a file": ({"prediction_log_dir": a_file}, "prediction_log_dir", "file"),
        "network without a token": ({"serve_host": "0.0.0.0"}, "serve_host", "loopback"),
        "tracking server down": (
            {"tracking_uri": f"http://127.0.0.1:{free_port()}"},
            "tracking_uri",
            "a tracking server that answers",
        ),
        "address not here": (
            {"serve_host": "192.0.2.1", "api_token": "a-token-0123456789"},
            "serve_host",
            "an address of this machine",
        ),
        "shared state database down": (
            {"cds_state_uri": f"postgresql://icans:secret@127.0.0.1:{free_port()}/icans"},
            "cds_state_uri",
            "a PostgreSQL database this service can reach",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "clients file missing",
        "clients file not TOML",
        "key set missing",
        "artifacts under a file",
        "audit log a directory",
        "prediction log a file",
        "network without a token",
        "address not here",
        "tracking server down",
        "shared state database down",
    ],
)
def test_each_bad_setting_is_named_with_its_value_and_rule(tmp_path, case):
    values, setting, rule = _bad_settings(tmp_path)[case]
    given = {
        "tracking_uri": f"sqlite:///{tmp_path}/empty.db",
        "artifacts_dir": tmp_path / "artifacts",
        "serve_port": free_port(),
        **values,
    }
    settings = load_settings(**given)
    with pytest.raises(InvalidInputError) as caught:
        check(settings)
    assert caught.value.field == setting, str(caught.value)
    assert rule in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "secret" not in str(caught.value)  # a password in a URI is never repeated


def test_a_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(tracking_uri=f"sqlite:///{tmp_path}/x.db", serve_port=port)
        with pytest.raises(InvalidInputError, match=rf"serve_port={port} is invalid: .*free"):
            check(settings)


def test_a_model_uri_the_registry_does_not_know_is_named(small_champion):
    settings = small_champion.settings.model_copy(update={"model_uri": "models:/nothing@champion"})
    with pytest.raises(InvalidInputError) as caught:
        check(
            settings.model_copy(
                update={"serve": settings.serve.model_copy(update={"port": free_port()})}
            )
        )
    assert caught.value.field == "model_uri"
    assert "icans train" in str(caught.value)


def test_a_card_horizon_the_model_does_not_estimate_is_named_before_any_worker(small_champion):
    """The small champion was trained for day 28 alone (its run's horizons parameter): cards
    coloured by the 72-hour risk are refused before the service starts, naming the setting."""
    cds = load_settings(cds_indicator_horizon="72h", cds_thresholds={"72h": [0.05, 0.15]}).cds
    settings = small_champion.settings.model_copy(
        update={
            "serve": small_champion.settings.serve.model_copy(update={"port": free_port()}),
            "cds": cds,
        }
    )
    with pytest.raises(InvalidInputError) as caught:
        check(settings)
    assert (caught.value.field, caught.value.value) == ("cds_indicator_horizon", "72h")
    assert "estimates day28" in str(caught.value) and "\n" not in str(caught.value)


def test_the_horizons_a_run_trained_for_are_read_from_its_parameters(tmp_path):
    """As ``icans train`` logs them (its configuration, one parameter per field); a run from
    before horizons has none: day 28 alone."""
    from mlflow.tracking import MlflowClient

    from serving.preflight import trained_horizons

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("runs")
    every, old = client.create_run(experiment), client.create_run(experiment)
    client.log_param(every.info.run_id, "horizons", str(("72h", "7d", "day28")))
    client.log_param(old.info.run_id, "cv_folds", "3")
    assert trained_horizons(client, every.info.run_id) == ("72h", "7d", "day28")
    assert trained_horizons(client, old.info.run_id) == ("day28",)


def test_a_good_configuration_passes_and_creates_nothing(small_champion, tmp_path):
    artifacts = tmp_path / "not-yet" / "artifacts"
    clients = write_clients_file(tmp_path, ["https://ehr.example.org/fhir"])
    settings = small_champion.settings.model_copy(
        update={
            "artifacts_dir": artifacts,
            "audit_log": artifacts / "audit.jsonl",
            "prediction_log_dir": artifacts / "predictions",
            "serve": small_champion.settings.serve.model_copy(update={"port": free_port()}),
            "cds": small_champion.settings.cds.model_copy(update={"clients": clients}),
        }
    )
    check(settings)
    assert not (tmp_path / "not-yet").exists()


# --------------------------------------------------------------------------------------------
# The supervisor on a small tree: SIGINT, a hung child killed, an orphan stopped
# --------------------------------------------------------------------------------------------

HANGS = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
signal.signal(signal.SIGINT, lambda *a: time.sleep(600))  # never drains
print("up", flush=True)
time.sleep(600)
"""

LEAVES_AN_ORPHAN = """
import subprocess, sys, time
drains = '''
import signal, sys, time
from pathlib import Path
def stop(*a):
    Path(sys.argv[1]).write_text("drained")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
Path(sys.argv[1] + ".ready").write_text("ready")
time.sleep(600)
'''
subprocess.Popen([sys.executable, "-c", drains, sys.argv[1]])
print("up", flush=True)
time.sleep(600)  # SIGTERM's default: dies at once, as mlflow's launcher does
"""


def _supervised(code: str, *args: str) -> tuple[subprocess.Popen, list[psutil.Process]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops.supervisor",
            "--stop-timeout",
            "1",
            "--",
            sys.executable,
            "-c",
            textwrap.dedent(code),
            *args,
        ],
        stdout=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    deadline = time.monotonic() + 10
    while len(tree := psutil.Process(proc.pid).children(recursive=True)) < 2:
        assert time.monotonic() < deadline, "the grandchild did not start"
        time.sleep(0.05)
    return proc, tree


def test_sigint_stops_a_tree_that_hangs_by_killing_it_after_the_timeout():
    proc, tree = _supervised(HANGS)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=15) == 128 + signal.SIGINT
    assert _wait_gone(tree, 2) == []


def test_an_orphaned_server_process_is_stopped_gracefully(tmp_path):
    """The launcher dies at SIGTERM; the process it started is signalled itself and drains."""
    proc, tree = _supervised(LEAVES_AN_ORPHAN, str(tmp_path / "drained"))
    deadline = time.monotonic() + 10
    while not (tmp_path / "drained.ready").exists():  # its SIGTERM handler is in place
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=15) == 128 + signal.SIGTERM
    assert _wait_gone(tree, 2) == []
    assert (tmp_path / "drained").read_text() == "drained"


# --------------------------------------------------------------------------------------------
# Real starts: icans serve and bentoml serve, each in its own process, all at once
# --------------------------------------------------------------------------------------------


@dataclass
class Start:
    proc: subprocess.Popen
    out: Path
    err: Path
    port: int
    began: float

    def finish(self, timeout: float) -> tuple[int, str, float]:
        """Exit code, stderr, seconds from the start; the process killed if still running."""
        try:
            code = self.proc.wait(timeout=max(0.0, self.began + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_tree(self.proc)
            pytest.fail(f"still running after {timeout} s:\n{self.err.read_text()[-3000:]}")
        return code, self.err.read_text(), time.monotonic() - self.began


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    proc.wait(timeout=10)


def _start(command: list[str], env: dict, directory: Path, port: int) -> Start:
    out, err = directory / "out.log", directory / "err.log"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(command, env=env, stdout=o, stderr=e, cwd=PROJECT_ROOT)
    return Start(proc, out, err, port, time.monotonic())


def _broken_copy(settings, directory: Path):
    """A copy of the registry whose champion is a version with no model files: it resolves
    (the check passes) but no worker can load it."""
    from mlflow import MlflowClient

    db = directory / "mlflow.db"
    shutil.copy(Path(settings.tracking_uri.removeprefix("sqlite:///")), db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri, uri)
    good = client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    bad = client.create_model_version(
        settings.model_name, f"runs:/{good.run_id}/no-such-model", run_id=good.run_id
    )
    client.set_registered_model_alias(settings.model_name, settings.model_alias, bad.version)
    return settings.model_copy(update={"tracking_uri": uri})


@pytest.fixture(scope="module")
def starts(small_champion, tmp_path_factory):
    """Four starts at once, on their own ports and artefact directories: ``icans serve`` and
    ``bentoml serve`` with a CDS clients file that does not exist, ``bentoml serve`` of a
    champion that cannot be loaded, and ``icans serve`` of the small champion, good."""
    made: dict[str, Start] = {}

    def settings_for(name: str, base=small_champion.settings, **cds):
        directory = tmp_path_factory.mktemp(name)
        port = free_port()
        serve = base.serve.model_copy(update={"port": port, "public_url": ""})
        settings = base.model_copy(
            update={
                "artifacts_dir": directory / "artifacts",
                "audit_log": directory / "artifacts" / "audit.jsonl",
                "prediction_log_dir": directory / "artifacts" / "predictions",
                "serve": serve,
                "cds": base.cds.model_copy(update=cds),
            }
        )
        return settings, directory, port

    missing = Path("/nonexistent/icans/cds-clients.toml")
    icans = [sys.executable, "-m", "cli.main", "serve"]
    settings, directory, port = settings_for("icans-bad", clients=missing)
    made["icans serve, bad"] = _start(icans, server_environment(settings), directory, port)
    settings, directory, port = settings_for("bentoml-bad", clients=missing)
    made["bentoml serve, bad"] = _start(
        server_command("127.0.0.1", port), server_environment(settings), directory, port
    )
    directory = tmp_path_factory.mktemp("broken-registry")
    broken = _broken_copy(small_champion.settings, directory)
    settings, directory, port = settings_for("bentoml-broken", base=broken)
    made["bentoml serve, broken model"] = _start(
        server_command("127.0.0.1", port), server_environment(settings), directory, port
    )
    settings, directory, port = settings_for("icans-good")
    made["icans serve, good"] = _start(icans, server_environment(settings), directory, port)
    yield made
    for start in made.values():
        if start.proc.poll() is None:
            _kill_tree(start.proc)


@pytest.mark.server
@pytest.mark.parametrize("command", ["icans serve", "bentoml serve"])
def test_a_bad_clients_file_ends_the_start_with_code_2_and_one_line(starts, command):
    start = starts[f"{command}, bad"]
    code, err, took = start.finish(FAIL_FAST_S)
    assert code == 2, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: cds_clients='/nonexistent/icans/cds-clients.toml' is invalid: expected an "
        "existing TOML file"
    ], err[-3000:]
    assert "Traceback" not in err
    assert "Starting production" not in start.out.read_text() + err  # no server started
    print(f"{command}: exit code 2 after {took:.1f} s")


@pytest.mark.server
def test_a_worker_that_cannot_start_stops_bentoml_serve_instead_of_restarting(starts):
    start = starts["bentoml serve, broken model"]
    tree = psutil.Process(start.proc.pid)
    seen: list[psutil.Process] = []
    while start.proc.poll() is None and time.monotonic() < start.began + WORKER_FAIL_S:
        with contextlib.suppress(psutil.Error):
            seen.extend(c for c in tree.children(recursive=True) if c not in seen)
        time.sleep(0.2)
    code, err, took = start.finish(WORKER_FAIL_S)
    assert code == 2, err[-3000:]
    # the version the alias names (no files, no digest recorded) is refused before anything
    # of it is unpickled (registry.digest); the worker says so and stops the server
    assert "error: the service worker cannot start: icans-risk version" in err, err[-3000:]
    assert "error: a service worker could not start" in err
    assert _wait_gone(seen, 5) == []
    assert _port_is_free(start.port)
    print(f"bentoml serve, worker failed: exit code 2 after {took:.1f} s")


@pytest.mark.server
def test_sigterm_to_icans_serve_stops_the_arbiter_and_its_workers(starts):
    start = starts["icans serve, good"]
    url = f"http://127.0.0.1:{start.port}"
    wait_ready(url, start.proc, start.err, timeout=180)
    tree = psutil.Process(start.proc.pid).children(recursive=True)
    assert len(tree) >= 3, _running(tree)  # the arbiter and two workers
    signalled = time.monotonic()
    os.kill(start.proc.pid, signal.SIGTERM)  # its own process, not its group
    assert start.proc.wait(timeout=STOP_S) == 128 + signal.SIGTERM
    assert _wait_gone(tree, 2) == []
    assert _port_is_free(start.port)
    print(f"icans serve stopped {len(tree)} processes in {time.monotonic() - signalled:.1f} s")


# --------------------------------------------------------------------------------------------
# The tracking server
# --------------------------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.postgres
def test_sigterm_to_the_tracking_server_stops_every_process_of_it():
    from ops.tracking_server import start, status, stop

    base = Path(tempfile.mkdtemp(prefix="icans-tracking-"))  # PostgreSQL runs as postgres
    base.chmod(0o755)
    settings = load_settings(
        artifacts_dir=base / "artifacts",
        tracking_server_port=free_port(),
        tracking_db_port=free_port(),
    )
    try:
        pid = start(settings).status.mlflow_pid
        assert pid is not None
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        assert len(tree) >= 4, _running(tree)  # ours, mlflow's launcher, uvicorn, its workers
        signalled = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        assert _wait_gone(tree, STOP_S) == []
        assert _port_is_free(settings.tracking.server_port)
        assert status(settings).mlflow_pid is None
        print(f"tracking server: {len(tree)} processes in {time.monotonic() - signalled:.1f} s")
    finally:
        try:
            stop(settings)
        finally:
            shutil.rmtree(base, ignore_errors=True)
