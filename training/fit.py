"""Fit and judge a risk model on a cohort's landmark rows, without recording anything.

1. split patients (never rows) into training and held-out test: at random, or in time (the
   latest infused held out, ``split = "temporal"``); the held-out patients keep a row on every
   landmark day, each training patient every ``training_day_stride``-th
   (:func:`model.splits.day_stride_rows`);
2. fit the risk model (:class:`model.risk_model.RiskModel`: training copies, tuning,
   recalibration and refits all happen in its ``fit``) and the baselines on the training
   patients;
3. score model, baselines, the generator's true risk (when the cohort has one) and the current
   champion (when there is one) on the same held-out rows, with patient-level bootstrap CIs;
   subgroups; decision curve; and, for a model of several horizons (``config.horizons``,
   :mod:`icans.horizons`), the model against each shorter horizon's own events and true risk,
   judged the same way (``FitResult.horizons``); every horizon per group of prediction days
   (``FitResult.by_day_group``); the quality gates, day 28's and each shorter horizon's;
4. the learning curve: the same estimator refitted on growing subsets of the training patients;
5. what each input set reaches (:mod:`training.input_sets`): the model refitted with less than
   every input (``config.input_sets``) on the same patients, its AUROC beside the model's.

:func:`training.train.train` records the result in MLflow; tests and benchmarks call
:func:`fit_and_evaluate` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator

from evaluation.held_out import CHAMPION, MODEL, Evaluation, evaluate
from evaluation.metrics import PreparedScores, bootstrap_weights
from features.landmarks import DAY_GROUPS, LandmarkDataset, day_group
from icans.horizons import TARGET_HORIZON
from model.baselines import LogisticBaseline, MEasixBaseline
from model.risk_model import RiskModel
from model.splits import day_stride_rows, grouped_split, temporal_split
from training.config import TrainConfig
from training.gates import GateResult, check_gates
from training.input_sets import InputSetComparison, compare_input_sets
from training.learning_curve import learning_curve


@dataclass
class FitResult:
    """A fitted model, its baselines and how they did on the held-out patients."""

    model: RiskModel
    baselines: dict[str, object]
    evaluation: Evaluation
    gate: GateResult
    learning_curve: pd.DataFrame
    test: LandmarkDataset
    timings: dict[str, float] = field(default_factory=dict)
    input_sets: InputSetComparison = field(default_factory=InputSetComparison)
    # horizon name -> the model on that horizon's events (the horizons shorter than day 28;
    # day 28 is ``evaluation``)
    horizons: dict[str, Evaluation] = field(default_factory=dict)
    # every fitted horizon overall, per day group and on days 3-7 (:func:`horizon_table`): the
    # model's AUROC beside the true risk's, the gap, the calibration, the day-28 risk's AUROC
    by_day_group: pd.DataFrame = field(default_factory=pd.DataFrame)


def risk_model(config: TrainConfig) -> RiskModel:
    """The unfitted risk model with the configuration's settings."""
    return RiskModel(**config.model_params())


def fit_baselines(model: RiskModel, train: LandmarkDataset, config: TrainConfig) -> dict:
    """The baselines on the model's training rows, sharing its fitted feature pipeline."""
    features = FrozenEstimator(model.features_)
    shared = {"missing_series_fraction": config.missing_series_fraction, "features": features}
    args = (train.raw, train.label, train.patient_id)
    return {
        "logistic": LogisticBaseline(
            config.logistic_c_grid,
            config.cv_folds,
            random_state=config.seed,
            n_jobs=config.n_tasks,
            **shared,
        ).fit(*args),
        "m_easix": MEasixBaseline(random_state=config.seed, **shared).fit(*args),
    }


@dataclass(frozen=True)
class Champion:
    """The registry's current champion to compare a candidate with (``model`` None: there is
    none, or it could not be loaded, and ``note`` says which)."""

    model: RiskModel | None = None
    version: str | None = None
    note: str = "the registry has no champion yet"


