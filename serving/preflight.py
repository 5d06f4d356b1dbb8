"""Every setting and file the service reads, checked once before any worker starts.

Why. A BentoML worker reads the CDS clients file, opens the audit trail, the prediction log and
the explanation records, and loads the model in its constructor; a worker whose constructor
raises exits, and BentoML's arbiter starts another, every few seconds, forever: ``/readyz``
never answers and the command never exits. So :func:`check` runs first, in one process, and a
bad setting stops the start with one line naming the setting, the value and the rule
(:class:`~icans.errors.InvalidInputError`; the command line's exit code 2). What it checks, in
this order (cheap first; the first failure is reported):

* exposure: a non-loopback ``serve_host`` needs ``api_token`` or
  ``allow_unauthenticated_network`` (:func:`check_exposure`);
* the port: ``serve_port`` free and bindable on ``serve_host`` (as the server binds it);
* ``cds_clients``: the file parses, every client is well formed and its ``jwks_file`` exists and
  holds a key set (:func:`serving.cds.client_auth.load_clients`, the worker's own reader);
* the directories the workers write: ``artifacts_dir`` (the explanation records, the replay
  store), ``prediction_log_dir``, the directory of ``audit_log`` (and the file itself when it
  exists): each exists and takes a new file, or can be created (its nearest existing parent
  is a writable directory). Nothing is created here;
* ``cds_state_uri``: when set, the PostgreSQL database of the shared CDS Hooks state answers
  and holds its tables (:func:`check_shared_state`);
* ``tracking_uri``: a tracking server (``http(s)://``) answers within seconds;
* ``model_uri``: the registry at ``tracking_uri`` answers and names a version logged by a
  training run (one registry call: the model is not loaded here; ``icans serve`` loads it
  next, and a worker that cannot load it stops the server, below);
* ``cds_indicator_horizon``, when not day 28: that version was trained for it (its training
  run's ``horizons`` parameter; one more registry call). A worker checks the model it loads
  again, so a version that does not estimate it never answers.

Where it runs, so that both ways of starting the service fail fast:

* ``icans serve`` (:func:`serving.launch.serve`) calls :func:`check` before starting anything;
* ``bentoml serve serving.service:IcansRisk`` (a container's command) runs
  :func:`arbiter_check` in its arbiter: the service's ``@bentoml.on_deployment`` hook, which
  BentoML 1.4 calls once in the arbiter process after importing the service and before it
  binds the socket or spawns a worker (``_bentoml_impl.server.serving.serve_http`` ->
  ``server_on_deployment``). The host and port are ``bentoml serve``'s own ``--host`` and
  ``--port`` (its command line, or BentoML's configured defaults). A bad setting prints
  ``error: ...`` on stderr and exits with code 2, before any worker exists.

A worker that still cannot start (the model version named cannot be loaded, a file changed
since the check) does not start again in a loop: the server stops. The worker logs why and
tells its arbiter (:func:`worker_cannot_start`, SIGUSR1 to its parent, armed by
:func:`arbiter_check` only); the arbiter prints ``error: a service worker could not start
...`` and stops as on SIGTERM (its workers drained and stopped), then exits with code 2. A
supervisor (systemd ``Restart=on-failure``, Kubernetes) restarts it with its own back-off. The
alternative, a server that stays up and reports the reason on ``/readyz``, was not chosen:
a replica that can never answer is better gone from the load balancer and seen as failed.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from icans.config import Settings, load_settings
from icans.errors import IcansError, InvalidInputError
from icans.horizons import HORIZON_NAMES, TARGET_HORIZON

# In the arbiter's environment (copied into its workers'): its process id, once it listens for
# a worker that cannot start. Not a setting (Settings reads only its own names).
ARBITER_VARIABLE = "ICANS_SERVE_ARBITER_PID"
WORKER_FAILED = signal.SIGUSR1  # a worker to its arbiter; BentoML's arbiter (circus) leaves it
FAILED_EXIT_CODE = 2


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


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


def check_port(host: str, port: int) -> None:
    """``serve_port`` free on ``serve_host``: bound here and released, with SO_REUSEADDR as the
    server binds it (a port in TIME_WAIT after a stop is free; one a process listens on is
    not). An address this machine does not have is ``serve_host``'s fault."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInputError("serve_host", host, f"an address to listen on ({exc})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidInputError(
                    "serve_host", host, f"an address of this machine ({exc.strerror})"
                ) from None
            raise InvalidInputError(
                "serve_port", port, f"a free TCP port on {host} (binding it: {exc.strerror})"
            ) from None


