"""A registered model on another cohort: ``icans evaluate`` and ``icans report --cohort``.

The baselines logged in the model's own training run are scored on the same rows, so a
different case mix shows what the model (and its complexity) buys there too. The evaluation is
recorded as its own MLflow run (experiment ``<experiment>-evaluation``), tagged with the model
version and the cohort's fingerprint and provenance. A model of several horizons is judged on
each (:func:`training.fit.evaluate_horizons`), and the lead time of a threshold on one
horizon's risk is counted from the cohort's event days (:mod:`reports.horizon_review`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

from cohort.reader import CohortMetadata, read_cohort
from evaluation.held_out import MODEL, Evaluation, evaluate
from features.landmarks import LandmarkDataset, build_landmark_dataset
from icans.config import Settings
from icans.horizons import HORIZON_NAMES
from registry.store import (
    RegisteredModel,
    load_registered,
    load_run_model,
    metric_key,
    use_experiment,
    use_tracking,
)
from reports.horizon_review import (
    HorizonReview,
    check_threshold,
    estimated_horizons,
    events_of,
    lead_horizon,
    review_horizons,
)
from reports.html import write_atomically
from reports.model_report import build_model_report, sample_rows
from reports.registry_io import logged_learning_curve
from training.config import TrainConfig
from training.fit import evaluate_horizons
from training.train import cohort_tags

BASELINE_ARTIFACTS = ("logistic", "m_easix")


@dataclass
class CohortEvaluation:
    """A registered model's evaluation on a cohort, and the MLflow run that recorded it."""

    registered: RegisteredModel
    evaluation: Evaluation
    cohort: CohortMetadata
    rows: LandmarkDataset
    run_id: str
    # the shorter horizons' evaluations (training.fit.evaluate_horizons), and the review
    horizons: dict[str, Evaluation] = field(default_factory=dict)
    review: HorizonReview | None = None


def evaluate_registered_model(
    model_uri: str,
    cohort_dir: Path,
    settings: Settings,
    config: TrainConfig,
    *,
    horizon: str | None = None,
    threshold: float | None = None,
) -> CohortEvaluation:
    """Score ``model_uri`` (and its run's baselines) on every landmark row of a cohort, on
    every horizon it estimates, with the lead time of ``threshold`` on ``horizon`` (defaults:
    :mod:`reports.horizon_review`). A bad threshold, or a horizon unknown or not estimated by
    the model, is refused before anything is scored or recorded."""
    if threshold is not None:
        check_threshold(threshold)
    lead_horizon(horizon, HORIZON_NAMES)  # a known horizon (estimated: once the model is read)
    cohort = read_cohort(cohort_dir)
    registered = load_registered(model_uri, settings)
    lead_horizon(horizon, estimated_horizons(registered.model))
    ref = registered.ref
    ds = build_landmark_dataset(cohort.tables, config.landmarks)
    preds = {MODEL: registered.model.predict_proba(ds.raw)[:, 1]}
    for name in BASELINE_ARTIFACTS:
        try:
            baseline = load_run_model(ref.run_id, f"baseline_{name}", settings)
        except (MlflowException, OSError):
            continue  # a model registered without baselines is still evaluated (a changed
            # baseline is not: ArtefactDigestError, like a changed model)
        preds[name] = baseline.predict_proba(ds.raw)[:, 1]
    ev = evaluate(ds, preds, config.bootstrap_samples, config.seed, config.decision_thresholds)
    horizons = evaluate_horizons(registered.model, ds, config)
    review = review_horizons(
        registered.model,
        ev,
        horizons,
        events_of(cohort.tables["outcomes"]),
        horizon_name=horizon,
        threshold=threshold,
    )
    client = use_tracking(settings)
    use_experiment(f"{config.experiment}-evaluation", settings, client)
    with mlflow.start_run(run_name=f"evaluate-{ref.name}-v{ref.version}") as run:
        mlflow.set_tags(
            {"model_name": ref.name, "model_version": ref.version, "model_uri": model_uri}
            | cohort_tags(cohort.metadata)
        )
        mlflow.log_metrics(
            {metric_key(k): v for k, v in ev.flat_metrics().items() if np.isfinite(v)}
        )
        for name, horizon_ev in horizons.items():  # horizon.72h.model.L_3.auroc, ...
            flat = horizon_ev.flat_metrics().items()
            mlflow.log_metrics({metric_key(f"horizon.{name}.{k}"): v for k, v in flat})
        mlflow.log_table(ev.metrics, "evaluation/metrics.json")
        mlflow.log_dict(review.record(), "evaluation/horizons.json")
    return CohortEvaluation(registered, ev, cohort.metadata, ds, run.info.run_id, horizons, review)


def report_registered_model(
    model_uri: str, cohort_dir: Path, out: Path, settings: Settings, config: TrainConfig
) -> Path:
    """Evaluate a registered model on a cohort and write its report to ``out`` (atomically)."""
    result = evaluate_registered_model(model_uri, cohort_dir, settings, config)
    registered = result.registered
    ref = registered.ref
    card = registered.card | {
        "model_name": ref.name,
        "model_version": ref.version,
        "model_uri": model_uri,
        "run_id": ref.run_id,
    }
    if card.get("cohort_fingerprint") == result.cohort.fingerprint:
        label = (
            "every landmark row of the training cohort, including the patients the model was "
            "trained on (optimistic; the training run's held-out figures are in the "
            "quantitative analyses)"
        )
    else:
        label = "every landmark row of a cohort not used in training"
    rows = sample_rows(len(result.rows), config.seed)
    text = build_model_report(
        registered.model,
        result.evaluation,
        logged_learning_curve(ref.run_id),
        card,
        result.cohort,
        result.rows.raw[rows],
        evaluation_label=label,
        horizons=result.horizons,
    )
    return write_atomically(text, out)
