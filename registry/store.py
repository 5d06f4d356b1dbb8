"""MLflow tracking and model registry: log models, register versions, move the alias, load.

Models are logged with the ``sklearn`` flavour in cloudpickle format (they hold custom
transformers that skops would have to be told to trust: docs/security.md says why pickle stays).
Pickle executes code when loaded, so a version is registered with the SHA-256 digest of its files
and every load checks that digest before unpickling (:mod:`registry.digest`): load models only
from this project's own registry, whose writers are trusted; its artefact store need not be.
Loading reads the pickled file through :mod:`registry.legacy`, so versions registered before the
risk model became one estimator load as the same fitted :class:`~model.risk_model.RiskModel`.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import mlflow
import mlflow.artifacts
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow import sklearn as mlflow_sklearn  # mlflow's lazy loader: imported on first use
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from icans.config import Settings
from icans.errors import IcansError, ModelNotFoundError
from registry.digest import VERSION_TAG, check, fetch, run_tag
from registry.legacy import load_pickle, upgrade

if TYPE_CHECKING:
    from model.risk_model import RiskModel

MODEL_CARD = "model_card.json"  # the training run's headline facts about its model
HORIZONS_TAG = "horizons"  # a version's tag: the horizons it estimates, as a JSON list

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


def use_experiment(name: str, settings: Settings, client: MlflowClient) -> str:
    """Select (creating if needed) an experiment and return its id. With a sqlite store its
    artefacts go in ``mlruns/`` beside the database file, not in whatever directory the process
    runs from. Two processes creating it at once (a shared tracking server) both get it."""
    if client.get_experiment_by_name(name) is None:
        location = None
        prefix = "sqlite:///"
        if settings.tracking_uri.startswith(prefix):
            db = Path(settings.tracking_uri[len(prefix) :]).resolve()
            location = (db.parent / "mlruns").as_uri()
        try:
            client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise  # anything but the other process having created it first
    return mlflow.set_experiment(name).experiment_id


def requirements() -> list[str]:
    out = []
    for pkg in _REQUIREMENTS:
        try:
            out.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            continue
    return out


def log_model(model, name: str, example: pd.DataFrame) -> ModelInfo:
    """Log a fitted model (raw layout in, P(event) out) with signature and input example."""
    proba = model.predict_proba(example)
    signature = infer_signature(example, proba)
    return mlflow_sklearn.log_model(
        model,
        name=name,
        signature=signature,
        input_example=example,
        serialization_format=mlflow_sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=requirements(),
    )


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    alias: str | None
    run_id: str
    artefact_digest: str | None = None  # recorded at registration; None before digests were


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
    if mv.run_id is None:  # registered from outside a run: no card or artefacts to load
        raise ModelNotFoundError(
            f"{uri!r} (version {mv.version}) was not logged by a training run: register one "
            "with 'icans train --cohort DIR'"
        )
    return ModelRef(name, str(mv.version), alias, mv.run_id, (mv.tags or {}).get(VERSION_TAG))


def alias_version(name: str, alias: str, settings: Settings) -> str:
    """The version ``models:/<name>@<alias>`` names now: one registry call, nothing loaded (a
    serving replica asks this on every poll, :mod:`serving.rollout`). ModelNotFoundError when
    the alias is unset or the registry cannot be reached."""
    try:
        return str(use_tracking(settings).get_model_version_by_alias(name, alias).version)
    except (MlflowException, OSError) as exc:
        raise ModelNotFoundError(
            f"models:/{name}@{alias} in {settings.tracking_uri}: {type(exc).__name__}: {exc}"
        ) from exc


def load_logged(
    artifact_uri: str, expected_digest: str | None, model: str, allow_unverified: bool = False
):
    """The model logged at ``artifact_uri`` (``models:/name/version`` or ``runs:/id/path``),
    whose files must hash to ``expected_digest`` (:func:`registry.digest.check`: an
    :class:`~icans.errors.ArtefactDigestError` naming ``model`` otherwise, before anything is
    unpickled; None is refused unless ``allow_unverified``).

    Its files are read once (:func:`registry.digest.fetch`), checked, and the checked bytes
    unpickled with :func:`registry.legacy.load_pickle` (old module names mapped) and
    :func:`registry.legacy.upgrade`d: a version registered before the risk model became one
    estimator comes back as the equivalent :class:`~model.risk_model.RiskModel`."""
    files = fetch(artifact_uri)
    check(files, expected_digest, model, allow_unverified)
    flavour = yaml.safe_load(files["MLmodel"])["flavors"]["sklearn"]
    return upgrade(load_pickle(files[flavour["pickled_model"]]))


def load_run_model(run_id: str, artifact_path: str, settings: Settings):
    """A model logged beside the registered one in training run ``run_id`` (a baseline), checked
    against the digest its run recorded (:func:`registry.digest.run_tag`) before it is
    unpickled, like any load (:func:`load_logged`)."""
    tags = use_tracking(settings).get_run(run_id).data.tags
    return load_logged(
        f"runs:/{run_id}/{artifact_path}",
        tags.get(run_tag(artifact_path)),
        f"{artifact_path} of run {run_id}",
        settings.allow_unverified_models,
    )


@dataclass
class RegisteredModel:
    """A registered version, loaded: the model, which version it is, and its training run's
    model card (headline facts: provenance of the training data, metrics, gates)."""

    model: RiskModel  # load_registered refuses anything without the fitted trees
    ref: ModelRef
    card: dict = field(default_factory=dict)
    trained_at: str = ""

    @property
    def horizons(self) -> tuple[str, ...]:
        """The horizons this version estimates (:mod:`icans.horizons`), shortest first, as its
        model card records them (``horizons``); a version registered before the card held them
        estimates what its model was fitted for (day 28 alone for one from before horizons)."""
        recorded = self.card.get("horizons")
        return tuple(recorded) if recorded else tuple(self.model.horizons_)

    def identity(self) -> dict:
        """Which model answers: for responses, reports and the audit log."""
        return {
            "name": self.ref.name,
            "version": self.ref.version,
            "alias": self.ref.alias,
            "run_id": self.ref.run_id,
            "trained_at": self.trained_at,
            "cohort_fingerprint": self.card.get("cohort_fingerprint", ""),
            # versions registered before provenance was recorded learnt the synthetic cohort
            "provenance": self.card.get("training_data", {}).get("provenance", "synthetic"),
        }


def load_registered(uri: str, settings: Settings) -> RegisteredModel:
    """The model behind a registry URI with its card; ModelNotFoundError (saying what to run)
    when there is none, or it cannot be read."""
    client = use_tracking(settings)
    ref = resolve(uri, client)
    try:
        model = load_logged(
            f"models:/{ref.name}/{ref.version}",
            ref.artefact_digest,
            f"{ref.name} version {ref.version}",
            settings.allow_unverified_models,
        )
        card = mlflow.artifacts.load_dict(f"runs:/{ref.run_id}/{MODEL_CARD}")
        created = client.get_model_version(ref.name, ref.version).creation_timestamp
    except (MlflowException, OSError, KeyError, ValueError, AttributeError, ImportError) as exc:
        raise ModelNotFoundError(
            f"model {uri!r} (version {ref.version}) could not be loaded: {exc}; retrain it with "
            "'icans train'"
        ) from exc
    if not hasattr(model, "trees_"):
        raise ModelNotFoundError(f"model {uri!r} is not an icans risk model")
    trained_at = datetime.fromtimestamp(created / 1000, tz=UTC).isoformat()
    return RegisteredModel(cast("RiskModel", model), ref, dict(card), trained_at)


@contextmanager
def registering(
    model_uri: str,
    name: str,
    client: MlflowClient,
    description: str,
    tags: dict[str, str],
    artefact_digest: str,
) -> Iterator[str]:
    """Register a logged model with the digest of its files (``artefact_digest``, from
    :func:`registry.digest.logged_digest`; every load checks it), tag it, and yield its version
    for what must still be recorded with it (the report that names the version, the alias).

    If anything fails before the block ends, the version is deleted again, so the registry
    never holds a half-registered model. When the registry itself failed (the tracking server
    down, its database restarting for longer than MLflow's client retries), a
    :class:`RegistryUnavailableError` says which version was left how: deleted again, or, when
    the registry could not even be asked to delete it, left without its alias until the next
    ``icans train`` or ``icans recalibrate`` deletes it (:mod:`training.stale_runs`: this run's
    process is gone by then).
    """
    try:
        mv = mlflow.register_model(model_uri, name)
    except (MlflowException, OSError) as exc:
        raise RegistryUnavailableError(
            f"{name} could not be registered ({_first_line(exc)}): no alias moved; a version "
            "left without its tags is deleted by the next 'icans train'"
        ) from exc
    try:
        client.update_model_version(name, mv.version, description=description)
        for key, value in (tags | {VERSION_TAG: artefact_digest}).items():
            client.set_model_version_tag(name, mv.version, key, value)
        yield str(mv.version)
    except BaseException as exc:
        try:
            client.delete_model_version(name, mv.version)
        except (MlflowException, OSError) as cleanup:
            raise RegistryUnavailableError(
                f"version {mv.version} of {name} was registered but not recorded in full "
                f"({_first_line(exc)}) and could not be deleted ({_first_line(cleanup)}): no "
                "alias moved to it; the next 'icans train' deletes it"
            ) from exc
        if isinstance(exc, (MlflowException, OSError)):
            raise RegistryUnavailableError(
                f"version {mv.version} of {name} could not be recorded in full and was deleted "
                f"again, no alias moved to it: {_first_line(exc)}"
            ) from exc
        raise


class RegistryUnavailableError(IcansError, RuntimeError):
    """The tracking store failed while a version was being registered or promoted."""


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line of at most ``limit`` characters: MLflow's messages of a server
    that cannot be reached run to several lines and a whole URL."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def metric_key(text: str) -> str:
    """MLflow metric names allow letters, digits, '_', '-', '.', ' ', '/'."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)
