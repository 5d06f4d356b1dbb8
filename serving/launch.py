"""Start the BentoML server for a registered model (``icans serve``).

It refuses to listen on a non-loopback address without authentication
(:func:`check_exposure`). The model is loaded once here first: with no registered model, or an
unreadable one, the command refuses to start and says what to run, instead of starting workers
that would fail.
The tracking URI is made absolute because BentoML workers run in their own processes.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import psutil
from pydantic import SecretStr

from icans.config import Settings
from icans.errors import InvalidInputError
from registry.store import load_registered

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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


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


def check_exposure(settings: Settings) -> None:
    """Refuse to serve to the network without authentication: every route would answer anyone
    who can reach the port. Loopback is fine; otherwise ``serve.api_token`` (ICANS_API_TOKEN) must
    be set, or ``serve.allow_unauthenticated_network`` (ICANS_ALLOW_UNAUTHENTICATED_NETWORK=true)
    must say that a gateway in front authenticates every call."""
    serve, host = settings.serve, settings.serve.host
    if is_loopback(host) or serve.api_token or serve.allow_unauthenticated_network:
        return
    raise InvalidInputError(
        "serve_host",
        host,
        "a loopback address (127.0.0.1) when no authentication is configured: set "
        "ICANS_API_TOKEN, or ICANS_ALLOW_UNAUTHENTICATED_NETWORK=true if a gateway in front "
        "authenticates every call (otherwise anyone reaching the port gets every route)",
    )


def serve(settings: Settings) -> int:
    """Check the model loads, then run ``bentoml serve`` on ``settings.serve.host`` and
    ``settings.serve.port`` until it stops; returns its exit code."""
    settings = settings.model_copy(
        update={"tracking_uri": absolute_tracking_uri(settings.tracking_uri)}
    )
    host, port = settings.serve.host, settings.serve.port
    check_exposure(settings)  # before anything starts
    loaded = load_registered(settings.model_uri, settings)  # ModelNotFoundError: no start
    print(
        f"Serving {loaded.ref.name} version {loaded.ref.version} on http://{host}:{port} "
        f"(API under /v1, docs at /v1/docs, health at /livez and /readyz). Ctrl-C stops.",
        flush=True,
    )
    return subprocess.call(server_command(host, port), env=server_environment(settings))
