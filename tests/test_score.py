"""Batch scoring (``scoring.batch``, ``icans score``) against a registered model (the small
champion, ``conftest.small_champion``: 400 patients, day 28 alone; nothing here depends on the
model's quality): every landmark row, the logged model's numbers, chunk by chunk, atomically.
The horizons' columns on a small model fitted here for every horizon (a few seconds, not
registered: :func:`scoring.batch.scores` is what each chunk of ``score_cohort`` runs)."""

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
from icans.horizons import HORIZON_NAMES
from runtime.assessor import Assessor
from scoring.batch import ScoreColumns, score_cohort, scores, select_horizons

FIGURES = ("probability", "interval_low", "interval_high", "log_odds")


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


def test_a_day28_model_writes_its_one_horizon_beside_the_old_columns(scored):
    _, frame, _ = scored
    assert [c for c in frame.columns if c.endswith("_72h") or c.endswith("_7d")] == []
    for figure in FIGURES:  # the same numbers under both names: exact
        np.testing.assert_array_equal(frame[f"{figure}_day28"], frame[figure])


@pytest.fixture(scope="module")
def horizons_model(horizon_model, small_cohort):
    """The session's model of every horizon (tests/conftest.py: fitted on the 400-patient
    session cohort, two bootstrap refits) and that cohort's landmark rows."""
    return horizon_model, build_landmark_dataset(read_cohort(small_cohort).tables)


def test_every_horizon_is_written_nested_with_the_models_numbers(horizons_model):
    """Per row and horizon, the probability and interval of the model's own xgboost path
    (``predict_horizons``, ``interval`` of ``transform(raw, h)``) against the compiled path the
    scores take, within 1e-9 (as test_model_compiled); the nesting exactly."""
    model, ds = horizons_model
    frame = scores(Assessor(model), ds, ScoreColumns("m", "1", HORIZON_NAMES, False))
    per_horizon = [f"{f}_{h}" for h in HORIZON_NAMES for f in FIGURES]
    assert list(frame.columns) == [
        "patient_id", "landmark_day", *FIGURES, *per_horizon, "model_name", "model_version"
    ]  # fmt: skip
    assert len(frame) == len(ds)
    expected = model.predict_horizons(ds.raw)
    for k, h in enumerate(HORIZON_NAMES):
        x = model.transform(ds.raw, h)
        np.testing.assert_allclose(frame[f"probability_{h}"], expected[:, k], rtol=0, atol=1e-9)
        # the log-odds column is the base plus the TreeSHAP contributions (float32 sums, as
        # before horizons): 1e-5 of the model's, as test_a_row_scores_what_the_logged_model...
        np.testing.assert_allclose(frame[f"log_odds_{h}"], model.log_odds(x), rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            frame[[f"interval_low_{h}", f"interval_high_{h}"]],
            model.interval(x),
            rtol=0,
            atol=1e-9,
        )
    for figure in FIGURES:  # the old columns are day 28's
        np.testing.assert_array_equal(frame[figure], frame[f"{figure}_day28"])
    for figure in ("probability", "interval_low", "interval_high"):
        short, week, day28 = (frame[f"{figure}_{h}"].to_numpy() for h in HORIZON_NAMES)
        assert (short <= week).all() and (week <= day28).all(), figure
    assert (frame["probability_72h"] < frame["probability_day28"]).mean() > 0.5  # not all one


def test_horizons_selected_and_the_explanation_is_day28s(horizons_model):
    model, ds = horizons_model
    part = ds.subset(np.arange(len(ds)) < 40)
    selected = select_horizons("day28, 72h", model.horizons_)
    assert selected == ("72h", "day28")  # shortest first, whatever the order asked
    frame = scores(Assessor(model), part, ScoreColumns("m", "1", selected, True))
    assert not any(c.endswith("_7d") for c in frame.columns)
    assert {"probability_72h", "interval_high_72h", "log_odds_day28"} <= set(frame.columns)
    parts = frame.filter(like="contribution.")
    total = frame["base_log_odds"] + parts.sum(axis=1)  # TreeSHAP in float32: 1e-6
    np.testing.assert_allclose(total, frame["log_odds_day28"], rtol=0, atol=1e-6)
    assert select_horizons(None, model.horizons_) == HORIZON_NAMES


@pytest.mark.parametrize(
    ("asked", "fitted", "rule"),
    [
        ("72h,3d", HORIZON_NAMES, "horizons among 72h, 7d, day28 ('3d' is none)"),
        ("72h,", HORIZON_NAMES, "horizons separated by commas"),
        ("72h", ("day28",), "horizons the model estimates: day28 (not fitted for 72h)"),
    ],
)
def test_a_horizon_that_is_not_there_is_refused_naming_the_option(asked, fitted, rule):
    with pytest.raises(InvalidInputError) as info:
        select_horizons(asked, fitted)
    assert info.value.field == "horizons" and info.value.value == asked
    assert rule in info.value.expected


def test_the_command_refuses_a_horizon_the_model_lacks_and_writes_nothing(small_champion, tmp_path):
    out = tmp_path / "s.parquet"
    uri = small_champion.settings.tracking_uri
    args = ["score", "--cohort", str(small_champion.cohort), "--out", str(out),
            "--tracking-uri", uri, "--horizons", "72h"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "horizons='72h' is invalid" in result.output and "not fitted for 72h" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_monitoring_reference_holds_every_horizons_risk_and_outcome(horizons_model):
    """``registry.reference.reference_frame`` of the same model (what ``icans monitor``
    compares each horizon with): each horizon's risk is ``predict_horizons``' (both through
    xgboost: 1e-12, as test_horizon_model) and its outcome the landmark rows' label."""
    from registry.reference import reference_frame

    model, ds = horizons_model
    frame = reference_frame(model, ds, seed=0, max_rows=500)
    assert len(frame) == 500
    expected = model.predict_horizons(ds.raw)
    # the sample reference_frame documents: seeded, in the rows' order
    kept = np.sort(np.random.default_rng(0).choice(len(ds), size=500, replace=False))
    for k, h in enumerate(HORIZON_NAMES):
        risk, outcome = ("probability", "outcome") if h == "day28" else (
            f"probability.{h}", f"outcome.{h}")  # fmt: skip
        np.testing.assert_allclose(frame[risk], expected[kept, k], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(frame[outcome], ds.horizon_labels[h][kept])
