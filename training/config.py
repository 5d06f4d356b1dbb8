"""Training configuration: one typed object, read from the ``[train]`` table of a TOML file.

Everything the ``icans train`` command does not take as an option lives here, with its default;
the whole object is logged to MLflow as parameters, so a run can be repeated exactly.

The risk model's settings are written once, in :class:`model.risk_model.RiskModel`'s signature
(a scikit-learn estimator's parameters, ``get_params`` and ``clone`` read them there): a field
of :class:`TrainConfig` with a parameter's name (or ``seed`` and ``n_threads``, see
:data:`RENAMED`) takes that parameter's default, and :meth:`TrainConfig.model_params` hands
every such field to the estimator. The logistic baseline's penalty grid likewise comes from
:class:`model.baselines.LogisticBaseline`.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.input_sets import INPUT_SETS
from features.landmarks import DEFAULT_LANDMARKS
from icans.errors import InvalidInputError
from icans.horizons import check_horizons
from model.baselines import LogisticBaseline
from model.boosting import SearchSpace
from model.risk_model import RiskModel

# Configuration keys named otherwise than the estimator's parameter (both are public: the keys
# of existing TOML files and MLflow runs, and scikit-learn's names).
RENAMED = {"seed": "random_state", "n_threads": "n_jobs"}


def estimator_default(estimator: type, parameter: str) -> Any:
    """The default of ``parameter`` in ``estimator``'s signature, the one place it is written."""
    return inspect.signature(estimator).parameters[parameter].default


def _model(parameter: str) -> Any:
    return estimator_default(RiskModel, parameter)


