"""MLflow tracking and model registry: log pipelines, register versions, move the alias.

Models are logged with the ``sklearn`` flavour in cloudpickle format (our pipelines hold custom
transformers that skops would have to be told to trust). Pickle executes code when loaded:
load models only from this project's own registry.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from icans.config import Settings
from icans.errors import ModelNotFoundError

_REQUIREMENTS = (
    "numpy",
    "pandas",
    "scikit-learn",
    "xgboost-cpu",
    "scipy",
    "pydantic",
    "icans-risk",
)
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def use_tracking(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store (sqlite file by default) and return a client."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # clean CLI output
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


def use_experiment(name: str, settings: Settings, client: MlflowClient) -> None:
    """Select (creating if needed) an experiment. With a sqlite store its artefacts go in
    ``mlruns/`` beside the database file, not in whatever directory the process runs from."""
    if client.get_experiment_by_name(name) is None:
        location = None
        prefix = "sqlite:///"
        if settings.tracking_uri.startswith(prefix):
            db = Path(settings.tracking_uri[len(prefix) :]).resolve()
            location = (db.parent / "mlruns").as_uri()
        client.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)


def requirements() -> list[str]:
    out = []
    for pkg in _REQUIREMENTS:
        try:
            out.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            continue
    return out


def log_pipeline(pipeline, name: str, example: pd.DataFrame) -> mlflow.models.model.ModelInfo:
    """Log a fitted pipeline (raw layout in, P(event) out) with signature and input example."""
    proba = pipeline.predict_proba(example)
    signature = infer_signature(example, proba)
    return mlflow.sklearn.log_model(
        pipeline,
        name=name,
        signature=signature,
        input_example=example,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=requirements(),
    )


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    alias: str | None
    run_id: str


def resolve(uri: str, client: MlflowClient) -> ModelRef:
    """``models:/name@alias`` or ``models:/name/version`` -> the registered version."""
    m = _ALIAS_URI.match(uri)
    if not m:
        raise ModelNotFoundError(
            f"{uri!r} is not a registry URI: expected models:/<name>@<alias> or "
            "models:/<name>/<version>"
        )
    name, alias, version = m["name"], m["alias"], m["version"]
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no registered model answers to {uri!r} in {mlflow.get_tracking_uri()}: "
            "train and register one with 'icans train --cohort DIR'"
        ) from exc
    return ModelRef(name, str(mv.version), alias, mv.run_id)


def load_pipeline(uri: str, client: MlflowClient):
    """The fitted pipeline behind a registry URI (raises ModelNotFoundError if absent)."""
    ref = resolve(uri, client)
    try:
        return mlflow.sklearn.load_model(f"models:/{ref.name}/{ref.version}"), ref
    except (MlflowException, OSError) as exc:
        raise ModelNotFoundError(
            f"model {uri!r} (version {ref.version}) could not be loaded: {exc}"
        ) from exc


def register(
    model_uri: str,
    name: str,
    client: MlflowClient,
    *,
    promote: bool,
    alias: str,
    description: str,
    tags: dict[str, str],
) -> str:
    """Register a logged model, tag it, and move ``alias`` to it only if ``promote``.

    If anything fails after the version was created, the version is deleted again, so the
    registry never holds a half-registered model.
    """
    mv = mlflow.register_model(model_uri, name)
    try:
        client.update_model_version(name, mv.version, description=description)
        for key, value in tags.items():
            client.set_model_version_tag(name, mv.version, key, value)
        if promote:
            client.set_registered_model_alias(name, alias, mv.version)
    except BaseException:
        client.delete_model_version(name, mv.version)
        raise
    return str(mv.version)


def metric_key(text: str) -> str:
    """MLflow metric names allow letters, digits, '_', '-', '.', ' ', '/'."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)
