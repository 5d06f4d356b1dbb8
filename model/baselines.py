"""The baselines every risk model is compared with, each an estimator from raw rows to risk.

* :class:`LogisticBaseline`: penalised (L2) logistic regression on the same predictors (log of
  skewed values, median imputation with missing indicators, standardisation), its penalty chosen
  by the same grouped cross-validation; what a careful statistician would fit first.
* :class:`MEasixBaseline`: the published pre-infusion score m-EASIX (Pennisi M et al., Blood Adv
  2021;5(17):3397) alone, as a one-feature logistic model (log scale, median imputation).

Both learn from exactly the rows the risk model learns from: the observed rows plus the copies
with a course series missing (:mod:`model.augment`), so a comparison measures the model, not the
data it saw.

Both are scikit-learn's ``LogisticRegression``, on purpose: a baseline is the standard fit anyone
would make, independent of the model it judges. The logistic models that are part of the risk
model (its additive part, its recalibration) and of its metrics are fitted by the project's own
routine, :func:`evaluation.logistic.fit_logistic`.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from features.layout import as_raw
from features.transformers import build_feature_pipeline, transform_rows
from model.augment import with_missing_series
from model.boosting import SKEWED
from model.risk_model import RiskModel
from model.splits import grouped_folds
from model.tasks import run_tasks

# The settings the baselines share with the risk model (the same training copies, folds and
# seed) default to the risk model's.
_SHARED = {name: p.default for name, p in inspect.signature(RiskModel).parameters.items()}


def _log1p_nonneg(x):
    return np.log1p(np.clip(x, 0, None))


class _Baseline(ClassifierMixin, BaseEstimator):
    """Shared fit: the feature pipeline (fitted here, or a fitted one given as a
    ``FrozenEstimator``) and the training copies (:meth:`_prepare`); each subclass's ``fit``
    then fits its model on them."""

    # set by the subclasses: their parameters in __init__, the fitted model in fit
    features: Any  # None, or a fitted feature pipeline (as a FrozenEstimator)
    missing_series_fraction: float
    random_state: int
    pipeline_: Pipeline

    def _prepare(self, X, y, groups):
        raw = as_raw(X)
        self.features_ = self.features if self.features is not None else build_feature_pipeline()
        if self.features is None:
            self.features_.fit(raw)
        names = tuple(cast(np.ndarray, self.features_.get_feature_names_out()))
        raw, index = with_missing_series(raw, self.missing_series_fraction, self.random_state)
        y = np.asarray(y, dtype=int)[index]
        groups = np.arange(len(index)) if groups is None else np.asarray(groups)[index]
        self.classes_ = np.array([0, 1])
        return self.features_.transform(raw), y, groups, names

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        return self.pipeline_.predict_proba(transform_rows(self.features_, as_raw(X)))


class LogisticBaseline(_Baseline):
    """Penalised logistic regression on every clinical predictor; its penalty chosen by grouped
    cross-validation, each (penalty, fold) fit a task (``n_jobs`` at once, :mod:`model.tasks`)."""

    def __init__(
        self,
        c_grid: tuple[float, ...] = (0.01, 0.1, 1.0),
        cv_folds: int = _SHARED["cv_folds"],
        missing_series_fraction: float = _SHARED["missing_series_fraction"],
        random_state: int = _SHARED["random_state"],
        features=None,
        n_jobs: int = _SHARED["n_tasks"],
    ):
        self.c_grid = c_grid
        self.cv_folds = cv_folds
        self.missing_series_fraction = missing_series_fraction
        self.random_state = random_state
        self.features = features
        self.n_jobs = n_jobs

    @staticmethod
    def _pipeline(names: tuple[str, ...], c: float) -> Pipeline:
        skewed = [i for i, n in enumerate(names) if n in SKEWED]
        other = [i for i, n in enumerate(names) if n not in SKEWED]
        prep = ColumnTransformer(
            [
                ("log", FunctionTransformer(_log1p_nonneg, feature_names_out="one-to-one"), skewed),
                ("keep", "passthrough", other),
            ]
        )
        return Pipeline(
            [
                ("prep", prep),
                (
                    "impute",
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                ),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=c, max_iter=2000)),
            ]
        )

    def fit(self, X, y, groups=None) -> LogisticBaseline:
        """Choose the penalty by grouped cross-validation (mean held-out log loss), then fit."""
        x, y, groups, names = self._prepare(X, y, groups)
        folds = grouped_folds(groups, self.cv_folds, self.random_state)
        fold_losses = run_tasks(  # one task per penalty and fold (model.tasks)
            _held_out_loss,
            [(names, c, x, y, tr, va) for c in self.c_grid for tr, va in folds],
            self.n_jobs,
        )
        losses = {
            c: np.mean(fold_losses[i * len(folds) : (i + 1) * len(folds)])
            for i, c in enumerate(self.c_grid)
        }
        self.c_ = min(self.c_grid, key=losses.__getitem__)
        self.cv_log_loss_ = {float(c): float(v) for c, v in losses.items()}
        self.pipeline_ = self._pipeline(names, self.c_).fit(x, y)
        return self


def _held_out_loss(names, c, x, y, train, valid) -> float:
    """The held-out log loss of the logistic baseline with penalty ``c`` fitted on one fold
    (``train``, ``valid``: masks into the whole matrix, each task takes its own rows)."""
    fitted = LogisticBaseline._pipeline(names, c).fit(x[train], y[train])
    return float(log_loss(y[valid], fitted.predict_proba(x[valid]), labels=[0, 1]))


class MEasixBaseline(_Baseline):
    """m-EASIX = LDH x CRP / platelets (:func:`features.definitions.m_easix`) alone."""

    def __init__(
        self,
        missing_series_fraction: float = _SHARED["missing_series_fraction"],
        random_state: int = _SHARED["random_state"],
        features=None,
    ):
        self.missing_series_fraction = missing_series_fraction
        self.random_state = random_state
        self.features = features

    def fit(self, X, y, groups=None) -> MEasixBaseline:
        x, y, _, names = self._prepare(X, y, groups)
        select = ColumnTransformer(
            [("log_m_easix", FunctionTransformer(_log1p_nonneg), [names.index("m_easix")])]
        )
        self.pipeline_ = Pipeline(
            [
                ("select", select),
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("model", LogisticRegression(C=1e6, max_iter=1000)),
            ]
        ).fit(x, y)
        return self
