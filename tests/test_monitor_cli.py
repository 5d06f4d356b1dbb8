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
from runtime.assessor import Assessment, HorizonRisk
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


def test_every_horizon_is_monitored_with_its_own_outcomes(tmp_path, monkeypatch):
    """The six predictions of test_monitor_outcomes (landmarks, risks and outcomes file worked
    out by hand there), logged by the service's PredictionLog with every horizon, monitored
    end to end against a hand-made reference of a model of three horizons (two inputs and the
    window predictor, which is not monitored: it is the day again)."""
    from test_monitor_outcomes import HAND_LANDMARKS, HAND_OUTCOMES

    rng = np.random.default_rng(0)
    n = 40
    ref_rows = pd.DataFrame(
        {
            "landmark_day": rng.integers(0, 10, n),
            "probability": rng.uniform(0.2, 0.6, n),
            "outcome": np.arange(n) % 2,
            "probability.72h": rng.uniform(0.0, 0.2, n),
            "outcome.72h": (np.arange(n) % 4 == 0).astype(int),
            "probability.7d": rng.uniform(0.1, 0.3, n),
            "outcome.7d": (np.arange(n) % 3 == 0).astype(int),
            PREDICTOR + "age_years": rng.uniform(30, 80, n),
            PREDICTOR + "crp_mg_per_l": rng.uniform(1, 100, n),
            PREDICTOR + "horizon_days": 28 - rng.integers(0, 10, n).astype(float),
        }
    )
    monkeypatch.setattr(
        monitor_module,
        "load_reference",
        lambda name, version, settings: Reference(name, version, "run-h", ref_rows, {}),
    )
    risks = {
        "72h": [0.30, 0.10, 0.20, 0.05, 0.40, 0.15],
        "7d": [0.35, 0.15, 0.30, 0.10, 0.45, 0.20],
        "day28": [0.50, 0.30, 0.45, 0.20, 0.50, 0.60],
    }
    log = PredictionLog(tmp_path / "log", retention_days=10_000)
    when = datetime(2026, 3, 1, 10, tzinfo=UTC)
    for k, day in enumerate(HAND_LANDMARKS):
        contributions = [
            {"feature": "age_years", "value": 40.0 + k},
            {"feature": "crp_mg_per_l", "value": 10.0 * k},
            {"feature": "horizon_days", "value": 28.0 - day},
        ]
        horizons = [HorizonRisk(h, h, 28, risks[h][k], None, 0.0, 0.0, [], [], []) for h in risks]
        p = risks["day28"][k]
        a = Assessment(p, None, 0.0, 0.0, contributions, [], [], [], day, horizons=horizons)
        log.record(f"r{k + 1}", "icans-risk", "3", "json", a, now=when + timedelta(minutes=k))
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(HAND_OUTCOMES)
    out = tmp_path / "m"
    args = ["monitor", "--log-dir", str(tmp_path / "log"), "--since", "2026-03-01",
            "--until", "2026-03-01", "--outcomes", str(outcomes), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "72h: PSI of risk" in result.output and "outcomes known 5" in result.output
    summary = json.loads((tmp_path / "m" / "monitor.json").read_text())
    [v] = summary["versions"]
    assert list(v["horizons"]) == ["72h", "7d", "day28"]
    short, week, day28 = (v["horizons"][h] for h in ("72h", "7d", "day28"))
    assert short["outcomes"]["known"] == 5 and short["outcomes"]["awaiting"] == 1
    assert short["outcomes"]["realised"]["events"] == 1
    assert short["outcomes"]["realised"]["auroc"] == pytest.approx(0.75, abs=1e-12)
    assert week["outcomes"]["known"] == 2 and week["outcomes"]["realised"]["auroc"] is None
    assert day28["outcomes"]["realised"]["auroc"] == pytest.approx(1.0, abs=1e-12)
    assert short["reference"]["rows"] == n and day28["predicted_risk"]["psi"] > 0.25
    # the day-28 figures of before horizons: the same outcomes (2 known, 1 event)
    assert v["outcomes"]["joined"] == 6 and v["outcomes"]["realised"]["n"] == 2
    assert [c["column"] for c in v["drift"]["columns"]] == ["age_years", "crp_mg_per_l"]
    page = (tmp_path / "m" / "monitor.html").read_text()
    assert "within the next 72 hours" in page and "5 known, 1 awaiting; 1 events" in page
