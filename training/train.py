"""Train, evaluate, record and (if good enough) promote a risk model: ``icans train``.

Reads the cohort through :mod:`cohort.reader`, builds its landmark rows, fits and judges the
model (:func:`training.fit.fit_and_evaluate`), then records everything in one MLflow run: the
configuration and the cohort's provenance as parameters and tags, every metric (with what each
input set reaches, :mod:`training.input_sets`), the evaluation tables and figures, the
monitoring reference (:mod:`registry.reference`), the model with its signature and the
baselines beside it, the model card, and the reviewers' report of the registered version. The
version is registered as ``icans-risk``; ``champion`` moves to it only when it passes the
quality gates, including not being worse than the current champion on the same held-out
patients (otherwise the version is tagged with why; ``gates.json`` in the run says which gates
applied and why any did not). A failure at any step marks the run FAILED and leaves no version
behind; a run whose process was killed outright is closed by the next training
(:mod:`training.stale_runs`).

``icans recalibrate`` runs the same flow with an :class:`Update`: the candidate is a registered
model recalibrated on the cohort's training patients, judged on its held-out patients by the
same gates (and against the champion), and registered as a new version tagged with its parent.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from cohort.reader import CohortMetadata, read_cohort
from evaluation.held_out import MODEL, TRUE_RISK
from features.landmarks import LandmarkDataset, build_landmark_dataset
from icans.config import Settings, intended_use
from icans.errors import InvalidInputError, ModelNotFoundError
from model.baselines import LogisticBaseline
from model.risk_model import RiskModel
from model.updating import UPDATE_METHODS, recalibrated
from registry.digest import logged_digest, run_tag
from registry.reference import log_reference
from registry.store import (
    HORIZONS_TAG,
    MODEL_CARD,
    load_registered,
    log_model,
    metric_key,
    registering,
    use_experiment,
    use_tracking,
)
from reports import plots
from reports.model_card import model_card
from reports.model_report import build_model_report, sample_rows
from reports.registry_io import log_report
from training.cluster import on_cluster
from training.config import TrainConfig
from training.fit import Champion, FitResult, fit_and_evaluate
from training.stale_runs import ClosedRun, close_stale_runs, owner_tags


@dataclass
class TrainResult(FitResult):
    """What :func:`fit_and_evaluate` gives, and where the run recorded it."""

    run_id: str = ""
    model_version: str | None = None
    promoted: bool = False
    cohort: CohortMetadata | None = None
    closed_runs: list[ClosedRun] = field(default_factory=list)  # of processes that died


@dataclass(frozen=True)
class Update:
    """Instead of training anew: recalibrate a registered model on the cohort
    (:mod:`model.updating`); the new version records its parent (lineage)."""

    model_uri: str
    method: str


def train(
    cohort_dir: Path,
    config: TrainConfig,
    settings: Settings,
    step: Callable[[str], None] = lambda _: None,
    update: Update | None = None,
) -> TrainResult:
    """Train on a cohort directory (or, with ``update``, recalibrate a registered model on it)
    and record the run; see the module docstring. With ``settings.cluster`` named, the run's
    independent fits run on that Dask cluster (:mod:`training.cluster`; ``n_tasks`` 1
    becomes every worker)."""
    with on_cluster(settings.cluster) as workers:
        if workers and config.n_tasks == 1:
            config = config.model_copy(update={"n_tasks": -1})
        return _train(cohort_dir, config, settings, step, update)


def _train(
    cohort_dir: Path,
    config: TrainConfig,
    settings: Settings,
    step: Callable[[str], None],
    update: Update | None,
) -> TrainResult:
    started = time.perf_counter()
    step("reading the cohort")
    cohort = read_cohort(cohort_dir)
    meta = cohort.metadata
    client = use_tracking(settings)
    experiment_id = use_experiment(config.experiment, settings, client)
    step("closing runs of training processes that died")
    closed = close_stale_runs(client, experiment_id, settings.model_name, settings.stale_run_hours)
    lineage = {}
    make: Callable[[LandmarkDataset], RiskModel] | None = None
    if update is not None:
        if update.method not in UPDATE_METHODS:
            raise InvalidInputError("method", update.method, f"one of {', '.join(UPDATE_METHODS)}")
        parent = load_registered(update.model_uri, settings)
        lineage = {
            "parent_version": parent.ref.version,
            "parent_run_id": parent.ref.run_id,
            "update_method": update.method,
        }

        def recalibrate(rows: LandmarkDataset) -> RiskModel:
            return recalibrated(parent.model, rows.raw, rows.label, update.method)

        make = recalibrate

    name = f"{'recalibrate' if update else 'train'}-{meta.fingerprint}"
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            cohort_tags(meta)
            | lineage
            | owner_tags()
            | {"intended_use": intended_use(meta.synthetic)}
            | ({"cluster": settings.cluster} if settings.cluster else {})
        )
        mlflow.log_params(_flat_params(config, meta))
        step("landmark rows")
        ds = build_landmark_dataset(cohort.tables, config.landmarks)
        champion = current_champion(settings, client)
        mlflow.set_tags({"champion_compared": champion.version or "none"})
        fit = fit_and_evaluate(ds, config, step, champion, make)
        ev, gate, model = fit.evaluation, fit.gate, fit.model

        step("recording")
        # The models first, while the run has no metrics: MLflow's log_model copies every
        # metric of the run to the model it logs, one request per metric (~280 here, three
        # models: seconds on a tracking server), and nothing here reads them from the model
        example = fit.test.frame(slice(0, 3))
        info = log_model(model, "model", example)
        digests = {"model": logged_digest(info.model_uri)}  # what every load checks
        for name, baseline in fit.baselines.items():
            logged = log_model(baseline, f"baseline_{name}", example)
            digests[f"baseline_{name}"] = logged_digest(logged.model_uri)
        mlflow.set_tags({run_tag(path): digest for path, digest in digests.items()})
        mlflow.log_params(
            {f"model.{k}": v for k, v in model.hyperparameters_.items()}
            | {"model.logistic_c": cast(LogisticBaseline, fit.baselines["logistic"]).c_}
            | {f"calibration.{k}": v for k, v in model.recalibration_.items()}
        )
        mlflow.log_metrics({metric_key(k): v for k, v in ev.flat_metrics().items()})
        mlflow.log_metrics(
            {
                metric_key(f"subgroup.{r.subgroup}.{r.predictor}.auroc"): r.auroc
                # rows are namedtuples of the columns; pandas types them as bare tuples
                for r in cast("Iterable[Any]", ev.subgroups.itertuples())
                if np.isfinite(r.auroc)
            }
        )
        mlflow.log_metrics({metric_key(k): v for k, v in fit.input_sets.flat_metrics().items()})
        for name, horizon_ev in fit.horizons.items():  # horizon.72h.model.L_3.auroc, ...
            flat = horizon_ev.flat_metrics().items()
            mlflow.log_metrics({metric_key(f"horizon.{name}.{k}"): v for k, v in flat})
        _log_evaluation(fit)
        log_reference(fit.model, fit.test, config.seed)  # what icans monitor compares with
        card = model_card(model, ev, gate, meta) | {
            "model_name": settings.model_name,
            "run_id": run.info.run_id,
            "artefact_sha256": digests["model"],
            "horizons": list(model.horizons_),  # read back by registry.store.RegisteredModel
        }
        if lineage:
            card["lineage"] = lineage
        mlflow.log_dict(card, MODEL_CARD)
        mlflow.log_dict(gate.record(), "gates.json")
        tags = (
            {
                "gate": "passed" if gate.passed else "rejected",
                "gate_reasons": gate.summary(),
                "run_id": run.info.run_id,
                "cohort_fingerprint": meta.fingerprint,
                "provenance": meta.provenance,
                "auroc": f"{ev.value(MODEL, 'auroc'):.4f}",
                "true_risk_auroc": f"{ev.value(TRUE_RISK, 'auroc'):.4f}",
                "calibration_slope": f"{ev.value(MODEL, 'calibration_slope'):.4f}",
                HORIZONS_TAG: json.dumps(list(model.horizons_)),
            }
            | {  # each horizon's own gates: gate.72h = passed, ...
                f"gate.{name}": "passed" if ok else "rejected" for name, ok in gate.horizons.items()
            }
            | lineage
        )
        description = f"{intended_use(meta.synthetic)} Gate: {gate.summary()}"
        with registering(
            info.model_uri, settings.model_name, client, description, tags, digests["model"]
        ) as version:
            step("report")
            t_report = time.perf_counter()
            _log_report(fit, card | {"model_version": version}, meta)
            fit.timings["report_s"] = time.perf_counter() - t_report
            if gate.passed:
                client.set_registered_model_alias(
                    settings.model_name, settings.model_alias, version
                )
        fit.timings["total_s"] = time.perf_counter() - started
        mlflow.log_metrics({metric_key(f"time.{k}"): v for k, v in fit.timings.items()})
        mlflow.set_tags({"registered_version": version, "promoted": str(gate.passed).lower()})
    return TrainResult(
        **vars(fit),
        run_id=run.info.run_id,
        model_version=version,
        promoted=gate.passed,
        cohort=meta,
        closed_runs=closed,
    )


def current_champion(settings: Settings, client: MlflowClient) -> Champion:
    """The version the ``champion`` alias points at, loaded to be compared with the candidate
    on the same held-out patients; none (with the reason) if the alias is not set or the
    version cannot be loaded (one from before the risk model was one estimator, say)."""
    try:
        client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    except MlflowException:
        return Champion()  # no registered model, or no champion among its versions
    uri = f"models:/{settings.model_name}@{settings.model_alias}"
    try:
        registered = load_registered(uri, settings)
    except ModelNotFoundError as exc:
        return Champion(note=f"the champion could not be loaded ({exc})")
    return Champion(registered.model, registered.ref.version)


def cohort_tags(meta: CohortMetadata) -> dict[str, str]:
    """MLflow tags saying which data a run used and where it came from."""
    tags = {
        "cohort_fingerprint": meta.fingerprint,
        "provenance": meta.provenance,
        "synthetic_data": str(meta.synthetic).lower(),
    }
    generator = meta.generator or {}
    if "parameters_fingerprint" in generator:
        tags["generator_parameters"] = generator["parameters_fingerprint"]
    if "case_mix" in generator:
        tags["case_mix"] = generator["case_mix"]
    return tags


def _flat_params(config: TrainConfig, meta: CohortMetadata) -> dict:
    flat = {}
    for key, value in config.model_dump().items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": v for k, v in value.items()}
        else:
            flat[key] = value
    flat |= {"cohort.n_patients": meta.n_patients, "cohort.provenance": meta.provenance}
    generator = meta.generator or {}
    flat |= {f"cohort.{k}": generator[k] for k in ("seed", "case_mix") if k in generator}
    return {k: str(v)[:500] for k, v in flat.items()}


def _log_evaluation(fit: FitResult) -> None:
    ev = fit.evaluation
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ev.metrics.to_csv(d / "metrics.csv", index=False)
        ev.subgroups.to_csv(d / "subgroups.csv", index=False)
        ev.decision_curve.to_csv(d / "decision_curve.csv", index=False)
        ev.calibration.to_csv(d / "calibration_bins.csv", index=False)
        fit.learning_curve.to_csv(d / "learning_curve.csv", index=False)
        fit.input_sets.table.to_csv(d / "input_sets.csv", index=False)
        fit.by_day_group.to_csv(d / "horizons_by_day_group.csv", index=False)
        pd.DataFrame(fit.model.cv_results_).to_csv(d / "cv_results.csv", index=False)
        figures = {
            "roc_pr.png": plots.roc_pr_figure(ev),
            "calibration.png": plots.calibration_figure(ev),
            "decision_curve.png": plots.decision_curve_figure(ev),
            "learning_curve.png": plots.learning_curve_figure(
                fit.learning_curve, ev.value(TRUE_RISK, "auroc")
            ),
        }
        (d / "plots").mkdir()
        for name, fig in figures.items():
            (d / "plots" / name).write_bytes(plots.to_png(fig))
        mlflow.log_artifacts(str(d), artifact_path="evaluation")


def _log_report(fit: FitResult, card: dict, meta: CohortMetadata) -> None:
    """The reviewers' HTML report of this version (held-out patients) and each of its figures."""
    rows = sample_rows(len(fit.test), seed=0)
    log_report(
        build_model_report(
            fit.model,
            fit.evaluation,
            fit.learning_curve,
            card,
            meta,
            fit.test.raw[rows],
            input_sets=fit.input_sets.table,
            horizons=fit.horizons,
        )
    )