def fit_and_evaluate(
    ds: LandmarkDataset,
    config: TrainConfig,
    step: Callable[[str], None] = lambda _: None,
    champion: Champion = Champion(),
    update: Callable[[LandmarkDataset], RiskModel] | None = None,
) -> FitResult:
    """Everything except MLflow: split, fit the model and the baselines, evaluate (with the
    champion on the same held-out rows, if there is one), gate.

    ``update``: instead of fitting a new model, make the candidate from the training rows this
    way (an existing model recalibrated on them, :func:`model.updating.recalibrated`); it is
    judged exactly as a new one, and has no learning curve and no input-set comparison (it
    was not fitted on these inputs)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if config.split == "temporal":
        order = cast(
            pd.Series,
            ds.subgroups.get("infusion_order", pd.Series(np.nan, index=ds.subgroups.index)),
        )
        rest, held = temporal_split(ds.patient_id, order.to_numpy(float), config.test_fraction)
    else:
        rest, held = grouped_split(ds.patient_id, config.test_fraction, config.seed)
    # held-out patients on every landmark day; training patients on every stride-th day
    rest &= day_stride_rows(ds.patient_id, ds.landmark_day, config.training_day_stride, config.seed)
    train, test = ds.subset(rest), ds.subset(held)

    if update is None:
        step("risk model: tuning, fit, calibration, uncertainty refits")
        labels = train.labels(config.horizons)
        model = risk_model(config).fit(train.raw, labels, train.patient_id)
    else:
        step("updating the model on the training patients")
        model = update(train)
    timings["model_fit_s"] = time.perf_counter() - t0

    step("baselines")
    t1 = time.perf_counter()
    baselines = fit_baselines(model, train, config)
    timings["baselines_s"] = time.perf_counter() - t1

    step("evaluation")
    t2 = time.perf_counter()
    preds = {MODEL: model.predict_proba(test.raw)[:, 1]}
    preds |= {name: b.predict_proba(test.raw)[:, 1] for name, b in baselines.items()}
    if champion.model is not None:
        preds[CHAMPION] = champion.model.predict_proba(test.raw)[:, 1]
    ev = evaluate(test, preds, config.bootstrap_samples, config.seed, config.decision_thresholds)
    ev.meta["champion_version"] = champion.version
    ev.meta["split"] = config.split
    has_true_risk = bool(np.isfinite(ds.true_risk).any())
    horizons = evaluate_horizons(model, test, config)
    gate = check_gates(ev, config.gates, has_true_risk, champion.note, horizons)
    by_day = horizon_table(model, test, config.bootstrap_samples, config.seed)
    timings["evaluation_s"] = time.perf_counter() - t2

    step("learning curve")
    t3 = time.perf_counter()
    curve = (
        learning_curve(
            model, train, test, config.learning_curve_sizes, config.learning_curve_repeats
        )
        if update is None
        else pd.DataFrame()
    )
    timings["learning_curve_s"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    sets = config.input_sets if update is None else ()
    comparison = compare_input_sets(model, train, test, sets, step)
    timings["input_sets_s"] = time.perf_counter() - t4
    return FitResult(model, baselines, ev, gate, curve, test, timings, comparison, horizons, by_day)


def evaluate_horizons(
    model: RiskModel, test: LandmarkDataset, config: TrainConfig
) -> dict[str, Evaluation]:
    """The model's risk within each horizon shorter than day 28 on the held-out rows, against
    that horizon's events and (from a synthetic cohort) its exact true risk, with the same
    bootstrap as the day-28 evaluation."""
    fitted = model.horizons_
    if len(fitted) == 1:
        return {}
    risk = model.predict_horizons(test.raw)
    return {
        name: evaluate(
            test.for_horizon(name),
            {MODEL: risk[:, k]},
            config.bootstrap_samples,
            config.seed,
            config.decision_thresholds,
        )
        for k, name in enumerate(fitted)
        if name != TARGET_HORIZON.name
    }


DECISION_DAYS = (3, 7)
"""Days 3-7: the admission and escalation decisions of the first week (icans-facts-3: 38% of
outpatient admissions fell on days 4-7), where the 72-hour risk is meant to be read instead of
the day-28 one; the table holds this window beside the day groups."""


def horizon_table(
    model: RiskModel, test: LandmarkDataset, n_boot: int = 0, seed: int = 0
) -> pd.DataFrame:
    """Every fitted horizon on the held-out rows, overall, per day group
    (:data:`features.landmarks.DAY_GROUPS`) and on days 3-7 (:data:`DECISION_DAYS`): rows and
    events; the model's AUROC; the horizon's exact true risk's AUROC on the same rows (NaN
    without one); the gap (true risk minus model: positive when the model trails), with its
    patient-bootstrap 95% interval (``n_boot`` replicates; NaN for 0); the calibration slope
    and intercept; and the AUROC of the day-28 risk against this horizon's events on the same
    rows (what reading the day-28 risk instead would give). What issue 28's targets are judged
    on: a gap of at most 0.02 and a slope of 0.8-1.2 per horizon and day group."""
    fitted = model.horizons_
    risk = model.predict_horizons(test.raw)
    day28 = risk[:, fitted.index(TARGET_HORIZON.name)]
    day = test.landmark_day
    groups = {"all": np.ones(len(test), dtype=bool)}
    groups |= {day_group(a, b): (day >= a) & (day <= b) for a, b in DAY_GROUPS}
    groups[day_group(*DECISION_DAYS)] = (day >= DECISION_DAYS[0]) & (day <= DECISION_DAYS[1])
    weights = (
        np.array(list(bootstrap_weights(test.patient_id, n_boot, seed)))
        if n_boot
        else np.empty((0, len(test)))
    )
    rows = []
    for k, name in enumerate(fitted):
        rows_h = test.for_horizon(name)
        y = rows_h.label.astype(float)
        truth = rows_h.true_risk
        for label, mask in groups.items():
            events = int(y[mask].sum())
            if events == 0 or events == mask.sum():
                continue  # no AUROC without both outcomes (a group past the rows' days)
            model_scores = PreparedScores(y[mask], risk[mask, k])
            m = model_scores.metrics()
            row = {
                "horizon": name,
                "days": label,
                "n_rows": int(mask.sum()),
                "n_events": events,
                "auroc": m["auroc"],
                "true_risk_auroc": np.nan,
                "auroc_gap": np.nan,
                "gap_ci_low": np.nan,
                "gap_ci_high": np.nan,
                "calibration_slope": m["calibration_slope"],
                "calibration_intercept": m["calibration_intercept"],
                "day28_risk_auroc": PreparedScores(y[mask], day28[mask]).metrics()["auroc"],
            }
            if np.isfinite(truth[mask]).all():
                true_scores = PreparedScores(y[mask], truth[mask])
                row["true_risk_auroc"] = true_scores.metrics()["auroc"]
                row["auroc_gap"] = row["true_risk_auroc"] - row["auroc"]
                if n_boot:
                    gap = true_scores.auroc_batch(weights[:, mask]) - model_scores.auroc_batch(
                        weights[:, mask]
                    )
                    row["gap_ci_low"], row["gap_ci_high"] = np.nanpercentile(gap, [2.5, 97.5])
            rows.append(row)
    return pd.DataFrame(rows)
