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

from icans.config import Settings, load_settings
from serving.runtime import ModelRuntime

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def absolute_tracking_uri(uri: str) -> str:
    """``sqlite:///mlflow.db`` (relative to the working directory) -> an absolute sqlite URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def server_environment(settings: Settings, model_uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = absolute_tracking_uri(settings.tracking_uri)
    env["ICANS_MODEL_URI"] = model_uri
    env.setdefault("ICANS_AUDIT_LOG", str((settings.artifacts_dir / "audit.jsonl").resolve()))
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


def serve(
    model: str | None, host: str, port: int, config: Path | None, tracking_uri: str | None
) -> int:
    settings = load_settings(config, tracking_uri=tracking_uri)
    settings = settings.model_copy(
        update={"tracking_uri": absolute_tracking_uri(settings.tracking_uri)}
    )
    uri = model or settings.model_uri
    runtime = ModelRuntime.load(uri, settings)  # raises ModelNotFoundError: nothing starts
    print(
        f"Serving {runtime.ref.name} version {runtime.ref.version} on http://{host}:{port} "
        f"(API under /v1, docs at /v1/docs, health at /livez and /readyz). Ctrl-C stops.",
        flush=True,
    )
    return subprocess.call(server_command(host, port), env=server_environment(settings, uri))
