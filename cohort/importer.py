"""A centre's own cohort: its files checked, then converted once into a cohort directory.

The import format (``docs/import-format.md``) is the contract's observable tables as files in
one directory: ``patients``, ``daily``, ``measurements`` and ``outcomes``, each as ``.csv`` or
``.parquet``. Columns are those of the data dictionary (``docs/data-dictionary.md``); optional
columns may be absent, other columns are ignored (and named), rows may come in any order and
course days may be missing. The daily charted series (temperature, ICE and CAPD scores,
laboratory values) may come instead, or as well, as an ``observations`` file of one observation
per row, in the centre's units, pivoted into the ``daily`` table
(:mod:`cohort.observations`).

:func:`validate_source` reports every problem at once (file, row or line, patient, field, value,
rule): each value against the contract (:mod:`cohort.schema`), then the tables against each
other (:mod:`cohort.consistency`). :func:`import_cohort` writes nothing unless the whole cohort
is valid, and then writes it atomically (:func:`cohort.store.atomic_directory`) as Parquet with
a manifest recording its provenance, the source files' SHA-256 and the fingerprint, so the one
reader (:func:`cohort.reader.read_cohort`) reads it exactly as it reads a generated cohort.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd
import pyarrow.parquet as pq

from cohort import observations
from cohort.consistency import cohort_errors
from cohort.reader import OBSERVABLE_COLUMNS, CohortMetadata, read_metadata
from cohort.schema import TABLES, validate_tables
from cohort.store import (
    TableWriter,
    atomic_directory,
    fingerprint,
    sha256_file,
    write_manifest,
)
from icans.errors import InvalidCohortError, InvalidInputError

SUFFIXES = (".csv", ".parquet")
PROVENANCES = ("real", "synthetic")
_SORT = {"daily": ["patient_id", "day"], "measurements": ["patient_id", "day"]}


@dataclass(frozen=True)
class Source:
    """A directory of table files, read: the frames (index = the row's place in its file) and
    what is known about each file."""

    directory: Path
    files: dict[str, Path]
    frames: dict[str, pd.DataFrame]

    def ignored_columns(self) -> dict[str, list[str]]:
        """Per table, the columns outside the contract (not imported)."""
        return {
            name: extra
            for name, frame in self.frames.items()
            if (
                extra := [
                    c
                    for c in frame.columns
                    if c not in OBSERVABLE_COLUMNS.get(name, observations.COLUMNS)
                ]
            )
        }


def source_files(directory: Path) -> dict[str, Path]:
    """The file of each table: ``<table>.csv`` or ``<table>.parquet``, and the optional
    ``observations`` file if there is one; every problem at once."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidCohortError(
            [InvalidInputError("directory", str(directory), "an existing directory")],
            table="import",
        )
    found, errors = {}, []
    for name in (*TABLES, observations.NAME):
        candidates = [
            directory / f"{name}{s}" for s in SUFFIXES if (directory / f"{name}{s}").is_file()
        ]
        if len(candidates) == 1:
            found[name] = candidates[0]
        elif not candidates and name == observations.NAME:
            pass  # optional: the daily series may all come in the daily table
        elif not candidates:
            errors.append(
                InvalidInputError(
                    f"{name} table",
                    "no file",
                    f"a file {name}.csv or {name}.parquet",
                    where=str(directory),
                )
            )
        else:
            errors.append(
                InvalidInputError(
                    f"{name} table",
                    [c.name for c in candidates],
                    f"one file for the {name} table, not both formats",
                    where=str(directory),
                )
            )
    if errors:
        raise InvalidCohortError(errors, table="import")
    return found


# An observations file has millions of rows of a few distinct texts: read them as categories
# (patient identifiers too, kept as written: "007" stays "007").
_TEXT = {"patient_id": "category", "series": "category", "unit": "category"}


