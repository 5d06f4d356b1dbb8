"""Request and response schemas of the versioned JSON API (``/v1``).

The request is the data contract's patient (:class:`api.patient.PatientObservation`);
responses say which model answered, the probability, its explanation and warnings.
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


class RiskResponse(BaseModel):
    probability: float = Field(
        ge=0,
        le=1,
        description="Risk of severe (grade 3-4) or "
        "steroid-refractory ICANS after this day, through day 28.",
    )
    probability_interval: ProbabilityInterval | None = Field(
        description="95% uncertainty interval of the probability; null if the model has none."
    )
    landmark_day: int = Field(description="day_since_infusion of the request.")
    model_name: str
    model_version: str
    base_log_odds: float = Field(description="Expected log-odds over the training data.")
    log_odds: float = Field(description="base_log_odds + sum of contributions.")
    contributions: list[Contribution] = Field(description="Per predictor, largest absolute first.")
    input_contributions: list[InputContribution] = Field(
        description="Per input entered (categories summed, derived predictors attributed to "
        "their inputs), largest absolute first; they add up to the same log-odds."
    )
    drivers: list[str] = Field(description="Plain-language top drivers.")
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
