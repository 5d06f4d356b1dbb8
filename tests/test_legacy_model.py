"""Versions registered before the risk model became one estimator still load and answer the same.

``tests/fixtures/legacy-v1`` holds the MLflow artefacts of a small model trained and registered
by the code of commit 7301908 (before the change): the logged model (a pickled
``Pipeline([features, training.models.RiskModel])``), its logistic baseline, its model card, and
``expected.json``: 25 landmark rows with the probabilities, 95% intervals and exact
contributions that code computed for them. Here the artefacts are registered in a real sqlite
MLflow store and loaded through the registry like any version; the answers must be those the old
code wrote. They carry no artefact digest (registered before digests were recorded), so they
load only where ``allow_unverified_models`` says so, and are refused otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from features.layout import COLUMN_INDEX, RAW_COLUMNS, SERIES_SLICE, WIDTHS
from icans.config import load_settings
from icans.errors import ArtefactDigestError
from model.explain import RiskExplainer
from model.risk_model import RiskModel
from registry.store import (
    MODEL_CARD,
    load_registered,
    load_run_model,
    use_experiment,
    use_tracking,
)
from runtime.assessor import Assessor

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-v1"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
# expected.json was written once, on another processor. Recomputed here, the numbers pass
# through numpy's log/log1p and libm's exp (SIMD kernels that differ by an ulp between AVX2 and
# AVX-512) and, for the logistic baseline, a BLAS dot product (summation order depends on the
# kernel): ~1e-16 apart, never bit for bit. 1e-12 relative allows thousands of such ulps and
# still fails on any change of the model's answers.
ACROSS_PROCESSORS = {"rtol": 1e-12, "atol": 0.0}


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    store = tmp_path_factory.mktemp("legacy-store")
    settings = load_settings(
        tracking_uri=f"sqlite:///{store}/mlflow.db", allow_unverified_models=True
    )
    client = use_tracking(settings)
    use_experiment("legacy", settings, client)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(FIXTURE / "model"), artifact_path="model")
        mlflow.log_artifacts(str(FIXTURE / "baseline_logistic"), artifact_path="baseline_logistic")
        mlflow.log_artifact(str(FIXTURE / MODEL_CARD))
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "icans-risk").version
    client.set_registered_model_alias("icans-risk", "champion", version)
    return load_registered("models:/icans-risk@champion", settings), run.info.run_id, settings


@pytest.fixture(scope="module")
def expected() -> dict:
    data = json.loads((FIXTURE / "expected.json").read_text())
    data["raw"] = np.array(data["raw"], dtype=float)  # JSON null -> NaN
    return data


def test_an_old_version_loads_as_the_estimator(registered):
    loaded, _, _ = registered
    assert isinstance(loaded.model, RiskModel)
    assert loaded.ref.version == "1" and loaded.card["cohort_fingerprint"]
    assert loaded.identity()["provenance"] == "synthetic"  # old cards: the synthetic cohort


def test_its_probabilities_intervals_and_contributions_are_unchanged(registered, expected):
    model = registered[0].model
    raw = expected["raw"]
    probability = model.predict_proba(raw)[:, 1]
    # written on another processor: log/log1p/exp kernels differ by an ulp (ACROSS_PROCESSORS)
    np.testing.assert_allclose(probability, expected["probability"], **ACROSS_PROCESSORS)
    interval = model.probability_interval(raw)
    np.testing.assert_allclose(interval, expected["interval"], **ACROSS_PROCESSORS)  # likewise
    explanation = RiskExplainer(model).explain_features(model.transform(raw))
    assert explanation.feature_names == expected["feature_names"]
    # likewise written on another processor; absolute, as a contribution near 0 has no scale
    np.testing.assert_allclose(explanation.contributions, expected["contributions"], atol=1e-12)
    np.testing.assert_allclose(explanation.base_log_odds, expected["base_log_odds"], atol=1e-12)


def test_without_a_digest_it_is_refused_unless_the_setting_allows_it(registered):
    """Registered before digests were recorded: refused by default, naming the version, the
    setting and what its files hash to (computed here with hashlib over the fixture's files)."""
    _, run_id, allowed = registered
    strict = allowed.model_copy(update={"allow_unverified_models": False})
    found = _sha256_manifest(FIXTURE / "model")
    with pytest.raises(ArtefactDigestError) as refused:
        load_registered("models:/icans-risk@champion", strict)
    message = str(refused.value)
    assert "icans-risk version 1 refused before loading" in message
    assert f"hash to SHA-256 {found}, no SHA-256 digest recorded" in message
    assert "allow_unverified_models=true" in message
    assert refused.value.expected is None and refused.value.found == found
    with pytest.raises(ArtefactDigestError, match=f"baseline_logistic of run {run_id}"):
        load_run_model(run_id, "baseline_logistic", strict)


def _sha256_manifest(directory) -> str:
    """sha256sum's lines for every file, in byte order of the name, hashed (not the code's)."""
    import hashlib

    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    lines = "".join(
        f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}\n" for n in names
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def test_its_logged_baseline_loads_and_answers_the_same(registered, expected):
    _, run_id, settings = registered
    baseline = load_run_model(run_id, "baseline_logistic", settings)
    # written on another processor: one BLAS dot product per row (scikit-learn's
    # decision_function), whose summation order depends on the kernel (ACROSS_PROCESSORS)
    np.testing.assert_allclose(
        baseline.predict_proba(expected["raw"])[:, 1],
        expected["logistic_probability"],
        **ACROSS_PROCESSORS,
    )


def test_the_endpoint_path_serves_it(registered, expected):
    """The request path (one thread, warm-up, explanation) runs on the upgraded model."""
    model = registered[0].model
    assessor = Assessor(model)
    _, probability, interval, _ = assessor.assess_rows(expected["raw"][:3])
    # written on another processor (ACROSS_PROCESSORS)
    np.testing.assert_allclose(probability, expected["probability"][:3], **ACROSS_PROCESSORS)
    np.testing.assert_allclose(interval, expected["interval"][:3], **ACROSS_PROCESSORS)
    # exact here: same machine and process, and the compiled path adds up what the pipeline
    # does, in its order (no BLAS), so it gives predict_proba's bits
    np.testing.assert_array_equal(probability, model.predict_proba(expected["raw"][:3])[:, 1])


def test_its_signature_names_the_first_generation_of_the_layout():
    """The logged signature and input example name the columns of layout generation 1, in the
    order that still opens today's layout: a row written for it is a valid row now."""
    mlmodel = yaml.safe_load((FIXTURE / "model" / "MLmodel").read_text())
    signed = [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])]
    example = json.loads((FIXTURE / "model" / "input_example.json").read_text())
    assert signed == example["columns"] == list(RAW_COLUMNS[: WIDTHS[0]])


