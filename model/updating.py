"""Updating a registered model for another centre: recalibration of its log-odds on local data.

A model that discriminates well elsewhere is often miscalibrated at a new centre (another case
mix, another steroid policy, another event rate). The standard first updates (Steyerberg,
Clinical Prediction Models, 2nd ed. 2019, ch. 20; Van Calster et al., BMC Med 2019) re-estimate
only the link between the model's log-odds and the local outcomes, keeping everything the model
learned about who is at higher risk:

* ``intercept`` (recalibration-in-the-large): ``logit p = a + lp``, the slope fixed at 1 (the
  log-odds as an offset): the local event rate is matched, the ranking and the spread kept;
* ``intercept_and_slope`` (logistic recalibration): ``logit p = a + b * lp``; ``b < 1`` when the
  model's predictions are too extreme at the new centre. Refused if ``b <= 0`` (the local data
  would invert the ranking: the model should not be used there).

The updated model is the same fitted model with its calibration composed with ``(a, b)``: the
trees, the additive part, the refits and the explanations are unchanged (the contributions of a
recalibrated model scale by ``b``, as for the recalibration at training).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator

from evaluation.logistic import EXACT_TOL, fit_logistic
from icans.errors import InvalidInputError

if TYPE_CHECKING:
    from model.risk_model import RiskModel

UPDATE_METHODS = ("intercept", "intercept_and_slope")


class LogOddsRecalibration(BaseEstimator):
    """``(a, b)`` that calibrate log-odds ``lp`` on local outcomes ``y``: ``expit(a + b * lp)``."""

    def __init__(self, method: str = "intercept"):
        self.method = method

    def fit(self, log_odds, y) -> LogOddsRecalibration:
        lp = np.asarray(log_odds, dtype=float)
        y = np.asarray(y, dtype=float)
        if self.method not in UPDATE_METHODS:
            raise InvalidInputError("method", self.method, f"one of {', '.join(UPDATE_METHODS)}")
        if not 0 < y.sum() < len(y):
            raise InvalidInputError(
                "outcomes", f"{int(y.sum())} events in {len(y)} rows", "rows with and without"
            )
        ones = np.ones((len(lp), 1))
        if self.method == "intercept":  # the log-odds as an offset
            self.intercept_ = float(fit_logistic(ones, y, offset=lp, tol=EXACT_TOL)[0])
            self.slope_ = 1.0
        else:
            a, b = fit_logistic(np.column_stack([ones, lp]), y, tol=EXACT_TOL)
            self.intercept_, self.slope_ = float(a), float(b)
            if self.slope_ <= 0:
                raise InvalidInputError(
                    "calibration slope",
                    round(self.slope_, 3),
                    "above 0: on the local data the model's ranking is inverted, so it should "
                    "not be updated but replaced",
                )
        return self


def recalibrated(model: RiskModel, raw: np.ndarray, y: np.ndarray, method: str) -> RiskModel:
    """A copy of fitted ``model`` (:class:`model.risk_model.RiskModel`) recalibrated on local
    raw landmark rows ``raw`` with labels ``y``; ``recalibration_["local_update"]`` says how."""
    update = LogOddsRecalibration(method).fit(model.decision_function(raw), y)
    new = copy.deepcopy(model)
    a0, b0 = model.calibration_
    a, b = update.intercept_, update.slope_
    new.calibration_ = (a + b * a0, b * b0)
    new.recalibration_ = dict(model.recalibration_) | {
        "local_update": {
            "method": method,
            "intercept": a,
            "slope": b,
            "rows": len(y),
            "events": int(np.sum(y)),
        }
    }
    return new
