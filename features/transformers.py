"""The feature pipeline as scikit-learn transformers.

``build_feature_pipeline()`` returns::

    Pipeline([
        ("window", ObservationWindow()),      # raw layout -> float matrix, future masked
        ("features", ClinicalFeatures()),     # one transformer per clinical domain
        ("ranges", TrainingRanges()),         # identity; remembers the training ranges
    ])

The risk model (:class:`model.risk_model.RiskModel`) fits this pipeline inside its own ``fit``
and carries it, so training, batch scoring and the endpoint run the very same code and fitted
state; the explanations take the names from ``get_feature_names_out()``.

The predictors and the day each is read up to: the table in :mod:`features`.

A fitted model computes the predictors it was fitted with: each step records them at fit
(:mod:`features.steps`) and :class:`ClinicalFeatures` keeps its fitted steps, so a model logged
before a predictor or a step was added (``marrow_involvement``, the treatment step) answers
exactly as it did.
"""

from __future__ import annotations

import warnings
from typing import cast

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from features import definitions as d
from features.daily import daily_steps
from features.expansion_curve import ExpansionCurve
from features.input_sets import check_inputs, kept
from features.kinetics import (
    ExpansionShape,
    ExpansionTiming,
    product_day_medians,
    product_group,
    product_index,
    reference_for,
)
from features.layout import (
    CATEGORICAL_FIELDS,
    RAW_COLUMNS,
    as_raw,
    check_prediction_day,
    col,
    mask_after_prediction_day,
    series,
)
from features.steps import FeatureStep, Stateless, require_fitted
from features.treatment import TreatmentFeatures
from icans.contract import DISEASE_GROUPS, DISEASES, LAB_FIELDS
from icans.errors import UnknownCategoryWarning


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
        auc4, auc8 = d.auc_to_date(cd4), d.auc_to_date(cd8)
        return [auc4, auc8, d.ratio(auc4, auc8), d.max_to_date(cd4)]