def check_clients(settings: Settings) -> None:
    """``cds_clients``, read as a worker reads it: every problem names the file, the client and
    the field (:func:`~serving.cds.client_auth.load_clients`)."""
    from serving.cds.client_auth import load_clients

    if settings.cds.clients is not None:
        load_clients(settings.cds.clients)


def check_shared_state(settings: Settings) -> None:
    """``cds_state_uri``, when set: its database answers and holds its tables, as a worker
    opens it (:func:`serving.cds.state.check_state`)."""
    from serving.cds.state import check_state  # psycopg only where a database is named

    check_state(settings)


def check_writable_dir(setting: str, directory: Path) -> None:
    """``directory`` takes a new file (probed with one, removed at once), or does not exist yet
    and its nearest existing parent is a directory this process may create it in."""
    directory = Path(directory).absolute()
    if directory.is_dir():
        try:
            with tempfile.TemporaryFile(dir=directory):
                return
        except OSError as exc:
            raise InvalidInputError(
                setting, str(directory), f"a directory this process can write in ({exc.strerror})"
            ) from None
    parent = directory
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent == directory:
        rule = "a directory (it is a file)"
    elif not parent.is_dir():
        rule = f"a directory that can be created ({parent} is not a directory)"
    elif not os.access(parent, os.W_OK | os.X_OK):
        rule = f"a directory that can be created ({parent} is not writable)"
    else:
        return
    raise InvalidInputError(setting, str(directory), rule)


def check_directories(settings: Settings) -> None:
    """The directories the workers write in (the module docstring's list)."""
    check_writable_dir("artifacts_dir", settings.artifacts_dir)
    check_writable_dir("prediction_log_dir", settings.prediction_log_dir)
    audit = Path(settings.audit_log).absolute()
    if audit.is_dir():
        raise InvalidInputError("audit_log", str(audit), "a file (it is a directory)")
    check_writable_dir("audit_log", audit.parent)
    if audit.exists() and not os.access(audit, os.W_OK):
        raise InvalidInputError("audit_log", str(audit), "a file this process can append to")


@contextlib.contextmanager
def _bounded_http_retries() -> Iterator[None]:
    """MLflow's HTTP client, for the check only, with one retry and a 10 s timeout instead of
    seven retries and backoff (minutes against a server that is down); the environment is
    restored after (BentoML's workers copy the arbiter's)."""
    bounded = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    }
    before = {name: os.environ.get(name) for name in bounded}
    os.environ.update(bounded)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_tracking_server(uri: str) -> None:
    """An HTTP(S) ``tracking_uri`` answers at all (MLflow's ``/health``; any HTTP status will
    do, a server that wants a login answers too): a server that is down or a wrong address is
    named as such, not as a missing model."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InvalidInputError(
            "tracking_uri", uri, f"a tracking server that answers ({reason})"
        ) from None


def check_model(settings: Settings) -> None:
    """``model_uri`` names a version the registry at ``tracking_uri`` answers with (one call;
    nothing is loaded), and that version estimates ``cds_indicator_horizon``
    (:func:`check_model_horizons`)."""
    from registry.store import resolve, use_tracking

    check_tracking_server(settings.tracking_uri)
    try:
        with _bounded_http_retries():
            client = use_tracking(settings)
            ref = resolve(settings.model_uri, client)
            if settings.cds.indicator_horizon != TARGET_HORIZON.name:
                settings.cds.check_model_horizons(
                    trained_horizons(client, ref.run_id), f"{ref.name} version {ref.version}"
                )
    except InvalidInputError:
        raise
    except IcansError as exc:  # ModelNotFoundError: says what to run
        raise InvalidInputError(
            "model_uri", settings.model_uri, f"a registered model version ({exc})"
        ) from None


def trained_horizons(client, run_id: str) -> tuple[str, ...]:
    """The horizons a version was trained for, from its training run's ``horizons`` parameter
    (``icans train`` logs its configuration; ``"('72h', '7d', 'day28')"``); day 28 alone for
    a run from before horizons, which has none. Every model estimates day 28, so only a
    setting naming a shorter horizon needs this (one more registry call, none by default);
    the loaded model's own horizons are checked again when a worker loads it
    (:meth:`serving.model_version.ModelRuntime.load`)."""
    from mlflow.exceptions import MlflowException

    try:
        params = client.get_run(run_id).data.params
    except (MlflowException, OSError):
        return HORIZON_NAMES  # the run is not readable here: the worker's load decides
    text = params.get("horizons")
    if text is None:
        return (TARGET_HORIZON.name,)
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        names = None
    if not isinstance(names, tuple | list) or not all(isinstance(n, str) for n in names):
        return HORIZON_NAMES  # unreadable here: the worker's load decides
    return tuple(names)


def check(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Everything a worker will read, in the module docstring's order; the first problem as an
    InvalidInputError. ``host``/``port``: where the server will really listen, when that is not
    ``serve.host``/``serve.port`` (``bentoml serve --host``)."""
    host = settings.serve.host if host is None else host
    port = settings.serve.port if port is None else port
    serve = settings.serve.model_copy(update={"host": host})
    check_exposure(settings.model_copy(update={"serve": serve}))
    check_port(host, port)
    check_clients(settings)
    check_directories(settings)
    check_shared_state(settings)
    check_model(settings)


