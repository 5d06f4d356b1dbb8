"""Evaluate a registered model on another cohort: ``icans evaluate``.

The baselines logged in the model's own training run are scored on the same rows, so a
different case mix shows what the model (and its complexity) buys there too. The evaluation is
recorded as its own MLflow run (experiment ``<experiment>-evaluation``), tagged with the model
version and the cohort fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

from data.synthetic.cohort import read_manifest
from evaluation.evaluate import MODEL, Evaluation, evaluate
from features.landmarks import build_landmark_dataset, load_cohort_tables
from icans.config import Settings
from model.registry import ModelRef, load_pipeline, metric_key, use_experiment, use_tracking
from training.config import TrainConfig

BASELINE_ARTIFACTS = ("logistic", "m_easix")


@dataclass
class Assessment:
    model: ModelRef
    evaluation: Evaluation
    cohort: dict
    run_id: str


def assess_registered_model(
    model_uri: str, cohort_dir: Path, settings: Settings, config: TrainConfig
) -> Assessment:
    """Score ``model_uri`` (and its run's baselines) on every landmark row of a cohort."""
    manifest = read_manifest(cohort_dir)
    client = use_tracking(settings)
    pipeline, ref = load_pipeline(model_uri, client)
    ds = build_landmark_dataset(load_cohort_tables(cohort_dir), config.landmarks)
    preds = {MODEL: pipeline.predict_proba(ds.raw)[:, 1]}
    for name in BASELINE_ARTIFACTS:
        try:
            baseline = mlflow.sklearn.load_model(f"runs:/{ref.run_id}/baseline_{name}")
        except (MlflowException, OSError):
            continue  # a model registered without baselines is still evaluated
        preds[name] = baseline.predict_proba(ds.raw)[:, 1]
    ev = evaluate(ds, preds, config.bootstrap_samples, config.seed, config.decision_thresholds)
    use_experiment(f"{config.experiment}-evaluation", settings, client)
    with mlflow.start_run(run_name=f"evaluate-{ref.name}-v{ref.version}") as run:
        mlflow.set_tags(
            {
                "model_name": ref.name,
                "model_version": ref.version,
                "model_uri": model_uri,
                "cohort_fingerprint": manifest["fingerprint"],
                "case_mix": manifest["case_mix"],
                "synthetic_data": "true",
            }
        )
        mlflow.log_metrics(
            {metric_key(k): v for k, v in ev.flat_metrics().items() if np.isfinite(v)}
        )
        mlflow.log_table(ev.metrics, "evaluation/metrics.json")
    return Assessment(ref, ev, manifest, run.info.run_id)
