"""Training configuration: one typed object, read from the ``[train]`` table of a TOML file.

Everything the ``icans train`` command does not take as an option lives here, with its default;
the whole object is logged to MLflow as parameters, so a run can be repeated exactly.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.landmarks import DEFAULT_LANDMARKS
from icans.errors import InvalidInputError
from model.boosting import SearchSpace


class GateConfig(BaseModel):
    """Quality gates a model must pass before the ``champion`` alias moves to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calibration_slope_min: float = Field(0.8, description="Held-out calibration slope, lower.")
    calibration_slope_max: float = Field(1.2, description="Held-out calibration slope, upper.")
    max_auroc_gap_to_true_risk: float = Field(
        0.03, description="AUROC may be at most this far below the true risk's (same rows)."
    )
    must_beat: tuple[str, ...] = Field(
        ("m_easix",), description="Baselines the model's AUROC must exceed (the published score)."
    )
    non_inferior_to: tuple[str, ...] = Field(
        ("logistic",), description="Baselines the model may trail by at most the margin below."
    )
    non_inferiority_margin: float = Field(
        0.01, ge=0, description="AUROC margin for non-inferiority; 0 means 'must beat'."
    )
    min_test_events: int = Field(20, description="Fewer held-out events cannot judge a model.")
    calibration_intercept_max_abs: float = Field(
        0.2, ge=0, description="Held-out calibration intercept (log-odds), at most this far from 0."
    )
    champion_margin: float = Field(
        0.02,
        ge=0,
        description="Champion-challenger: the lower 95% bound of the AUROC difference from the "
        "current champion (same held-out patients, paired bootstrap) must be above -margin.",
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS
    seed: int = 7
    test_fraction: float = Field(0.25, gt=0, lt=1, description="Patients held out for testing.")
    split: Literal["patients", "temporal"] = Field(
        "patients",
        description="How held-out patients are chosen: at random ('patients'), or the latest "
        "infused ('temporal', by the cohort's infusion_order).",
    )
    cv_folds: int = Field(3, ge=2, le=10)
    search: SearchSpace = SearchSpace()
    linear_offset: bool = Field(
        True,
        description="Boost the trees from a sign-constrained penalised logistic regression's "
        "log-odds (model.linear_offset); false: trees alone.",
    )
    day_degree: int = Field(
        2,
        ge=0,
        le=4,
        description="Degree of the polynomial (Bernstein, in log(1 + day)) by which the additive "
        "part's coefficients vary with the landmark day; 0: one coefficient for every day.",
    )
    day_smoothing: float = Field(
        10.0,
        ge=0,
        description="Penalty on the differences between neighbouring day coefficients of one "
        "predictor (pulls towards one coefficient for every day; 0: none).",
    )
    icans_state_shifts: bool = Field(
        True,
        description="Let the additive part's product and disease coefficients shift once ICANS "
        "has begun (what sets how often ICANS begins need not set how it goes).",
    )
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    recalibrate_if_slope_outside: tuple[float, float] = (0.95, 1.05)
    recalibrate_if_abs_intercept_above: float = 0.05
    logistic_c_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    bootstrap_samples: int = Field(200, ge=0, le=5000)
    missing_series_fraction: float = Field(
        0.10,
        ge=0,
        le=0.5,
        description="Share of training rows copied with a whole course series missing, per "
        "series group (model.augment); 0 turns it off.",
    )
    uncertainty_refits: int = Field(
        20,
        ge=0,
        le=200,
        description="Patient-bootstrap refits of the final model for per-patient uncertainty "
        "intervals (0: no intervals).",
    )
    decision_thresholds: tuple[float, float, float] = (0.05, 0.40, 0.01)
    learning_curve_sizes: tuple[int, ...] = (13, 100, 500, 2000, 10000)
    learning_curve_repeats: int = Field(5, ge=1, description="Repeats for sizes below 500.")
    n_threads: int = Field(2, ge=1, description="XGBoost threads (CI machines have 2 cores).")
    experiment: str = "icans-risk"
    gates: GateConfig = GateConfig()

    @field_validator("landmarks")
    @classmethod
    def _landmarks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(not 0 <= d <= 27 for d in v):
            raise ValueError("landmark days must be whole days from 0 to 27")
        return tuple(sorted(set(v)))


def load_train_config(path: Path | None) -> TrainConfig:
    """Defaults, overridden by the ``[train]`` table of ``path`` when given."""
    if path is None:
        return TrainConfig()
    try:
        data = tomllib.loads(Path(path).read_text()).get("train", {})
        return TrainConfig(**data)
    except FileNotFoundError as exc:
        raise InvalidInputError("config", str(path), "an existing TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError("config", str(path), f"valid TOML ({exc})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "train." + ".".join(str(x) for x in err["loc"])
        raise InvalidInputError(field, err.get("input"), err["msg"]) from exc
