"""The settings (``icans.config``): every name a deployment already uses still reaches its
setting, whichever section it now lives in; precedence defaults < TOML < environment <
keywords; derived defaults; errors naming the setting. Expectations are written out here,
not read from the module's own name table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from icans.config import Settings, load_settings
from icans.errors import InvalidInputError
from serving.launch import server_environment

# the settings before they had sections: every one of these names keeps working
OLD_FLAT_NAMES = {
    "artifacts_dir",
    "tracking_uri",
    "model_name",
    "model_alias",
    "model_uri",
    "audit_log",
    "api_token",
    "serve_host",
    "serve_port",
    "public_url",
    "cds_clients",
    "cds_warning_at",
    "cds_critical_at",
    "cds_page_ttl_s",
    "prediction_log_dir",
    "prediction_log_retention_days",
    "monitor_max_drifted_share",
    "monitor_max_risk_psi",
    "monitor_min_estimated_auroc",
    "monitor_min_auroc",
    "monitor_max_calibration_error",
    "monitor_min_predictions",
    "monitor_min_events",
    "stale_run_hours",
    "model_poll_seconds",
    "allow_unauthenticated_network",
    "tracking_server_port",
    "tracking_db_port",
    "tracking_server_dir",
}

# settings added since, by flat name
ADDED_FLAT_NAMES = {
    "cluster",
    "cds_state_uri",
    "allow_unverified_models",
    "serve_stop_timeout_s",
    "cds_thresholds",
    "cds_indicator_horizon",
}

# environment variable, where it lands, the value set, the value expected there
ENVIRONMENT = [
    ("ICANS_SERVE_HOST", "serve.host", "0.0.0.0", "0.0.0.0"),
    ("ICANS_SERVE_PORT", "serve.port", "4001", 4001),
    (
        "ICANS_PUBLIC_URL",
        "serve.public_url",
        "https://risk.example.org/",
        "https://risk.example.org",
    ),
    ("ICANS_API_TOKEN", "serve.api_token", "a-token-0123456789", "a-token-0123456789"),
    ("ICANS_ALLOW_UNAUTHENTICATED_NETWORK", "serve.allow_unauthenticated_network", "true", True),
    ("ICANS_MODEL_POLL_SECONDS", "serve.model_poll_seconds", "0", 0.0),
    ("ICANS_SERVE_STOP_TIMEOUT_S", "serve.stop_timeout_s", "2.5", 2.5),
    (
        "ICANS_CDS_CLIENTS",
        "cds.clients",
        "/etc/icans/clients.toml",
        Path("/etc/icans/clients.toml"),
    ),
    ("ICANS_CDS_WARNING_AT", "cds.warning_at", "0.05", 0.05),
    ("ICANS_CDS_CRITICAL_AT", "cds.critical_at", "0.5", 0.5),
    ("ICANS_CDS_PAGE_TTL_S", "cds.page_ttl_s", "600", 600),
    ("ICANS_CDS_THRESHOLDS", "cds.thresholds", '{"7d": [0.1, 0.3]}', {"7d": (0.1, 0.3)}),
    ("ICANS_MONITOR_MAX_DRIFTED_SHARE", "monitor.max_drifted_share", "0.4", 0.4),
    ("ICANS_MONITOR_MAX_RISK_PSI", "monitor.max_risk_psi", "0.3", 0.3),
    ("ICANS_MONITOR_MIN_ESTIMATED_AUROC", "monitor.min_estimated_auroc", "0.6", 0.6),
    ("ICANS_MONITOR_MIN_AUROC", "monitor.min_auroc", "0.7", 0.7),
    ("ICANS_MONITOR_MAX_CALIBRATION_ERROR", "monitor.max_calibration_error", "0.1", 0.1),
    ("ICANS_MONITOR_MIN_PREDICTIONS", "monitor.min_predictions", "50", 50),
    ("ICANS_MONITOR_MIN_EVENTS", "monitor.min_events", "20", 20),
    ("ICANS_TRACKING_SERVER_PORT", "tracking.server_port", "5055", 5055),
    ("ICANS_TRACKING_DB_PORT", "tracking.db_port", "5444", 5444),
    ("ICANS_TRACKING_SERVER_DIR", "tracking.server_dir", "/srv/mlflow", Path("/srv/mlflow")),
    ("ICANS_ARTIFACTS_DIR", "artifacts_dir", "/data/icans", Path("/data/icans")),
    ("ICANS_MODEL_NAME", "model_name", "other-risk", "other-risk"),
    ("ICANS_MODEL_ALIAS", "model_alias", "candidate", "candidate"),
    ("ICANS_MODEL_URI", "model_uri", "models:/icans-risk/7", "models:/icans-risk/7"),
    ("ICANS_AUDIT_LOG", "audit_log", "/var/log/icans.jsonl", Path("/var/log/icans.jsonl")),
    ("ICANS_PREDICTION_LOG_DIR", "prediction_log_dir", "/var/icans", Path("/var/icans")),
    ("ICANS_PREDICTION_LOG_RETENTION_DAYS", "prediction_log_retention_days", "30", 30),
    ("ICANS_STALE_RUN_HOURS", "stale_run_hours", "2.5", 2.5),
    (
        "ICANS_TRACKING_URI",
        "tracking_uri",
        "http://mlflow.example:5000",
        "http://mlflow.example:5000",
    ),
    (
        "MLFLOW_TRACKING_URI",
        "tracking_uri",
        "http://mlflow.example:5000",
        "http://mlflow.example:5000",
    ),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No setting from the environment the tests run in."""
    for name in list(os.environ):
        if name.upper().startswith("ICANS_") or name.upper() == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)


