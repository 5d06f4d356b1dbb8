"""The feature pipeline as scikit-learn transformers.

``build_feature_pipeline()`` returns::

    Pipeline([
        ("window", ObservationWindow()),      # raw layout -> float matrix, future masked
        ("features", ClinicalFeatures()),     # one transformer per clinical domain
        ("ranges", TrainingRanges()),         # identity; remembers the training ranges
    ])

The risk model (:class:`model.risk_model.RiskModel`) fits this pipeline inside its own ``fit``
and carries it, so training, batch scoring and the endpoint run the very same code and fitted
state; the explanations take the names from ``get_feature_names_out()``. The steps holding state
learnt from the training rows (:class:`ExpansionLevel`, :class:`InflammationIndex`,
:class:`CategoryIndicators`, :class:`TrainingRanges`) are in :mod:`features.learned`.

The predictors and the day each is read up to: the table in :mod:`features`.

A fitted model computes the predictors it was fitted with: each step records them at fit
(:mod:`features.steps`) and :class:`ClinicalFeatures` keeps its fitted steps, so a model logged
before a predictor or a step was added (``marrow_involvement``, the treatment step) answers
exactly as it did.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from features import definitions as d
from features.daily import daily_steps
from features.expansion_curve import ExpansionCurve
from features.input_sets import check_inputs, kept
from features.kinetics import ExpansionShape, ExpansionTiming
from features.layout import (
    RAW_COLUMNS,
    as_raw,
    check_prediction_day,
    col,
    mask_after_prediction_day,
    series,
)

# the steps with state learnt from the training rows; also the names under which models logged
# before features.learned existed pickled them (features.transformers.ExpansionLevel ...)
from features.learned import CategoryIndicators, ExpansionLevel, InflammationIndex, TrainingRanges
from features.steps import FeatureStep, Stateless, require_fitted
from features.treatment import TreatmentFeatures
from icans.contract import LAB_FIELDS


class ObservationWindow(FeatureStep):
    """Raw layout in, float matrix out, with every value dated after day L set to NaN.

    The boundary validators reject future-dated data; this step guarantees that even data that
    reached the pipeline some other way can never be read (no leakage by construction), and
    refuses, naming the row, a row whose prediction day is missing or not a day 0-28.
    """

    def fit(self, X, y=None):
        self.n_features_in_ = len(RAW_COLUMNS)
        return self

    def transform(self, X):
        require_fitted(self, "n_features_in_")
        raw = as_raw(X)
        check_prediction_day(raw)
        return mask_after_prediction_day(raw)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(RAW_COLUMNS, dtype=object)


class BaselineFeatures(Stateless):
    """Fields known before infusion, in clinical units (dose on a log10 scale).

    Marrow disease is measured as blasts in the leukaemias and as involvement (yes/no) in
    lymphoma, CLL and myeloma; both enter as they are, each missing where not measured.
    """

    names = (
        "age_years",
        "log10_dose_cells_per_kg",
        "marrow_blasts_pct",
        "marrow_involvement",
        "cns_involvement",
        "neuro_comorbidity",
        "flu_cy_lymphodepletion",
        *LAB_FIELDS,
    )
    first_names = tuple(n for n in names if n != "marrow_involvement")  # added in generation 2

    def _compute(self, raw):
        dose = col(raw, "dose_cells_per_kg")
        log_dose = np.log10(np.where(dose > 0, dose, np.nan))
        ld = col(raw, "lymphodepletion")
        flu_cy = np.where(np.isnan(ld), np.nan, (ld == 0).astype(float))
        return [
            col(raw, "age_years"),
            log_dose,
            col(raw, "marrow_blasts_pct"),
            col(raw, "marrow_involvement"),
            col(raw, "cns_involvement"),
            col(raw, "neuro_comorbidity"),
            flu_cy,
            *(col(raw, lab) for lab in LAB_FIELDS),
        ]


class LabScores(Stateless):
    """Pre-infusion endothelial scores: m-EASIX (Pennisi 2021) and EASIX (Korell 2022)."""

    names = ("m_easix", "easix")

    def _compute(self, raw):
        ldh, plt = col(raw, "ldh_u_per_l"), col(raw, "platelets_10e9_per_l")
        return [
            d.m_easix(ldh, col(raw, "crp_mg_per_l"), plt),
            d.easix(ldh, col(raw, "creatinine_mg_per_dl"), plt),
        ]


class CrsFeatures(Stateless):
    """CRS so far (ASTCT 2019 grades): today, worst to date, days since onset."""

    names = ("crs_grade_today", "crs_max_grade_to_date", "days_since_crs_onset")

    def _compute(self, raw):
        block = series(raw, "crs_grade")
        return [
            d.latest_value(block),
            d.max_to_date(block),
            d.days_since_first(block, 1, col(raw, "day_since_infusion")),
        ]


class ExpansionFeatures(Stateless):
    """CAR-T expansion so far: CD4+/CD8+ AUC (trapezoid), their ratio and the CD4+ peak."""

    names = (
        "cd4_auc_to_date_cells_day_per_ul",
        "cd8_auc_to_date_cells_day_per_ul",
        "cd4_cd8_auc_ratio",
        "cd4_peak_to_date_cells_per_ul",
    )

    def _compute(self, raw):
        cd4, cd8 = series(raw, "cd4_cells_per_ul"), series(raw, "cd8_cells_per_ul")
        # both series in one call (each row's area is its own): one set-up for a patient
        auc4, auc8 = d.auc_to_date(np.vstack([cd4, cd8])).reshape(2, len(raw))
        return [auc4, auc8, d.ratio(auc4, auc8), d.max_to_date(cd4)]


class IcansFeatures(Stateless):
    """ICANS so far (grades 0-2: a patient at grade >= 3 has had the event).

    ``days_since_icans_grade2`` dates the first grade-2 day, when ASTCT/ASCO management starts
    corticosteroids; steroid-refractoriness is judged on the response that follows (Gazeau,
    Transplant Cell Ther 2023: "grade >= 2 ICANS with worsening or lack of improvement despite
    high-dose corticosteroids"; this project reads it as grade >= 2 persisting 48 and 72 h
    after the first dose, or escalation to second-line therapy: :mod:`icans.steroids`). Its
    effect is not monotone: the risk is highest while the response is still pending and falls
    once the patient has improved, so it carries no monotone constraint.
    """

    names = (
        "icans_grade_today",
        "icans_max_grade_to_date",
        "days_since_icans_onset",
        "days_since_icans_grade2",
    )

    def _compute(self, raw):
        block = series(raw, "icans_grade")
        day = col(raw, "day_since_infusion")
        return [
            d.latest_value(block),
            d.max_to_date(block),
            d.days_since_first(block, 1, day),
            d.days_since_first(block, 2, day),
        ]


class LandmarkDay(Stateless):
    """The prediction day itself (risk after day L changes with L)."""

    names = ("landmark_day",)

    def _compute(self, raw):
        return [col(raw, "day_since_infusion")]


class ClinicalFeatures(FeatureStep):
    """Concatenates the domain feature steps (like FeatureUnion, without its per-call joblib
    overhead, which dominated a single-patient request: ~0.45 ms of ~0.65 ms).

    The default steps are chosen at fit and kept in ``steps_``: a pickled fitted instance runs
    the steps it was fitted with, never steps added to the default list later.

    ``inputs`` leaves out groups of inputs (:mod:`features.input_sets`): ``"all"`` (every
    predictor), ``"routine"`` (no CAR-T counts, no IL-6), ``"baseline"`` (known before
    infusion, and the landmark day) or ``"named"`` (the owner's first-generation fields). Fit
    checks it, keeps only the steps with a predictor in the set (``steps_``) and which of their
    predictors (``keep_``)."""

    inputs: str = "all"  # what an instance pickled before the parameter existed holds

    def __init__(self, steps: list[tuple[str, FeatureStep]] | None = None, inputs: str = "all"):
        self.steps = steps
        self.inputs = inputs

    def _steps(self) -> list[tuple[str, FeatureStep]]:
        if self.steps is not None:
            return self.steps
        return [
            ("categories", CategoryIndicators()),
            ("baseline", BaselineFeatures()),
            ("labs", LabScores()),
            ("landmark", LandmarkDay()),
            ("crs", CrsFeatures()),
            ("expansion", ExpansionFeatures()),
            ("icans", IcansFeatures()),
            ("expansion_level", ExpansionLevel()),
            ("inflammation", InflammationIndex()),
            ("treatment", TreatmentFeatures()),
            ("expansion_shape", ExpansionShape()),
            ("expansion_timing", ExpansionTiming()),
            ("expansion_curve", ExpansionCurve()),
            *daily_steps(),
        ]

    def fit(self, X, y=None):
        check_inputs(self.inputs)
        steps, keep = [], []
        for name, step in self._steps():
            fitted = cast(FeatureStep, clone(step)).fit(X, y)
            mask = kept(name, fitted.get_feature_names_out(), self.inputs)
            if mask.any():
                steps.append((name, fitted))
                keep.append(None if mask.all() else np.flatnonzero(mask))
        self.steps_, self.keep_ = steps, keep
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def _kept(self) -> list[np.ndarray | None]:
        # a model pickled before input sets existed kept every predictor of every step
        return getattr(self, "keep_", None) or [None] * len(self.steps_)

    def transform(self, X):
        require_fitted(self, "steps_")
        return np.hstack(
            [
                step.transform(X) if keep is None else step.transform(X)[:, keep]
                for (_, step), keep in zip(self.steps_, self._kept(), strict=True)
            ]
        )

    def get_feature_names_out(self, input_features=None):
        require_fitted(self, "steps_")
        return np.concatenate(
            [
                step.get_feature_names_out() if keep is None else step.get_feature_names_out()[keep]
                for (_, step), keep in zip(self.steps_, self._kept(), strict=True)
            ]
        )


def build_feature_pipeline(inputs: str = "all") -> Pipeline:
    """The unfitted feature pipeline (raw layout -> predictors); ``inputs``: the input set
    (:class:`ClinicalFeatures`, :mod:`features.input_sets`)."""
    return Pipeline(
        [
            ("window", ObservationWindow()),
            ("features", ClinicalFeatures(inputs=inputs)),
            ("ranges", TrainingRanges()),
        ]
    )


def transform_rows(feature_pipeline: Pipeline, raw: np.ndarray) -> np.ndarray:
    """Run a fitted feature pipeline's steps on raw rows, step by step.

    Exactly the steps and fitted state of ``feature_pipeline.transform`` (a test checks the
    results are identical), without scikit-learn's per-call routing and validation overhead:
    the endpoint's single-patient path.
    """
    x = raw
    for _, step in feature_pipeline.steps:
        x = step.transform(x)
    return x
