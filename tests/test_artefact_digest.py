"""Artefacts that cannot be swapped (:mod:`registry.digest`): the digest recorded at registration,
checked before every load.

Against a real sqlite registry: a copy of the small champion's database
(``conftest.small_champion``) in which the champion's logged model files, byte for byte, are
logged again in a run whose artefacts live under this test's temporary directory, and registered
as training registers (:func:`registry.store.registering`). Changing those files on disk is then
what someone with write access to the artefact store could do, without touching the shared
champion. Every digest is checked against one computed here with :mod:`hashlib` (and once with
coreutils' ``sha256sum``), never against the code's own.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli.main import app
from icans.errors import ArtefactDigestError, ModelNotFoundError
from registry.digest import VERSION_TAG, logged_digest, run_tag
from registry.store import MODEL_CARD, load_registered, registering

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def sha256_of_files(directory: Path) -> str:
    """What the recorded digest must be, computed here: ``sha256sum``'s line for every file of
    the model's directory (its path relative to it, byte order), but MLflow's
    ``registered_model_meta``, and the SHA-256 of those lines."""
    paths = sorted(
        (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()),
        key=str.encode,
    )
    lines = "".join(
        f"{hashlib.sha256((directory / p).read_bytes()).hexdigest()}  {p}\n"
        for p in paths
        if p != "registered_model_meta"
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def stored_model_dir(client: MlflowClient, name: str, version: str) -> Path:
    """Where a file-store registry keeps a version's logged model files on disk."""
    mv = client.get_model_version(name, version)
    uri = mv.source
    if uri.startswith("models:/"):  # an MLflow 3 logged model: <experiment>/models/<id>/...
        uri = mlflow.get_logged_model(uri.removeprefix("models:/")).artifact_location
    elif uri.startswith("runs:/"):
        path = uri.removeprefix(f"runs:/{mv.run_id}/")
        uri = f"{client.get_run(mv.run_id).info.artifact_uri}/{path}"
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


@dataclass
class Copy:
    settings: object
    client: MlflowClient
    version: str  # the copy's version, registered with its digest
    files: Path  # its model files on disk (this test's own)
    uri: str


