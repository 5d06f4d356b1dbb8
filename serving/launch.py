"""Start the BentoML server for a registered model (``icans serve``).

The model is loaded once here first: with no registered model, or an unreadable one, the
command refuses to start and says what to run, instead of starting workers that would fail.
The tracking URI is made absolute because BentoML workers run in their own processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from icans.config import Settings
from model.registry import load_registered

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def absolute_tracking_uri(uri: str) -> str:
    """``sqlite:///mlflow.db`` (relative to the working directory) -> an absolute sqlite URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def server_environment(settings: Settings) -> dict[str, str]:
    """The workers' environment: they read the same settings (``ICANS_<FIELD>``), with paths
    made absolute because BentoML may run them from another directory."""
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = absolute_tracking_uri(settings.tracking_uri)
    env["ICANS_MODEL_URI"] = settings.model_uri
    env["ICANS_AUDIT_LOG"] = str(Path(settings.audit_log).resolve())
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


def serve(settings: Settings) -> int:
    """Check the model loads, then run ``bentoml serve`` on ``settings.serve_host`` and
    ``settings.serve_port`` until it stops; returns its exit code."""
    settings = settings.model_copy(
        update={"tracking_uri": absolute_tracking_uri(settings.tracking_uri)}
    )
    host, port = settings.serve_host, settings.serve_port
    loaded = load_registered(settings.model_uri, settings)  # ModelNotFoundError: no start
    print(
        f"Serving {loaded.ref.name} version {loaded.ref.version} on http://{host}:{port} "
        f"(API under /v1, docs at /v1/docs, health at /livez and /readyz). Ctrl-C stops.",
        flush=True,
    )
    return subprocess.call(server_command(host, port), env=server_environment(settings))
