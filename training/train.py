"""Train, evaluate, record and (if good enough) promote a risk model: ``icans train``.

Steps, all on landmark rows of the feature pipeline:

1. split patients (never rows) into training and held-out test; add copies of some training
   rows with a whole course series missing (:mod:`model.augment`);
2. choose xgboost hyper-parameters by grouped cross-validation on the training patients;
3. check calibration on the out-of-fold predictions of that cross-validation and, when the
   slope or intercept is off, correct it (logistic recalibration of the log-odds); fit the
   final model on all training patients, then its patient-bootstrap refits (uncertainty
   intervals);
4. fit the baselines (penalised logistic regression; m-EASIX alone) on all training patients;
5. evaluate model, baselines and the generator's true risk on the same held-out rows, with
   patient-level bootstrap CIs; subgroups; decision curve; learning curve;
6. log everything to MLflow (the reviewers' report and its figures included), register the
   pipeline as ``icans-risk`` and move ``champion`` to it only when it passes the quality
   gates (otherwise record why). A failure at any step marks the run FAILED and registers
   nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.pipeline import Pipeline

from data.synthetic.cohort import read_manifest
from evaluation.evaluate import MODEL, TRUE_RISK, Evaluation, evaluate
from evaluation.metrics import PreparedScores
from features.landmarks import LandmarkDataset, build_landmark_dataset, load_cohort_tables
from features.transformers import build_feature_pipeline
from icans.config import INTENDED_USE, Settings
from model.augment import MISSING_GROUPS, with_missing_series
from model.registry import log_pipeline, metric_key, register, use_experiment, use_tracking
from model.risk_model import RiskModel, logistic_baseline, m_easix_baseline, tune
from reports import html, plots
from training.config import TrainConfig
from training.gates import GateResult, check_gates
from training.learning_curve import learning_curve
from training.splits import grouped_folds, grouped_split


@dataclass
class TrainResult:
    run_id: str
    model_version: str | None
    promoted: bool
    gate: GateResult
    evaluation: Evaluation
    learning_curve: pd.DataFrame
    params: dict
    cv_results: list[dict]
    calibration: dict
    pipeline: Pipeline
    test: LandmarkDataset
    timings: dict[str, float] = field(default_factory=dict)


def fit_and_evaluate(
    ds: LandmarkDataset, config: TrainConfig, step: Callable[[str], None] = lambda _: None
) -> dict:
    """Everything except MLflow: splits, tuning, fitting, calibration, baselines, evaluation."""
    seed, jobs = config.seed, config.n_threads
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rest, held = grouped_split(ds.patient_id, config.test_fraction, seed)
    test = ds.subset(held)
    # Training rows plus copies with a whole course series missing (see model.augment);
    # the feature pipeline learns its categories and ranges from the original rows only.
    observed = ds.subset(rest)
    train = with_missing_series(observed, config.missing_series_fraction, seed)
    y_train = train.label.astype(int)

    step("features")
    features = build_feature_pipeline().fit(observed.raw)  # categories and ranges, no labels
    x_train = features.transform(train.raw)
    names = tuple(features.get_feature_names_out())

    step("cross-validation")
    folds = grouped_folds(train.patient_id, config.cv_folds, seed)
    params, cv_results, oof_margin = tune(
        x_train,
        y_train,
        folds,
        names,
        config.search,
        config.subsample,
        config.colsample_bytree,
        seed,
        jobs,
        config.linear_offset,
        config.day_degree,
        config.day_smoothing,
    )
    timings["tuning_s"] = time.perf_counter() - t0

    step("fit and calibrate")
    # Calibration is checked on out-of-fold predictions (patients unseen by their fold model)
    # and, when off, corrected by a logistic recalibration of the log-odds fitted on them.
    before = PreparedScores(y_train, expit(oof_margin)).metrics()
    low, high = config.recalibrate_if_slope_outside
    needs = (
        not low <= before["calibration_slope"] <= high
        or abs(before["calibration_intercept"]) > config.recalibrate_if_abs_intercept_above
    )
    model = RiskModel(names, random_state=seed, n_jobs=jobs, **params).fit(x_train, y_train)
    if needs:
        model.set_recalibration(oof_margin, y_train)
    step("uncertainty refits")
    model.fit_bootstrap(x_train, y_train, train.patient_id, config.uncertainty_refits, seed)
    calibration = {
        "recalibrated": bool(needs),
        "intercept": model.calibration_[0],
        "slope": model.calibration_[1],
        "oof_slope_before": before["calibration_slope"],
        "oof_intercept_before": before["calibration_intercept"],
    }
    pipeline = Pipeline([("features", features), ("model", model)])

    step("baselines")
    c = _choose_logistic_c(features, train, folds, config)
    baselines = {
        "logistic": logistic_baseline(features, c).fit(train.raw, y_train),
        "m_easix": m_easix_baseline(features).fit(train.raw, y_train),
    }
    timings["fitting_s"] = time.perf_counter() - t0 - timings["tuning_s"]

    step("evaluation")
    t1 = time.perf_counter()
    preds = {MODEL: pipeline.predict_proba(test.raw)[:, 1]}
    preds |= {name: b.predict_proba(test.raw)[:, 1] for name, b in baselines.items()}
    ev = evaluate(test, preds, config.bootstrap_samples, seed, config.decision_thresholds)
    gate = check_gates(ev, config.gates)
    timings["evaluation_s"] = time.perf_counter() - t1

    step("learning curve")
    t2 = time.perf_counter()
    curve = learning_curve(
        train, test, params, config.learning_curve_sizes, config.learning_curve_repeats, seed, jobs
    )
    timings["learning_curve_s"] = time.perf_counter() - t2
    return {
        "pipeline": pipeline,
        "baselines": baselines,
        "evaluation": ev,
        "gate": gate,
        "curve": curve,
        "params": params,
        "cv": cv_results,
        "calibration": calibration,
        "augmentation": {
            "fraction": config.missing_series_fraction,
            "groups": [" + ".join(g) for g in MISSING_GROUPS],
            "observed_rows": len(observed),
            "copies": len(train) - len(observed),
        },
        "logistic_c": c,
        "test": test,
        "timings": timings,
    }


def _choose_logistic_c(features, train: LandmarkDataset, folds, config: TrainConfig) -> float:
    """Penalty of the logistic baseline by the same grouped CV (mean held-out log loss)."""
    raw, y = train.raw, train.label.astype(int)
    best, best_loss = config.logistic_c_grid[0], np.inf
    for c in config.logistic_c_grid:
        losses = []
        for tr, va in folds:
            p = logistic_baseline(features, c).fit(raw[tr], y[tr]).predict_proba(raw[va])[:, 1]
            p = np.clip(p, 1e-6, 1 - 1e-6)
            losses.append(-np.mean(y[va] * np.log(p) + (1 - y[va]) * np.log(1 - p)))
        if np.mean(losses) < best_loss:
            best, best_loss = c, float(np.mean(losses))
    return best


def train(
    cohort_dir: Path,
    config: TrainConfig,
    settings: Settings,
    step: Callable[[str], None] = lambda _: None,
) -> TrainResult:
    """Train on a cohort directory and record the run; see the module docstring."""
    started = time.perf_counter()
    manifest = read_manifest(cohort_dir)
    client = use_tracking(settings)
    use_experiment(config.experiment, settings, client)
    with mlflow.start_run(run_name=f"train-{manifest['fingerprint']}") as run:
        mlflow.set_tags(
            {
                "synthetic_data": "true",
                "cohort_fingerprint": manifest["fingerprint"],
                "generator_parameters": manifest["parameters_fingerprint"],
                "case_mix": manifest["case_mix"],
                "intended_use": INTENDED_USE,
            }
        )
        mlflow.log_params(_flat_params(config, manifest))
        step("landmark rows")
        ds = build_landmark_dataset(load_cohort_tables(cohort_dir), config.landmarks)
        out = fit_and_evaluate(ds, config, step)
        ev: Evaluation = out["evaluation"]
        gate: GateResult = out["gate"]

        step("recording")
        mlflow.log_params(
            {f"model.{k}": v for k, v in out["params"].items()}
            | {"model.logistic_c": out["logistic_c"]}
            | {f"calibration.{k}": v for k, v in out["calibration"].items()}
        )
        mlflow.log_metrics({metric_key(k): v for k, v in ev.flat_metrics().items()})
        mlflow.log_metrics(
            {
                metric_key(f"subgroup.{r.subgroup}.{r.predictor}.auroc"): r.auroc
                for r in ev.subgroups.itertuples()
                if np.isfinite(r.auroc)
            }
        )
        _log_artifacts(out, ev)
        example = out["test"].frame(slice(0, 3))
        info = log_pipeline(out["pipeline"], "model", example)
        for name, baseline in out["baselines"].items():
            log_pipeline(baseline, f"baseline_{name}", example)
        card = model_card_summary(ev, gate, out, manifest)
        mlflow.log_dict(card, "model_card.json")
        step("report")
        t_report = time.perf_counter()
        _log_report(
            out, card | {"model_name": settings.model_name, "run_id": run.info.run_id}, manifest
        )
        out["timings"]["report_s"] = time.perf_counter() - t_report
        timings = out["timings"] | {"total_s": time.perf_counter() - started}
        mlflow.log_metrics({metric_key(f"time.{k}"): v for k, v in timings.items()})
        version = register(
            info.model_uri,
            settings.model_name,
            client,
            promote=gate.passed,
            alias=settings.model_alias,
            description=f"{INTENDED_USE} Gate: {gate.summary()}",
            tags={
                "gate": "passed" if gate.passed else "rejected",
                "gate_reasons": gate.summary(),
                "run_id": run.info.run_id,
                "cohort_fingerprint": manifest["fingerprint"],
                "auroc": f"{ev.value(MODEL, 'auroc'):.4f}",
                "true_risk_auroc": f"{ev.value(TRUE_RISK, 'auroc'):.4f}",
                "calibration_slope": f"{ev.value(MODEL, 'calibration_slope'):.4f}",
            },
        )
        mlflow.set_tags({"registered_version": version, "promoted": str(gate.passed).lower()})
    return TrainResult(
        run.info.run_id,
        version,
        gate.passed,
        gate,
        ev,
        out["curve"],
        out["params"],
        out["cv"],
        out["calibration"],
        out["pipeline"],
        out["test"],
        timings,
    )


def _flat_params(config: TrainConfig, manifest: dict) -> dict:
    flat = {}
    for key, value in config.model_dump().items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": v for k, v in value.items()}
        else:
            flat[key] = value
    flat |= {
        "cohort.n_patients": manifest["n_patients"],
        "cohort.seed": manifest["seed"],
        "cohort.case_mix": manifest["case_mix"],
    }
    return {k: str(v)[:500] for k, v in flat.items()}


def _log_artifacts(out: dict, ev: Evaluation) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ev.metrics.to_csv(d / "metrics.csv", index=False)
        ev.subgroups.to_csv(d / "subgroups.csv", index=False)
        ev.decision_curve.to_csv(d / "decision_curve.csv", index=False)
        ev.calibration.to_csv(d / "calibration_bins.csv", index=False)
        out["curve"].to_csv(d / "learning_curve.csv", index=False)
        pd.DataFrame(out["cv"]).to_csv(d / "cv_results.csv", index=False)
        figures = {
            "roc_pr.png": plots.roc_pr_figure(ev),
            "calibration.png": plots.calibration_figure(ev),
            "decision_curve.png": plots.decision_curve_figure(ev),
            "learning_curve.png": plots.learning_curve_figure(
                out["curve"], ev.value(TRUE_RISK, "auroc")
            ),
        }
        (d / "plots").mkdir()
        for name, fig in figures.items():
            (d / "plots" / name).write_bytes(plots.to_png(fig))
        mlflow.log_artifacts(str(d), artifact_path="evaluation")


def _log_report(out: dict, card: dict, manifest: dict) -> None:
    """The reviewers' HTML report of this run (held-out patients) and each of its figures."""
    from reports.model_report import build_model_report, sample_rows

    test: LandmarkDataset = out["test"]
    rows = sample_rows(len(test), seed=0)
    page = build_model_report(
        out["pipeline"], out["evaluation"], out["curve"], card, manifest, test.raw[rows]
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "model_report.html").write_text(page, encoding="utf-8")
        (d / "figures").mkdir()
        for name, png in html.embedded_figures(page).items():
            (d / "figures" / name).write_bytes(png)
        mlflow.log_artifacts(str(d), artifact_path="report")