class GateConfig(BaseModel):
    """Quality gates a model must pass before the ``champion`` alias moves to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calibration_slope_min: float = Field(
        default=0.8, description="Held-out calibration slope, lower."
    )
    calibration_slope_max: float = Field(
        default=1.2, description="Held-out calibration slope, upper."
    )
    max_auroc_gap_to_true_risk: float = Field(
        default=0.03, description="AUROC may be at most this far below the true risk's (same rows)."
    )
    must_beat: tuple[str, ...] = Field(
        default=("m_easix",),
        description="Baselines the model's AUROC must exceed (the published score).",
    )
    non_inferior_to: tuple[str, ...] = Field(
        default=("logistic",),
        description="Baselines the model may trail by at most the margin below.",
    )
    non_inferiority_margin: float = Field(
        default=0.01, ge=0, description="AUROC margin for non-inferiority; 0 means 'must beat'."
    )
    min_test_events: int = Field(
        default=20, description="Fewer held-out events cannot judge a model."
    )
    calibration_intercept_max_abs: float = Field(
        default=0.2,
        ge=0,
        description="Held-out calibration intercept (log-odds), at most this far from 0.",
    )
    champion_margin: float = Field(
        default=0.02,
        ge=0,
        description="Champion-challenger: the lower 95% bound of the AUROC difference from the "
        "current champion (same held-out patients, paired bootstrap) must be above -margin.",
    )


class TrainConfig(BaseModel):
    # a field's docstring is its description (the logged parameters' and the docs' meaning)
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS
    seed: int = _model("random_state")
    test_fraction: float = Field(
        default=0.25, gt=0, lt=1, description="Patients held out for testing."
    )
    split: Literal["patients", "temporal"] = Field(default="patients")
    """How held-out patients are chosen: at random ('patients'), or the latest infused ('temporal',
    by the cohort's infusion_order)."""
    cv_folds: int = Field(default=_model("cv_folds"), ge=2, le=10)
    search: SearchSpace = SearchSpace()  # the model's default (None) means SearchSpace()
    linear_offset: bool = Field(default=_model("linear_offset"))
    """Boost the trees from a sign-constrained penalised logistic regression's log-odds
    (model.linear_offset); false: trees alone."""
    day_degree: int = Field(default=_model("day_degree"), ge=0, le=4)
    """Degree of the polynomial (Bernstein, in log(1 + day)) by which the additive part's
    coefficients vary with the landmark day; 0: one coefficient for every day."""
    day_smoothing: float = Field(default=_model("day_smoothing"), ge=0)
    """Penalty on the differences between neighbouring day coefficients of one predictor (pulls
    towards one coefficient for every day; 0: none)."""
    icans_state_shifts: bool = Field(default=_model("icans_state_shifts"))
    """Let the additive part's product and disease coefficients shift once ICANS has begun (what
    sets how often ICANS begins need not set how it goes)."""
    subsample: float = _model("subsample")
    colsample_bytree: float = _model("colsample_bytree")
    recalibrate_if_slope_outside: tuple[float, float] = _model("recalibrate_if_slope_outside")
    recalibrate_if_abs_intercept_above: float = _model("recalibrate_if_abs_intercept_above")
    logistic_c_grid: tuple[float, ...] = estimator_default(LogisticBaseline, "c_grid")
    bootstrap_samples: int = Field(default=200, ge=0, le=5000)
    missing_series_fraction: float = Field(default=_model("missing_series_fraction"), ge=0, le=0.5)
    """Share of training rows copied with a whole course series missing, per series group
    (model.augment); 0 turns it off."""
    uncertainty_refits: int = Field(default=_model("uncertainty_refits"), ge=0, le=200)
    """Patient-bootstrap refits of the final model for per-patient uncertainty intervals (0: no
    intervals)."""
    decision_thresholds: tuple[float, float, float] = (0.05, 0.40, 0.01)
    learning_curve_sizes: tuple[int, ...] = (13, 100, 500, 2000, 10000)
    learning_curve_repeats: int = Field(default=5, ge=1, description="Repeats for sizes below 500.")
    n_threads: int = Field(
        default=_model("n_jobs"), ge=1, description="XGBoost threads (CI machines have 2 cores)."
    )
    n_tasks: int = Field(default=_model("n_tasks"), ge=-1)
    """Independent fits run at once (model.tasks: the risk model's search folds and uncertainty
    refits, the logistic baseline's penalty-by-fold fits, the learning curve's points, the
    input-set models): 1 one after another here; -1 as many as there are workers (this
    machine's cores; with a cluster named, training.cluster, its workers: then 1 means -1).
    Each task uses n_threads xgboost threads."""
    experiment: str = "icans-risk"
    gates: GateConfig = GateConfig()
    horizons: tuple[str, ...] = _model("horizons")
    """The horizons the model is fitted for and evaluated on (icans.horizons, shortest first,
    day28 among them): one label per horizon; ("day28",) alone fits the target only."""
    input_sets: tuple[str, ...] = ("routine", "baseline", "named")
    """Input sets (features.input_sets) compared with the model, which uses them all: each gets a
    model of its own, fitted on the same training patients (tuned, calibrated; no uncertainty
    refits) and scored on the same held-out rows, beside the exact true risk given that set
    where the cohort has one; () compares none."""

    def model_params(self) -> dict[str, Any]:
        """The risk model's parameters this configuration sets: every field named as one of
        :class:`~model.risk_model.RiskModel`'s parameters (or renamed, :data:`RENAMED`)."""
        accepted = inspect.signature(RiskModel).parameters
        return {
            RENAMED.get(name, name): getattr(self, name)
            for name in type(self).model_fields
            if RENAMED.get(name, name) in accepted
        }

    @field_validator("n_tasks")
    @classmethod
    def _n_tasks(cls, v: int) -> int:
        if v == 0:
            raise ValueError("n_tasks is 1 or more, or -1 for every worker")
        return v

    @field_validator("landmarks")
    @classmethod
    def _landmarks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(not 0 <= d <= 27 for d in v):
            raise ValueError("landmark days must be whole days from 0 to 27")
        return tuple(sorted(set(v)))

    @field_validator("horizons")
    @classmethod
    def _horizons(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return check_horizons(v)
        except InvalidInputError as exc:
            raise ValueError(f"horizons {exc.value!r}: {exc.expected}") from None

    @field_validator("input_sets")
    @classmethod
    def _input_sets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        allowed = [name for name in INPUT_SETS if name != "all"]
        unknown = [name for name in v if name not in allowed]
        if unknown:
            raise ValueError(
                f"input_sets {list(v)}: {', '.join(map(repr, unknown))} is not an input set to "
                f"compare; each must be one of {', '.join(allowed)} (the model itself uses 'all')"
            )
        return tuple(dict.fromkeys(v))  # each once, in the order given


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