def at(settings: Settings, dotted: str):
    value = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize(("variable", "dotted", "given", "expected"), ENVIRONMENT)
def test_each_environment_variable_reaches_its_setting(
    monkeypatch, variable, dotted, given, expected
):
    assert at(load_settings(), dotted) != expected
    monkeypatch.setenv(variable, given)
    assert at(load_settings(), dotted) == expected


def test_every_old_name_is_kept_and_the_workers_get_each_one(monkeypatch, tmp_path):
    settings = load_settings(
        artifacts_dir=tmp_path,
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        serve_port=4100,
        cds_warning_at=0.05,
        api_token="a-token-0123456789",
        monitor_min_events=3,
        tracking_db_port=5499,
        cds_thresholds={"72h": [0.05, 0.15]},
        cds_indicator_horizon="72h",
    )
    assert set(settings.flat()) == OLD_FLAT_NAMES | ADDED_FLAT_NAMES
    env = server_environment(settings)
    assert env["ICANS_SERVE_PORT"] == "4100"
    assert env["ICANS_PUBLIC_URL"] == "http://127.0.0.1:4100"
    assert env["ICANS_CDS_WARNING_AT"] == "0.05"
    assert env["ICANS_API_TOKEN"] == "a-token-0123456789"
    assert env["ICANS_MONITOR_MIN_EVENTS"] == "3"
    assert env["ICANS_TRACKING_DB_PORT"] == "5499"
    assert env["ICANS_CDS_THRESHOLDS"] == '{"72h": [0.05, 0.15]}'  # JSON, as it is read
    assert env["ICANS_CDS_INDICATOR_HORIZON"] == "72h"
    assert env["ICANS_TRACKING_SERVER_DIR"] == str(tmp_path / "tracking-server")
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/mlflow.db"
    assert "ICANS_TRACKING_URI" not in env and "ICANS_CDS_CLIENTS" not in env  # unset: None
    assert not {"ICANS_SERVE", "ICANS_CDS", "ICANS_MONITOR", "ICANS_TRACKING"} & env.keys()
    # a worker started with that environment reads the same settings
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings


def test_toml_takes_the_old_flat_keys_and_section_tables(tmp_path):
    config = tmp_path / "icans.toml"
    config.write_text(
        "[settings]\n"
        'model_name = "centre-risk"\n'
        "serve_port = 4200\n"
        "cds_critical_at = 0.4\n"
        "monitor_max_risk_psi = 0.15\n"
        "[settings.monitor]\n"
        "min_auroc = 0.65\n"
        "[settings.tracking]\n"
        "db_port = 5499\n"
    )
    settings = load_settings(config)
    assert settings.model_name == "centre-risk"
    assert settings.model_uri == "models:/centre-risk@champion"
    assert settings.serve.port == 4200
    assert settings.serve.public_url == "http://127.0.0.1:4200"
    assert settings.cds.critical_at == 0.4
    assert (settings.monitor.max_risk_psi, settings.monitor.min_auroc) == (0.15, 0.65)
    assert settings.tracking.db_port == 5499


def test_toml_without_a_settings_table_gives_the_defaults(tmp_path):
    config = tmp_path / "train.toml"
    config.write_text("[train]\nseed = 7\n")
    assert load_settings(config) == load_settings()


