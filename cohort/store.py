"""A cohort directory on disk: its tables (Parquet or CSV), its manifest, atomic writing.

Every cohort, generated or imported, is a directory holding one file per table and a
``manifest.json`` that records, for each table, its file, row count and SHA-256, plus a
fingerprint of them all (so a run can say exactly which data it learnt from) and the cohort's
provenance. Writers build the directory in a hidden sibling renamed into place only when complete,
so a failed or interrupted run leaves no partial cohort.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    """Yield a temporary sibling directory that replaces ``out`` only if the block succeeds."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError(
            "out", str(out), "a new or empty directory (pass --overwrite to replace it)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


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
    cohort_dir: Path, name: str, columns: list[str] | None = None, manifest: dict | None = None
) -> pd.DataFrame:
    """One table of a cohort (Parquet or CSV, as written)."""
    manifest = manifest or read_manifest(cohort_dir)
    path = _table_path(cohort_dir, name, manifest)
    if manifest["format"] == "csv":
        return pd.read_csv(path, usecols=columns)
    return pd.read_parquet(path, columns=columns)