def model_card_summary(ev: Evaluation, gate: GateResult, out: dict, manifest: dict) -> dict:
    """Headline facts about the model, for /v1/model and the report."""
    return {
        "intended_use": INTENDED_USE,
        "synthetic_data": True,
        "cohort_fingerprint": manifest["fingerprint"],
        "cohort_case_mix": manifest["case_mix"],
        "cohort_patients": manifest["n_patients"],
        "test_patients": ev.meta["n_patients"],
        "test_rows": ev.meta["n_rows"],
        "headline_metrics": {
            "auroc": ev.value(MODEL, "auroc"),
            "true_risk_auroc": ev.value(TRUE_RISK, "auroc"),
            "auroc_gap_to_true_risk": ev.value(MODEL, "auroc_gap_to_true_risk"),
            "auprc": ev.value(MODEL, "auprc"),
            "brier": ev.value(MODEL, "brier"),
            "calibration_slope": ev.value(MODEL, "calibration_slope"),
            "calibration_intercept": ev.value(MODEL, "calibration_intercept"),
            "logistic_auroc": ev.value("logistic", "auroc"),
            "m_easix_auroc": ev.value("m_easix", "auroc"),
        },
        "gate": {"passed": gate.passed, "reasons": list(gate.reasons), "checks": gate.checks},
        "hyperparameters": out["params"],
        "calibration": out["calibration"],
        "augmentation": out.get("augmentation"),
        "uncertainty_refits": len(getattr(out["pipeline"].named_steps["model"], "bootstrap_", [])),
        "feature_names": list(out["pipeline"].named_steps["features"].get_feature_names_out()),
    }
