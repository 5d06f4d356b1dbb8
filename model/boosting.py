"""The arithmetic of the risk model: an additive part, trees boosted from it, and their search.

The risk model's log-odds are ``additive(x) + trees(x)``: a sign-constrained penalised logistic
regression (:mod:`model.linear_offset`) whose log-odds are the trees' starting margin
(xgboost's ``base_margin``), so the trees learn only what it leaves. Both are monotone in every
predictor whose clinical direction is published (:data:`MONOTONE_INCREASING`,
:data:`MONOTONE_DECREASING`), so their sum is too.

This module holds what :class:`model.risk_model.RiskModel` repeats for its main fit, its
cross-validation folds and its bootstrap refits: building xgboost with the constraints, fitting
the two parts, their log-odds, and the hyper-parameter search.
"""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from pydantic import BaseModel, ConfigDict
from sklearn.model_selection import ParameterGrid
from xgboost import XGBClassifier

from evaluation.logistic import log_loss, logit
from features.directions import KNOWN_INCREASING, PUBLISHED_DECREASING, PUBLISHED_INCREASING
from features.transformers import LandmarkDay
from icans.progress import progress_log
from model.linear_offset import LinearOffset
from model.tasks import run_tasks

# The published directions (features.directions) constrain both parts. The CD4:CD8 ratios
# (AUC and latest sample) are constrained too: CD4-dominant expansion does not lower the risk
# (Baur 2023; Katsin 2024), and with the latest CD4+ count against the product's usual this keeps
# "more CD4+ expansion never lowers the risk" true when CD4 samples rise.
# The window of a horizon (model.risk_model): the event within a window implies it within every
# longer one (icans.horizons), so a longer window never lowers the risk, by definition.
HORIZON_FEATURE = "horizon_days"
MONOTONE_INCREASING = (
    *KNOWN_INCREASING,
    HORIZON_FEATURE,
    *PUBLISHED_INCREASING,
    "cd4_cd8_auc_ratio",
    "cd4_cd8_latest_log_ratio",
    "cd4_latest_vs_product",
)
MONOTONE_DECREASING = PUBLISHED_DECREASING
# Right-skewed predictors enter the additive part (and the logistic baseline) as log1p.
SKEWED = (
    "ldh_u_per_l",
    "crp_mg_per_l",
    "ferritin_ng_per_ml",
    "platelets_10e9_per_l",
    "creatinine_mg_per_dl",
    "m_easix",
    "easix",
    "m_easix_latest",
    "easix_latest",
    "cd4_auc_to_date_cells_day_per_ul",
    "cd8_auc_to_date_cells_day_per_ul",
    "cd4_cd8_auc_ratio",
    "cd4_peak_to_date_cells_per_ul",
    "cd4_latest_cells_per_ul",
    "steroid_mg_today",
    HORIZON_FEATURE,  # a cumulative risk's log-odds grow about as the log of the window
)
LANDMARK_FEATURE = LandmarkDay.names[0]  # the additive part's coefficients vary with it
# ... and the product's and disease's have their own once ICANS has begun (model.linear_offset)
ICANS_STATE_FEATURE = "icans_max_grade_to_date"
ICANS_STATE_TERMS = ("car_target=", "costimulatory_domain=", "car_product=", "disease_group=")
TREE_PARAMETERS = ("max_depth", "learning_rate", "min_child_weight", "n_estimators")