# --------------------------------------------------------------------------------------------
# In BentoML's arbiter (bentoml serve) and its workers
# --------------------------------------------------------------------------------------------


def _bentoml_address() -> tuple[str | None, int | None]:
    """``bentoml serve``'s ``--host`` and ``--port`` as it will bind them: its command line's
    (the running click command's parameters), else BentoML's configured defaults; (None,
    None) when the service is served some other way (BentoML's Python API)."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command.name != "serve":
        return None, None
    from bentoml._internal.configuration.containers import BentoMLContainer

    host = ctx.params.get("host") or BentoMLContainer.http.host.get()
    port = ctx.params.get("port") or BentoMLContainer.http.port.get()
    return str(host), int(port)


def _stop_arbiter(signum: int, frame: FrameType | None) -> None:
    """SIGUSR1 from a worker that could not start: stop the server as on SIGTERM, and exit
    with code 2 once it has stopped (:func:`arbiter_check`)."""
    global _worker_failed
    _worker_failed = True
    signal.raise_signal(signal.SIGTERM)  # BentoML's arbiter drains and stops its workers


_worker_failed = False


def _exit_if_a_worker_failed() -> None:
    if _worker_failed:
        print(
            "error: a service worker could not start (its error is logged above); the server "
            f"stopped instead of restarting it (exit code {FAILED_EXIT_CODE})",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(FAILED_EXIT_CODE)


def arbiter_check() -> None:
    """The service's ``@bentoml.on_deployment`` hook, in ``bentoml serve``'s arbiter before any
    worker: :func:`check` on the settings of the environment and the address ``bentoml
    serve`` binds; on a problem, ``error: ...`` on stderr and exit code 2. Then it arms the
    arbiter for a worker that cannot start (the module docstring). Outside ``bentoml serve``'s
    command (BentoML's Python API), only the settings are checked, not the address, and
    nothing is armed."""
    host, port = _bentoml_address()
    try:
        settings = load_settings()
        if host is None:  # not bentoml serve's command: the settings' address is not ours
            check_clients(settings)
            check_directories(settings)
            check_model(settings)
        else:
            check(settings, host, port)
    except IcansError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(FAILED_EXIT_CODE) from None
    if host is None:
        return
    import click

    signal.signal(WORKER_FAILED, _stop_arbiter)
    os.environ[ARBITER_VARIABLE] = str(os.getpid())  # BentoML copies it into its workers
    click.get_current_context().call_on_close(_exit_if_a_worker_failed)


def worker_cannot_start(exc: BaseException) -> None:
    """In a worker whose constructor failed: one ``error:`` line on stderr and, when its arbiter
    armed itself (:func:`arbiter_check`), the signal that stops the server. Elsewhere (the
    service run in process, by tests) nothing: the caller re-raises."""
    arbiter = os.environ.get(ARBITER_VARIABLE)
    if arbiter is None or arbiter != str(os.getppid()):
        return
    print(f"error: the service worker cannot start: {exc}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):
        os.kill(int(arbiter), WORKER_FAILED)
