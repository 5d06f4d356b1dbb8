"""Training on a centre's imported cohort, with a real sqlite MLflow store: gates that depend on
what the data can show (no true risk), a temporal split, and champion-challenger against the
registry's champion on the same held-out patients."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from centre import write_centre
from support import FAST_RUN
from support import SMALL as TINY

from cohort.importer import import_cohort
from icans.config import load_settings
from icans.errors import InvalidInputError
from registry.store import use_tracking
from training.train import train

pytestmark = [
    pytest.mark.champion,  # trains its own models (training.train)
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

# A centre has a few hundred patients: the default gates, the test's speed settings (and the
# tiny model's search: what these tests check is which gates apply, not the model's quality).
SMALL = FAST_RUN.model_copy(
    update={"gates": type(FAST_RUN.gates)(), "split": "temporal", "search": TINY.search}
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-store")
    return load_settings(tracking_uri=f"sqlite:///{root}/mlflow.db", artifacts_dir=root / "art")


@pytest.fixture(scope="module")
def centre_a(tmp_path_factory):
    root = tmp_path_factory.mktemp("centre-a")
    import_cohort(write_centre(root / "files", n=600, seed=11, prefix="A"), root / "cohort")
    return root / "cohort"


@pytest.fixture(scope="module")
def first_run(centre_a, store):
    return train(centre_a, SMALL, store)


def test_a_real_cohort_trains_and_the_gate_record_says_what_applied(first_run, store):
    gate = first_run.gate
    assert "auroc_near_true_risk" not in gate.checks
    assert "no true risk" in gate.not_applied["auroc_near_true_risk"]
    assert "no champion" in gate.not_applied["not_worse_than_champion"]
    assert {"enough_test_events", "calibration_slope", "calibration_intercept"} <= set(gate.checks)
    # promoted exactly when every gate that applied passed, and a refusal says why
    assert first_run.promoted == all(gate.checks.values())
    assert len(gate.reasons) == sum(not ok for ok in gate.checks.values())
    client = use_tracking(store)
    run = client.get_run(first_run.run_id)
    assert run.data.tags["provenance"] == "real"
    assert run.data.tags["synthetic_data"] == "false"
    path = mlflow.artifacts.download_artifacts(f"runs:/{first_run.run_id}/gates.json")
    record = json.loads(Path(path).read_text())
    assert record["not_applied"] == gate.not_applied and record["applied"] == gate.checks


def test_the_temporal_split_holds_out_the_latest_infusions(first_run, centre_a):
    patients = pd.read_parquet(centre_a / "patients.parquet").set_index("patient_id")
    held = np.unique(first_run.test.patient_id)
    order = patients["infusion_order"]
    assert order.loc[held].min() > order.drop(held).max()
    assert len(held) == round(SMALL.test_fraction * len(patients))


def test_a_temporal_split_needs_the_infusion_order(tmp_path, store):
    files = write_centre(tmp_path / "files", n=200, seed=5, prefix="N")
    patients = files / "patients.csv"
    pd.read_csv(patients).drop(columns="infusion_order").to_csv(patients, index=False)
    import_cohort(files, tmp_path / "cohort")
    with pytest.raises(InvalidInputError, match="infusion_order"):
        train(tmp_path / "cohort", SMALL, store)


def test_a_second_centre_is_compared_with_the_champion_on_the_same_patients(
    first_run, store, tmp_path
):
    client = use_tracking(store)
    client.set_registered_model_alias(store.model_name, store.model_alias, first_run.model_version)
    files = write_centre(tmp_path / "files", n=500, seed=23, prefix="B")
    import_cohort(files, tmp_path / "cohort")
    second = train(tmp_path / "cohort", SMALL, store)
    assert "not_worse_than_champion" in second.gate.checks
    gap = second.evaluation.metrics.query(
        "subset == 'overall' and predictor == 'model' and metric == 'auroc_gap_to_champion'"
    ).iloc[0]
    model_auroc = second.evaluation.value("model", "auroc")
    champion_auroc = second.evaluation.value("champion", "auroc")
    assert gap["estimate"] == pytest.approx(model_auroc - champion_auroc)
    assert gap["ci_low"] <= gap["estimate"] <= gap["ci_high"]
    passed = gap["ci_low"] >= -SMALL.gates.champion_margin
    assert second.gate.checks["not_worse_than_champion"] == passed
    tags = client.get_run(second.run_id).data.tags
    assert tags["champion_compared"] == first_run.model_version


def test_the_endpoint_serves_a_champion_trained_on_real_data(first_run, store, centre_a):
    """Whichever candidate is champion, the service answers for it: /v1/model says the data
    were real (no synthetic flag, no true-risk metric), /v1/risk explains a patient."""
    from fastapi.testclient import TestClient
    from support import shared_asgi_app

    from cohort.reader import read_cohort
    from features.landmarks import patient_record

    client = use_tracking(store)
    client.set_registered_model_alias(store.model_name, store.model_alias, first_run.model_version)
    tables = read_cohort(centre_a).tables
    pid = tables["patients"]["patient_id"].iloc[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
        mp.setenv("ICANS_AUDIT_LOG", str(store.artifacts_dir / "audit.jsonl"))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(store.artifacts_dir / "predictions"))
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        with TestClient(shared_asgi_app(), raise_server_exceptions=False) as http:
            info = http.get("/v1/model")
            risk = http.post("/v1/risk", json=patient_record(tables, pid, 0))
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["version"] == first_run.model_version
    assert body["synthetic_data"] is False
    assert body["training_data"]["provenance"] == "real"
    assert "true_risk_auroc" not in body["headline_metrics"]  # not computable: left out
    assert "not_applied" in body["gate"]
    assert risk.status_code == 200, risk.text
    result = risk.json()
    assert 0 < result["probability"] < 1 and result["contributions"]


def test_recalibration_on_a_second_centre_registers_a_child_version(first_run, store, tmp_path):
    """The parent's calibration composed with the local intercept: on the local training
    patients the mean predicted risk equals the event rate (the intercept's score equation);
    the new version names its parent and passes through the same gates."""
    from features.landmarks import build_landmark_dataset
    from training.train import Update

    files = write_centre(tmp_path / "files", n=500, seed=29, prefix="R")
    import_cohort(files, tmp_path / "cohort")
    uri = f"models:/{store.model_name}/{first_run.model_version}"
    result = train(tmp_path / "cohort", SMALL, store, update=Update(uri, "intercept"))
    assert result.model_version != first_run.model_version
    tags = use_tracking(store).get_model_version(store.model_name, result.model_version).tags
    assert tags["parent_version"] == first_run.model_version
    assert tags["update_method"] == "intercept"
    assert {"calibration_slope", "calibration_intercept"} <= set(result.gate.checks)
    assert result.learning_curve.empty
    ds = build_landmark_dataset(read_cohort_tables(tmp_path / "cohort"), SMALL.landmarks)
    train_rows = ~np.isin(ds.patient_id, np.unique(result.test.patient_id))
    p = result.model.predict_proba(ds.raw[train_rows])[:, 1]
    assert p.mean() == pytest.approx(ds.label[train_rows].mean(), abs=1e-6)
    parent = first_run.model
    assert result.model.calibration_[1] == pytest.approx(parent.calibration_[1])  # slope kept
    bad = Update(uri, "everything")
    with pytest.raises(InvalidInputError, match="method"):
        train(tmp_path / "cohort", SMALL, store, update=bad)


def read_cohort_tables(path):
    from cohort.reader import read_cohort

    return read_cohort(path).tables


def test_another_centre_is_evaluated_with_its_provenance(first_run, store, tmp_path):
    """External validation from the command line: discrimination, calibration and the
    cohort's provenance, recorded as a run."""
    from typer.testing import CliRunner

    from cli.main import app

    files = write_centre(tmp_path / "files", n=300, seed=31, prefix="E")
    import_cohort(files, tmp_path / "cohort")
    uri = f"models:/{store.model_name}/{first_run.model_version}"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--model",
            uri,
            "--cohort",
            str(tmp_path / "cohort"),
            "--tracking-uri",
            store.tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "real" in result.output and "AUROC" in result.output
    assert "Recorded as MLflow run" in result.output


def test_a_centre_of_150_patients_trains_and_is_refused_for_its_events(store, tmp_path):
    """The low end of a centre's size: training works; with fewer held-out events than the
    gate asks, promotion is refused for that reason."""
    files = write_centre(tmp_path / "files", n=150, seed=37, prefix="S")
    import_cohort(files, tmp_path / "cohort")
    result = train(tmp_path / "cohort", SMALL, store)
    events = result.evaluation.meta["n_events"]
    assert result.gate.checks["enough_test_events"] == (events >= SMALL.gates.min_test_events)
    if events < SMALL.gates.min_test_events:
        assert not result.promoted
        assert any(f"only {events} held-out events" in r for r in result.gate.reasons)
    assert events == 0 or np.isfinite(result.evaluation.value("model", "auroc"))
