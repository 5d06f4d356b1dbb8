"""One typed settings object for every command: paths, tracking store, model registry names.

Precedence, lowest first: the defaults below, a TOML file (``--config``), environment variables
(``ICANS_<FIELD>`` upper-case, plus MLflow's own ``MLFLOW_TRACKING_URI``). Nothing else in the
project hard-codes a path, URI or model name.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from icans.errors import InvalidInputError

INTENDED_USE = (
    "Decision support only. Trained and evaluated on a SYNTHETIC cohort; not validated on real "
    "patients; not a medical device. Estimates the risk of severe (ASTCT grade 3-4) or "
    "steroid-refractory ICANS after CAR-T therapy, from the data observed up to the prediction day."
)


class Settings(BaseModel):
    """Settings shared by the CLI, training, serving and reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifacts_dir: Path = Field(Path("artifacts"), description="Root of generated files.")
    cohort_dir: Path = Field(Path("artifacts/cohort"), description="Default cohort directory.")
    tracking_uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking store.")
    model_name: str = Field("icans-risk", description="Registered model name.")
    model_alias: str = Field("champion", description="Alias of the serving model.")
    api_token: SecretStr | None = Field(None, description="Bearer token for /v1 (optional).")

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"


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
        field = ".".join(str(x) for x in err["loc"])
        raise InvalidInputError(field, err.get("input"), err["msg"]) from exc