def test_precedence_defaults_toml_environment_keywords(monkeypatch, tmp_path):
    config = tmp_path / "icans.toml"
    config.write_text(
        '[settings]\nserve_port = 4300\nserve_host = "127.0.0.2"\nmodel_name = "from-toml"\n'
        "[settings.cds]\nwarning_at = 0.2\ncritical_at = 0.3\n"
    )
    assert load_settings().serve.port == 3000
    from_toml = load_settings(config)
    assert (from_toml.serve.port, from_toml.model_name) == (4300, "from-toml")

    monkeypatch.setenv("ICANS_SERVE_PORT", "4400")
    monkeypatch.setenv("ICANS_MODEL_NAME", "from-env")
    monkeypatch.setenv("ICANS_CDS_CRITICAL_AT", "0.6")
    from_env = load_settings(config)
    assert (from_env.serve.port, from_env.model_name) == (4400, "from-env")
    assert from_env.serve.host == "127.0.0.2"  # one section filled from two sources
    assert (from_env.cds.warning_at, from_env.cds.critical_at) == (0.2, 0.6)

    given = load_settings(config, serve_port=4500, model_name="given", serve_host=None)
    assert (given.serve.port, given.model_name) == (4500, "given")
    assert given.serve.host == "127.0.0.2"  # None: not given


def test_mlflow_tracking_uri_wins_over_icans_tracking_uri(monkeypatch):
    monkeypatch.setenv("ICANS_TRACKING_URI", "sqlite:///icans.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert load_settings().tracking_uri == "http://mlflow.example:5000"
    assert load_settings(tracking_uri="sqlite:///given.db").tracking_uri == "sqlite:///given.db"


def test_an_empty_variable_is_not_a_value(monkeypatch):
    monkeypatch.setenv("ICANS_SERVE_PORT", "")
    monkeypatch.setenv("ICANS_MODEL_URI", "")
    settings = load_settings()
    assert (settings.serve.port, settings.model_uri) == (3000, "models:/icans-risk@champion")


def test_derived_defaults():
    settings = load_settings(
        artifacts_dir=Path("/data/icans"),
        model_name="m",
        model_alias="a",
        serve_host="0.0.0.0",
        serve_port=8080,
    )
    assert settings.model_uri == "models:/m@a"
    assert settings.audit_log == Path("/data/icans/audit.jsonl")
    assert settings.prediction_log_dir == Path("/data/icans/predictions")
    assert settings.tracking.server_dir == Path("/data/icans/tracking-server")
    assert settings.serve.public_url == "http://0.0.0.0:8080"
    assert settings.cohort_dir == Path("/data/icans/cohort")

    given = load_settings(
        artifacts_dir=Path("/data/icans"),
        model_uri="models:/m/3",
        audit_log=Path("/logs/audit.jsonl"),
        prediction_log_dir=Path("/logs/predictions"),
        tracking_server_dir=Path("/srv/mlflow"),
        public_url="https://risk.example.org/",
    )
    assert given.model_uri == "models:/m/3"
    assert given.audit_log == Path("/logs/audit.jsonl")
    assert given.prediction_log_dir == Path("/logs/predictions")
    assert given.tracking.server_dir == Path("/srv/mlflow")
    assert given.serve.public_url == "https://risk.example.org"


def test_frozen_and_copied_with_model_copy():
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.model_name = "x"
    with pytest.raises(ValidationError):
        settings.serve.port = 1
    copy = settings.model_copy(
        update={"model_alias": "candidate", "serve": settings.serve.model_copy(update={"port": 1})}
    )
    assert (copy.model_alias, copy.serve.port) == ("candidate", 1)
    assert copy.model_uri == "models:/icans-risk@champion"  # derived once, kept by a copy
    assert settings.serve.port == 3000


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"serve_port": 0}, "serve_port"),
        ({"serve_port": "http"}, "serve_port"),
        ({"cds_page_ttl_s": 5}, "cds_page_ttl_s"),
        ({"monitor_max_drifted_share": 1.5}, "monitor_max_drifted_share"),
        ({"tracking_server_port": 70000}, "tracking_server_port"),
        ({"prediction_log_retention_days": 0}, "prediction_log_retention_days"),
        ({"cds_warning_at": 0.3, "cds_critical_at": 0.2}, "cds_critical_at"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"serve_port": 4000, "serve": {"port": 4001}}, "serve_port"),
    ],
)
def test_a_bad_keyword_names_the_setting(given, field):
    with pytest.raises(InvalidInputError) as info:
        load_settings(**given)
    assert info.value.field == field


def test_a_bad_environment_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("ICANS_MONITOR_MIN_AUROC", "high")
    with pytest.raises(InvalidInputError) as info:
        load_settings()
    assert (info.value.field, info.value.value) == ("monitor_min_auroc", "high")


