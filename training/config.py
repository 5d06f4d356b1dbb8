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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from features.input_sets import INPUT_SETS
from features.landmarks import DEFAULT_LANDMARKS
from icans.errors import InvalidInputError
from icans.horizons import LAST_DAY, TARGET_HORIZON, check_horizons, horizon
from model.baselines import LogisticBaseline
from model.boosting import SearchSpace
from model.risk_model import RiskModel

# Configuration keys named otherwise than the estimator's parameter (both are public: the keys
# of existing TOML files and MLflow runs, and scikit-learn's names).
RENAMED = {"seed": "random_state", "n_threads": "n_jobs"}


TRAINING_DAY_STRIDE = 3
"""Default of ``training_day_stride``: every third day per training patient gives as many rows
as the seven sparse landmarks did, so daily prediction costs no more training time, at the same
held-out AUROC per horizon (stride 2 and 1, half again and three times the rows, were within
0.006 of it: benchmarks/bench_landmarks.py, docs/concepts/landmarks.md)."""


def estimator_default(estimator: type, parameter: str) -> Any:
    """The default of ``parameter`` in ``estimator``'s signature, the one place it is written."""
    return inspect.signature(estimator).parameters[parameter].default


def _model(parameter: str) -> Any:
    return estimator_default(RiskModel, parameter)


OPT_IN = ("min_auroc", "calibration_intercept_max_abs")
"""A shorter horizon's gates that apply only when set for it: the AUROC floor (day 28 has none)
and the calibration intercept. Issue 28's targets per horizon are the gap to the true risk and
the calibration slope; the intercept of the 7-day risk was +0.27 on ``make run``'s cohort (day
28's bound is 0.2) because the model's recalibration is fitted on day 28's events alone
(:mod:`model.risk_model`), so day 28's bound would refuse every model until the shorter
horizons are recalibrated too. Reported, not hidden: ``gates.json`` names it as not applied."""


class HorizonGate(BaseModel):
    """The gates of one horizon shorter than day 28 (``gates.horizons``), judged on the
    model's risk within that horizon against its own events and true risk
    (``FitResult.horizons``); a field left unset takes day 28's value (the same field of
    :class:`GateConfig`), except those of :data:`OPT_IN`, which apply only when set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_auroc: float | None = Field(
        default=None, ge=0, le=1, description="Held-out AUROC at least this (unset: no floor)."
    )
    calibration_slope_min: float | None = None
    calibration_slope_max: float | None = None
    calibration_intercept_max_abs: float | None = Field(default=None, ge=0)
    max_auroc_gap_to_true_risk: float | None = None
    min_test_events: int | None = None


class GateConfig(BaseModel):
    """Quality gates a model must pass before the ``champion`` alias moves to it.

    The fields are day 28's gates; ``horizons`` holds the gates of the shorter horizons, by
    name. Every fitted horizon is gated: one not named there takes day 28's calibration, gap and
    event-count gates (the baseline and champion comparisons are day 28's alone)."""

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
    horizons: dict[str, HorizonGate] = Field(
        default_factory=dict,
        description="Gates of the horizons shorter than day 28, by name: a table "
        "[train.gates.horizons.72h] with any of min_auroc, calibration_slope_min, "
        "calibration_slope_max, calibration_intercept_max_abs, max_auroc_gap_to_true_risk, "
        "min_test_events; unset: day 28's, but no AUROC floor and no intercept bound (those two "
        "only when set). Every fitted horizon is gated; one the model is not fitted for is "
        "refused.",
    )

    @field_validator("horizons")
    @classmethod
    def _horizon_names(cls, v: dict[str, HorizonGate]) -> dict[str, HorizonGate]:
        for name in v:
            if name == TARGET_HORIZON.name:
                raise ValueError(
                    f"gates.horizons {name!r}: day 28's gates are the fields of [train.gates] "
                    "itself; gates.horizons holds the shorter horizons' gates"
                )
            try:
                horizon(name)
            except InvalidInputError as exc:
                raise ValueError(f"gates.horizons {name!r}: {exc.expected}") from None
        return v

    def for_horizon(self, name: str) -> HorizonGate:
        """The gates of horizon ``name`` with every unset threshold taken from day 28's."""
        own = self.horizons.get(name, HorizonGate())
        return HorizonGate(
            **{
                field: getattr(self, field) if getattr(own, field) is None else getattr(own, field)
                for field in HorizonGate.model_fields
                if field not in OPT_IN
            },
            **{field: getattr(own, field) for field in OPT_IN},
        )


class TrainConfig(BaseModel):
    # a field's docstring is its description (the logged parameters' and the docs' meaning)
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    landmarks: tuple[int, ...] = DEFAULT_LANDMARKS
    """Prediction days of the landmark rows (0-27; default every day 0-21): training rows (see
    training_day_stride) and held-out rows, evaluated per day and per day group."""
    training_day_stride: int = Field(default=TRAINING_DAY_STRIDE, ge=1, le=7)
    """Each training patient contributes every n-th of its landmark days, from a day drawn per
    patient (model.splits.day_stride_rows): every day stays in training, with ~1/n of its
    patients; held-out patients are judged on every day. 1 trains on every row
    (benchmarks/bench_landmarks.py shows rows, fit time and AUROC per horizon for each)."""
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
    horizons: tuple[str, ...] = _model("horizons")
    """The horizons the model is fitted for and evaluated on (icans.horizons, shortest first,
    day28 among them): one label per horizon; ("day28",) alone fits the target only."""
    gates: GateConfig = GateConfig()  # after horizons: its check reads them
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
        bad = [d for d in v if not 0 <= d <= LAST_DAY - 1]
        if not v or bad:
            raise ValueError(
                f"landmarks {list(v)}: {bad or 'none given'} - each a whole day from 0 to "
                f"{LAST_DAY - 1} (a prediction day has a day after it up to day {LAST_DAY}), "
                "at least one"
            )
        return tuple(sorted(set(v)))

    @field_validator("gates")
    @classmethod
    def _gated_horizons_fitted(cls, v: GateConfig, info: ValidationInfo) -> GateConfig:
        fitted = info.data.get("horizons", ())  # absent when horizons itself was refused
        unfitted = [name for name in v.horizons if name not in fitted]
        if fitted and unfitted:
            raise ValueError(
                f"gates.horizons {unfitted}: a gate for a horizon the model does not estimate; "
                f"each must be one of horizons {list(fitted)} other than {TARGET_HORIZON.name}"
            )
        return v

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
