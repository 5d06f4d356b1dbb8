"""The risk model and its baselines, each a full pipeline from the raw layout to a probability.

* ``RiskModel``: gradient-boosted trees (xgboost) on the clinical features, with monotone
  constraints where the clinical direction is known (:data:`features.transformers.KNOWN_INCREASING`
  plus the CD4:CD8 ratio), and an optional logistic recalibration of its log-odds
  (``p = expit(a + b * margin)``, b > 0) fitted on held-out patients. Because the recalibration is
  linear in the log-odds, TreeSHAP values scaled by ``b`` still add up exactly to the
  recalibrated log-odds, and the monotone directions survive.
* ``logistic_baseline``: penalised (L2) logistic regression on the same features (log of skewed
  values, median imputation with missing indicators, standardisation).
* ``m_easix_baseline``: the published pre-infusion score m-EASIX (Pennisi 2021) alone, as a
  one-feature logistic model (log scale, median imputation).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier

from features.transformers import (
    KNOWN_INCREASING,
    PUBLISHED_DECREASING,
    PUBLISHED_INCREASING,
    LandmarkDay,
    build_feature_pipeline,
)
from model.linear_offset import LinearOffset

# CD4-dominant expansion does not lower the risk (Baur 2023; Katsin 2024): constraining the
# ratio keeps "more CD4+ expansion never lowers the risk" true when CD4 samples rise.
MONOTONE_INCREASING = (*KNOWN_INCREASING, *PUBLISHED_INCREASING, "cd4_cd8_auc_ratio")
MONOTONE_DECREASING = PUBLISHED_DECREASING
SKEWED = (
    "ldh_u_per_l",
    "crp_mg_per_l",
    "ferritin_ng_per_ml",
    "platelets_10e9_per_l",
    "creatinine_mg_per_dl",
    "m_easix",
    "easix",
    "cd4_auc_to_date_cells_day_per_ul",
    "cd8_auc_to_date_cells_day_per_ul",
    "cd4_cd8_auc_ratio",
    "cd4_peak_to_date_cells_per_ul",
    "cd4_latest_cells_per_ul",
)
LANDMARK_FEATURE = LandmarkDay.names[0]  # the additive part's coefficients vary with it


class RiskModel(ClassifierMixin, BaseEstimator):
    """XGBoost classifier with monotone constraints and an optional log-odds recalibration.

    With ``linear_offset`` (the default) the trees boost from the log-odds of a sign-constrained
    penalised logistic regression on the same predictors (:mod:`model.linear_offset`), so
    they model only what the additive part leaves; the model is still one log-odds function,
    monotone where required, explained exactly by linear plus TreeSHAP contributions.
    """

    def __init__(
        self,
        feature_names: tuple[str, ...] = (),
        max_depth: int = 4,
        learning_rate: float = 0.05,
        n_estimators: int = 300,
        min_child_weight: float = 5.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        random_state: int = 0,
        n_jobs: int = 2,
        linear_offset: bool = True,
        day_degree: int = 2,
        day_smoothing: float = 10.0,
    ):
        self.feature_names = feature_names
        self.linear_offset = linear_offset
        self.day_degree = day_degree
        self.day_smoothing = day_smoothing
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _xgb(self, **overrides) -> XGBClassifier:
        monotone = tuple(
            1 if n in MONOTONE_INCREASING else -1 if n in MONOTONE_DECREASING else 0
            for n in self.feature_names
        )
        params = dict(
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            n_estimators=self.n_estimators,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            tree_method="hist",
            objective="binary:logistic",
            eval_metric="logloss",
            monotone_constraints=monotone if any(monotone) else None,
        )
        return XGBClassifier(**(params | overrides))

    def new_linear(self) -> LinearOffset | None:
        """An unfitted additive part for these predictors (None without ``linear_offset``),
        its coefficients varying with the landmark day by a polynomial of ``day_degree``
        (smoothed towards one coefficient for every day by ``day_smoothing``)."""
        if not self.linear_offset:
            return None
        return LinearOffset(
            self.feature_names,
            SKEWED,
            MONOTONE_INCREASING,
            MONOTONE_DECREASING,
            day_feature=LANDMARK_FEATURE,
            day_degree=self.day_degree,
            day_smoothing=self.day_smoothing,
        )

    def fit(self, X, y, sample_weight=None):
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=int)
        self.linear_, self.xgb_ = self._fit_parts(X, y, sample_weight)
        self.classes_ = np.array([0, 1])
        self.calibration_ = (0.0, 1.0)  # (intercept a, slope b) on the log-odds
        return self

    def _fit_parts(self, X, y, sample_weight=None, init=None, **overrides):
        linear = self.new_linear()
        offset = None
        if linear is not None:
            offset = linear.fit(X, y, sample_weight, init=init).decision_function(X)
        xgb = self._xgb(**overrides).fit(X, y, sample_weight=sample_weight, base_margin=offset)
        return linear, xgb

    def offset(self, X) -> np.ndarray | None:
        """Log-odds of the additive part (None without one)."""
        linear = getattr(self, "linear_", None)
        return None if linear is None else linear.decision_function(X)

    def raw_margin(self, X) -> np.ndarray:
        """Uncalibrated log-odds: the additive part plus the trees. ``inplace_predict`` skips
        the sklearn wrapper's per-call DMatrix and validation (milliseconds on a single row)."""
        check_is_fitted(self, "xgb_")
        X = np.asarray(X, dtype=float)
        return _margin(self.xgb_.get_booster(), X, self.offset(X))

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of the event.

        In float64: xgboost's margins are float32, and ``a + b * margin`` in float32 can round
        two nearby margins to the same value (a tie the raw model did not have).
        """
        a, b = self.calibration_
        return a + b * self.raw_margin(X).astype(np.float64)

    def predict_proba(self, X) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def set_recalibration(self, margin: np.ndarray, y) -> tuple[float, float]:
        """Fit ``a + b * margin`` by (unpenalised) logistic regression on held-out log-odds.

        ``margin`` are log-odds for patients the predicting model did not see (out-of-fold),
        so the correction is estimated on held-out data.
        """
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(
            np.asarray(margin)[:, None], np.asarray(y, dtype=int)
        )
        slope = float(lr.coef_[0, 0])
        if slope <= 0:  # would invert the ranking: refuse, keep the raw model
            return self.calibration_
        self.calibration_ = (float(lr.intercept_[0]), slope)
        return self.calibration_

    def fit_bootstrap(self, X, y, groups, n: int, seed: int) -> RiskModel:
        """Refit the same trees on ``n`` patient-level bootstrap resamples of the training rows.

        Each resample draws patients with replacement (all rows of a drawn patient come along)
        and weights every row by how often its patient was drawn, which equals duplicating it.
        The spread of these refits' predictions is the estimation uncertainty of a probability
        (Efron & Tibshirani 1993, percentile interval); see :meth:`probability_interval`.
        """
        check_is_fitted(self, "xgb_")
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=int)
        patients, row_patient = np.unique(np.asarray(groups), return_inverse=True)
        rng = np.random.default_rng([seed, 1])
        self.bootstrap_, self.bootstrap_linear_ = [], []
        for k in range(n):
            drawn = np.bincount(
                rng.integers(0, len(patients), len(patients)), minlength=len(patients)
            )
            weight = drawn[row_patient].astype(float)
            keep = weight > 0
            linear, refit = self._fit_parts(
                X[keep],
                y[keep],
                weight[keep],
                init=getattr(self, "linear_", None),
                random_state=seed + 1 + k,
            )
            self.bootstrap_.append(refit.get_booster())
            self.bootstrap_linear_.append(linear)
        return self

    def probability_interval(self, X, level: float = 0.95) -> np.ndarray | None:
        """Per row, the central ``level`` interval of the bootstrap refits' probabilities.

        The refits share the model's recalibration. The interval reflects how much the estimate
        depends on which patients were in the training data; it does not cover input errors or
        the transfer from synthetic to real patients. ``None`` when no refits were made.
        """
        boosters = getattr(self, "bootstrap_", [])
        if not boosters:
            return None
        X = np.asarray(X, dtype=float)
        linears = getattr(self, "bootstrap_linear_", [None] * len(boosters))
        margins = np.stack(
            [
                _margin(b, X, None if lin is None else lin.decision_function(X))
                for b, lin in zip(boosters, linears, strict=True)
            ]
        ).astype(float)
        a, b = self.calibration_
        tail = (1.0 - level) / 2.0
        return np.quantile(expit(a + b * margins), [tail, 1.0 - tail], axis=0).T


def _margin(booster, X: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """A booster's log-odds for ``X``, starting from ``offset`` when the model has one."""
    return booster.inplace_predict(X, predict_type="margin", missing=np.nan, base_margin=offset)


