"""Artefacts that cannot be swapped: a logged model's files are hashed when it is registered, and
checked against that digest before every load.

Why: a model is a pickle, and unpickling runs code. Whoever can write to the artefact store (the
directory or bucket the tracking server keeps its files in) could otherwise replace a registered
model's ``model.pkl`` and run code in every replica and every command that loads it, with a model
that was never trained, gated or registered.

At registration (:mod:`training.train`) the files of each logged model are hashed
(:func:`logged_digest`) and the digest is recorded in the tracking store, apart from the files:
as the model version's tag :data:`VERSION_TAG`, as the run's tag ``artefact_sha256.<path>`` for
the model and the baselines logged beside it (:func:`run_tag`), and in the model card. Every load
(:func:`registry.store.load_logged`) reads the files once into memory (:func:`fetch`), hashes
those bytes, compares the digest with the recorded one (:func:`check`), and only then unpickles
the same bytes: nothing is read twice, so a file swapped between the check and the load is never
the one loaded. A mismatch is refused with :class:`~icans.errors.ArtefactDigestError` naming the
model, the version, the recorded and the found digest.

The digest (:func:`digest`) is the SHA-256 of a manifest of every file of the model's directory,
one line per file in byte order of its relative path: ``<SHA-256 of its bytes>  <path>\\n``, what
``sha256sum`` prints. Names are included, so a file added, removed or renamed changes it too. An
operator can recompute it with coreutils alone::

    cd <downloaded model directory> &&
      find . -type f ! -path ./registered_model_meta -printf '%P\\n' | LC_ALL=C sort |
      xargs -d '\\n' sha256sum | sha256sum

The one file left out is :data:`EXCLUDED`, ``registered_model_meta``: MLflow itself (re)writes it
into a model's directory whenever the model is downloaded (the registered name and version asked
for), so it is no part of the model as trained; nothing here reads it.

A version registered before digests were recorded (or from outside ``icans train``) has none.
It is refused too, unless the setting ``allow_unverified_models`` says to load such versions
unchecked (with a warning): otherwise removing the digest would be a way round the check, and an
operator upgrading must choose, knowingly, to keep serving an unchecked version until it is
retrained. A version that has a digest is always checked, whatever the setting.

What this does not protect against: whoever can write to the registry (the tracking store's
database) can record the digest of files of their own. The registry is trusted; the artefact
store need not be (docs/security.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow.artifacts

from icans.errors import ArtefactDigestError

VERSION_TAG = "artefact_sha256"  # the model version's tag: the digest of its files
EXCLUDED = frozenset({"registered_model_meta"})  # written by MLflow at each download

log = logging.getLogger("icans.registry.digest")


def run_tag(artifact_path: str) -> str:
    """The run tag holding the digest of the model logged at ``artifact_path`` in that run
    (``artefact_sha256.model``, ``artefact_sha256.baseline_logistic``)."""
    return f"{VERSION_TAG}.{artifact_path}"


def read_files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` but :data:`EXCLUDED`, read once: relative POSIX path ->
    bytes, in byte order of the path."""
    directory = Path(directory)
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            relative = path.relative_to(directory).as_posix()
            if relative not in EXCLUDED:
                files[relative] = path.read_bytes()
    return dict(sorted(files.items(), key=lambda item: item[0].encode()))


def manifest(files: Mapping[str, bytes]) -> str:
    """One ``sha256sum`` line per file, in byte order of the path: what :func:`digest` hashes."""
    paths = sorted(files, key=str.encode)
    return "".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n" for p in paths)


def digest(files: Mapping[str, bytes]) -> str:
    """The SHA-256 (hex) of the :func:`manifest` of ``files``."""
    return hashlib.sha256(manifest(files).encode()).hexdigest()


def fetch(artifact_uri: str) -> dict[str, bytes]:
    """The files of the model logged at ``artifact_uri`` (``models:/name/version``,
    ``runs:/id/path``), downloaded into a temporary directory and read into memory
    (:func:`read_files`); MLflow's errors as they are."""
    with tempfile.TemporaryDirectory(prefix="icans-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=tmp)
        return read_files(Path(local))


def logged_digest(artifact_uri: str) -> str:
    """The digest of the model just logged at ``artifact_uri``, as the store holds it: what
    registration records."""
    return digest(fetch(artifact_uri))


def check(
    files: Mapping[str, bytes], expected: str | None, model: str, allow_unverified: bool
) -> str:
    """The digest of ``files`` if it is ``expected``; :class:`ArtefactDigestError` naming
    ``model`` (``"icans-risk version 3"``) if not, or if nothing is expected and
    ``allow_unverified`` is false. With ``allow_unverified``, a model without a recorded digest
    passes unchecked, with a warning."""
    found = digest(files)
    if expected is None:
        if not allow_unverified:
            raise ArtefactDigestError(
                model,
                None,
                found,
                "a version registered before digests were recorded, or from outside 'icans "
                "train', cannot be checked, and is not unpickled unchecked: retrain it ('icans "
                "train'), or set allow_unverified_models=true (ICANS_ALLOW_UNVERIFIED_MODELS) to "
                "load versions without a digest, trusting the artefact store",
            )
        log.warning(
            "%s has no recorded artefact digest: loaded unchecked (allow_unverified_models); "
            "its files hash to SHA-256 %s",
            model,
            found,
        )
        return found
    if found != expected.strip().lower():
        raise ArtefactDigestError(
            model,
            expected,
            found,
            "its files in the artefact store were changed after registration (or damaged): "
            "nothing was loaded. Find out who could write there, and register a version again "
            "from a training run ('icans train')",
        )
    return found
