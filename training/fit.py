"""Fit and judge a risk model on a cohort's landmark rows, without recording anything.

1. split patients (never rows) into training and held-out test: at random, or in time (the
   latest infused held out, ``split = "temporal"``);
2. fit the risk model (:class:`model.risk_model.RiskModel`: training copies, tuning,
   recalibration and refits all happen in its ``fit``) and the baselines on the training
   patients;
3. score model, baselines, the generator's true risk (when the cohort has one) and the current
   champion (when there is one) on the same held-out rows, with patient-level bootstrap CIs;
   subgroups; decision curve; quality gates; and, for a model of several horizons
   (``config.horizons``, :mod:`icans.horizons`), the model against each shorter horizon's own
   events and true risk, judged the same way (``FitResult.horizons``);
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
from features.landmarks import LandmarkDataset
from icans.horizons import TARGET_HORIZON
from model.baselines import LogisticBaseline, MEasixBaseline
from model.risk_model import RiskModel
from model.splits import grouped_split, temporal_split
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
    gate = check_gates(ev, config.gates, has_true_risk, champion.note)
    horizons = evaluate_horizons(model, test, config)
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
    return FitResult(model, baselines, ev, gate, curve, test, timings, comparison, horizons)


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