def fit_risk_pipeline(
    raw, y, params: dict, seed: int, n_jobs: int, features: Pipeline | None = None
) -> Pipeline:
    """Fit the feature pipeline (unless given, already fitted) and the risk model on it."""
    features = features or build_feature_pipeline().fit(raw)
    names = tuple(features.get_feature_names_out())
    model = RiskModel(feature_names=names, random_state=seed, n_jobs=n_jobs, **params)
    model.fit(features.transform(raw), y)
    return Pipeline([("features", features), ("model", model)])


class SelectFeatures(TransformerMixin, BaseEstimator):
    """Keep named columns of the feature matrix (names from the fitted feature pipeline)."""

    def __init__(self, all_names: tuple[str, ...] = (), keep: tuple[str, ...] = ()):
        self.all_names = all_names
        self.keep = keep

    def fit(self, X, y=None):
        self.index_ = [list(self.all_names).index(k) for k in self.keep]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.index_]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.keep, dtype=object)


def _log1p_nonneg(x):
    return np.log1p(np.clip(x, 0, None))


def logistic_baseline(features: Pipeline, c: float) -> Pipeline:
    """Penalised logistic regression on every clinical feature.

    ``features`` is the already-fitted feature pipeline shared with the risk model; it is
    frozen here so fitting the baseline (or its cross-validation) never refits it in place.
    """
    names = tuple(features.get_feature_names_out())
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
            ("features", FrozenEstimator(features)),  # fitted once, shared: never refit
            ("prep", prep),
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=c, max_iter=2000)),
        ]
    )


