"""The monitoring reference every model version carries: what its traffic is compared with.

Logged by training (:mod:`training.train`), read by ``icans monitor`` (:mod:`monitoring`): it
lives with the model, below both.

Each training run (``icans train``, and ``icans recalibrate``, which goes through the same
:func:`training.train.train`) logs ``monitoring/reference.parquet`` beside its model: a seeded
sample of at most :data:`MAX_ROWS` of the run's **held-out** landmark rows (patients the model
did not learn from, so its predicted risks there are what live traffic would get), in the same
form as the prediction log once read (:func:`serving.prediction_log.read_prediction_log`):

* ``landmark_day``;
* ``probability``: the model's predicted risk (the number the endpoint would answer);
* ``predictor.<name>``: the model's feature row by predictor name, a category as its 0/1
  indicators, NaN where missing (exactly what the service logs for a request);
* ``outcome``: the row's label (severe or steroid-refractory ICANS on days L+1..28), which the
  prediction log does not have; it gives the reference's realised AUROC and calibration;
* for a model of several horizons, per horizon ``h`` other than day 28 (:mod:`icans.horizons`)
  ``probability.<h>`` and ``outcome.<h>``: the risk and the event within that horizon, as the
  prediction log reads them (``icans monitor`` compares each horizon with its own). A
  reference logged before horizons holds day 28 alone.

``icans monitor`` reads it back with :func:`load_reference`; a version registered before the
reference was logged cannot be monitored, and the error says to retrain it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.artifacts
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from scipy.special import expit

from icans.config import Settings
from icans.errors import ModelNotFoundError
from icans.horizons import TARGET_HORIZON
from registry.store import MODEL_CARD, resolve, use_tracking

ARTIFACT_DIR = "monitoring"
ARTIFACT_NAME = "reference.parquet"
ARTIFACT = f"{ARTIFACT_DIR}/{ARTIFACT_NAME}"
MAX_ROWS = 10_000  # enough for per-input tests on rare categories; a few MB of Parquet
PREDICTOR = "predictor."  # column prefix, as read_prediction_log names them


def reference_frame(model, test, seed: int, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """The reference rows of a fitted risk model on its held-out landmark rows ``test``
    (:class:`features.landmarks.LandmarkDataset`): a seeded sample of at most ``max_rows``,
    kept in their original order."""
    n = len(test)
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    raw = test.raw[rows]
    x = model.transform(raw)
    frame = pd.DataFrame(
        {
            "landmark_day": test.landmark_day[rows].astype(np.int64),
            "probability": expit(model.log_odds(x)),  # predict_proba's, features made once
            "outcome": test.label[rows].astype(np.int64),
        }
    )
    for name in model.horizons_:  # the shorter horizons (day 28 is probability, outcome)
        if name != TARGET_HORIZON.name and name in test.horizon_labels:
            frame[f"probability.{name}"] = expit(model.log_odds(model.transform(raw, name)))
            frame[f"outcome.{name}"] = test.horizon_labels[name][rows].astype(np.int64)
    predictors = pd.DataFrame(
        x, columns=[PREDICTOR + name for name in model.feature_names_], dtype=float
    )
    return pd.concat([frame, predictors], axis=1)


def log_reference(model, test, seed: int) -> None:
    """Log the reference of the active MLflow run's model (:func:`reference_frame`) as
    ``monitoring/reference.parquet``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT_NAME
        reference_frame(model, test, seed).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=ARTIFACT_DIR)


@dataclass(frozen=True)
class Reference:
    """A registered version's reference rows and what the reports say about its model."""

    name: str
    version: str
    run_id: str
    rows: pd.DataFrame
    card: dict

    @property
    def predictors(self) -> list[str]:
        """The model's predictor names, in its order."""
        return [c[len(PREDICTOR) :] for c in self.rows.columns if c.startswith(PREDICTOR)]


def load_reference(name: str, version: str, settings: Settings) -> Reference:
    """The reference of registered version ``version`` of ``name``; ModelNotFoundError naming
    the version when it is not registered or has no reference (registered before references
    were logged: retrain it)."""
    client = use_tracking(settings)
    ref = resolve(f"models:/{name}/{version}", client)
    try:
        local = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=ARTIFACT)
        rows = pd.read_parquet(local)
    except (MlflowException, OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"{name} version {version} has no monitoring reference ({ARTIFACT} in its training "
            f"run {ref.run_id}): it was registered before references were logged. Retrain it "
            "('icans train', or 'icans recalibrate' for an updated model) and monitor the new "
            "version"
        ) from exc
    try:
        card = dict(mlflow.artifacts.load_dict(f"runs:/{ref.run_id}/{MODEL_CARD}"))
    except (MlflowException, OSError, ValueError):
        card = {}  # reports.provenance reads a card without provenance as synthetic
    return Reference(name, str(version), ref.run_id, rows, card)
