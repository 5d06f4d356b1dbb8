"""Request and response schemas of the versioned JSON API (``/v1``).

The request is the data contract's patient (:class:`api.patient.PatientObservation`);
responses say which model answered, the probability, its explanation and warnings, at the top
for day 28 (the target, as before horizons) and in ``horizons`` for every horizon the model
estimates (:mod:`icans.horizons`: the next 72 hours, the next 7 days, by day 28).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.patient import PatientObservation
from icans.config import INTENDED_USE

MAX_BATCH = 256  # patients per /v1/risk/batch call
MAX_BODY_BYTES = 64 * 1024  # one patient: a full 28-day course is ~6 KB
MAX_BATCH_BODY_BYTES = MAX_BATCH * MAX_BODY_BYTES // 4


class Contribution(BaseModel):
    feature: str = Field(description="Predictor name (as in the model's feature list).")
    label: str = Field(description="Plain name for display.")
    value: float | None = Field(description="Predictor value; null when missing.")
    value_text: str = Field(description="Value in clinical units.")
    shap_log_odds: float = Field(description="Exact TreeSHAP contribution, log-odds.")


class InputContribution(BaseModel):
    input: str = Field(description="The contract field the clinician entered, e.g. crp_mg_per_l.")
    label: str = Field(description="Plain name for display.")
    value_text: str = Field(description="The input as entered, in clinical units.")
    shap_log_odds: float = Field(
        description="The contributions of the predictors computed from this input, summed "
        "(a predictor of several inputs shared equally among them), log-odds."
    )


class ProbabilityInterval(BaseModel):
    low: float = Field(ge=0, le=1)
    high: float = Field(ge=0, le=1)
    level: float = Field(default=0.95, description="Central coverage of the refits' probabilities.")
    method: str = Field(
        default="patient-bootstrap refits of the model",
        description="Estimation uncertainty only: how much the probability depends on which "
        "patients were in the training data; not input errors, not synthetic-to-real transfer.",
    )


DAY28_TOP = (
    " The day-28 horizon's, as before horizons were added (backward compatible; the same as "
    "its entry in horizons)."
)


class HorizonRiskResponse(BaseModel):
    """The risk within one horizon after the landmark day, with its interval and explanation.
    The horizons of one response never contradict each other: probability and both interval
    bounds are ordered 72h <= 7d <= day28 (one model, monotone in the window)."""

    horizon: str = Field(description="The horizon's name: 72h, 7d or day28.")
    label: str = Field(description="How it reads: 'within the next 72 hours', 'by day 28'.")
    end_day: int = Field(
        description="The window's last day: the event counts on days landmark_day + 1 .. "
        "end_day, end_day = min(landmark_day + the horizon's days, 28) (28 for day28)."
    )
    probability: float = Field(
        ge=0,
        le=1,
        description="Risk of severe (grade 3-4) or steroid-refractory ICANS on days "
        "landmark_day + 1 .. end_day.",
    )
    probability_interval: ProbabilityInterval | None = Field(
        description="95% uncertainty interval of the probability; null if the model has none."
    )
    base_log_odds: float = Field(description="Expected log-odds over the training data.")
    log_odds: float = Field(description="base_log_odds + sum of input_contributions.")
    input_contributions: list[InputContribution] = Field(
        description="Exact TreeSHAP contributions per input entered, largest absolute first; "
        "base_log_odds plus their sum is log_odds. (The per-predictor list is given for "
        "day 28 only, in the top-level contributions: it is most of a response's size.)"
    )
    drivers: list[str] = Field(description="Plain-language top drivers of this horizon.")


class RiskResponse(BaseModel):
    probability: float = Field(
        ge=0,
        le=1,
        description="Risk of severe (grade 3-4) or steroid-refractory ICANS after this day, "
        "through day 28." + DAY28_TOP,
    )
    probability_interval: ProbabilityInterval | None = Field(
        description="95% uncertainty interval of the probability; null if the model has none."
        + DAY28_TOP
    )
    landmark_day: int = Field(description="day_since_infusion of the request.")
    model_name: str
    model_version: str
    base_log_odds: float = Field(
        description="Expected log-odds over the training data." + DAY28_TOP
    )
    log_odds: float = Field(description="base_log_odds + sum of contributions." + DAY28_TOP)
    contributions: list[Contribution] = Field(
        description="Per predictor, largest absolute first; day 28 (the only horizon given per "
        "predictor)."
    )
    input_contributions: list[InputContribution] = Field(
        description="Per input entered (categories summed, derived predictors attributed to "
        "their inputs), largest absolute first; they add up to the same log-odds." + DAY28_TOP
    )
    drivers: list[str] = Field(description="Plain-language top drivers." + DAY28_TOP)
    horizons: list[HorizonRiskResponse] = Field(
        default_factory=list,
        description="The risk per horizon, shortest first (72h, 7d, day28): every horizon the "
        "model estimates, or those the request's horizons parameter names. A model fitted for "
        "day 28 alone answers with day28 only.",
    )
    warnings: list[str] = Field(
        description="Inputs outside the training range, unseen categories, categories with few "
        "training outcomes, missing inputs."
    )
    missing_inputs: list[str]
    request_id: str
    disclaimer: str = Field(
        default=INTENDED_USE,
        description="Intended use; says so when the model learnt synthetic data.",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    patients: list[PatientObservation] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} patients."
    )


class BatchResponse(BaseModel):
    results: list[RiskResponse] = Field(
        description="One per patient, in request order; result i's request_id is "
        "'<request_id>.<i>', the id its audit and prediction-log lines carry (the key an "
        "outcome is joined on)."
    )
    request_id: str


class ErrorDetail(BaseModel):
    field: str = Field(description="Field path, e.g. crs_grade_by_day[2].day.")
    value: Any = Field(default=None, description="The value given (omitted for missing fields).")
    expected: str = Field(description="The rule the value breaks.")


class ErrorResponse(BaseModel):
    error: str = Field(description="invalid_input, unauthorized, payload_too_large ...")
    message: str
    errors: list[ErrorDetail] = Field(default_factory=list)
    request_id: str


class FailedRollout(BaseModel):
    version: str | None = Field(
        description="The version the alias names that could not be loaded (null: the "
        "registry itself could not be asked)."
    )
    error: str
    at: str = Field(description="UTC time of the failure.")


class RolloutStatus(BaseModel):
    """Which version this worker answers with, and whether it follows its alias
    (:mod:`serving.rollout`)."""

    model_name: str
    model_version: str
    follows_alias: str | None = Field(description="null: a fixed version, never swapped.")
    poll_seconds: float | None = Field(description="null: the alias is not polled.")
    last_checked: str | None = Field(description="UTC time of the last registry check.")
    swaps: int = Field(description="Versions swapped in since the worker started.")
    failed_rollout: FailedRollout | None = Field(
        description="Set while the version the alias names could not be loaded: the worker "
        "keeps answering with model_version."
    )


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str | None
    trained_at: str = Field(description="UTC time the version was registered.")
    run_id: str
    cohort_fingerprint: str
    headline_metrics: dict[str, float]
    gate: dict[str, Any]
    feature_names: list[str]
    intended_use: str = INTENDED_USE
    synthetic_data: bool = True
    training_data: dict[str, Any] = Field(
        default_factory=dict,
        description="Where the training data came from: provenance (synthetic or real), "
        "fingerprint, patients, and the generator's version and settings for a synthetic cohort.",
    )
    rollout: RolloutStatus | None = Field(
        default=None, description="The answering worker's roll-out state (serving.rollout)."
    )