class IcansFeatures(Stateless):
    """ICANS so far (grades 0-2: a patient at grade >= 3 has had the event).

    ``days_since_icans_grade2`` dates the first grade-2 day, when ASTCT/ASCO management starts
    corticosteroids; steroid-refractoriness is judged on the response that follows (Gazeau,
    Transplant Cell Ther 2023: "grade >= 2 ICANS with worsening or lack of improvement despite
    high-dose corticosteroids"; this project judges it 72 h after the first dose, see the data
    card). Its effect is not monotone: the risk is highest while the response is still
    pending and falls once the patient has improved, so it carries no monotone constraint.
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


class ExpansionLevel(FeatureStep):
    """CD4+ CAR-T level so far: the latest sample, and the level relative to the product.

    * ``cd4_latest_cells_per_ul``: the latest CD4+ sample on days 1..L (NaN before the first).
    * ``cd4_expansion_vs_product``: the mean, over the CD4+ samples on days 1..L, of
      log(sample) minus the typical log CD4+ count of the same product on the same day.

    Rationale: the AUC and the peak to date grow with the landmark day and with the product's
    own kinetics (CD28 products expand faster and higher than 4-1BB ones; the peak falls in the
    second week), so "high expansion" means a different AUC on every day and for every product.
    What is associated with neurotoxicity is expansion above what the product usually does
    (ZUMA-1; Santomasso 2018). Comparing each sample with the product's typical level on that
    day, and averaging over the samples, gives one number on the same scale on every landmark
    day, which trees can split once instead of learning a threshold per day and per product;
    averaging on the log scale also damps the ~25% measurement noise of a single count.

    Learned state (no labels): for each (CAR target, costimulatory domain) seen in training and
    each day 1..28, the median log CD4+ count of the training rows sampled that day (each
    landmark row counts once: it is a reference point, not a population estimate). Cells with
    fewer than ``min_samples`` samples, and products never seen in training, use the median of
    all products on that day; a day with fewer samples than that overall is not compared (a
    sample on such a day is left out of the mean). Both features rise whenever a sample rises
    (monotone in CD4+ expansion).
    """

    names = ("cd4_latest_cells_per_ul", "cd4_expansion_vs_product")

    def __init__(self, min_samples: int = 20):
        self.min_samples = min_samples

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        block = series(raw, "cd4_cells_per_ul")
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(np.maximum(block, d.LOG_COUNT_FLOOR_CELLS_PER_UL))
        logs = np.where(np.isnan(block), np.nan, logs)
        self.groups_, self.reference_, self.pooled_ = product_day_medians(
            logs, product_group(raw), self.min_samples
        )
        return self

    def transform(self, X):
        require_fitted(self, "reference_")
        raw = np.asarray(X, dtype=float)
        block = series(raw, "cd4_cells_per_ul")
        index = product_index(product_group(raw), self.groups_)
        reference = reference_for(index, self.reference_, self.pooled_)
        return np.column_stack(
            [d.latest_sample_after_day0(block), d.mean_log_deviation(block, reference)]
        )

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)


class InflammationIndex(FeatureStep):
    """``lab_inflammation_index``: one weighted sum of the standardised log inflammation labs.

    LDH, CRP and ferritin rise and platelets fall with the systemic inflammation and endothelial
    activation that precede ICANS (Gauthier: LDH; Greenbaum 2021: CRP and ferritin; Pennisi
    2021: m-EASIX = LDH x CRP / platelets). Each is a noisy readout of the same state, so a
    weighted sum of all four reads it better than any one; m-EASIX fixes the weights (1, 1, 0,
    -1 on the log scale). Here the weights are the first principal component of the training
    patients' standardised log values (no labels: the direction in which the four labs vary
    together), oriented so that the index rises with LDH, CRP and ferritin and falls with
    platelets; a weight whose sign would contradict those published directions is set to 0, so
    the index is monotone in each lab in its published direction.

    A missing lab contributes its training mean (0 after standardising); with all four
    missing the index is NaN (reported as a missing input).
    """

    labs = ("ldh_u_per_l", "crp_mg_per_l", "ferritin_ng_per_ml", "platelets_10e9_per_l")
    directions = (1.0, 1.0, 1.0, -1.0)
    names = ("lab_inflammation_index",)

    def _logs(self, raw: np.ndarray) -> np.ndarray:
        values = np.column_stack([col(raw, lab) for lab in self.labs])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        logs = self._logs(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing lab -> NaN
            self.mean_ = np.nanmean(logs, axis=0)
            sd = np.nanstd(logs, axis=0)
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, np.inf)  # constant lab: weight 0
        self.mean_ = np.nan_to_num(self.mean_)
        z = np.nan_to_num((logs - self.mean_) / self.scale_)
        weights = np.zeros(len(self.labs))
        if len(z) > 1:
            _, vectors = np.linalg.eigh(np.cov(z, rowvar=False))
            weights = vectors[:, -1]
        direction = np.asarray(self.directions)
        if weights @ direction < 0:
            weights = -weights
        self.weights_ = np.where(weights * direction > 0, weights, 0.0)
        return self

    def transform(self, X):
        require_fitted(self, "weights_")
        logs = self._logs(np.asarray(X, dtype=float))
        z = (logs - self.mean_) / self.scale_
        z = np.where(np.isnan(z), 0.0, z)  # a missing lab: its training mean
        # column by column, not a matrix product: BLAS may sum a batch in another order than a
        # single row, and the endpoint's one-row result must equal the batch's bit for bit
        index = np.zeros(len(z))
        for j, weight in enumerate(self.weights_):
            index = index + weight * z[:, j]
        return np.where(np.isnan(logs).all(axis=1), np.nan, index)[:, None]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)


DISEASE_GROUP_NAMES = tuple(sorted(set(DISEASE_GROUPS.values())))
_GROUP_CODE_OF_DISEASE = np.array(
    [DISEASE_GROUP_NAMES.index(DISEASE_GROUPS[x]) for x in DISEASES], dtype=float
)
CATEGORY_VOCABULARY = {
    "car_target": CATEGORICAL_FIELDS["car_target"],
    "costimulatory_domain": CATEGORICAL_FIELDS["costimulatory_domain"],
    "disease_group": DISEASE_GROUP_NAMES,
}


def category_codes(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Codes (positions in each vocabulary, NaN if missing) of the encoded categorical fields."""
    disease = col(raw, "disease")
    known = ~np.isnan(disease)
    group = np.full(len(raw), np.nan)
    group[known] = _GROUP_CODE_OF_DISEASE[disease[known].astype(int)]
    return {
        "car_target": col(raw, "car_target"),
        "costimulatory_domain": col(raw, "costimulatory_domain"),
        "disease_group": group,
    }


