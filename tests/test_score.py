"""Batch scoring (``scoring.batch``, ``icans score``) against a registered model (the small
champion, ``conftest.small_champion``: 400 patients; nothing here depends on the model's quality):
every landmark row, the logged model's numbers, chunk by chunk, atomically."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from api.patient import parse_patient
from cli.main import app
from cohort.reader import read_cohort
from features.landmarks import build_landmark_dataset, patient_record
from features.packing import to_raw
from icans.errors import InvalidInputError
from scoring.batch import score_cohort


@pytest.fixture(scope="module")
def landmark_rows(small_champion):
    return build_landmark_dataset(read_cohort(small_champion.cohort).tables)


@pytest.fixture(scope="module")
def scored(small_champion, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "scores.parquet"
    seen = []
    summary = score_cohort(
        small_champion.cohort,
        small_champion.settings.model_uri,
        out,
        small_champion.settings,
        explain=True,
        patients_per_chunk=150,  # 400 patients: three chunks
        progress=seen.append,
    )
    return summary, pd.read_parquet(out), seen


def test_every_landmark_row_is_scored_once_chunk_by_chunk(scored, landmark_rows, small_champion):
    summary, frame, seen = scored
    assert seen == [150, 150, 100]
    assert summary.rows == len(frame) == len(landmark_rows)
    assert summary.patients == 400
    got = set(zip(frame["patient_id"], frame["landmark_day"], strict=True))
    want = set(zip(landmark_rows.patient_id, landmark_rows.landmark_day.astype(int), strict=True))
    assert got == want and len(got) == len(frame)
    assert set(frame["model_version"]) == {small_champion.result.model_version}


def test_scores_are_the_models_predict_proba_and_interval(scored, landmark_rows, small_champion):
    _, frame, _ = scored
    model = small_champion.result.model
    order = pd.DataFrame(
        {"patient_id": landmark_rows.patient_id, "landmark_day": landmark_rows.landmark_day}
    ).merge(frame, on=["patient_id", "landmark_day"], how="left")
    expected = model.predict_proba(landmark_rows.raw)[:, 1]  # the logged pipeline, xgboost
    assert np.abs(order["probability"].to_numpy() - expected).max() <= 1e-9
    interval = model.interval(model.transform(landmark_rows.raw))
    np.testing.assert_allclose(order[["interval_low", "interval_high"]], interval, atol=1e-12)


def test_contributions_per_input_add_up_to_the_log_odds(scored):
    _, frame, _ = scored
    parts = frame.filter(like="contribution.")
    assert "contribution.cd4_car_t_cells_per_ul" in parts.columns
    assert "contribution.car_target" in parts.columns
    total = frame["base_log_odds"] + parts.sum(axis=1)
    np.testing.assert_allclose(total, frame["log_odds"], atol=1e-6)  # float32 tree sums


def test_a_row_scores_what_the_logged_model_gives_that_patient_on_that_day(scored, small_champion):
    """Another path to the same numbers: the patient's JSON record as the endpoint reads it
    (validated, packed into the raw layout), scored by the registered version loaded through
    MLflow's own sklearn flavour (the pickled pipeline: no registry.store loading, no compiled
    runtime, no Assessor). Tolerances: the compiled model sums the same float64 tree leaves and
    additive terms in another order, 1e-9 as in test_model_compiled; the contributions are
    TreeSHAP in float32, so their sum meets the pipeline's log-odds to 1e-5."""
    _, frame, _ = scored
    tables = read_cohort(small_champion.cohort).tables
    mlflow.set_tracking_uri(small_champion.settings.tracking_uri)
    mlflow.set_registry_uri(small_champion.settings.tracking_uri)
    logged = mlflow.sklearn.load_model(f"models:/icans-risk/{small_champion.result.model_version}")
    rows = frame.sample(12, random_state=1)
    patients = [
        parse_patient(patient_record(tables, pid, int(day)))
        for pid, day in zip(rows["patient_id"], rows["landmark_day"], strict=True)
    ]
    raw = np.vstack([to_raw(p) for p in patients])
    np.testing.assert_allclose(
        rows["probability"], logged.predict_proba(raw)[:, 1], rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(
        rows[["interval_low", "interval_high"]],
        logged.probability_interval(raw),
        rtol=0,
        atol=1e-9,
    )
    total = rows["base_log_odds"] + rows.filter(like="contribution.").sum(axis=1)
    np.testing.assert_allclose(total, logged.decision_function(raw), rtol=0, atol=1e-5)


def test_csv_output_and_clear_errors_leave_no_file(small_champion, tmp_path):
    out = tmp_path / "scores.csv"
    summary = score_cohort(
        small_champion.cohort, small_champion.settings.model_uri, out, small_champion.settings
    )
    frame = pd.read_csv(out)
    assert len(frame) == summary.rows and "contribution.car_target" not in frame.columns

    with pytest.raises(InvalidInputError) as info:
        score_cohort(
            small_champion.cohort,
            small_champion.settings.model_uri,
            tmp_path / "s.xlsx",
            small_champion.settings,
        )
    assert info.value.field == "out" and ".parquet or .csv" in str(info.value)

    def interrupted(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_cohort(
            small_champion.cohort,
            small_champion.settings.model_uri,
            tmp_path / "half.parquet",
            small_champion.settings,
            patients_per_chunk=150,
            progress=interrupted,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no partial file


def test_the_command_scores_and_says_what_the_model_is(small_champion, tmp_path):
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--cohort",
            str(small_champion.cohort),
            "--out",
            str(out),
            "--tracking-uri",
            small_champion.settings.tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "landmark rows of 400 patients" in result.output
    assert "SYNTHETIC" in result.output and "Decision support only" in result.output
    assert len(pd.read_parquet(out)) > 0
