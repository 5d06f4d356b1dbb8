"""End to end: train on a small cohort with a real (temporary) sqlite MLflow store."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from support import FAST, SMALL
from typer.testing import CliRunner

from cli.main import app
from cohort.reader import read_cohort
from features.landmarks import build_landmark_dataset
from icans.errors import InvalidCohortError
from registry.store import use_tracking
from training.config import load_train_config
from training.fit import fit_and_evaluate
from training.train import train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def cohort(champion):
    return champion.cohort


@pytest.fixture(scope="module")
def settings(champion):
    return champion.settings


@pytest.fixture(scope="module")
def trained(champion):
    return champion.result


def _client(settings):
    return use_tracking(settings)


def test_run_records_parameters_metrics_artefacts_and_model(trained, settings):
    client = _client(settings)
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["synthetic_data"] == "true"
    assert len(run.data.tags["cohort_fingerprint"]) == 16
    assert run.data.params["seed"] == str(FAST.seed)
    for key in (
        "model.overall.auroc",
        "true_risk.overall.auroc",
        "logistic.overall.auroc",
        "m_easix.overall.auroc",
        "model.L_7.calibration_slope",
        "model.overall.auroc_gap_to_true_risk",
    ):
        assert key in run.data.metrics, key
    artefacts = {a.path for a in client.list_artifacts(trained.run_id, "evaluation")}
    artefacts |= {a.path for a in client.list_artifacts(trained.run_id, "evaluation/plots")}
    for name in (
        "evaluation/metrics.csv",
        "evaluation/subgroups.csv",
        "evaluation/learning_curve.csv",
        "evaluation/plots/calibration.png",
        "evaluation/plots/roc_pr.png",
        "evaluation/plots/decision_curve.png",
        "evaluation/plots/learning_curve.png",
    ):
        assert name in artefacts, name
    top = {a.path for a in client.list_artifacts(trained.run_id)}
    assert "model_card.json" in top


def test_champion_loads_and_predicts_exactly_what_was_trained(trained, settings):
    assert trained.promoted, trained.gate.summary()
    _client(settings)
    loaded = mlflow.sklearn.load_model(settings.model_uri)
    # exact: the unpickled model holds the same fitted arrays and predicts with the same
    # elementwise code and xgboost's per-row float32 sums in tree order (its threads split the
    # rows, not a sum; no BLAS), in the same process
    np.testing.assert_array_equal(
        loaded.predict_proba(trained.test.raw), trained.model.predict_proba(trained.test.raw)
    )
    version = _client(settings).get_model_version_by_alias(settings.model_name, "champion")
    assert str(version.version) == trained.model_version
    assert version.tags["gate"] == "passed"


def test_model_on_shuffled_labels_is_registered_but_not_promoted(
    trained, small_cohort, settings, tmp_path
):
    bad = tmp_path / "shuffled"
    shutil.copytree(small_cohort, bad)
    outcomes = pd.read_parquet(bad / "outcomes.parquet")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(outcomes))
    for column in outcomes.columns.drop("patient_id"):
        outcomes[column] = outcomes[column].to_numpy()[order]
    outcomes.to_parquet(bad / "outcomes.parquet")

    result = train(bad, SMALL, settings)  # open gates but the true risk's
    assert not result.promoted
    # Shuffling the outcomes breaks the link to the generator's true risk, so that gate cannot
    # be checked and refuses; the other gates (near-chance AUROC vs m-EASIX, calibration) may
    # or may not fail by chance and are not asserted here.
    assert "true risk" in result.gate.summary()
    client = _client(settings)
    version = client.get_model_version(settings.model_name, result.model_version)
    assert version.tags["gate"] == "rejected"
    assert "true risk" in version.tags["gate_reasons"]
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == trained.model_version  # the alias did not move


def test_failed_run_is_marked_failed_and_registers_nothing(trained, cohort, settings, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(cohort, broken)
    outcomes = pd.read_parquet(broken / "outcomes.parquet")
    outcomes.loc[outcomes.index[:3], "event_day"] = 99  # outside 0-28: invalid cohort
    outcomes.to_parquet(broken / "outcomes.parquet")
    client = _client(settings)
    versions_before = len(client.search_model_versions(f"name='{settings.model_name}'"))

    with pytest.raises(InvalidCohortError, match="event_day"):
        train(broken, FAST, settings)

    experiment = client.get_experiment_by_name(FAST.experiment)
    last = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    assert last.info.status == "FAILED"
    assert len(client.search_model_versions(f"name='{settings.model_name}'")) == versions_before
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == trained.model_version


def test_same_cohort_config_and_seed_give_the_same_metrics(small_cohort):
    # every step of a run (search, additive part, refits, baselines, bootstrap metrics) on a
    # tiny model: repeating itself does not depend on the model's size
    config = SMALL.model_copy(update={"bootstrap_samples": 30})
    ds = build_landmark_dataset(read_cohort(small_cohort).tables, config.landmarks)
    first = fit_and_evaluate(ds, config).evaluation.metrics
    second = fit_and_evaluate(ds, config).evaluation.metrics
    # rtol=1e-12 (pandas' default for floats is 1e-5): each fit goes through BLAS and LAPACK
    # (the additive part's Newton steps, the baselines' lbfgs) and xgboost's threads, which
    # need not sum in the same order twice (atol: metrics at 0); a different model would
    # differ by far more
    pd.testing.assert_frame_equal(first, second, check_exact=False, rtol=1e-12, atol=1e-15)


def test_cli_train_then_evaluate(small_cohort, tmp_path, monkeypatch):
    store = tmp_path / "store"
    store.mkdir()
    config = tmp_path / "train.toml"
    config.write_text(  # as tests.support.SMALL: a model that is registered, not a good one
        "[train]\ncv_folds = 2\nbootstrap_samples = 0\nlearning_curve_sizes = [13]\n"
        "learning_curve_repeats = 1\nuncertainty_refits = 2\nlogistic_c_grid = [0.1]\n"
        'n_threads = 1\ninput_sets = []\nhorizons = ["day28"]\n'
        "landmarks = [0, 1, 3, 5, 7, 10, 14]\ntraining_day_stride = 1\n"
        "[train.search]\nmax_depth = [2]\nlearning_rate = [0.3]\nmax_trees = 40\n"
        "early_stopping_rounds = 10\nadditive_alone = false\n"
        "[train.gates]\nmax_auroc_gap_to_true_risk = 1.0\nmin_test_events = 1\n"
        "calibration_slope_min = 0.0\ncalibration_slope_max = 100.0\nmust_beat = []\n"
        "non_inferior_to = []\ncalibration_intercept_max_abs = 100.0\n"
    )
    assert load_train_config(config) == SMALL  # the file says what SMALL says
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--cohort", str(small_cohort), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "promoted to @champion" in result.output
    assert "AUROC true risk" in result.output and "SYNTHETIC" in result.output
    # outside a terminal: a timed line per stage, the model's own sub-steps among them
    lines = re.findall(r"^\[ *(\d+\.\d) s\] (.+)$", result.stderr, re.M)
    texts = [text for _, text in lines]
    assert texts[0] == "reading the cohort" and texts[-1] == "done"
    assert any(
        t.startswith("  tuning: fold 1 of 2, trees candidate 1 of 1 (learning_rate=0.3")
        for t in texts
    ), result.stderr
    assert "  uncertainty refit 2 of 2" in texts
    assert texts.index("  uncertainty refit 2 of 2") < texts.index("baselines")
    assert [float(t) for t, _ in lines] == sorted(float(t) for t, _ in lines)
    result = runner.invoke(
        app, ["evaluate", "--cohort", str(small_cohort), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert "icans-risk v1" in result.output


def test_cli_reports_missing_model_and_bad_config_in_one_line(cohort, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--cohort", str(cohort)])
    assert result.exit_code == 2
    assert "icans train" in result.output  # says what to run
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\ncv_folds = 1\n")
    result = runner.invoke(app, ["train", "--cohort", str(cohort), "--config", str(bad)])
    assert result.exit_code == 2
    assert "train.cv_folds" in result.output


def test_run_logs_the_reviewers_report_and_its_figures(trained, settings, tmp_path):
    client = _client(settings)
    figures = {a.path for a in client.list_artifacts(trained.run_id, "report/figures")}
    for name in (
        "roc-and-precision-recall-curves.png",
        "calibration-by-decile.png",
        "decision-curve.png",
        "learning-curve.png",
        "mean-absolute-shap-value-per-predictor.png",
        "shap-beeswarm.png",
        "shap-dependence-plots.png",
    ):
        assert f"report/figures/{name}" in figures, (name, figures)
    page = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="report/model_report.html", dst_path=str(tmp_path)
    )
    html = Path(page).read_text(encoding="utf-8")
    assert "Global explanations (SHAP)" in html and "TRIPOD+AI checklist" in html
    assert trained.run_id in html
    assert "held-out patients" in html
    assert "course series blanked" in html  # the training copies are declared
    assert "refits on patient-level bootstrap resamples" in html


def test_a_failure_after_registration_leaves_no_version(
    trained, small_cohort, settings, monkeypatch
):
    """The report names the version, so it is built after the version exists: if it fails, the
    version is deleted again and the run is FAILED (no half-registered model)."""
    import training.train as train_module

    def broken_report(*args, **kwargs):
        raise RuntimeError("report failed")

    monkeypatch.setattr(train_module, "build_model_report", broken_report)
    client = _client(settings)
    versions_before = len(client.search_model_versions(f"name='{settings.model_name}'"))
    with pytest.raises(RuntimeError, match="report failed"):
        train(small_cohort, SMALL, settings)  # open gates: it would be promoted
    assert len(client.search_model_versions(f"name='{settings.model_name}'")) == versions_before
    experiment = client.get_experiment_by_name(FAST.experiment)
    last = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    assert last.info.status == "FAILED"
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == trained.model_version


# Moved from test_patient_report.py, whose page tests use the small champion: an in-process
# service of one store must not be running while the session champion trains into another (its
# roll-out poller points MLflow's tracking URI at its own store).
def test_intervals_are_seeded_and_contain_most_point_estimates(champion):
    model = champion.result.model
    raw = champion.result.test.raw
    interval = model.probability_interval(raw)
    p = model.predict_proba(raw)[:, 1]
    assert interval.shape == (len(raw), 2)
    assert np.all(interval[:, 0] <= interval[:, 1])
    assert np.mean((interval[:, 0] <= p) & (p <= interval[:, 1])) > 0.8
    assert np.array_equal(interval, model.probability_interval(raw))