class SearchSpace(BaseModel):
    """Hyper-parameters tried by grouped cross-validation (the number of trees by early stop)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_depth: tuple[int, ...] = (3, 4)
    learning_rate: tuple[float, ...] = (0.05, 0.1)
    min_child_weight: tuple[float, ...] = (5.0,)
    max_trees: int = 600
    early_stopping_rounds: int = 30
    # the additive part alone (no trees) competes too: on a small cohort trees often add
    # nothing but variance, and the sign-constrained additive model is then the better model
    additive_alone: bool = True


def trees(
    names: tuple[str, ...], params: dict, random_state: int, n_jobs: int, **overrides
) -> XGBClassifier:
    """Unfitted xgboost with the monotone constraints of ``names`` and tree ``params``
    (``max_depth``, ``learning_rate``, ``n_estimators``, ``min_child_weight``, ``subsample``,
    ``colsample_bytree``)."""
    monotone = tuple(
        1 if n in MONOTONE_INCREASING else -1 if n in MONOTONE_DECREASING else 0 for n in names
    )
    settings = dict(
        max_depth=params["max_depth"],
        learning_rate=params["learning_rate"],
        n_estimators=params["n_estimators"],
        min_child_weight=params["min_child_weight"],
        subsample=params["subsample"],
        colsample_bytree=params["colsample_bytree"],
        random_state=random_state,
        n_jobs=n_jobs,
        tree_method="hist",
        objective="binary:logistic",
        eval_metric="logloss",
        monotone_constraints=monotone if any(monotone) else None,
    )
    return XGBClassifier(**(settings | overrides))


def train_booster(
    names: tuple[str, ...],
    params: dict,
    random_state: int,
    n_jobs: int,
    dtrain: xgb.DMatrix,
    dvalid: xgb.DMatrix,
    early_stopping_rounds: int,
) -> xgb.Booster:
    """xgboost's own training on prepared matrices, with exactly the settings of :func:`trees`
    (the parameters its ``fit`` passes on, ``get_xgb_params``), stopping early on ``dvalid``'s
    log loss (its ``best_iteration`` and ``best_score`` set): what ``trees(...).fit`` does with
    an ``eval_set``, without binning the rows again for every candidate of the search (at
    30,000 patients, binning took 0.8 s a call)."""
    settings = trees(names, params, random_state, n_jobs).get_xgb_params()
    return xgb.train(
        settings,
        dtrain,
        num_boost_round=params["n_estimators"],
        evals=[(dvalid, "validation_0")],
        early_stopping_rounds=early_stopping_rounds,
        verbose_eval=False,
    )


def additive(names: tuple[str, ...], params: dict) -> LinearOffset | None:
    """An unfitted additive part for these predictors (None when ``params["linear_offset"]`` is
    false), its coefficients varying with the landmark day by a polynomial of
    ``params["day_degree"]`` (smoothed towards one coefficient for every day by
    ``params["day_smoothing"]``) and, with ``params["icans_state_shifts"]``, the product and
    disease coefficients taking a value of their own once ICANS has begun."""
    if not params["linear_offset"]:
        return None
    return LinearOffset(
        names,
        SKEWED,
        MONOTONE_INCREASING,
        MONOTONE_DECREASING,
        day_feature=LANDMARK_FEATURE,
        day_degree=params["day_degree"],
        day_smoothing=params["day_smoothing"],
        **(
            {"state_feature": ICANS_STATE_FEATURE, "state_terms": ICANS_STATE_TERMS}
            if params.get("icans_state_shifts")  # absent in models fitted before them
            else {}
        ),
    )


def fit_parts(
    x: np.ndarray,
    y: np.ndarray,
    names: tuple[str, ...],
    params: dict,
    random_state: int,
    n_jobs: int,
    sample_weight: np.ndarray | None = None,
    init: LinearOffset | None = None,
) -> tuple[LinearOffset | None, xgb.Booster]:
    """Fit the additive part, then the trees from its log-odds; ``init`` warm-starts the
    additive part (bootstrap refits converge in fewer steps)."""
    linear = additive(names, params)
    offset = None
    if linear is not None:
        offset = linear.fit(x, y, sample_weight, init=init).decision_function(x)
    model = trees(names, params, random_state, n_jobs)
    model.fit(x, y, sample_weight=sample_weight, base_margin=offset)
    return linear, model.get_booster()


def margin(booster: xgb.Booster, linear: LinearOffset | None, x: np.ndarray) -> np.ndarray:
    """Uncalibrated log-odds of one fit: the additive part plus the trees. ``inplace_predict``
    skips the sklearn wrapper's per-call DMatrix and validation (milliseconds on a single row)."""
    offset = None if linear is None else linear.decision_function(x)
    return booster.inplace_predict(x, predict_type="margin", missing=np.nan, base_margin=offset)


