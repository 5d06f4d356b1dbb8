"""A cohort directory on disk: its tables (Parquet or CSV), its manifest, atomic writing.

Every cohort, generated or imported, is a directory holding one file per table and a
``manifest.json`` that records, for each table, its file, row count and SHA-256, plus a
fingerprint of them all (so a run can say exactly which data it learnt from) and the cohort's
provenance. Writers build the directory in a hidden sibling renamed into place only when complete,
so a failed or interrupted run leaves no partial cohort, and a killed one leaves a hidden
directory that the next run removes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from icans.errors import CohortNotFoundError, InvalidInputError

FORMATS = ("parquet", "csv")
MANIFEST = "manifest.json"


class TableWriter:
    """Appends blocks of one table to a Parquet or CSV file."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self.rows = path, fmt, 0
        self._parquet: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            frame.to_csv(self.path, mode="a", header=self.rows == 0, index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self._parquet.write_table(table.cast(self._parquet.schema))
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()

    def entry(self) -> dict:
        """The table's manifest entry: file name, rows and SHA-256 of the file."""
        return {"file": self.path.name, "rows": self.rows, "sha256": sha256_file(self.path)}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(tables: dict[str, dict]) -> str:
    """16 hex digits identifying the cohort's table files (names, rows and contents)."""
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def atomic_directory(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``out`` only if the block succeeds.

    The writer holds an exclusive ``flock`` on its temporary directory while it writes: the
    kernel releases it when the process ends, however it ends. So a run killed outright
    (SIGKILL: no clean-up runs) leaves a directory that no one holds, and the next run removes
    it (:func:`remove_abandoned`), while the directory of a writer still at work is left alone.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError(
            "out", str(out), "a new or empty directory (pass --overwrite to replace it)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(out.parent)
    # made and held with SIGINT and SIGTERM blocked: one that comes meanwhile is handled once
    # the clean-up below is in place, so no interruption can leave the directory behind
    interrupts = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, interrupts)
    try:
        tmp, held = _held_directory(out)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        raise
    complete = False
    old = out.parent / f".{out.name}{_OLD}{uuid.uuid4().hex[:8]}"
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        yield tmp
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        complete = True
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if not complete:
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not out.exists():  # interrupted between the two renames
                old.rename(out)
        os.close(held)


_TMP, _OLD = ".tmp-", ".old-"  # hidden siblings: ".<name>.tmp-<8 hex>", ".<name>.old-<8 hex>"


def _held_directory(out: Path) -> tuple[Path, int]:
    """A new hidden working directory for ``out`` and the descriptor holding its lock. Between
    ``mkdir`` and ``flock`` another run's :func:`remove_abandoned` may take it for abandoned
    and remove it: then a new one is made."""
    while True:
        tmp = out.parent / f".{out.name}{_TMP}{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            return tmp, _lock(tmp, wait=True)
        except FileNotFoundError:
            continue
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def remove_abandoned(parent: Path) -> list[Path]:
    """Remove the hidden working directories of :func:`atomic_directory` in ``parent`` that no
    running writer holds (left by a killed run); return them. A replaced cohort whose
    replacement never arrived (killed between the two renames) is put back instead."""
    parent = Path(parent)
    removed = []
    for path in parent.glob(".*"):
        if not (path.is_dir() and (_TMP in path.name or _OLD in path.name)):
            continue
        try:
            held = _lock(path, wait=False)
        except (BlockingIOError, FileNotFoundError):
            continue  # a writer at work, or already gone
        try:
            name = path.name[1:].split(_OLD)[0] if _OLD in path.name else ""
            if name and not (parent / name).exists():
                path.rename(parent / name)  # the previous cohort, its replacement lost
            else:
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(held)
        removed.append(path)
    return removed


def _lock(directory: Path, wait: bool) -> int:
    """An open descriptor of ``directory`` holding its exclusive flock (BlockingIOError if
    another process holds it and ``wait`` is false)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_manifest(directory: Path, manifest: dict) -> None:
    (Path(directory) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(cohort_dir: Path) -> dict:
    """The cohort's manifest; a clear error if the directory is not a cohort."""
    path = Path(cohort_dir) / MANIFEST
    if not path.is_file():
        raise CohortNotFoundError(
            f"{cohort_dir} is not a cohort directory (no {MANIFEST}); create one with "
            "'icans cohort generate --out DIR'"
        )
    return json.loads(path.read_text())


def table_columns(cohort_dir: Path, name: str, manifest: dict | None = None) -> list[str]:
    """The column names of one table, read from its header without loading the data."""
    manifest = manifest or read_manifest(cohort_dir)
    path = _table_path(cohort_dir, name, manifest)
    if manifest["format"] == "csv":
        return list(pd.read_csv(path, nrows=0).columns)
    return list(pq.read_schema(path).names)


def _table_path(cohort_dir: Path, name: str, manifest: dict) -> Path:
    if name not in manifest["tables"]:
        raise CohortNotFoundError(f"{cohort_dir} has no '{name}' table")
    return Path(cohort_dir) / manifest["tables"][name]["file"]


def read_table(
    cohort_dir: Path,
    name: str,
    columns: list[str] | None = None,
    manifest: dict | None = None,
    patient_ids: list[str] | None = None,
) -> pd.DataFrame:
    """One table of a cohort (Parquet or CSV, as written); with ``patient_ids``, only those
    patients' rows (Parquet reads only them: row groups whose patient ids fall outside are
    skipped by their statistics)."""
    manifest = manifest or read_manifest(cohort_dir)
    path = _table_path(cohort_dir, name, manifest)
    if manifest["format"] == "csv":
        frame = pd.read_csv(path, usecols=columns)
        if patient_ids is None:
            return frame
        return cast(pd.DataFrame, frame[frame["patient_id"].isin(patient_ids)])
    filters = None if patient_ids is None else [("patient_id", "in", list(patient_ids))]
    return pd.read_parquet(path, columns=columns, filters=filters)