class CategoryIndicators(FeatureStep):
    """Indicators for CAR target, costimulatory domain and disease group seen in training.

    Rule for a category never seen in training (e.g. a CAR target absent from the training
    cohort): all its indicators are 0, so the model relies on the other predictors, and an
    :class:`~icans.errors.UnknownCategoryWarning` names the field and the value. It is never
    mapped to another category. A missing value is also all-zero and reported as missing.
    """

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        self.codes_ = {
            field: np.unique(codes[~np.isnan(codes)])
            for field, codes in category_codes(raw).items()
        }
        self.categories_ = {
            field: tuple(CATEGORY_VOCABULARY[field][int(c)] for c in codes)
            for field, codes in self.codes_.items()
        }
        return self

    def unseen(self, raw: np.ndarray) -> list[tuple[str, str]]:
        """(field, value) pairs in ``raw`` that training never saw."""
        require_fitted(self, "codes_")
        out = []
        for field, codes in category_codes(np.asarray(raw, dtype=float)).items():
            present = set(codes[~np.isnan(codes)].tolist())  # a few rows: sets, not np.unique
            for c in sorted(present - set(self.codes_[field].tolist())):
                out.append((field, CATEGORY_VOCABULARY[field][int(c)]))
        return out

    def transform(self, X):
        require_fitted(self, "codes_")
        raw = np.asarray(X, dtype=float)
        for field, value in self.unseen(raw):
            warnings.warn(
                f"{field}={value!r} was not seen in training: encoded as none of the "
                f"seen categories {list(self.categories_[field])}",
                UnknownCategoryWarning,
                stacklevel=2,
            )
        blocks = [
            (codes[:, None] == self.codes_[field][None, :]).astype(float)
            for field, codes in category_codes(raw).items()
        ]
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None):
        require_fitted(self, "categories_")
        return np.asarray(
            [f"{field}={k}" for field, known in self.categories_.items() for k in known],
            dtype=object,
        )


class TrainingRanges(FeatureStep):
    """Identity step that remembers each feature's central 99% training range.

    The endpoint and reports warn when a value falls outside it (the model has seen few or no
    such patients there). Learned state travels with the logged model.
    """

    def __init__(self, lower_quantile: float = 0.005, upper_quantile: float = 0.995):
        self.lower_quantile = lower_quantile
        self.upper_quantile = upper_quantile

    max_rows = 200_000  # quantiles from an evenly spaced subsample: stable and fast

    def fit(self, X, y=None):
        x = np.asarray(X, dtype=float)
        self.n_features_in_ = x.shape[1]
        if len(x) > self.max_rows:
            x = x[:: -(-len(x) // self.max_rows)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN range
            self.lower_ = np.nanquantile(x, self.lower_quantile, axis=0)
            self.upper_ = np.nanquantile(x, self.upper_quantile, axis=0)
        return self

    def transform(self, X):
        require_fitted(self, "lower_")
        return np.asarray(X, dtype=float)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features, dtype=object)


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
