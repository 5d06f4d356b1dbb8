"""Batch scoring (``scoring.batch``, ``icans score``) against the registered champion: every
landmark row, the endpoint's numbers, chunk by chunk, atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from api.patient import parse_patient
from cli.main import app
from cohort.reader import read_cohort
from features.landmarks import build_landmark_dataset, patient_record
from icans.errors import InvalidInputError
from runtime.assessor import Assessor
from scoring.batch import score_cohort


@pytest.fixture(scope="module")
def landmark_rows(champion):
    return build_landmark_dataset(read_cohort(champion.cohort).tables)


@pytest.fixture(scope="module")
def scored(champion, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "scores.parquet"
    seen = []
    summary = score_cohort(
        champion.cohort,
        champion.settings.model_uri,
        out,
        champion.settings,
        explain=True,
        patients_per_chunk=700,  # 2,500 patients: four chunks
        progress=seen.append,
    )
    return summary, pd.read_parquet(out), seen


def test_every_landmark_row_is_scored_once_chunk_by_chunk(scored, landmark_rows, champion):
    summary, frame, seen = scored
    assert seen == [700, 700, 700, 400]
    assert summary.rows == len(frame) == len(landmark_rows)
    assert summary.patients == 2500
    got = set(zip(frame["patient_id"], frame["landmark_day"], strict=True))
    want = set(zip(landmark_rows.patient_id, landmark_rows.landmark_day.astype(int), strict=True))
    assert got == want and len(got) == len(frame)
    assert set(frame["model_version"]) == {champion.result.model_version}


def test_scores_are_the_models_predict_proba_and_interval(scored, landmark_rows, champion):
    _, frame, _ = scored
    model = champion.result.model
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


def test_a_row_scores_what_the_endpoint_answers_for_that_patient_and_day(scored, champion):
    _, frame, _ = scored
    tables = read_cohort(champion.cohort).tables
    assessor = Assessor(champion.result.model)
    for _, row in frame.sample(12, random_state=1).iterrows():
        # the endpoint's path: the patient's JSON record, validated, then assessed
        patient = parse_patient(patient_record(tables, row["patient_id"], int(row["landmark_day"])))
        answer = assessor.assess([patient])[0]
        # exact: the same per-row compiled path alone as in a chunk, in this process; Parquet
        # stores float64 as is
        assert answer.probability == row["probability"]
        assert answer.interval == (row["interval_low"], row["interval_high"])
        for c in answer.input_contributions:
            assert c["shap_log_odds"] == row[f"contribution.{c['input']}"]


def test_csv_output_and_clear_errors_leave_no_file(champion, tmp_path):
    out = tmp_path / "scores.csv"
    summary = score_cohort(champion.cohort, champion.settings.model_uri, out, champion.settings)
    frame = pd.read_csv(out)
    assert len(frame) == summary.rows and "contribution.car_target" not in frame.columns

    with pytest.raises(InvalidInputError) as info:
        score_cohort(
            champion.cohort, champion.settings.model_uri, tmp_path / "s.xlsx", champion.settings
        )
    assert info.value.field == "out" and ".parquet or .csv" in str(info.value)

    def interrupted(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_cohort(
            champion.cohort,
            champion.settings.model_uri,
            tmp_path / "half.parquet",
            champion.settings,
            patients_per_chunk=500,
            progress=interrupted,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no partial file


def test_the_command_scores_and_says_what_the_model_is(champion, tmp_path):
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--cohort",
            str(champion.cohort),
            "--out",
            str(out),
            "--tracking-uri",
            champion.settings.tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "landmark rows of 2,500 patients" in result.output
    assert "SYNTHETIC" in result.output and "Decision support only" in result.output
    assert len(pd.read_parquet(out)) > 0
