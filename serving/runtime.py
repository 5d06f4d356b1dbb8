"""The loaded model and everything a request needs, built once at start-up.

Per request: validated patients -> raw layout rows -> the pipeline's own feature steps ->
probability (``RiskModel.predict_proba``, the same code ``icans evaluate`` runs) and exact
TreeSHAP contributions -> warnings. No DataFrame is built on the request path.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

from features.checks import input_warnings
from features.layout import RAW_COLUMNS
from features.patient import PatientObservation, missing_inputs, to_raw
from features.transformers import transform_rows
from icans.config import Settings
from icans.errors import ModelNotFoundError, UnknownCategoryWarning
from model.explain import RiskExplainer
from model.registry import ModelRef, load_pipeline, use_tracking

# Unseen categories are reported in each response's warnings, not on the server's stderr.
warnings.filterwarnings("ignore", category=UnknownCategoryWarning)


@dataclass
class Assessment:
    probability: float
    interval: tuple[float, float] | None  # 95% bootstrap interval of the probability
    log_odds: float
    base_log_odds: float
    contributions: list[dict]
    drivers: list[str]
    warnings: list[str]
    missing_inputs: list[str]
    landmark_day: int


class ModelRuntime:
    """A registered model, loaded, checked and warmed up."""

    def __init__(self, pipeline, ref: ModelRef, card: dict, trained_at: str):
        self.pipeline = pipeline
        self.ref = ref
        self.card = card
        self.trained_at = trained_at
        self.features = pipeline.named_steps["features"]
        self.model = pipeline.named_steps["model"]
        # One request is one or a few rows: single-threaded prediction is fastest, and the two
        # service workers use the two cores.
        for booster in [self.model.xgb_.get_booster(), *getattr(self.model, "bootstrap_", [])]:
            booster.set_param({"nthread": 1})
        self.explainer = RiskExplainer(pipeline, nthread=1)

    @classmethod
    def load(cls, model_uri: str, settings: Settings) -> ModelRuntime:
        """Load from the registry; raise ModelNotFoundError (with what to run) if impossible."""
        client = use_tracking(settings)
        pipeline, ref = load_pipeline(model_uri, client)
        try:
            card = mlflow.artifacts.load_dict(f"runs:/{ref.run_id}/model_card.json")
            created = client.get_model_version(ref.name, ref.version).creation_timestamp
        except (MlflowException, OSError) as exc:
            raise ModelNotFoundError(
                f"model {model_uri!r} has no readable model card: {exc}; "
                "retrain it with 'icans train'"
            ) from exc
        if "model" not in pipeline.named_steps or "features" not in pipeline.named_steps:
            raise ModelNotFoundError(f"model {model_uri!r} is not an icans risk pipeline")
        trained_at = datetime.fromtimestamp(created / 1000, tz=UTC).isoformat()
        runtime = cls(pipeline, ref, card, trained_at)
        runtime.warm_up()
        return runtime

    def identity(self) -> dict:
        """Which model answers: for responses, reports and the audit log."""
        return {
            "name": self.ref.name,
            "version": self.ref.version,
            "alias": self.ref.alias,
            "run_id": self.ref.run_id,
            "trained_at": self.trained_at,
            "cohort_fingerprint": self.card.get("cohort_fingerprint", ""),
        }

    def warm_up(self) -> None:
        """One prediction at start-up, so the first request is as fast as the others."""
        raw = np.full((1, len(RAW_COLUMNS)), np.nan)
        x = transform_rows(self.features, raw)
        self.explainer.explain_features(x)
        self.model.probability_interval(x)

    def assess(self, patients: list[PatientObservation]) -> list[Assessment]:
        raw = np.vstack([to_raw(p) for p in patients])
        x = transform_rows(self.features, raw)
        probability = self.model.predict_proba(x)[:, 1]
        interval = self.model.probability_interval(x)
        explanation = self.explainer.explain_features(x)
        out = []
        for i, patient in enumerate(patients):
            missing = missing_inputs(patient)
            out.append(
                Assessment(
                    probability=float(probability[i]),
                    interval=None if interval is None else tuple(map(float, interval[i])),
                    log_odds=float(explanation.log_odds[i]),
                    base_log_odds=float(explanation.base_log_odds[i]),
                    contributions=explanation.ranked(i),
                    drivers=explanation.drivers(i),
                    warnings=input_warnings(self.features, raw[i : i + 1], x[i : i + 1], missing),
                    missing_inputs=missing,
                    landmark_day=patient.day_since_infusion,
                )
            )
        return out
