"""A local shared MLflow tracking server on PostgreSQL: ``icans tracking start|stop|status``.

Several ``icans train`` processes, or several people, recording into one SQLite file contend
for its lock; a team shares a tracking *server*. This module runs one on this machine for local
and development use: ``mlflow server`` with a PostgreSQL backend store
(:mod:`ops.postgres_cluster`) and the artefacts served by the server itself
(``--serve-artifacts``: clients upload and download through ``http://127.0.0.1:<port>`` and
never need the artefact directory), everything under one project-local directory
(``tracking.server_dir``, default ``<artifacts_dir>/tracking-server``)::

    pgdata/        PostgreSQL's cluster (initialised once; role and database ``mlflow``)
    run/           PostgreSQL's unix socket
    artifacts/     the artefacts the server stores
    logs/          postgres.log, mlflow.log (their tail ends any error)
    mlflow.pid     the mlflow server: process id and start time (it leads its process group)

The process recorded is :mod:`ops.supervisor` running ``mlflow server`` in its own process group:
``mlflow server`` is a launcher that runs uvicorn, itself a supervisor of workers, and a SIGTERM
to the launcher alone used to leave uvicorn and its workers running and holding the port. A
SIGTERM or SIGINT to the recorded process (``kill PID``, the id ``icans tracking status``
prints) stops all of them: forwarded for a graceful stop, what is left killed after
``STOP_GRACE_S``.

Both listen on 127.0.0.1 only, and PostgreSQL trusts loopback connections: this is for local
use. A centre's deployment points ``MLFLOW_TRACKING_URI`` at its own, authenticated server.

:func:`start` is idempotent (what runs is kept; a pid file or ``postmaster.pid`` left by a killed
server is seen to be stale and replaced, and workers a killed server left are stopped) and
returns only once the server answers. :func:`stop` stops the mlflow server's whole process
group (SIGTERM, SIGKILL after a grace period) and PostgreSQL (``pg_ctl stop -m fast``) and
returns only once no process of either is left.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from icans.config import Settings
from icans.errors import InvalidInputError
from ops.postgres_cluster import (
    HOST,
    Cluster,
    TrackingServerError,
    bin_dir,
    check_free_port,
    tail,
)

__all__ = ["ServerStatus", "StartResult", "TrackingServerError", "start", "status", "stop"]

_MARK = "ICANS_TRACKING_SERVER"  # in the environment of every process of a server: its dir
WORKERS = 2  # uvicorn workers of the mlflow server (MLflow's default, 4, is too many here)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0  # the supervisor's drain before it kills what is left (< STOP_TIMEOUT_S)


@dataclass(frozen=True)
class ServerPaths:
    """Where the tracking server keeps everything (the module docstring's layout)."""

    root: Path

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def mlflow_log(self) -> Path:
        return self.root / "logs" / "mlflow.log"

    @property
    def mlflow_pid(self) -> Path:
        return self.root / "mlflow.pid"

    def cluster(self, db_port: int) -> Cluster:
        logs = self.root / "logs" / "postgres.log"
        return Cluster(self.root / "pgdata", self.root / "run", logs, db_port)


@dataclass(frozen=True)
class ServerStatus:
    """What runs now: each server's process id (None: not running) and whether the tracking
    server answers over HTTP."""

    directory: Path
    tracking_uri: str
    database_uri: str
    postgres_pid: int | None
    mlflow_pid: int | None
    answering: bool

    @property
    def running(self) -> bool:
        return self.postgres_pid is not None and self.mlflow_pid is not None and self.answering

    def export_line(self) -> str:
        return f"export MLFLOW_TRACKING_URI={self.tracking_uri}"

    def describe(self) -> str:
        def state(pid: int | None) -> str:
            return f"running (PID {pid})" if pid else "not running"

        answer = "answering" if self.answering else "not answering"
        return (
            f"MLflow tracking server {self.tracking_uri}: {state(self.mlflow_pid)}, {answer}\n"
            f"PostgreSQL {self.database_uri}: {state(self.postgres_pid)}\n"
            f"data in {self.directory}"
        )


@dataclass(frozen=True)
class StartResult:
    status: ServerStatus
    started: tuple[str, ...]  # of "postgres", "mlflow": what this call started (empty: all ran)


def _setup(settings: Settings) -> tuple[ServerPaths, Cluster]:
    if settings.tracking.db_port == settings.tracking.server_port:
        raise InvalidInputError(
            "tracking_db_port",
            settings.tracking.db_port,
            f"a port other than tracking_server_port ({settings.tracking.server_port})",
        )
    paths = ServerPaths(Path(settings.tracking.server_dir).resolve())
    return paths, paths.cluster(settings.tracking.db_port)


def status(settings: Settings) -> ServerStatus:
    """What of the tracking server runs now (a stale pid file counts as not running)."""
    paths, cluster = _setup(settings)
    url = f"http://{HOST}:{settings.tracking.server_port}"
    mlflow_pid = _mlflow_pid(paths)
    answering = mlflow_pid is not None and _answers(url)
    return ServerStatus(paths.root, url, cluster.database_uri, cluster.pid(), mlflow_pid, answering)


def start(settings: Settings) -> StartResult:
    """Start what is not running (PostgreSQL, then the mlflow server); return once the server
    answers. TrackingServerError (naming the step, with the log's tail) when a step fails."""
    paths, cluster = _setup(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    started = []
    with _locked(paths):
        bin_dir()  # the programs are there, or the error says how to install them
        if cluster.pid() is None:
            cluster.start()
            started.append("postgres")
        else:
            cluster.create_database()  # a cluster started by hand may not have it yet
        if _mlflow_pid(paths) is None:
            _stop_leftovers(paths)  # workers of a server whose leader was killed
            check_free_port(settings.tracking.server_port, "tracking_server_port")
            _start_mlflow(paths, cluster, settings.tracking.server_port)
            started.append("mlflow")
        now = status(settings)
    if not now.answering:
        raise TrackingServerError(
            f"the MLflow tracking server (PID {now.mlflow_pid}) does not answer on "
            f"{now.tracking_uri}{tail(paths.mlflow_log)}"
        )
    return StartResult(now, tuple(started))


def stop(settings: Settings) -> tuple[str, ...]:
    """Stop the mlflow server's process group and PostgreSQL; return once no process of either
    is left. What was stopped (empty: nothing ran; that is not an error)."""
    paths, cluster = _setup(settings)
    if not paths.root.is_dir():
        return ()
    stopped = []
    with _locked(paths):
        pid = _mlflow_pid(paths)
        if pid is not None:
            _stop_group(pid)
            stopped.append("mlflow")
        if _stop_leftovers(paths):
            stopped.append("mlflow workers left by a killed server")
        paths.mlflow_pid.unlink(missing_ok=True)
        if cluster.stop():
            stopped.append("postgres")
    return tuple(stopped)


def server_command(paths: ServerPaths, cluster: Cluster, port: int) -> list[str]:
    """``mlflow server`` on loopback, PostgreSQL behind it, artefacts served from ``paths``,
    under :mod:`ops.supervisor` (the module docstring)."""
    supervised = [
        sys.executable,
        "-m",
        "ops.supervisor",
        "--stop-timeout",
        str(STOP_GRACE_S),
        "--same-group",
        "--",
    ]
    return [
        *supervised,
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        cluster.database_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(paths.artifacts),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ]


def _start_mlflow(paths: ServerPaths, cluster: Cluster, port: int) -> None:
    paths.artifacts.mkdir(parents=True, exist_ok=True)
    paths.mlflow_log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the server has its own store, not a client's URI
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # MLflow's GenAI job runner: unused
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # a local server reports to no one
    env[_MARK] = str(paths.root)  # inherited by every process of the server (_stop_leftovers)
    with paths.mlflow_log.open("ab") as log:
        proc = subprocess.Popen(
            server_command(paths, cluster, port),
            cwd=paths.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop signals all of it
        )
    record = {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time()}
    paths.mlflow_pid.write_text(json.dumps(record) + "\n")
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = (
                f"exited with code {proc.returncode} while starting"
                if proc.poll() is not None
                else f"did not answer within {START_TIMEOUT_S:.0f} s"
            )
            _stop_group(proc.pid)
            paths.mlflow_pid.unlink(missing_ok=True)
            raise TrackingServerError(
                f"the MLflow tracking server on {url} {why}{tail(paths.mlflow_log)}"
            )
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _mlflow_record(paths: ServerPaths) -> dict | None:
    try:
        return json.loads(paths.mlflow_pid.read_text())
    except (OSError, ValueError):
        return None


def _mlflow_pid(paths: ServerPaths) -> int | None:
    """The mlflow server's id from the pid file, if that process still is the one started
    (the same start time: after a kill the id may name another process)."""
    record = _mlflow_record(paths)
    if record is None:
        return None
    try:
        proc = psutil.Process(int(record["pid"]))
        if (
            abs(proc.create_time() - float(record["started"])) < 1.0
            and proc.status() != psutil.STATUS_ZOMBIE
        ):
            return proc.pid
    except (psutil.Error, KeyError, TypeError, ValueError):
        pass
    return None


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def _stop_leftovers(paths: ServerPaths) -> bool:
    """A server killed outright (SIGKILL to its leader) leaves its uvicorn workers running in
    its process group, holding the port: they are stopped too. Only the group's processes
    marked as this directory's server in their environment are touched (a group id may be
    reused). Whether there were any."""
    record = _mlflow_record(paths)
    if record is None or _mlflow_pid(paths) is not None:
        return False
    leftovers = []
    for proc in _group_members(int(record.get("pid", 0))):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(_MARK) == str(paths.root):
                leftovers.append(proc)
    for proc in leftovers:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=STOP_TIMEOUT_S)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return bool(leftovers)


def _stop_group(pgid: int) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after the grace period;
    returns once the group is empty (reaping the leader if this process started it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline, killed = time.monotonic() + STOP_TIMEOUT_S, False
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)
        left = _group_members(pgid)
        if not left:
            return
        if time.monotonic() > deadline:
            if killed:
                raise TrackingServerError(
                    f"the MLflow tracking server's processes {[p.pid for p in left]} survived "
                    "SIGKILL"
                )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            deadline, killed = time.monotonic() + 10, True
        time.sleep(0.1)


@contextlib.contextmanager
def _locked(paths: ServerPaths) -> Iterator[None]:
    """One start or stop at a time per server directory."""
    with (paths.root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
