"""Exact TreeSHAP explanations of the risk pipeline, in (calibrated) log-odds.

xgboost's own TreeSHAP (``pred_contribs``; Lundberg et al., Nat Mach Intell 2020, the same
algorithm as ``shap.TreeExplainer`` with tree_path_dependent perturbation) gives, for each row,
a contribution per predictor plus the expected value; they add up exactly to the model's raw
log-odds. When the trees boost from an additive part (:mod:`model.linear_offset`), its exact
contributions ``beta_j(L) * z_j`` (centred; its coefficients vary with the landmark day L)
are added to the trees' per predictor. The risk model's
recalibration is linear in the log-odds (``a + b * margin``), so the
contributions are scaled by ``b`` and the base becomes ``a + b * expected``: they still add up
exactly to the served log-odds. Both reports use :class:`RiskExplainer` and draw it with the
``shap`` package's plots (a test checks the trees' part against ``shap.TreeExplainer``). The
request path computes the same contributions from the compiled model
(:mod:`runtime.compiled`: exact float64 TreeSHAP, within xgboost's float32 precision of these;
a second implementation on purpose, for one-row latency without a DMatrix per request, and
tested to agree with this one in ``tests/test_model_compiled.py``)
and presents them with :class:`Explanation`: per predictor, and per input the clinician entered
(:meth:`Explanation.by_input`).

Contributions explain the model, not the patient's biology: they are not causal, and here they
largely reproduce the assumptions built into the synthetic data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from features import display
from features.inputs import by_input
from icans.contract import FIELDS
from model.risk_model import RiskModel


@dataclass
class Explanation:
    """Explanations of n rows (arrays have n rows; contributions are n x predictors)."""

    feature_names: list[str]
    feature_values: np.ndarray
    contributions: np.ndarray  # log-odds per predictor
    base_log_odds: np.ndarray
    log_odds: np.ndarray

    def ranked(self, i: int, top: int | None = None) -> list[dict]:
        """Row i's contributions, largest absolute first, with clinical labels and values."""
        contributions = self.contributions[i]
        order = np.argsort(-np.abs(contributions), kind="stable")[:top].tolist()
        values, shap = self.feature_values[i].tolist(), contributions.tolist()
        out = []
        for j in order:
            name, value = self.feature_names[j], values[j]
            missing = value != value  # NaN: not available
            out.append(
                {
                    "feature": name,
                    "label": display.label(name),
                    "value": None if missing else value,
                    # math.nan is one object, so the cache finds a missing value's text
                    "value_text": display.value_text(name, math.nan if missing else value),
                    "shap_log_odds": shap[j],
                }
            )
        return out

    def by_input(self, i: int, patient) -> list[dict]:
        """Row i's contributions per input the clinician entered
        (:func:`features.inputs.by_input`), largest absolute first; ``patient`` gives each
        input's value as entered. They add up to the same log-odds as the predictors'."""
        if not hasattr(self, "_inputs"):
            self._inputs = by_input(self.feature_names, self.contributions)
        fields, values = self._inputs
        order = np.argsort(-np.abs(values[i]), kind="stable").tolist()
        shap = values[i].tolist()
        return [
            {
                "input": fields[k],
                "label": FIELDS[fields[k]].label,
                "value_text": display.input_text(fields[k], patient),
                "shap_log_odds": shap[k],
            }
            for k in order
        ]


def driver_lines(ranked: list[dict], top: int = 3) -> list[str]:
    """The first ``top`` of ranked contributions (:meth:`Explanation.ranked`) in plain language,
    'CRS grade today 3: raises the risk (+0.80 log-odds)'; contributions under 0.001 log-odds
    are left out."""
    lines = []
    for c in ranked[:top]:
        if abs(c["shap_log_odds"]) < 1e-3:
            continue
        verb = "raises" if c["shap_log_odds"] > 0 else "lowers"
        lines.append(f"{describe(c)}: {verb} the risk ({c['shap_log_odds']:+.2f} log-odds)")
    return lines


def describe(contribution: dict) -> str:
    """A predictor and its value in clinical units: 'CRS grade today 3', 'CAR target CD19 (yes)'."""
    c = contribution
    if "=" in c["feature"]:
        return f"{c['label']} ({c['value_text']})"
    return f"{c['label']} {c['value_text']}"


class RiskExplainer:
    """Explains a fitted :class:`~model.risk_model.RiskModel`."""

    def __init__(self, model: RiskModel, nthread: int = 0):
        """``nthread=1`` suits one request at a time (threads only add overhead on one row)."""
        self.model = model
        self.feature_names = list(model.feature_names_)
        self.booster = model.trees_
        self.nthread = nthread

    def explain_features(self, x: np.ndarray) -> Explanation:
        """Explain predictor rows (:meth:`RiskModel.transform` of raw rows)."""
        x = np.asarray(x, dtype=float)
        linear = self.model.additive_
        if linear is None:
            additive = offset = None
        else:
            additive = linear.contributions(x)
            offset = linear.total(additive)
        raw = self.booster.predict(
            xgb.DMatrix(x, missing=np.nan, nthread=self.nthread, base_margin=offset),
            pred_contribs=True,
        ).astype(float)
        trees, bias = raw[:, :-1], raw[:, -1]
        if linear is not None:
            # xgboost puts each row's starting log-odds (the additive part) in the bias column;
            # split it into the additive part's intercept and its per-predictor contributions.
            trees = trees + additive
            bias = bias - offset + linear.intercept_
        a, b = self.model.calibration_
        contributions = b * trees
        base = a + b * bias
        return Explanation(
            self.feature_names, x, contributions, base, base + contributions.sum(axis=1)
        )