def _constant_margin(y: np.ndarray, n: int) -> np.ndarray:
    """The log-odds of the event rate: all a fold whose training rows hold one outcome can say."""
    return np.full(n, logit(np.mean(y)))


def tune(
    x: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    names: tuple[str, ...],
    search: SearchSpace,
    params: dict,
    random_state: int,
    n_jobs: int,
    n_tasks: int = 1,
) -> tuple[dict, list[dict], np.ndarray]:
    """Grid search with grouped folds; each fold's number of trees comes from early stopping on
    that fold's held-out patients. With ``search.additive_alone`` (and an additive part), the
    additive part without trees is one more candidate (``n_estimators`` 0), judged by the same
    held-out log loss.

    ``params`` holds the settings that are not searched (``subsample``, ``colsample_bytree``,
    ``linear_offset``, ``day_degree``, ``day_smoothing``). Returns the chosen parameters (the
    number of trees is the folds' mean), one row per candidate (mean held-out log loss) and the
    chosen candidate's out-of-fold log-odds for every row (each predicted by the fold model that
    did not see its patient), used to check and correct calibration.

    Each fold is one task (:func:`model.tasks.run_tasks`, up to ``n_tasks`` at once,
    :func:`_search_fold`): it fits its own additive part on its training rows only, once for all
    candidates, bins its rows once and fits every tree candidate on them.

    Written out rather than with scikit-learn's ``GridSearchCV``: early stopping needs each
    fold's validation rows inside ``fit``, and calibration needs the out-of-fold log-odds, which
    ``GridSearchCV`` passes to neither; ``ParameterGrid`` gives the candidates.
    """
    grid = list(
        ParameterGrid(
            {
                "max_depth": search.max_depth,
                "learning_rate": search.learning_rate,
                "min_child_weight": search.min_child_weight,
            }
        )
    )
    progress_log.info(
        "tuning: %d tree candidates x %d folds%s",
        len(grid),
        len(folds),
        " (and the additive part alone)" if search.additive_alone else "",
    )
    per_fold = run_tasks(
        _search_fold,
        [
            (
                x,
                y,
                train,
                valid,
                names,
                search,
                grid,
                params,
                random_state,
                n_jobs,
                (i + 1, len(folds)),
            )
            for i, (train, valid) in enumerate(folds)
        ],
        n_tasks,
    )
    results, oof = [], []
    for c, candidate in enumerate(grid):
        out = np.full(len(y), np.nan)
        losses, n_trees = [], []
        for (_, valid), fold in zip(folds, per_fold, strict=True):
            margin_, loss, trees_used = fold["candidates"][c]
            out[valid] = margin_
            if loss is not None:
                losses.append(loss)
                n_trees.append(trees_used)
        results.append(
            candidate
            | {
                "n_estimators": int(np.mean(n_trees)) if n_trees else 1,
                "cv_logloss": float(np.mean(losses)) if losses else float("nan"),
            }
        )
        oof.append(out)
    if search.additive_alone and all(fold["additive"] is not None for fold in per_fold):
        alone, losses = np.full(len(y), np.nan), []
        for (_, valid), fold in zip(folds, per_fold, strict=True):
            alone[valid] = fold["additive"]
            losses.append(_logloss(y[valid], fold["additive"]))
        results.append(dict(grid[0]) | {"n_estimators": 0, "cv_logloss": float(np.mean(losses))})
        oof.append(alone)
    best = min(
        range(len(results)), key=lambda i: np.nan_to_num(results[i]["cv_logloss"], nan=np.inf)
    )
    chosen = {k: results[best][k] for k in TREE_PARAMETERS}
    return chosen | params, results, oof[best]


