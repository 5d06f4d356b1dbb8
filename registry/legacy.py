"""Models registered before the risk model became one estimator still load, and predict the same.

Versions registered before that change are pickled ``Pipeline([("features", ...), ("model",
training.models.RiskModel)])`` objects, whose classes lived in modules that no longer exist
(``training.models``, ``training.linear_offset``). :func:`load_pickle` reads such a file with
those names mapped to where the code lives now, and :func:`upgrade` turns the old pipeline into
a fitted :class:`~model.risk_model.RiskModel` holding the very same fitted parts (feature
pipeline, additive part, trees, recalibration, refits), so its probabilities, intervals and
contributions are unchanged (a test checks them against values the old code wrote).
"""

from __future__ import annotations

import io
import pickle

import numpy as np
from sklearn.pipeline import Pipeline

from model.boosting import TREE_PARAMETERS
from model.risk_model import RiskModel

# (old module, name) -> (module, name) of the code that reads the pickled state now
_RENAMED = {
    ("training.models", "RiskModel"): ("registry.legacy", "LegacyRiskModel"),
    ("training.models", "SelectFeatures"): ("registry.legacy", "SelectFeatures"),
    ("training.models", "_log1p_nonneg"): ("model.baselines", "_log1p_nonneg"),
    ("training.linear_offset", "LinearOffset"): ("model.linear_offset", "LinearOffset"),
}


class LegacyRiskModel:
    """The fitted state of a ``training.models.RiskModel`` (read by :func:`upgrade`, never used
    to predict)."""


class SelectFeatures:
    """``training.models.SelectFeatures`` of old m-EASIX baselines: keeps named predictors."""

    index_: list[int]  # positions of the kept predictors (fitted; restored by unpickling)

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.index_]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        return super().find_class(*_RENAMED.get((module, name), (module, name)))


def load_pickle(data: bytes):
    """Unpickle a logged model's file, read and checked beforehand (:mod:`registry.digest`):
    plain or cloudpickle format, old module names mapped."""
    return _Unpickler(io.BytesIO(data)).load()


def upgrade(obj):
    """A pre-estimator pipeline as the equivalent fitted :class:`RiskModel`; anything else as is."""
    if not isinstance(obj, Pipeline) or not isinstance(
        obj.named_steps.get("model"), LegacyRiskModel
    ):
        return obj
    old = obj.named_steps["model"].__dict__
    boosters = old.get("bootstrap_", [])
    new = RiskModel(
        hyperparameters={k: old[k] for k in TREE_PARAMETERS},
        uncertainty_refits=len(boosters),
        linear_offset=old.get("linear_offset", False),
        day_degree=old.get("day_degree", 0),
        day_smoothing=old.get("day_smoothing", 0.0),
        subsample=old["subsample"],
        colsample_bytree=old["colsample_bytree"],
        random_state=old["random_state"],
        n_jobs=old["n_jobs"],
    )
    new.features_ = obj.named_steps["features"]
    new.feature_names_ = tuple(old["feature_names"])
    new.additive_ = old.get("linear_")
    new.trees_ = old["xgb_"].get_booster()
    new.calibration_ = tuple(old["calibration_"])
    new.refits_ = list(
        zip(old.get("bootstrap_linear_", [None] * len(boosters)), boosters, strict=True)
    )
    new.hyperparameters_ = new.get_params()["hyperparameters"]
    new.recalibration_ = {"recalibrated": new.calibration_ != (0.0, 1.0)}
    new.cv_results_ = []
    new.augmentation_ = {}
    new.classes_ = np.array([0, 1])
    new.n_features_in_ = new.features_.named_steps["window"].n_features_in_
    return new
