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
    stale_run_hours: float = Field(
        24.0,
        gt=0,
        description="A training run of another host (or without an owner) still RUNNING after "
        "this many hours is taken as dead and closed by the next 'icans train' "
        "(training.stale_runs); runs of this host are checked by their process instead.",
    )
    allow_unauthenticated_network: bool = Field(
        False,
        description="Let 'icans serve' listen on a non-loopback interface without api_token: "
        "only behind a gateway that authenticates every call. Off: it refuses and says why.",
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