@pytest.fixture
def copied(small_champion, tmp_path) -> Copy:
    """The champion's model and logistic baseline files logged again (in a run of their own,
    artefacts under tmp_path, the champion's model card beside them, each file's digest as a
    run tag) and the model registered, as training does."""
    shutil.copy(small_champion.store / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    settings = small_champion.settings.model_copy(update={"tracking_uri": uri})
    client = MlflowClient(uri, uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name, champion = settings.model_name, small_champion.result.model_version
    champion_run = client.get_model_version(name, champion).run_id
    experiment = client.create_experiment("copy", artifact_location=(tmp_path / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(stored_model_dir(client, name, champion)), "model")
        baseline = mlflow.artifacts.download_artifacts(
            f"runs:/{champion_run}/baseline_logistic", dst_path=str(tmp_path / "download")
        )
        mlflow.log_artifacts(baseline, "baseline_logistic")
        for path in ("model", "baseline_logistic"):
            mlflow.set_tag(run_tag(path), logged_digest(f"runs:/{run.info.run_id}/{path}"))
        mlflow.log_dict(
            mlflow.artifacts.load_dict(f"runs:/{champion_run}/{MODEL_CARD}"), MODEL_CARD
        )
    model_uri = f"runs:/{run.info.run_id}/model"
    with registering(model_uri, name, client, "a copy", {}, logged_digest(model_uri)) as version:
        pass
    files = stored_model_dir(client, name, version)
    assert (files / "model.pkl").is_file() and files.is_relative_to(tmp_path)  # its own
    return Copy(settings, client, version, files, f"models:/{name}/{version}")


def test_training_records_the_digest_of_the_files_with_the_version_run_and_card(small_champion):
    """The champion as ``icans train`` registered it: the version tag, the run tag, the model
    card and the report's model details all hold the SHA-256 of the files the store holds,
    computed here with hashlib and with coreutils; the baselines' run tags hold theirs."""
    settings = small_champion.settings
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mv = client.get_model_version(settings.model_name, small_champion.result.model_version)
    files = stored_model_dir(client, settings.model_name, mv.version)
    expected = sha256_of_files(files)
    coreutils = subprocess.run(
        "find . -type f ! -path ./registered_model_meta -printf '%P\\n' | LC_ALL=C sort | "
        "xargs -d '\\n' sha256sum | sha256sum",
        shell=True,
        cwd=files,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert coreutils == expected  # the shell recipe of registry.digest's docstring
    assert mv.tags[VERSION_TAG] == expected
    run = client.get_run(mv.run_id)
    assert run.data.tags[run_tag("model")] == expected
    card = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/{MODEL_CARD}")
    assert card["artefact_sha256"] == expected
    report = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{mv.run_id}/report/model_report.html")
    )
    assert f"Artefact digest: SHA-256 {expected} of the model" in report.read_text()
    for name in ("baseline_logistic", "baseline_m_easix"):
        local = Path(mlflow.artifacts.download_artifacts(f"runs:/{mv.run_id}/{name}"))
        assert run.data.tags[run_tag(name)] == sha256_of_files(local)


def test_re_registering_the_same_files_gives_the_same_digest_and_loads(small_champion, copied):
    champion = copied.client.get_model_version(
        copied.settings.model_name, small_champion.result.model_version
    )
    again = copied.client.get_model_version(copied.settings.model_name, copied.version)
    assert again.tags[VERSION_TAG] == champion.tags[VERSION_TAG] == sha256_of_files(copied.files)
    loaded = load_registered(copied.uri, copied.settings)
    assert loaded.ref.version == copied.version
    assert loaded.ref.artefact_digest == champion.tags[VERSION_TAG]
    raw = small_champion.result.test.raw[:20]
    np.testing.assert_array_equal(
        loaded.model.predict_proba(raw), small_champion.result.model.predict_proba(raw)
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_changed_byte_is_refused_naming_model_version_and_both_digests(copied):
    recorded = sha256_of_files(copied.files)
    _flip_one_byte(copied.files / "model.pkl")
    found = sha256_of_files(copied.files)
    assert found != recorded
    with pytest.raises(ArtefactDigestError) as refused:
        load_registered(copied.uri, copied.settings)
    message = str(refused.value)
    assert f"icans-risk version {copied.version} refused before loading" in message
    assert f"hash to SHA-256 {found}, expected SHA-256 {recorded}" in message
    assert "changed after registration" in message
    assert (refused.value.expected, refused.value.found) == (recorded, found)
    assert isinstance(refused.value, ModelNotFoundError)  # what every loader's caller handles
    # allow_unverified_models is about versions without a digest, never about a mismatch
    lenient = copied.settings.model_copy(update={"allow_unverified_models": True})
    with pytest.raises(ArtefactDigestError):
        load_registered(copied.uri, lenient)


class _RunsCode:
    """Unpickled, creates the file named: stands for any code a swapped pickle would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_swapped_pickle_is_never_unpickled(copied, tmp_path):
    """model.pkl replaced with a pickle that runs code when loaded: refused, and the code did
    not run (checked by the file it would have made). Added files are refused too."""
    marker = tmp_path / "code-ran"
    (copied.files / "model.pkl").write_bytes(pickle.dumps(_RunsCode(marker)))
    pickle.loads((copied.files / "model.pkl").read_bytes())  # the pickle does run code
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ArtefactDigestError, match=sha256_of_files(copied.files)):
        load_registered(copied.uri, copied.settings)
    assert not marker.exists()


def test_an_added_file_changes_the_digest(copied):
    recorded = sha256_of_files(copied.files)
    (copied.files / "extra.py").write_text("print('hello')\n")
    with pytest.raises(ArtefactDigestError, match=f"expected SHA-256 {recorded}"):
        load_registered(copied.uri, copied.settings)


@pytest.mark.parametrize("command", ["score", "evaluate", "serve"])
def test_the_commands_exit_2_naming_the_digest(command, small_champion, copied, tmp_path):
    """``icans score`` writes nothing, ``icans evaluate`` records nothing, and ``icans serve``
    starts no server (it loads the model before it starts one: serving.launch.serve), each with
    one line naming both digests."""
    recorded = sha256_of_files(copied.files)
    _flip_one_byte(copied.files / "model.pkl")
    out = tmp_path / "scores.parquet"
    args = {
        "score": ["--cohort", str(small_champion.cohort), "--out", str(out)],
        "evaluate": ["--cohort", str(small_champion.cohort)],
        "serve": ["--port", str(_free_port())],  # refused before anything binds it
    }[command]
    result = CliRunner().invoke(
        app,
        [command, *args, "--model", copied.uri, "--tracking-uri", copied.settings.tracking_uri],
    )
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"error: icans-risk version {copied.version} refused before loading")
    assert f"SHA-256 {sha256_of_files(copied.files)}, expected SHA-256 {recorded}" in line
    assert not out.exists()
    assert copied.client.get_experiment_by_name("icans-risk-evaluation") is None  # no run recorded


def test_evaluate_refuses_a_changed_baseline_naming_it(small_champion, copied):
    """The baselines ``icans evaluate`` scores beside the model are checked the same way,
    against the digests their training run recorded."""
    run_id = copied.client.get_model_version(copied.settings.model_name, copied.version).run_id
    local = stored_model_dir(copied.client, copied.settings.model_name, copied.version).parent
    baseline = local / "baseline_logistic"
    recorded = sha256_of_files(baseline)
    assert copied.client.get_run(run_id).data.tags[run_tag("baseline_logistic")] == recorded
    _flip_one_byte(baseline / "model.pkl")
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--cohort",
            str(small_champion.cohort),
            "--model",
            copied.uri,
            "--tracking-uri",
            copied.settings.tracking_uri,
        ],
    )
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"error: baseline_logistic of run {run_id} refused before loading")
    assert f"SHA-256 {sha256_of_files(baseline)}, expected SHA-256 {recorded}" in line