def m_easix_baseline(features: Pipeline) -> Pipeline:
    """m-EASIX alone (log scale) as a one-feature logistic model."""
    names = tuple(features.get_feature_names_out())
    return Pipeline(
        [
            ("features", FrozenEstimator(features)),
            ("select", SelectFeatures(names, ("m_easix",))),
            ("log", FunctionTransformer(_log1p_nonneg)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("model", LogisticRegression(C=1e6, max_iter=1000)),
        ]
    )


def tune(
    features_matrix: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    names: tuple[str, ...],
    search,
    subsample: float,
    colsample: float,
    seed: int,
    n_jobs: int,
    linear_offset: bool = True,
    day_degree: int = 2,
    day_smoothing: float = 10.0,
) -> tuple[dict, list[dict], np.ndarray]:
    """Grid search with grouped CV; the number of trees comes from early stopping per fold.

    Returns the chosen parameters, one row per candidate (mean held-out log loss) and the
    chosen candidate's out-of-fold log-odds for every row (each predicted by the fold model
    that did not see its patient), used to check and correct calibration. With
    ``linear_offset``, each fold fits its own additive part (coefficients varying with the
    landmark day by a polynomial of ``day_degree``, smoothed by ``day_smoothing``) on its
    training rows only.
    """
    results, oof = [], {}
    offsets = []  # per fold: (training offset, validation offset), or Nones
    for train, valid in folds:
        linear = RiskModel(
            names,
            linear_offset=linear_offset,
            day_degree=day_degree,
            day_smoothing=day_smoothing,
        ).new_linear()
        if linear is None:
            offsets.append((None, None))
            continue
        linear.fit(features_matrix[train], y[train])
        offsets.append(
            (
                linear.decision_function(features_matrix[train]),
                linear.decision_function(features_matrix[valid]),
            )
        )
    for depth in search.max_depth:
        for lr in search.learning_rate:
            for mcw in search.min_child_weight:
                losses, trees = [], []
                margin = np.full(len(y), np.nan)
                for (train, valid), (off_train, off_valid) in zip(folds, offsets, strict=True):
                    m = RiskModel(
                        names,
                        max_depth=depth,
                        learning_rate=lr,
                        n_estimators=search.max_trees,
                        min_child_weight=mcw,
                        subsample=subsample,
                        colsample_bytree=colsample,
                        random_state=seed,
                        n_jobs=n_jobs,
                    )
                    xgb = m._xgb(early_stopping_rounds=search.early_stopping_rounds)
                    xgb.fit(
                        features_matrix[train],
                        y[train],
                        base_margin=off_train,
                        eval_set=[(features_matrix[valid], y[valid])],
                        base_margin_eval_set=None if off_valid is None else [off_valid],
                        verbose=False,
                    )
                    losses.append(xgb.best_score)
                    trees.append(xgb.best_iteration + 1)
                    margin[valid] = xgb.predict(
                        features_matrix[valid],
                        output_margin=True,
                        base_margin=off_valid,
                        iteration_range=(0, xgb.best_iteration + 1),
                    )
                key = (depth, lr, mcw)
                oof[key] = margin
                results.append(
                    {
                        "max_depth": depth,
                        "learning_rate": lr,
                        "min_child_weight": mcw,
                        "n_estimators": int(np.mean(trees)),
                        "cv_logloss": float(np.mean(losses)),
                    }
                )
    best = min(results, key=lambda r: r["cv_logloss"])
    params = {
        k: best[k] for k in ("max_depth", "learning_rate", "min_child_weight", "n_estimators")
    }
    params |= {
        "subsample": subsample,
        "colsample_bytree": colsample,
        "linear_offset": linear_offset,
        "day_degree": day_degree,
        "day_smoothing": day_smoothing,
    }
    return (
        params,
        results,
        oof[(best["max_depth"], best["learning_rate"], best["min_child_weight"])],
    )