def _read(path: Path, name: str = "") -> pd.DataFrame:
    """One file; CSV rows are numbered by their line in the file (the header is line 1)."""
    if path.suffix == ".parquet" and name == observations.NAME:
        text = [c for c in _TEXT if c in pq.read_schema(path).names]
        return pq.read_table(path, read_dictionary=text).to_pandas()
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    dtype = _TEXT if name == observations.NAME else {"patient_id": str}
    frame = pd.read_csv(path, dtype=cast(dict, dtype), keep_default_na=True)
    frame.index = frame.index + 2
    return frame


def read_source(directory: Path) -> Source:
    files = source_files(directory)
    return Source(Path(directory), files, {name: _read(path, name) for name, path in files.items()})


def _located(error: InvalidInputError, source: Source) -> InvalidInputError:
    """The error with its table named by the file, and CSV rows called lines."""
    where = error.where or ""
    for name, path in source.files.items():
        if where.startswith(f"{name}: "):
            rest = where[len(name) + 2 :]
            if path.suffix == ".csv":
                rest = rest.replace("(row ", "(line ").replace("row ", "line ")
            where = f"{path.name}: {rest}"
            break
    return InvalidInputError(error.field, error.value, error.expected, where=where)


def validate_source(directory: Path) -> tuple[Source, dict[str, pd.DataFrame]]:
    """The source read and its validated tables; :class:`InvalidCohortError` listing every
    problem: values against the contract, then the tables against each other."""
    source = read_source(directory)
    errors, tables = [], dict(source.frames)
    if observations.NAME in tables:
        tables["daily"], errors = observations.merge_observations(
            tables["daily"], tables.pop(observations.NAME)
        )
    try:
        tables = validate_tables(tables)
    except InvalidCohortError as exc:
        errors += exc.errors
    errors += cohort_errors(tables)  # on the frames as read where the values were not all valid
    if errors:
        raise InvalidCohortError([_located(e, source) for e in errors], table="import")
    return source, tables


def import_cohort(
    directory: Path, out: Path, provenance: str = "real", overwrite: bool = False
) -> CohortMetadata:
    """Validate ``directory`` and write it to ``out`` as a cohort (Parquet, sorted, contract
    columns only). Nothing is written unless everything is valid."""
    if provenance not in PROVENANCES:
        raise InvalidInputError("provenance", provenance, f"one of {', '.join(PROVENANCES)}")
    source, tables = validate_source(directory)
    with atomic_directory(out, overwrite) as tmp:
        entries = {}
        for name in TABLES:
            frame = tables[name]
            frame = cast(
                pd.DataFrame, frame[[c for c in OBSERVABLE_COLUMNS[name] if c in frame.columns]]
            )
            frame = frame.sort_values(_SORT.get(name, ["patient_id"]), kind="stable")
            writer = TableWriter(tmp / f"{name}.parquet", "parquet")
            writer.write(frame.reset_index(drop=True))
            writer.close()
            entries[name] = writer.entry()
        manifest = {
            "format": "parquet",
            "provenance": provenance,
            "n_patients": len(tables["patients"]),
            "tables": entries,
            "fingerprint": fingerprint(entries),
            "source": {
                "directory": str(source.directory.resolve()),
                "files": {
                    name: {
                        "file": path.name,
                        "rows": len(source.frames[name]),
                        "sha256": sha256_file(path),
                    }
                    for name, path in source.files.items()
                },
                "ignored_columns": source.ignored_columns(),
            },
            "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        write_manifest(tmp, manifest)
    return read_metadata(out)


def write_templates(directory: Path, overwrite: bool = False) -> list[Path]:
    """Empty CSV files, one per table, with every contract column as the header (optional
    columns included: delete those a centre does not record). Refuses to replace a file."""
    directory = Path(directory)
    paths = [directory / f"{name}.csv" for name in TABLES]
    existing = [p.name for p in paths if p.exists()]
    if existing and not overwrite:
        raise InvalidInputError(
            "out", str(directory), f"a directory without {', '.join(existing)} (or --overwrite)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name, path in zip(TABLES, paths, strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        pd.DataFrame(columns=OBSERVABLE_COLUMNS[name]).to_csv(tmp, index=False)
        tmp.replace(path)
    return paths
