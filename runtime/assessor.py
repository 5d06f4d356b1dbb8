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

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from features import display
from features.checks import batch_warnings
from features.inputs import by_input
from features.layout import COLUMN_INDEX, RAW_COLUMNS
from features.packing import missing_inputs, to_raw
from icans.contract import FIELDS, PREDICTION_DAY
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
        self.labels = [display.label(name) for name in self.feature_names]
        self.horizon_texts = [(h, horizon(h).label) for h in model.horizons_]
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
        fields, per_input = by_input(self.feature_names, explanation.contributions)
        input_labels = [FIELDS[f].label for f in fields]
        out = []
        for i, patient in enumerate(patients):
            input_texts = [display.input_text(f, patient) for f in fields]  # once per patient
            shown = None  # the previous horizon's row, its shown values and their texts
            risks = []
            for k, (name, label) in enumerate(self.horizon_texts):
                row = k * n + i
                shown = self._shown(explanation.feature_values[row], shown)
                ranked = self._ranked(shown, explanation.contributions[row])
                risks.append(
                    HorizonRisk(
                        horizon=name,
                        label=label,
                        end_day=int(horizon(name).end_day(patient.day_since_infusion)),
                        probability=float(probability[row]),
                        interval=None
                        if interval is None
                        else (float(interval[row, 0]), float(interval[row, 1])),
                        log_odds=float(explanation.log_odds[row]),
                        base_log_odds=float(explanation.base_log_odds[row]),
                        contributions=ranked,
                        input_contributions=_per_input(
                            fields, input_labels, input_texts, per_input[row]
                        ),
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

    def _shown(self, row: np.ndarray, previous: tuple | None) -> tuple:
        """(row, shown values: None for missing, value texts) of one predictor row, as
        :meth:`model.explain.Explanation.ranked` shows them. A patient's horizon rows differ
        in the window alone: the values the previous row holds bit for bit the same (or both
        missing) keep their texts."""
        if previous is None:
            at, shown, texts = range(len(row)), [None] * len(row), [""] * len(row)
        else:
            before, shown, texts = previous
            both_missing = np.isnan(row) & np.isnan(before)
            same = (row == before) & (np.signbit(row) == np.signbit(before)) | both_missing
            at = np.flatnonzero(~same).tolist()
            shown, texts = list(shown), list(texts)
        values = row.tolist()
        for j in at:
            name, value = self.feature_names[j], values[j]
            missing = value != value  # NaN: not available
            shown[j] = None if missing else value
            # math.nan is one object, so the cache finds a missing value's text
            texts[j] = display.value_text(name, math.nan if missing else value)
        return row, shown, texts

    def _ranked(self, shown: tuple, contributions: np.ndarray) -> list[dict]:
        """:meth:`model.explain.Explanation.ranked` of one row from its shown values: the
        same dicts (a test compares them), the labels and texts looked up once."""
        _, values, texts = shown
        order = np.argsort(-np.abs(contributions), kind="stable").tolist()
        shap, names, labels = contributions.tolist(), self.feature_names, self.labels
        return [
            {
                "feature": names[j],
                "label": labels[j],
                "value": values[j],
                "value_text": texts[j],
                "shap_log_odds": shap[j],
            }
            for j in order
        ]


def _per_input(fields: list[str], labels: list[str], texts: list[str], values) -> list[dict]:
    """:meth:`model.explain.Explanation.by_input` of one row (a test compares them) from the
    per-input contributions of every row (:func:`features.inputs.by_input`, computed once) and
    the patient's input texts (once per patient, not per horizon)."""
    order = np.argsort(-np.abs(values), kind="stable").tolist()
    shap = values.tolist()
    return [
        {
            "input": fields[k],
            "label": labels[k],
            "value_text": texts[k],
            "shap_log_odds": shap[k],
        }
        for k in order
    ]
