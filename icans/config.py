"""One typed settings object for every command: paths, tracking store, model registry names.

Precedence, lowest first: the defaults below, a TOML file (``--config``), environment variables
(``ICANS_<FIELD>`` upper-case, plus MLflow's own ``MLFLOW_TRACKING_URI``), explicit overrides
(command-line options). The command line, training, the reports and the service take every
default path, URI and model name from here.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from icans.errors import InvalidInputError

INTENDED_USE = (
    "Decision support only. Trained and evaluated on a SYNTHETIC cohort; not validated on real "
    "patients; not a medical device. Estimates the risk of severe (ASTCT grade 3-4) or "
    "steroid-refractory ICANS after CAR-T therapy, from the data observed up to the prediction day."
)
REAL_DATA_INTENDED_USE = (
    "Decision support only; not a medical device. Trained on real patient data; validated only "
    "as far as its evaluation reports show. Estimates the risk of severe (ASTCT grade 3-4) or "
    "steroid-refractory ICANS after CAR-T therapy, from the data observed up to the prediction "
    "day."
)


def intended_use(synthetic: bool) -> str:
    """The intended-use statement of a model trained on synthetic (:data:`INTENDED_USE`) or on
    real patient data: a model trained on synthetic data always says so."""
    return INTENDED_USE if synthetic else REAL_DATA_INTENDED_USE


class Settings(BaseModel):
    """Settings shared by the CLI, training, serving and reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifacts_dir: Path = Field(Path("artifacts"), description="Root of generated files.")
    tracking_uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking store.")
    model_name: str = Field("icans-risk", description="Registered model name.")
    model_alias: str = Field("champion", description="Alias of the champion.")
    model_uri: str = Field(
        "",
        description="Registry URI the commands and the service use; default "
        "models:/<model_name>@<model_alias>.",
    )
    audit_log: Path = Field(
        Path(""), description="Audit trail of predictions; default <artifacts_dir>/audit.jsonl."
    )
    api_token: SecretStr | None = Field(None, description="Bearer token for /v1 (optional).")
    serve_host: str = Field("127.0.0.1", description="Interface the service binds.")
    serve_port: int = Field(3000, ge=1, le=65535, description="TCP port of the service.")
    public_url: str = Field(
        "",
        description="The service's URL as clients call it (behind a proxy: the proxy's): the "
        "audience of CDS clients' JWTs and the base of card links; default "
        "http://<serve_host>:<serve_port>.",
    )
    cds_clients: Path | None = Field(
        None,
        description="TOML file of the CDS clients trusted to call /cds-services (issuer, key "
        "set or allow-listed jku, FHIR servers the service may fetch from). Without it every "
        "CDS Hooks call is refused.",
    )
    cds_warning_at: float = Field(
        0.10, gt=0, lt=1, description="Risk at or above which a CDS card is a 'warning'."
    )
    cds_critical_at: float = Field(
        0.25, gt=0, lt=1, description="Risk at or above which a CDS card is 'critical'."
    )
    cds_page_ttl_s: int = Field(
        3600, ge=60, le=7 * 86400, description="How long a card's explanation page stays."
    )
    prediction_log_dir: Path = Field(
        Path(""),
        description="Directory of the prediction log for monitoring (one JSON-lines file per "
        "UTC day; no identifiers); default <artifacts_dir>/predictions.",
    )
    prediction_log_retention_days: int = Field(
        400,
        ge=1,
        description="Days of prediction log kept: long enough to join outcomes known 28 days "
        "after a prediction and to compare a year of case mix.",
    )
    # icans monitor (monitoring.thresholds): crossing any of these exits with code 1
    monitor_max_drifted_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Largest share of the monitored inputs (clinical inputs and derived "
        "predictors) whose distribution may drift from the model's training reference "
        "(Evidently's per-column test) before icans monitor reports a case-mix shift.",
    )
    monitor_max_risk_psi: float = Field(
        0.2,
        gt=0,
        description="Largest population stability index of the predicted risks against the "
        "reference (0.1-0.25 is a moderate shift, above 0.25 a major one).",
    )
    monitor_min_estimated_auroc: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Lowest AUROC estimated from the predicted risks alone (no outcomes; "
        "assumes the model is calibrated on the traffic).",
    )
    monitor_min_auroc: float = Field(
        0.75, ge=0, le=1, description="Lowest realised AUROC once outcomes are joined."
    )
    monitor_max_calibration_error: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Largest integrated calibration index (mean |predicted - observed| risk, "
        "smoothed) once outcomes are joined.",
    )
    monitor_min_predictions: int = Field(
        100,
        ge=1,
        description="Fewest predictions of a model version in a window for its drift and "
        "estimated AUROC to be judged against the thresholds (fewer: shown, not judged).",
    )
    monitor_min_events: int = Field(
        10,
        ge=1,
        description="Fewest joined outcomes of each kind (events and non-events) for the "
        "realised AUROC and calibration to be judged against the thresholds.",
    )
    stale_run_hours: float = Field(
        24.0,
        gt=0,
        description="A training run of another host (or without an owner) still RUNNING after "
        "this many hours is taken as dead and closed by the next 'icans train' "
        "(training.stale_runs); runs of this host are checked by their process instead.",
    )
    model_poll_seconds: float = Field(
        30.0,
        ge=0,
        description="How often each service worker asks the registry which version its alias "
        "names, and swaps to it (loaded and warmed up first) when it moved "
        "(serving.rollout); 0: never, a promotion then needs a restart.",
    )
    allow_unauthenticated_network: bool = Field(
        False,
        description="Let 'icans serve' listen on a non-loopback interface without api_token: "
        "only behind a gateway that authenticates every call. Off: it refuses and says why.",
    )
    tracking_server_port: int = Field(
        5000,
        ge=1,
        le=65535,
        description="TCP port of the local shared MLflow tracking server ('icans tracking "
        "start'; 127.0.0.1 only).",
    )
    tracking_db_port: int = Field(
        5433,
        ge=1,
        le=65535,
        description="TCP port of that server's PostgreSQL backend store (127.0.0.1 only; 5433 "
        "leaves a system PostgreSQL's 5432 alone).",
    )
    tracking_server_dir: Path = Field(
        Path(""),
        description="Directory of the local tracking server: PostgreSQL's data, the artefacts, "
        "logs and pid files; default <artifacts_dir>/tracking-server.",
    )

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        # frozen: derived defaults are filled in once, here
        if not self.model_uri:
            object.__setattr__(self, "model_uri", f"models:/{self.model_name}@{self.model_alias}")
        if self.prediction_log_dir == Path(""):
            object.__setattr__(self, "prediction_log_dir", self.artifacts_dir / "predictions")
        if self.audit_log == Path(""):
            object.__setattr__(self, "audit_log", self.artifacts_dir / "audit.jsonl")
        if self.tracking_server_dir == Path(""):
            object.__setattr__(self, "tracking_server_dir", self.artifacts_dir / "tracking-server")
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.serve_host}:{self.serve_port}")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.cds_warning_at >= self.cds_critical_at:
            raise ValueError(
                f"cds_warning_at ({self.cds_warning_at}) must be below cds_critical_at "
                f"({self.cds_critical_at})"
            )
        return self

    @property
    def cohort_dir(self) -> Path:
        """Where ``icans cohort generate`` writes by default."""
        return self.artifacts_dir / "cohort"

    @property
    def cds_explanations_dir(self) -> Path:
        """What the CDS cards' explanation links are rendered from, until they expire."""
        return self.artifacts_dir / "cds-explanations"

    @property
    def demo_cohort_dir(self) -> Path:
        """Where the main job (``icans demo``) writes its cohort."""
        return self.artifacts_dir / "demo-cohort"


_ENV_PREFIX = "ICANS_"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < TOML file < environment < explicit keyword overrides."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values.update(tomllib.loads(Path(config_file).read_text()).get("settings", {}))
        except FileNotFoundError as exc:
            raise InvalidInputError("config", str(config_file), "an existing TOML file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError("config", str(config_file), f"valid TOML ({exc})") from exc
    for name in Settings.model_fields:
        env = os.environ.get(_ENV_PREFIX + name.upper())
        if env:
            values[name] = env
    if os.environ.get("MLFLOW_TRACKING_URI"):
        values["tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "settings"
        raise InvalidInputError(field, err.get("input"), err["msg"]) from exc
