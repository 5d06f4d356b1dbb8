"""One patient's assessment: probability, its interval, exact contributions, warnings.

Per request: validated patients -> raw layout rows -> the model's own feature steps ->
calibrated log-odds, the bootstrap interval and the exact contributions, from the model compiled
once (:class:`runtime.compiled.CompiledModel`: bit for bit the log-odds ``icans evaluate`` gets
through ``predict_proba``, in one vectorised pass) -> warnings. No DataFrame is built on this
path.
The endpoint, ``icans explain`` and the patient's page all call :meth:`Assessor.assess`, so the
JSON, the page and the audit log always agree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from features.checks import batch_warnings
from features.layout import COLUMN_INDEX, RAW_COLUMNS
from features.packing import missing_inputs, to_raw
from icans.contract import PREDICTION_DAY
from icans.errors import UnknownCategoryWarning
from model.explain import Explanation, driver_lines
from model.risk_model import RiskModel
from runtime.compiled import CompiledModel


@dataclass
class Assessment:
    probability: float
    interval: tuple[float, float] | None  # 95% bootstrap interval of the probability
    log_odds: float
    base_log_odds: float
    contributions: list[dict]  # per predictor, largest absolute first
    drivers: list[str]
    warnings: list[str]
    missing_inputs: list[str]
    landmark_day: int
    input_contributions: list[dict] = field(default_factory=list)  # per input entered


class Assessor:
    """A fitted model made ready for requests of one or a few patients: compiled once
    (:class:`runtime.compiled.CompiledModel`), xgboost on one thread where it is still called
    (threads only add overhead on one row; a service's workers use the cores), and one warm-up
    prediction so the first request is as fast as the others."""

    def __init__(self, model: RiskModel):
        self.model = model
        model.use_threads(1)
        self.compiled = CompiledModel(model)
        self.feature_names = list(model.feature_names_)
        empty = np.full((1, len(RAW_COLUMNS)), np.nan)  # day 0, nothing else known
        empty[0, COLUMN_INDEX[PREDICTION_DAY.name]] = 0
        self.assess_rows(empty)

    def assess_rows(self, raw: np.ndarray):
        """Predictor rows, probabilities, intervals and explanation of raw rows."""
        x = self.model.transform(raw)
        log_odds, interval, contributions, base = self.compiled.assess(x)
        explanation = Explanation(
            self.feature_names, x, contributions, base, base + contributions.sum(axis=1)
        )
        return x, expit(log_odds), interval, explanation

    def assess(self, patients: list) -> list[Assessment]:
        """Validated patients (:class:`api.patient.PatientObservation`) -> assessments."""
        raw = np.vstack([to_raw(p) for p in patients])
        with warnings.catch_warnings():
            # unseen categories are reported in each assessment's warnings, not on stderr
            warnings.simplefilter("ignore", UnknownCategoryWarning)
            x, probability, interval, explanation = self.assess_rows(raw)
        missing = [missing_inputs(p) for p in patients]
        warned = batch_warnings(
            self.model.features_,
            raw,
            x,
            missing,
            getattr(self.model, "category_support_", None),  # None: fitted before it was kept
        )
        out = []
        for i, patient in enumerate(patients):
            ranked = explanation.ranked(i)
            out.append(
                Assessment(
                    probability=float(probability[i]),
                    interval=(
                        None if interval is None else (float(interval[i, 0]), float(interval[i, 1]))
                    ),
                    log_odds=float(explanation.log_odds[i]),
                    base_log_odds=float(explanation.base_log_odds[i]),
                    contributions=ranked,
                    input_contributions=explanation.by_input(i, patient),
                    drivers=driver_lines(ranked),
                    warnings=warned[i],
                    missing_inputs=missing[i],
                    landmark_day=patient.day_since_infusion,
                )
            )
        return out