def test_rows_of_every_layout_generation_answer_the_same(registered, expected):
    """The old model reads its own 133-column rows, the same rows in today's layout (the later
    columns missing), a table of its signature's columns, and rows that also carry the fields
    added since (marrow involvement, corticosteroid and tocilizumab courses, the daily charted
    series such as ICE and CRP), which it was not
    fitted on and must not read: the same probabilities every time."""
    model = registered[0].model
    old = expected["raw"]
    assert old.shape[1] == WIDTHS[0] < len(RAW_COLUMNS)
    now = np.full((len(old), len(RAW_COLUMNS)), np.nan)
    now[:, : WIDTHS[0]] = old
    treated = now.copy()
    treated[:, COLUMN_INDEX["marrow_involvement"]] = 1.0
    treated[:, SERIES_SLICE["dexamethasone_mg"]] = 40.0
    treated[:, SERIES_SLICE["tocilizumab_doses"]] = 2.0
    treated[:, SERIES_SLICE["ice_score"]] = 6.0  # generation 3: the daily charted series
    treated[:, SERIES_SLICE["crp_mg_per_l"]] = 150.0
    table = pd.DataFrame(old, columns=list(RAW_COLUMNS[: WIDTHS[0]])).iloc[:, ::-1]
    answer = model.predict_proba(old)[:, 1]
    # written on another processor (ACROSS_PROCESSORS)
    np.testing.assert_allclose(answer, expected["probability"], **ACROSS_PROCESSORS)
    for rows in (now, treated, table):
        # exact: the same numbers through the same elementwise steps, in this process
        np.testing.assert_array_equal(model.predict_proba(rows)[:, 1], answer)
    assert not {"marrow_involvement", "steroid_mg_today"} & set(model.feature_names_)
    assert model.transform(treated).shape[1] == len(expected["feature_names"])
