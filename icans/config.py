"""One typed settings object for every command: paths, tracking store, model registry names,
and the settings of the service, its CDS Hooks cards, ``icans monitor`` and the local tracking
server, each in its section (:class:`Settings`: ``settings.serve.port``).

Read by pydantic-settings. Precedence, lowest first: the defaults below, the ``[settings]``
table of a TOML file (``--config``), environment variables, explicit keyword arguments (the
command-line options; ``None`` means not given). The command line, training, the reports and
the service take every default path, URI and model name from here.

Names kept from before the sections. Every setting keeps the flat name it had then
(:data:`FLAT_NAMES`: ``serve_port`` is ``serve.port``, ``cds_warning_at`` is
``cds.warning_at``, ``api_token`` is ``serve.api_token``; a top-level field is its own name),
and deployments and users' files keep working with it: the environment reads
``ICANS_<FLAT_NAME>`` (``ICANS_SERVE_PORT``, ``ICANS_API_TOKEN``, ``ICANS_MONITOR_MIN_AUROC``),
the TOML ``[settings]`` table takes ``serve_port = 3001`` (or the section's own table,
``[settings.serve]`` with ``port = 3001``), :func:`load_settings` takes ``serve_port=3001``,
and an error names the setting by it. MLflow's own ``MLFLOW_TRACKING_URI`` sets
``tracking_uri`` (over ``ICANS_TRACKING_URI``), as before.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from icans import card_indicator
from icans.errors import InvalidInputError
from icans.horizons import TARGET_HORIZON

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


Port = Annotated[int, Field(ge=1, le=65535)]
Share = Annotated[float, Field(ge=0, le=1)]  # a share of columns, or an AUROC
Count = Annotated[int, Field(ge=1)]


class _Section(BaseModel):
    # validate_default: the validators that fill in derived defaults run on defaults too
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ServeSettings(_Section):
    """``icans serve`` and its workers: where they listen, who may call them, how they follow
    the registry."""

    host: str = Field(default="127.0.0.1", description="Interface the service binds.")
    port: Port = Field(default=3000, description="TCP port of the service.")
    public_url: str = Field(
        default="",
        description="The service's URL as clients call it (behind a proxy: the proxy's): the "
        "audience of CDS clients' JWTs and the base of card links; default "
        "http://<host>:<port>.",
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token for /v1 (optional)."
    )
    allow_unauthenticated_network: bool = Field(
        default=False,
        description="Let 'icans serve' listen on a non-loopback interface without api_token: "
        "only behind a gateway that authenticates every call. Off: it refuses and says why.",
    )
    model_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often each service worker asks the registry which version its alias "
        "names, and swaps to it (loaded and warmed up first) when it moved "
        "(serving.rollout); 0: never, a promotion then needs a restart.",
    )
    stop_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How long 'icans serve', told to stop (SIGTERM, SIGINT), lets the server "
        "drain (finish its requests, stop its workers) before it kills what is left "
        "(ops.supervisor).",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str, info: ValidationInfo) -> str:
        # default: where the service listens; no trailing slash, paths are appended to it
        if not url and {"host", "port"} <= info.data.keys():
            url = f"http://{info.data['host']}:{info.data['port']}"
        return url.rstrip("/")


class CdsSettings(_Section):
    """The CDS Hooks service: who may call it, and its cards."""

    clients: Path | None = Field(
        default=None,
        description="TOML file of the CDS clients trusted to call /cds-services (issuer, key "
        "set or allow-listed jku, FHIR servers the service may fetch from). Without it every "
        "CDS Hooks call is refused.",
    )
    warning_at: float = Field(
        default=0.10, gt=0, lt=1, description="Risk at or above which a CDS card is a 'warning'."
    )
    critical_at: float = Field(
        default=0.25, gt=0, lt=1, description="Risk at or above which a CDS card is 'critical'."
    )
    thresholds: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Card thresholds of the shorter horizons, horizon -> [warning_at, "
        'critical_at] (ICANS_CDS_THRESHOLDS={"72h": [0.05, 0.15]}, JSON; in TOML a table '
        "[settings.cds.thresholds]); day 28 keeps cds_warning_at and cds_critical_at. No "
        "default: a local decision (icans.card_indicator).",
    )
    indicator_horizon: str = Field(
        default=TARGET_HORIZON.name,
        description="The horizon whose risk sets a card's indicator: 72h, 7d or day28 (the "
        "default: the behaviour before horizons, estimated by every model). The served model "
        "must estimate it (checked at start and on every model load).",
    )
    page_ttl_s: int = Field(
        default=3600, ge=60, le=7 * 86400, description="How long a card's explanation page stays."
    )
    state_uri: SecretStr | None = Field(
        default=None,
        description="PostgreSQL database (postgresql://user:password@host:port/db) holding what "
        "replicas behind one load balancer must share: the CDS clients' used jti values (a "
        "replayed token is refused whichever replica it reaches) and the explanation records "
        "behind card links (a link opens on any replica). Unset: a SQLite file and a directory "
        "under artifacts_dir, shared by the workers of one host only. Checked at start; a "
        "secret (it may hold a password).",
    )

    @field_validator("state_uri")
    @classmethod
    def _postgres_uri(cls, uri: SecretStr | None) -> SecretStr | None:
        if uri is not None and not uri.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("a postgresql:// URI")
        return uri

    @field_validator("critical_at")
    @classmethod
    def _above_warning(cls, critical_at: float, info: ValidationInfo) -> float:
        warning_at = info.data.get("warning_at")
        if warning_at is not None and warning_at >= critical_at:
            raise ValueError(f"a risk above cds_warning_at ({warning_at})")
        return critical_at

    # icans.card_indicator holds the rules: a JSON object from the environment, pairs in order
    _thresholds_read = field_validator("thresholds", mode="before")(card_indicator.read_thresholds)
    _thresholds = field_validator("thresholds")(card_indicator.check_thresholds)

    @field_validator("indicator_horizon")
    @classmethod
    def _indicator_horizon(cls, name: str, info: ValidationInfo) -> str:
        return card_indicator.check_indicator_horizon(name, info.data.get("thresholds"))

    def indicator_thresholds(self) -> tuple[float, float]:
        """(warning_at, critical_at) of the indicator horizon."""
        if self.indicator_horizon == TARGET_HORIZON.name:
            return self.warning_at, self.critical_at
        return self.thresholds[self.indicator_horizon]

    def check_model_horizons(self, horizons, model: str) -> None:
        """The indicator horizon is one the served model estimates
        (:func:`icans.card_indicator.check_model_horizons`)."""
        card_indicator.check_model_horizons(self.indicator_horizon, tuple(horizons), model)


class MonitorSettings(_Section):
    """The thresholds of ``icans monitor`` (monitoring.thresholds): crossing any of them exits
    with code 1."""

    max_drifted_share: Share = Field(
        default=0.25,
        description="Largest share of the monitored inputs (clinical inputs and derived "
        "predictors) whose distribution may drift from the model's training reference "
        "(Evidently's per-column test) before icans monitor reports a case-mix shift.",
    )
    max_risk_psi: float = Field(
        default=0.2,
        gt=0,
        description="Largest population stability index of the predicted risks against the "
        "reference (0.1-0.25 is a moderate shift, above 0.25 a major one).",
    )
    min_estimated_auroc: Share = Field(
        default=0.75,
        description="Lowest AUROC estimated from the predicted risks alone (no outcomes; "
        "assumes the model is calibrated on the traffic).",
    )
    min_auroc: Share = Field(
        default=0.75, description="Lowest realised AUROC once outcomes are joined."
    )
    max_calibration_error: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Largest integrated calibration index (mean |predicted - observed| risk, "
        "smoothed) once outcomes are joined.",
    )
    min_predictions: Count = Field(
        default=100,
        description="Fewest predictions of a model version in a window for its drift and "
        "estimated AUROC to be judged against the thresholds (fewer: shown, not judged).",
    )
    min_events: Count = Field(
        default=10,
        description="Fewest joined outcomes of each kind (events and non-events) for the "
        "realised AUROC and calibration to be judged against the thresholds.",
    )


class TrackingSettings(_Section):
    """The local shared MLflow tracking server that ``icans tracking start`` runs (127.0.0.1
    only). Where the commands record is ``tracking_uri``, at the top level."""

    server_port: Port = Field(default=5000, description="TCP port of the MLflow tracking server.")
    db_port: Port = Field(
        default=5433,
        description="TCP port of that server's PostgreSQL backend store (5433 leaves a system "
        "PostgreSQL's 5432 alone).",
    )
    server_dir: Path = Field(
        default=Path(""),
        description="Directory of the local tracking server: PostgreSQL's data, the artefacts, "
        "logs and pid files; default <artifacts_dir>/tracking-server.",
    )


class Settings(BaseSettings):
    """Settings shared by the CLI, training, serving and reports.

    At the top level: what more than one part reads, namely the artefacts' root and the files
    under it (the audit trail and the prediction log the service writes and ``icans monitor``
    reads), the tracking store and the registered model every command uses (with whether a
    version without an artefact digest may be loaded), and training's one setting
    (``stale_run_hours``, too little for a section). In sections: ``serve`` (the service and
    its workers, including how often they follow the alias), ``cds`` (CDS Hooks),
    ``monitor`` (``icans monitor``'s thresholds) and ``tracking`` (the local tracking server;
    not the store, ``tracking_uri``, which every command reads).

    Derived defaults (``model_uri``, the paths under ``artifacts_dir``, ``serve.public_url``)
    are filled in by the validators of those fields, from the fields declared before them; a
    :meth:`model_copy` keeps them as they are. Frozen: a changed setting is a
    ``model_copy(update=...)``, a section's a ``model_copy`` of the section.

    ``Settings(**values)`` reads the environment too (see :meth:`settings_customise_sources`).
    :func:`load_settings` is the entry point that turns a bad value into
    :class:`InvalidInputError`.
    """

    model_config = SettingsConfigDict(
        env_prefix="ICANS_",
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

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
    cluster: str = Field(
        "",
        description="Dask scheduler (tcp://host:port) that 'icans train' sends its independent "
        "fits to (cross-validation folds, uncertainty refits; training.cluster); empty: this "
        "machine.",
    )
    allow_unverified_models: bool = Field(
        False,
        description="Load registered versions that carry no artefact digest (registered before "
        "digests were recorded, or outside 'icans train'), unchecked, with a warning. A version "
        "whose digest is recorded is always checked, and refused when its files differ "
        "(registry.digest).",
    )
    serve: ServeSettings = Field(default_factory=ServeSettings)
    cds: CdsSettings = Field(default_factory=CdsSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)

    def __init__(self, *, _config_file: Path | None = None, **values: Any) -> None:
        """``values``: settings by flat name (``serve_port=3001``) or by section
        (``serve={"port": 3001}``); ``_config_file``: the TOML file whose ``[settings]`` table
        comes below the environment."""
        super().__init__(**values, _config_file=_config_file)

    @field_validator("model_uri")
    @classmethod
    def _model_uri(cls, uri: str, info: ValidationInfo) -> str:
        if uri or not {"model_name", "model_alias"} <= info.data.keys():
            return uri
        return f"models:/{info.data['model_name']}@{info.data['model_alias']}"

    @field_validator("audit_log", "prediction_log_dir")
    @classmethod
    def _under_artifacts(cls, path: Path, info: ValidationInfo) -> Path:
        if path != Path("") or "artifacts_dir" not in info.data:
            return path
        default = {"audit_log": "audit.jsonl", "prediction_log_dir": "predictions"}
        return info.data["artifacts_dir"] / default[str(info.field_name)]

    @field_validator("tracking")
    @classmethod
    def _server_dir(cls, tracking: TrackingSettings, info: ValidationInfo) -> TrackingSettings:
        if tracking.server_dir != Path("") or "artifacts_dir" not in info.data:
            return tracking
        server_dir = info.data["artifacts_dir"] / "tracking-server"
        return tracking.model_copy(update={"server_dir": server_dir})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: the keyword arguments (flat names or sections), the environment
        (the sections' flat names and ``MLFLOW_TRACKING_URI``, then pydantic-settings' own
        ``ICANS_<FIELD>`` of the top-level fields), the ``[settings]`` table of the TOML file
        ``_config_file``; the defaults come last. No dotenv file, no secrets directory."""
        assert isinstance(init_settings, InitSettingsSource)
        given = dict(init_settings.init_kwargs)
        config_file = given.pop("_config_file", None)
        return (
            InitSettingsSource(settings_cls, _nested(given)),
            _FlatEnvSource(settings_cls),
            env_settings,
            _SettingsTable(settings_cls, config_file),
        )

    def flat(self) -> dict[str, Any]:
        """Every setting under its flat name, ``ICANS_<NAME>`` in lower case: the top-level
        fields as they are, the sections' under :data:`FLAT_NAMES`."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        for section in _SECTIONS:
            del values[section]
        for flat, (section, name) in FLAT_NAMES.items():
            values[flat] = getattr(getattr(self, section), name)
        return values

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


_SECTIONS: dict[str, type[_Section]] = {
    "serve": ServeSettings,
    "cds": CdsSettings,
    "monitor": MonitorSettings,
    "tracking": TrackingSettings,
}
# The service's settings that had no prefix before there were sections (every other flat name
# is the section's name, then the field's: ``serve_port``, ``cds_warning_at``).
_UNPREFIXED = {"public_url", "api_token", "allow_unauthenticated_network", "model_poll_seconds"}
# flat name (before the sections; ICANS_<NAME> in the environment) -> (section, field)
FLAT_NAMES: dict[str, tuple[str, str]] = {
    (field if field in _UNPREFIXED else f"{section}_{field}"): (section, field)
    for section, model in _SECTIONS.items()
    for field in model.model_fields
}
_FLAT_NAME_OF: dict[tuple[str, ...], str] = {path: flat for flat, path in FLAT_NAMES.items()}


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat names into their sections (``{"serve_port": 1}`` -> ``{"serve": {"port": 1}}``);
    other keys, sections included, as given. A setting given both ways is an error."""
    out = {key: value for key, value in values.items() if key not in FLAT_NAMES}
    for flat, value in values.items():
        if flat in FLAT_NAMES:
            section, name = FLAT_NAMES[flat]
            table = out.get(section, {})
            if not isinstance(table, Mapping) or name in table:
                raise InvalidInputError(flat, value, f"one value, not also {section}.{name}")
            out[section] = {**table, name: value}  # a new dict: the input stays as it was
    return out


