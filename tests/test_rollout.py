"""Promotions reach a running worker without a restart (:mod:`serving.rollout`).

Against a real sqlite registry: a copy of the small champion's store (``conftest.small_champion``:
the swap is tested here, not the model), so the aliases moved here never reach the other tests.
New versions are registered from the champion's own model: as it is, and with every log-odds
raised by :data:`SHIFT` (so each version's answers are known independently of the runtime), and
a broken one from a run whose pickled model is unreadable; each with the digest of its files, as
training registers (:func:`registry.store.registering`), and one whose file is changed on disk
after registration (refused by :mod:`registry.digest`). tests/test_scale_out.py promotes a
different model under load through a load balancer.
"""

from __future__ import annotations

import copy
import logging
import shutil

import mlflow
import pytest
from mlflow import MlflowClient
from scipy.special import expit, logit

from api.patient import parse_patient
from cohort.reader import read_cohort
from features.landmarks import patient_record
from features.packing import to_raw
from icans.errors import ArtefactDigestError
from registry.digest import logged_digest
from registry.store import registering
from serving.model_version import ModelRuntime
from serving.rollout import LiveModel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DAY = 3
SHIFT = 1.0  # log-odds the shifted version adds to every answer (odds times e)


@pytest.fixture(scope="module")
def patient(small_champion):
    """One patient of the champion's cohort on day 3, validated as the service does."""
    tables = read_cohort(small_champion.cohort).tables
    return parse_patient(patient_record(tables, tables["patients"].patient_id.iloc[0], DAY))


@pytest.fixture
def store(small_champion, tmp_path):
    """Settings on a copy of the champion's registry (its artefacts read where they are)."""
    shutil.copy(small_champion.store / "mlflow.db", tmp_path / "mlflow.db")
    serve = small_champion.settings.serve.model_copy(update={"model_poll_seconds": 0.2})
    settings = small_champion.settings.model_copy(
        update={"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "serve": serve}
    )
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    return settings, client


class _ToCaplog(logging.Handler):
    """Hands each record to the handler of caplog's current phase."""

    def __init__(self, caplog):
        super().__init__()
        self.caplog = caplog

    def emit(self, record: logging.LogRecord) -> None:
        # once: pytest may itself have attached caplog's handler to this non-propagating logger
        if self.caplog.handler not in logging.getLogger(record.name).handlers:
            self.caplog.handler.handle(record)


@pytest.fixture
def caplog(caplog, monkeypatch):
    """caplog fed by the roll-out logger itself, whatever ran before in this process: a service
    started in process sends the ``icans`` records to BentoML's handlers only (serving.service,
    no propagation), and a logging configuration applied meanwhile may have disabled the
    loggers that existed then."""
    logger = logging.getLogger("icans.serving.rollout")
    monkeypatch.setattr(logger, "disabled", False)
    monkeypatch.setattr(logger, "propagate", False)  # each record once, here
    handler = _ToCaplog(caplog)
    logger.addHandler(handler)
    yield caplog
    logger.removeHandler(handler)


def _register(client: MlflowClient, name: str, model_uri: str) -> str:
    """Register a logged model as training does: with the digest of its files."""
    with registering(model_uri, name, client, "", {}, logged_digest(model_uri)) as version:
        return version


def _register_copy(client: MlflowClient, name: str, version: str) -> str:
    """A new version of the same logged model (as a re-registration would make)."""
    return _register(client, name, client.get_model_version(name, version).source)


def _logged_probability(settings, version: str, patient) -> float:
    """What ``version`` gives ``patient``, by another path than the service's: the pickled
    pipeline loaded through MLflow's own sklearn flavour, on the raw row."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    return float(model.predict_proba(to_raw(patient))[0, 1])


def _register_shifted(client: MlflowClient, settings, version: str, tmp_path) -> str:
    """A new version answering every patient with log-odds SHIFT above ``version``'s: its model
    with the calibration intercept raised by SHIFT, logged (with its model card) in a run of
    its own and registered."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    mv = client.get_model_version(settings.model_name, version)
    model = copy.deepcopy(mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}"))
    a, b = model.calibration_
    model.calibration_ = (a + SHIFT, b)
    card = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/model_card.json")
    experiment = client.create_experiment("shifted", artifact_location=(tmp_path / "s").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=[],
        )
        mlflow.log_dict(card, "model_card.json")
    return _register(client, settings.model_name, info.model_uri)


def _register_broken(client: MlflowClient, settings, tmp_path) -> str:
    """A version whose pickled model cannot be read: its load fails."""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n"
    )
    (tmp_path / "broken" / "model.pkl").write_bytes(b"not a pickle")
    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = client.create_experiment("broken", artifact_location=(tmp_path / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(tmp_path / "broken"), "model")
    return _register(client, settings.model_name, f"runs:/{run.info.run_id}/model")


def test_a_promotion_is_swapped_in_whole_and_requests_in_flight_keep_their_version(
    store, patient, tmp_path
):
    settings, client = store
    old = str(client.get_model_version_by_alias(settings.model_name, settings.model_alias).version)
    live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings)
    first = live.runtime
    assert live.follows == settings.model_alias
    assert live.check() is False  # the alias has not moved
    assert live.runtime is first

    new = _register_shifted(client, settings, old, tmp_path)
    assert new not in (old, None)
    client.set_registered_model_alias(settings.model_name, settings.model_alias, new)
    assert live.check() is True
    swapped = live.runtime
    assert swapped is not first
    assert (swapped.ref.version, swapped.identity()["version"]) == (new, new)
    # a request that read the old runtime before the swap answers wholly from it: the old
    # version's name and numbers, the new runtime the new version's. Each probability is checked
    # against the logged model through MLflow's sklearn flavour (1e-9: the compiled model sums
    # the same float64 terms in another order, as in test_model_compiled), the new one also by
    # construction: its log-odds are the old ones plus SHIFT.
    assert (first.ref.version, first.identity()["version"]) == (old, old)
    a_old, a_new = first.assess([patient])[0], swapped.assess([patient])[0]
    assert a_old.probability == pytest.approx(_logged_probability(settings, old, patient), abs=1e-9)
    assert a_new.probability == pytest.approx(_logged_probability(settings, new, patient), abs=1e-9)
    assert a_new.probability == pytest.approx(
        float(expit(logit(a_old.probability) + SHIFT)), abs=1e-9
    )
    status = live.status()
    assert status["model_version"] == new
    assert status["swaps"] == 1 and status["failed_rollout"] is None
    assert status["last_checked"] is not None


