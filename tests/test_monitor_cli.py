"""``icans monitor`` end to end without a server: the training reference logged with the
champion, windows, thresholds and exit codes (0 none crossed, 1 crossed, 2 bad input), each
version against its own reference, and a version without a reference."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from evaluation.held_out import MODEL
from icans.config import load_settings
from icans.errors import InvalidInputError, ModelNotFoundError
from monitoring import monitor as monitor_module
from monitoring.realised import realised
from monitoring.thresholds import Thresholds, judge
from monitoring.window import resolve_window
from registry.reference import MAX_ROWS, PREDICTOR, Reference, load_reference
from registry.store import use_experiment, use_tracking
from runtime.assessor import Assessment
from serving.prediction_log import PredictionLog

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
DAY = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def reference(champion) -> Reference:
    return load_reference(
        champion.settings.model_name, champion.result.model_version, champion.settings
    )


def write_log(directory, rows: pd.DataFrame, version: str, when: datetime, prefix: str) -> None:
    """Reference-form rows as the service logs them (through its PredictionLog)."""
    log = PredictionLog(directory, retention_days=10_000)
    names = [c[len(PREDICTOR) :] for c in rows.columns if c.startswith(PREDICTOR)]
    for k, row in enumerate(rows.itertuples(index=False)):
        values = dict(zip(rows.columns, row, strict=True))
        x = {n: values[PREDICTOR + n] for n in names}
        contributions = [{"feature": n, "value": None if np.isnan(v) else v} for n, v in x.items()]
        p = float(values["probability"])
        a = Assessment(p, (p / 2, min(1, p * 2)), 0.0, 0.0, contributions, [], [], [],
                       int(values["landmark_day"]))  # fmt: skip
        log.record(f"{prefix}{k}", "icans-risk", version, "json", a, now=when)


def test_every_training_run_logs_its_held_out_rows_as_the_reference(champion, reference):
    rows = reference.rows
    model = champion.result.model
    assert reference.predictors == list(model.feature_names_)
    assert {"landmark_day", "probability", "outcome"} <= set(rows.columns)
    assert len(rows) == min(MAX_ROWS, len(champion.result.test))  # every held-out row here
    assert set(rows["outcome"].unique()) == {0, 1}
    # the run's own held-out AUROC, computed independently by the training's evaluation
    r = realised(rows["outcome"], rows["probability"], bootstrap=0)
    assert r.auroc == pytest.approx(champion.result.evaluation.value(MODEL, "auroc"), abs=1e-9)
    # the same predictor row the endpoint logs: the model's transform of the raw layout
    x = model.transform(champion.result.test.raw[:5])
    # exact: the feature steps compute each row on its own (no BLAS), in this same process, and
    # Parquet stores float64 as is
    np.testing.assert_array_equal(rows[[PREDICTOR + n for n in reference.predictors]][:5], x)


def test_windows():
    today = date(2026, 3, 31)
    assert str(resolve_window(today=today)) == "2026-03-04..2026-03-31"  # 28 days
    assert str(resolve_window(days=7, until="2026-03-10")) == "2026-03-04..2026-03-10"
    assert resolve_window("2026-03-01", "2026-03-02").days == 2
    for kwargs, field in (
        ({"since": "2026-03-01", "days": 3}, "days"),
        ({"since": "March"}, "since"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "since"),
        ({"days": 0}, "days"),
    ):
        with pytest.raises(InvalidInputError) as info:
            resolve_window(**kwargs, today=today)
        assert info.value.field == field


def test_thresholds_come_from_the_settings_and_are_judged():
    t = Thresholds.from_settings(load_settings(monitor_max_risk_psi=0.1))
    assert (t.max_risk_psi, t.max_drifted_share, t.min_predictions) == (0.1, 0.25, 100)
    checks = {c.name: c for c in judge(t, 500, 0.3, 0.05, 0.7)}
    assert [n for n, c in checks.items() if c.crossed] == ["drifted_share", "estimated_auroc"]
    assert checks["auroc"].reason == "no outcomes file" and not checks["auroc"].judged
    few = judge(t, 20, 0.9, 0.9, 0.1)
    assert not any(c.crossed for c in few) and "20 predictions" in few[0].reason
    with pytest.raises(InvalidInputError) as info:
        load_settings(monitor_max_drifted_share=1.5)
    assert info.value.field == "monitor_max_drifted_share"


def test_reference_window_exits_0_doubled_crp_exits_1(champion, reference, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.settings.tracking_uri)
    version = champion.result.model_version
    logs = tmp_path / "log"
    same = reference.rows.sample(400, random_state=1)
    write_log(logs, same, version, DAY, "a")
    shifted = reference.rows.sample(400, random_state=2)
    shifted[PREDICTOR + "crp_mg_per_l"] *= 2
    write_log(logs, shifted, version, DAY + timedelta(days=1), "b")
    runner = CliRunner()
    args = ["monitor", "--log-dir", str(logs), "--until", "2026-01-05", "--days", "1"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "a" / "monitor.json").read_text())
    [v] = summary["versions"]
    assert summary["exit_code"] == 0 and summary["crossed"] == []
    assert v["model_version"] == version and v["predictions"] == 400
    assert v["drift"]["drifted"] == [] and v["drift"]["tested"] > 30
    assert v["predicted_risk"]["psi"] < 0.05
    assert "SYNTHETIC" in (tmp_path / "a" / "monitor.html").read_text()

    args = ["monitor", "--log-dir", str(logs), "--since", "2026-01-06", "--until", "2026-01-06"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--max-drifted-share", "0"])
    assert result.exit_code == 1, result.output
    summary = json.loads((tmp_path / "b" / "monitor.json").read_text())
    [v] = summary["versions"]
    assert "crp_mg_per_l" in v["drift"]["drifted"]
    assert "car_target" not in v["drift"]["drifted"]
    assert [c["name"] for c in summary["crossed"]] == ["drifted_share"]
    assert summary["thresholds"]["max_drifted_share"] == 0
    assert "THRESHOLD CROSSED" in result.output and "share of inputs drifted" in result.output
    evidently_page = (tmp_path / "b" / v["drift"]["report"]).read_text()
    assert len(evidently_page) > 100_000 and "Decision support only" in evidently_page

    bad = tmp_path / "outcomes.csv"
    bad.write_text("request_id,outcome\na0,1\na1,yes\n")
    result = runner.invoke(app, [*args, "--outcomes", str(bad), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    assert "outcomes.csv line 3: outcome='yes' is invalid: expected 0 or 1" in result.output
    assert not (tmp_path / "c").exists()  # nothing written


def test_bad_input_exits_2_with_one_line(champion, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.settings.tracking_uri)
    runner = CliRunner()
    logs = tmp_path / "log"
    logs.mkdir()
    for args, text in (
        (["--since", "2026-01-01", "--days", "3"], "days=3 is invalid"),
        (["--since", "2026-01-01", "--until", "2026-01-02"], "none found"),
        (["--days", "2", "--max-risk-psi", "-1"], "monitor_max_risk_psi"),
    ):
        result = runner.invoke(
            app, ["monitor", "--log-dir", str(logs), *args, "--out", str(tmp_path)]
        )
        assert result.exit_code == 2, result.output
        assert text in result.output and result.output.count("error:") == 1


def test_each_version_is_compared_with_its_own_reference(reference, tmp_path, monkeypatch):
    """Version 2's reference has doubled CRP; its traffic too: no drift in either version,
    where one reference for both would show it."""
    # a dozen predictors: what is checked is which reference each version is compared with, not
    # the test of every column (Evidently renders two figures per column tested)
    names = [c for c in reference.rows.columns if c.startswith(PREDICTOR)]
    keep = {*names[:12], PREDICTOR + "crp_mg_per_l"}
    rows = reference.rows[[c for c in reference.rows.columns if c in keep or c not in names]]
    doubled = rows.copy()
    doubled[PREDICTOR + "crp_mg_per_l"] *= 2
    references = {"1": rows, "2": doubled}
    asked = []

    def fake(name, version, settings):
        asked.append(version)
        return Reference(name, version, f"run-{version}", references[version], {})

    monkeypatch.setattr(monitor_module, "load_reference", fake)
    logs = tmp_path / "log"
    write_log(logs, rows.sample(300, random_state=3), "1", DAY, "x")
    write_log(logs, doubled.sample(300, random_state=4), "2", DAY, "y")
    window = resolve_window("2026-01-05", "2026-01-05")
    result = monitor_module.run_monitor(logs, window, tmp_path / "out", load_settings())
    assert asked == ["1", "2"]
    assert [(v.version, v.predictions) for v in result.versions] == [("1", 300), ("2", 300)]
    assert all(not v.drift.drifted for v in result.versions)
    only = monitor_module.run_monitor(
        logs, window, tmp_path / "one", load_settings(), model_version="2"
    )
    assert [v.version for v in only.versions] == ["2"]
    with pytest.raises(InvalidInputError, match="model_version='7'"):
        monitor_module.run_monitor(logs, window, tmp_path / "x", load_settings(), model_version="7")


def test_a_version_without_a_reference_is_named_and_retraining_suggested(tmp_path):
    settings = load_settings(tracking_uri=f"sqlite:///{tmp_path}/m.db", artifacts_dir=tmp_path)
    client = use_tracking(settings)
    use_experiment("old", settings, client)
    with mlflow.start_run() as run:  # a run from before references were logged
        mlflow.log_dict({"synthetic_data": True}, "model_card.json")
    client.create_registered_model(settings.model_name)
    source = f"runs:/{run.info.run_id}/model"
    mv = client.create_model_version(settings.model_name, source, run_id=run.info.run_id)
    with pytest.raises(ModelNotFoundError) as info:
        load_reference(settings.model_name, str(mv.version), settings)
    message = str(info.value)
    assert f"icans-risk version {mv.version} has no monitoring reference" in message
    assert "Retrain it" in message
