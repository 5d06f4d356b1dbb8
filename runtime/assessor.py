"""One patient's assessment: probability, its interval, exact contributions, warnings, for
every horizon the model estimates.

Per request: validated patients -> raw layout rows -> the model's own feature steps -> one
predictor row per horizon (:meth:`model.risk_model.RiskModel.horizon_rows`: the next 72 hours,
the next 7 days, by day 28, :mod:`icans.horizons`) -> calibrated log-odds, the bootstrap
interval and the exact contributions of every row, from the model compiled once
(:class:`runtime.compiled.CompiledModel`: bit for bit the log-odds ``icans evaluate`` gets
through ``predict_proba``, in one vectorised pass over all horizons) -> warnings. No DataFrame
is built on this path. The horizons never contradict each other (risk within 72 hours <= within
7 days <= by day 28, probabilities and interval bounds alike): the model is monotone in the
window by construction (:mod:`model.risk_model`). An assessment's top-level figures are the
day-28 horizon's, the target every model estimates; a model fitted for day 28 alone has that
one horizon.
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
from icans.errors import InvalidInputError, UnknownCategoryWarning
from icans.horizons import TARGET_HORIZON, horizon
from model.explain import Explanation, driver_lines
from model.risk_model import RiskModel
from runtime.compiled import CompiledModel


@dataclass
class HorizonRisk:
    """The risk within one horizon after the landmark day, with its explanation."""

    horizon: str  # icans.horizons name: 72h, 7d, day28
    label: str  # "within the next 72 hours"
    end_day: int  # the window's last day (days landmark + 1 .. end_day)
    probability: float
    interval: tuple[float, float] | None
    log_odds: float
    base_log_odds: float
    contributions: list[dict]  # per predictor, largest absolute first
    input_contributions: list[dict]  # per input entered, largest absolute first
    drivers: list[str]


@dataclass
class Assessment:
    """One patient's assessment: the day-28 horizon's figures at the top (the target), every
    fitted horizon's in ``horizons`` (shortest first, day 28 last)."""

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
    horizons: list[HorizonRisk] = field(default_factory=list)

    def risk(self, name: str) -> HorizonRisk:
        """The horizon ``name`` of this assessment; a horizon the model does not estimate is
        refused, naming those it does."""
        for h in self.horizons:
            if h.horizon == name:
                return h
        known = ", ".join(h.horizon for h in self.horizons)
        raise InvalidInputError("horizon", name, f"one of {known} (the model's horizons)")


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
        """Predictor rows, probabilities, intervals and explanation of raw rows, for every
        fitted horizon: n x horizons rows, stacked horizon by horizon
        (:meth:`~model.risk_model.RiskModel.horizon_rows`)."""
        x = self.model.horizon_rows(raw)
        log_odds, interval, contributions, base = self.compiled.assess(x)
        explanation = Explanation(
            self.feature_names, x, contributions, base, base + contributions.sum(axis=1)
        )
        return x, expit(log_odds), interval, explanation

    def assess(self, patients: list) -> list[Assessment]:
        """Validated patients (:class:`api.patient.PatientObservation`) -> assessments."""
        raw = np.vstack([to_raw(p) for p in patients])
        n, names = len(patients), self.model.horizons_
        with warnings.catch_warnings():
            # unseen categories are reported in each assessment's warnings, not on stderr
            warnings.simplefilter("ignore", UnknownCategoryWarning)
            x, probability, interval, explanation = self.assess_rows(raw)
        missing = [missing_inputs(p) for p in patients]
        target = (names.index(TARGET_HORIZON.name)) * n  # the day-28 rows
        warned = batch_warnings(
            self.model.features_,
            raw,
            x[target : target + n],
            missing,
            getattr(self.model, "category_support_", None),  # None: fitted before it was kept
        )
        out = []
        for i, patient in enumerate(patients):
            risks = []
            for k, name in enumerate(names):
                row = k * n + i
                ranked = explanation.ranked(row)
                risks.append(
                    HorizonRisk(
                        horizon=name,
                        label=horizon(name).label,
                        end_day=int(horizon(name).end_day(patient.day_since_infusion)),
                        probability=float(probability[row]),
                        interval=None
                        if interval is None
                        else (float(interval[row, 0]), float(interval[row, 1])),
                        log_odds=float(explanation.log_odds[row]),
                        base_log_odds=float(explanation.base_log_odds[row]),
                        contributions=ranked,
                        input_contributions=explanation.by_input(row, patient),
                        drivers=driver_lines(ranked),
                    )
                )
            day28 = risks[names.index(TARGET_HORIZON.name)]
            out.append(
                Assessment(
                    probability=day28.probability,
                    interval=day28.interval,
                    log_odds=day28.log_odds,
                    base_log_odds=day28.base_log_odds,
                    contributions=day28.contributions,
                    input_contributions=day28.input_contributions,
                    drivers=day28.drivers,
                    warnings=warned[i],
                    missing_inputs=missing[i],
                    landmark_day=patient.day_since_infusion,
                    horizons=risks,
                )
            )
        return out
