"""Resolving a registry URI (registry.store.resolve): what a version needs to be loaded."""

from __future__ import annotations

import shutil

import pytest
from mlflow import MlflowClient

from icans.errors import ModelNotFoundError
from registry.store import resolve


@pytest.fixture
def client(small_champion, tmp_path):
    """A client of a copy of the small champion's registry (its artefacts read where they are)."""
    shutil.copy(small_champion.store / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(uri, uri)


def test_the_champion_resolves_to_its_version_and_training_run(small_champion, client):
    ref = resolve("models:/icans-risk@champion", client)
    assert ref.version == small_champion.result.model_version
    assert ref.run_id == client.get_model_version("icans-risk", ref.version).run_id
    assert ref.run_id is not None


def test_a_version_registered_outside_a_training_run_is_refused_by_name(client, tmp_path):
    """MLflow lets a version be registered from a bare directory without a run: it has no
    model card or artefacts of ours, so it is refused before anything is loaded."""
    bare = client.create_model_version("icans-risk", tmp_path.as_uri(), run_id=None).version
    assert client.get_model_version("icans-risk", bare).run_id is None
    with pytest.raises(ModelNotFoundError, match=rf"version {bare}\) was not logged by a train"):
        resolve(f"models:/icans-risk/{bare}", client)


def test_the_logged_model_serves_its_own_input_example_through_mlflow_pyfunc(
    small_champion, client, tmp_path
):
    """What MLflow checks of the input example when logging (``validate_serving_input``), as an
    assertion: MLflow only logs a warning when its check fails. The champion, downloaded and
    loaded back as a generic MLflow model, answers its logged input example with the fitted
    estimator's probabilities."""
    import mlflow
    import numpy as np

    version = client.get_model_version("icans-risk", small_champion.result.model_version)
    # MLflow resolves a logged model's URI (models:/m-...) through the process's registry URI,
    # whatever tracking_uri says: point it at the client fixture's copy, not at the store of
    # whichever test ran before in this process
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path}/mlflow.db")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=version.source, dst_path=str(tmp_path / "model")
    )
    model = mlflow.pyfunc.load_model(local)
    example = model.input_example
    assert example is not None and len(example) >= 1
    served = np.asarray(model.predict(example))
    fitted = small_champion.result.model.predict_proba(example)
    assert served.shape == (len(example), 2)
    np.testing.assert_allclose(served, fitted, rtol=1e-12)  # same bits unless BLAS differs


def test_a_version_records_its_horizons_and_each_horizons_gate_read_back_with_its_card(
    small_champion, client
):
    """The small champion is fitted for day 28 alone (support.SMALL): its version's tag and
    card say so, and a loaded version reads its horizons from the card; one whose card
    predates them takes its model's (day 28 alone for a model from before horizons)."""
    import dataclasses

    from registry.store import HORIZONS_TAG, load_registered

    version = client.get_model_version("icans-risk", small_champion.result.model_version)
    assert version.tags[HORIZONS_TAG] == '["day28"]'
    assert version.tags["gate.day28"] == "passed"
    registered = load_registered("models:/icans-risk@champion", small_champion.settings)
    assert registered.card["horizons"] == ["day28"]
    assert registered.card["gate"]["horizons"] == {"day28": "passed"}
    assert registered.horizons == ("day28",)
    three = dataclasses.replace(registered, card={"horizons": ["72h", "7d", "day28"]})
    assert three.horizons == ("72h", "7d", "day28")
    assert dataclasses.replace(registered, card={}).horizons == registered.model.horizons_