def _search_fold(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    names: tuple[str, ...],
    search: SearchSpace,
    grid: list[dict],
    params: dict,
    random_state: int,
    n_jobs: int,
    position: tuple[int, int],
) -> dict:
    """One fold of :func:`tune`: its additive part's log-odds on the validation rows
    (``"additive"``, None without one) and, per tree candidate, ``(validation log-odds, held-out
    log loss, trees)`` (``"candidates"``; loss and trees None when the training rows hold one
    outcome: the constant log-odds of their event rate, which has nothing to tune). It takes its
    rows from the whole matrix itself (``train``, ``valid``: masks), so the caller holds one
    fold's copy at a time, not every fold's at once (and worker processes share the matrix)."""
    x_train, y_train, x_valid, y_valid = x[train], y[train], x[valid], y[valid]
    progress_log.info("tuning: fold %d of %d, additive part", *position)
    linear = additive(names, params)
    off_train = off_valid = None
    if linear is not None and np.ptp(y_train) > 0:
        linear.fit(x_train, y_train)
        off_train, off_valid = linear.decision_function(x_train), linear.decision_function(x_valid)
    if np.ptp(y_train) == 0:
        constant = _constant_margin(y_train, len(y_valid))
        return {"additive": off_valid, "candidates": [(constant, None, None)] * len(grid)}
    # binned once, shared by every candidate (train_booster)
    dtrain = xgb.QuantileDMatrix(x_train, y_train, base_margin=off_train, nthread=n_jobs)
    dvalid = xgb.QuantileDMatrix(
        x_valid, y_valid, base_margin=off_valid, ref=dtrain, nthread=n_jobs
    )
    candidates = []
    for i, candidate in enumerate(grid):
        progress_log.info(
            "tuning: fold %d of %d, trees candidate %d of %d (%s)",
            *position,
            i + 1,
            len(grid),
            ", ".join(f"{k}={v}" for k, v in candidate.items()),
        )
        booster = train_booster(
            names,
            params | candidate | {"n_estimators": search.max_trees},
            random_state,
            n_jobs,
            dtrain,
            dvalid,
            early_stopping_rounds=search.early_stopping_rounds,
        )
        best = booster.best_iteration
        margin_ = booster.inplace_predict(
            x_valid,
            predict_type="margin",
            missing=np.nan,
            base_margin=off_valid,
            iteration_range=(0, best + 1),
        )
        candidates.append((margin_, float(booster.best_score), best + 1))
    return {"additive": off_valid, "candidates": candidates}


def _logloss(y: np.ndarray, margin: np.ndarray) -> float:
    """Mean log loss of log-odds ``margin`` (xgboost's ``logloss``, the early-stopping score)."""
    return float(log_loss(margin, y) / len(y))


def cross_margins(
    x: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    names: tuple[str, ...],
    params: dict,
    random_state: int,
    n_jobs: int,
    n_tasks: int = 1,
) -> np.ndarray:
    """Out-of-fold log-odds of the model with fixed ``params`` (no search): each row predicted
    by the fit on the folds that did not hold its patient; a task per fold."""
    out = np.full(len(y), np.nan)
    margins = run_tasks(
        _fold_margin,
        [(x, y, t, v, names, params, random_state, n_jobs) for t, v in folds],
        n_tasks,
    )
    for (_, valid), fold in zip(folds, margins, strict=True):
        out[valid] = fold
    return out


def _fold_margin(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    names: tuple[str, ...],
    params: dict,
    random_state: int,
    n_jobs: int,
) -> np.ndarray:
    """One fold of :func:`cross_margins`: the validation rows' log-odds of the fit on the
    training rows (masks into the whole matrix)."""
    if np.ptp(y[train]) == 0:
        return _constant_margin(y[train], int(valid.sum()))
    linear, booster = fit_parts(x[train], y[train], names, params, random_state, n_jobs)
    return margin(booster, linear, x[valid])