def test_a_version_that_fails_to_load_leaves_the_old_one_answering(store, tmp_path, caplog):
    settings, client = store
    loads = []

    def load(uri, s):  # the real load, counted
        loads.append(uri)
        return ModelRuntime.load(uri, s)

    live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings, load=load)
    good = live.runtime.ref.version
    broken = _register_broken(client, settings, tmp_path)
    client.set_registered_model_alias(settings.model_name, settings.model_alias, broken)

    with caplog.at_level(logging.ERROR, logger="icans.serving.rollout"):
        assert live.check() is False
        assert live.check() is False  # not retried within RETRY_FAILED_S, not logged twice
    assert live.runtime.ref.version == good
    assert len(loads) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"still answering with version {good}" in errors[0].getMessage()
    assert f"version {broken} failed to load" in errors[0].getMessage()
    failed = live.status()["failed_rollout"]
    assert failed["version"] == broken and failed["error"]
    assert live.status()["model_version"] == good

    # the alias moved back: nothing to load, and the failure is no longer reported
    client.set_registered_model_alias(settings.model_name, settings.model_alias, good)
    assert live.check() is False
    assert live.status()["failed_rollout"] is None
    assert len(loads) == 1


def test_a_version_whose_files_changed_after_registration_is_refused_and_the_old_one_answers(
    store, patient, tmp_path, caplog
):
    """The next version's model.pkl has one byte changed in the artefact store after it was
    registered: the worker refuses it before unpickling (:mod:`registry.digest`), says why
    with both digests, and keeps answering with the version it has, that version's numbers."""
    settings, client = store
    live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings)
    old = live.runtime.ref.version
    new = _register_shifted(client, settings, old, tmp_path)
    recorded = client.get_model_version(settings.model_name, new).tags["artefact_sha256"]
    (pickled,) = (tmp_path / "s").rglob("model.pkl")  # the new version's file, this test's own
    data = bytearray(pickled.read_bytes())
    data[len(data) // 2] ^= 0x01
    pickled.write_bytes(bytes(data))
    client.set_registered_model_alias(settings.model_name, settings.model_alias, new)

    with caplog.at_level(logging.ERROR, logger="icans.serving.rollout"):
        assert live.check() is False
    assert live.runtime.ref.version == old
    failed = live.status()["failed_rollout"]
    assert failed["version"] == new
    assert failed["error"].startswith(f"{ArtefactDigestError.__name__}: ")
    assert f"{settings.model_name} version {new} refused before loading" in failed["error"]
    assert f"expected SHA-256 {recorded}" in failed["error"]
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"still answering with version {old}" in error and recorded in error
    expected = _logged_probability(settings, old, patient)  # MLflow's flavour; 1e-9 as above
    assert live.runtime.assess([patient])[0].probability == pytest.approx(expected, abs=1e-9)


def test_an_unreachable_registry_is_reported_and_the_worker_keeps_answering(
    store, patient, monkeypatch, caplog
):
    settings, client = store
    live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings)
    version = live.runtime.ref.version
    assert version == str(
        client.get_model_version_by_alias(settings.model_name, settings.model_alias).version
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    live.settings = settings.model_copy(update={"tracking_uri": "http://127.0.0.1:9"})
    with caplog.at_level(logging.ERROR, logger="icans.serving.rollout"):
        assert live.check() is False
    failed = live.status()["failed_rollout"]
    assert failed["version"] is None
    assert "registry could not be asked" in failed["error"]
    # still the version it had, answering with that version's numbers (MLflow's sklearn flavour
    # loaded before the registry went away; 1e-9 as above)
    assert live.runtime.ref.version == version
    expected = _logged_probability(settings, version, patient)
    assert live.runtime.assess([patient])[0].probability == pytest.approx(expected, abs=1e-9)


def test_the_poller_follows_the_alias_on_its_own(store):
    settings, client = store
    live = LiveModel(ModelRuntime.load(settings.model_uri, settings), settings)
    new = _register_copy(client, settings.model_name, live.runtime.ref.version)
    live.start()
    try:
        client.set_registered_model_alias(settings.model_name, settings.model_alias, new)
        for _ in range(200):  # polls every 0.2 s; loading takes about a second
            if live.runtime.ref.version == new:
                break
            live._stop.wait(0.1)
        assert live.runtime.ref.version == new
    finally:
        live.stop()
    assert not live._thread.is_alive()


def test_a_fixed_version_is_never_followed(store):
    settings, _ = store
    pinned = settings.model_copy(update={"model_uri": f"models:/{settings.model_name}/1"})
    live = LiveModel(ModelRuntime.load(pinned.model_uri, pinned), pinned)
    assert live.follows is None
    assert live.check() is False
    live.start()
    assert live._thread is None
    assert live.status()["poll_seconds"] is None