class _FlatEnvSource(EnvSettingsSource):
    """The sections' settings from ``ICANS_<FLAT_NAME>`` (``ICANS_SERVE_PORT`` ->
    ``serve.port``) and ``tracking_uri`` from MLflow's ``MLFLOW_TRACKING_URI``."""

    def __call__(self) -> dict[str, Any]:
        found = {
            flat: self.env_vars.get(self._apply_case_sensitive(self.env_prefix + flat))
            for flat in FLAT_NAMES
        }
        found["tracking_uri"] = self.env_vars.get(self._apply_case_sensitive("MLFLOW_TRACKING_URI"))
        return _nested({name: value for name, value in found.items() if value is not None})


class _SettingsTable(InitSettingsSource):
    """The ``[settings]`` table of a TOML file, flat names or sections' tables. (Not
    pydantic-settings' TomlConfigSettingsSource, which passes over a missing file in silence:
    a ``--config`` file that is not there is an error here.)"""

    def __init__(self, settings_cls: type[BaseSettings], config_file: Path | None) -> None:
        table: dict[str, Any] = {}
        if config_file is not None:
            name = str(config_file)
            try:
                table = tomllib.loads(Path(config_file).read_text()).get("settings", {})
            except FileNotFoundError as exc:
                raise InvalidInputError("config", name, "an existing TOML file") from exc
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInputError("config", name, f"valid TOML ({exc})") from exc
        super().__init__(settings_cls, _nested(table))


def _setting_name(loc: tuple[int | str, ...]) -> str:
    """Where a validation error is, as the setting's flat name (``serve_port``)."""
    path = tuple(str(part) for part in loc)
    return _FLAT_NAME_OF.get(path[:2]) or ".".join(path) or "settings"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < ``config_file``'s ``[settings]`` table < environment < ``overrides`` (flat
    names such as ``serve_port=3001``, as the command line passes them, or sections; ``None``:
    not given). A bad value raises :class:`InvalidInputError` naming the setting."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(_config_file=config_file, **given)
    except ValidationError as exc:
        err = exc.errors()[0]
        rule = err["msg"].removeprefix("Value error, ")  # pydantic's prefix to a validator's own
        raise InvalidInputError(_setting_name(err["loc"]), err.get("input"), rule) from exc
