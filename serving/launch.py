"""Start the BentoML server for a registered model (``icans serve``).

Fail fast: every setting and file the workers read is checked first (:mod:`serving.preflight`:
exposure, port, CDS clients file and key sets, directories, model URI), then the model is
loaded once here: a bad setting, no registered model or an unreadable one, and the command
refuses to start with one line (exit code 2) instead of starting workers that would fail.

Stop means stop: ``bentoml serve`` runs as a child in a session of its own
(:func:`ops.supervisor.run`); SIGTERM, SIGINT or SIGHUP to this process (``kill PID``, a
supervisor, Ctrl-C) is forwarded to it for a graceful drain, and whatever of its tree (the
arbiter, its workers) is left after ``serve.stop_timeout_s`` is killed, so nothing it started
outlives it and the port is free when it exits.

The tracking URI is made absolute because BentoML workers run in their own processes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psutil
from pydantic import SecretStr

from icans.config import Settings
from ops.supervisor import run
from serving.preflight import check, is_loopback

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def absolute_tracking_uri(uri: str) -> str:
    """``sqlite:///mlflow.db`` (relative to the working directory) -> an absolute sqlite URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def server_environment(settings: Settings) -> dict[str, str]:
    """The workers' environment: every setting as ``ICANS_<FLAT_NAME>`` (``ICANS_SERVE_PORT``
    for ``serve.port``; so a value from ``--config`` or the command line reaches them too),
    paths made absolute because BentoML may run them from another directory, and the tracking
    store as ``MLFLOW_TRACKING_URI``."""
    env = dict(os.environ)
    for name, value in settings.flat().items():
        key = "ICANS_" + name.upper()
        if value is None:
            env.pop(key, None)
        elif isinstance(value, Path):
            env[key] = str(value.resolve())
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, dict):  # cds_thresholds: JSON, as the setting reads it
            env[key] = json.dumps(value)
        else:
            env[key] = str(value).lower() if isinstance(value, bool) else str(value)
    del env["ICANS_TRACKING_URI"]  # MLflow's own variable, which load_settings also reads
    env["MLFLOW_TRACKING_URI"] = absolute_tracking_uri(settings.tracking_uri)
    return env


def server_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:IcansRisk",
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(PROJECT_ROOT),
    ]


def listening_addresses() -> list[str]:
    """The addresses this process accepts TCP connections on (its listening sockets, as the
    operating system reports them), sorted."""
    connections = psutil.Process().net_connections(kind="tcp")
    return sorted({c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN})


def listening_host() -> str | None:
    """The address a BentoML worker serves on (a non-loopback one first, if any), or None
    outside a served worker (in process, as the tests run the app) or when the operating
    system cannot say. Lets the service check its exposure when started by ``bentoml serve``
    directly (a container), not only by ``icans serve``.

    BentoML (1.4) has no public way to tell a worker its address: ``bentoml serve --host``
    goes to the arbiter, which binds the socket and hands it to each worker process as an open
    file descriptor (the private ``--fd N`` argument of its worker script); neither
    ``bentoml.server_context`` nor the configuration (``api_server.http.host`` keeps the
    configured value, 0.0.0.0 by default, whatever ``--host`` says) nor the workers'
    environment carries it. So
    the address is read from what the process really listens on: its listening sockets, from
    the operating system (``psutil``), which holds whatever way BentoML passes the socket.
    ``bentoml.server_context.worker_index`` (public; set only in a served worker, which is how
    BentoML itself tells) says whether this is a worker. ``ICANS_SERVE_HOST`` is not used:
    ``icans serve`` sets it, but ``bentoml serve --host 0.0.0.0`` started by hand does not,
    and the setting's default (127.0.0.1) would then hide the exposure; ``bentoml serve``
    without ``--host`` listens on 0.0.0.0, which is refused as well without authentication.
    """
    from bentoml import server_context  # bentoml is slow to import: only when serving

    if server_context.worker_index is None:
        return None
    try:
        hosts = listening_addresses()
    except (psutil.Error, OSError):
        return None
    exposed = [h for h in hosts if not is_loopback(h)]
    return (exposed or hosts or [None])[0]


def serve(settings: Settings) -> int:
    """Check every setting and file (:func:`serving.preflight.check`) and that the model loads,
    then run ``bentoml serve`` on ``settings.serve.host`` and ``settings.serve.port`` until it
    stops or this process is told to stop; returns its exit code (``128 + signal`` after a
    stop: :func:`ops.supervisor.run`)."""
    settings = settings.model_copy(
        update={"tracking_uri": absolute_tracking_uri(settings.tracking_uri)}
    )
    host, port = settings.serve.host, settings.serve.port
    check(settings)  # before anything starts: InvalidInputError names the setting
    from registry.store import load_registered  # MLflow takes seconds to import: after the check

    loaded = load_registered(settings.model_uri, settings)  # ModelNotFoundError: no start
    print(
        f"Serving {loaded.ref.name} version {loaded.ref.version} on http://{host}:{port} "
        f"(API under /v1, docs at /v1/docs, health at /livez and /readyz). Ctrl-C stops.",
        flush=True,
    )
    return run(
        server_command(host, port),
        env=server_environment(settings),
        stop_timeout_s=settings.serve.stop_timeout_s,
    )