def test_the_card_thresholds_are_checked_across_sources(monkeypatch):
    monkeypatch.setenv("ICANS_CDS_WARNING_AT", "0.3")  # above the default critical 0.25
    with pytest.raises(InvalidInputError, match="cds_warning_at") as info:
        load_settings()
    assert info.value.field == "cds_critical_at"


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        ("[settings.cds]\npage_ttl_s = 5\n", "cds_page_ttl_s", "greater than or equal to 60"),
        ("[settings]\nmonitor_min_events = 0\n", "monitor_min_events", "greater than or equal"),
        ("[settings.serve]\nport_number = 1\n", "serve.port_number", "Extra inputs"),
        ("[settings]\nserve_port = 1\n[settings.serve]\nport = 2\n", "serve_port", "not also"),
        ("[settings\n", "config", "valid TOML"),
    ],
)
def test_a_bad_toml_file_names_the_setting(tmp_path, text, field, rule):
    config = tmp_path / "icans.toml"
    config.write_text(text)
    with pytest.raises(InvalidInputError, match=rule) as info:
        load_settings(config)
    assert info.value.field == field


def test_a_missing_toml_file_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match="an existing TOML file") as info:
        load_settings(tmp_path / "missing.toml")
    assert info.value.field == "config"


def test_the_card_horizon_and_its_thresholds_from_toml_and_the_environment(monkeypatch, tmp_path):
    assert (load_settings().cds.indicator_horizon, load_settings().cds.thresholds) == ("day28", {})
    assert load_settings().cds.indicator_thresholds() == (0.10, 0.25)  # today's day-28 pair
    config = tmp_path / "icans.toml"
    config.write_text(
        '[settings.cds]\nindicator_horizon = "72h"\n'
        "[settings.cds.thresholds]\n72h = [0.04, 0.12]\n7d = [0.08, 0.2]\n"
    )
    cds = load_settings(config).cds
    assert cds.indicator_horizon == "72h" and cds.indicator_thresholds() == (0.04, 0.12)
    assert cds.thresholds == {"72h": (0.04, 0.12), "7d": (0.08, 0.2)}
    monkeypatch.setenv("ICANS_CDS_INDICATOR_HORIZON", "7d")
    assert load_settings(config).cds.indicator_thresholds() == (0.08, 0.2)  # env over TOML
    monkeypatch.setenv("ICANS_CDS_THRESHOLDS", '{"7d": [0.06, 0.3]}')
    assert load_settings(config).cds.indicator_thresholds() == (0.06, 0.3)


@pytest.mark.parametrize(
    ("given", "field", "value", "rule"),
    [
        ({"cds_indicator_horizon": "24h"}, "cds_indicator_horizon", "24h", "one of 72h, 7d, day28"),
        (
            {"cds_indicator_horizon": "72h"},
            "cds_indicator_horizon",
            "72h",
            "cds_thresholds has none for 72h",
        ),
        (
            {"cds_thresholds": {"14d": [0.1, 0.2]}},
            "cds_thresholds",
            {"14d": [0.1, 0.2]},
            "horizon '14d': one of 72h, 7d",
        ),
        (
            {"cds_thresholds": {"day28": [0.1, 0.2]}},
            "cds_thresholds",
            {"day28": [0.1, 0.2]},
            "day 28's thresholds are cds_warning_at and cds_critical_at",
        ),
        (
            {"cds_thresholds": {"72h": [0.2, 0.1]}},
            "cds_thresholds",
            {"72h": [0.2, 0.1]},
            "0 < warning_at < critical_at < 1, not [0.2, 0.1]",
        ),
        (
            {"cds_thresholds": {"72h": [0.1, 0.1]}},
            "cds_thresholds",
            {"72h": [0.1, 0.1]},
            "0 < warning_at < critical_at < 1",
        ),
        (
            {"cds_thresholds": {"7d": [0.0, 0.5]}},
            "cds_thresholds",
            {"7d": [0.0, 0.5]},
            "0 < warning_at < critical_at < 1",
        ),
        (
            {"cds_thresholds": {"7d": [0.5, 1.5]}},
            "cds_thresholds",
            {"7d": [0.5, 1.5]},
            "0 < warning_at < critical_at < 1",
        ),
        (
            {"cds_thresholds": {"7d": [0.5]}},
            "cds_thresholds",
            {"7d": [0.5]},
            "a pair [warning_at, critical_at]",
        ),
        ({"cds_thresholds": "72h=0.1"}, "cds_thresholds", "72h=0.1", "a JSON object"),
    ],
)
def test_a_bad_card_horizon_or_threshold_names_setting_value_and_rule(given, field, value, rule):
    with pytest.raises(InvalidInputError) as info:
        load_settings(**given)
    assert (info.value.field, info.value.value) == (field, value)
    assert rule in info.value.expected
    assert "Value error" not in str(info.value)


def test_icans_serve_refuses_bad_card_thresholds_with_exit_code_2(monkeypatch):
    """Before anything starts: the settings' own check, one line, exit code 2."""
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("ICANS_CDS_THRESHOLDS", '{"72h": [0.3, 0.2]}')
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "cds_thresholds=" in result.output and "warning_at < critical_at" in result.output
    assert result.output.count("\n") == 1
