"""The one way into a cohort: its observable tables and what is known about where they came from.

Training, evaluation and the reports read every cohort, generated or imported, through
:func:`read_cohort`. It returns only the contract's columns (:mod:`icans.contract`), so nothing
downstream can come to depend on a column only the generator writes (its latent classes, say),
and the cohort's metadata: provenance (synthetic or real), fingerprint, and, for a generated
cohort, the generator's description of itself (version, parameters, case mix, seed, the effect
directions it builds in, its main assumptions). The generator's true risk, when the cohort has
it, comes as its own table; it is for evaluation only, never an input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cohort.store import read_manifest, read_table, table_columns
from icans.contract import BASELINE, COURSE, OUTCOMES, RECORD

TRUE_RISK = "true_risk"


def _contract_columns(table: str) -> list[str]:
    keys = ["patient_id", "day"] if table in ("daily", "measurements") else ["patient_id"]
    fields = {"patients": BASELINE + RECORD, "outcomes": OUTCOMES}.get(table) or [
        f for f in COURSE if f.table == table
    ]
    return keys + list(dict.fromkeys(f.table_column for f in fields))


OBSERVABLE_COLUMNS = {
    t: _contract_columns(t) for t in ("patients", "daily", "measurements", "outcomes")
}


@dataclass(frozen=True)
class CohortMetadata:
    """What a report or a training run must say about the data it used."""

    directory: str
    fingerprint: str
    provenance: str  # "synthetic" (from the generator) or "real"
    n_patients: int
    tables: dict[str, dict] = field(default_factory=dict)  # name -> file, rows, sha256
    generator: dict | None = None  # a generated cohort's description of its generator

    @property
    def synthetic(self) -> bool:
        return self.provenance == "synthetic"

    @property
    def has_true_risk(self) -> bool:
        return TRUE_RISK in self.tables

    def describe(self) -> str:
        """One line: 'synthetic cohort 1a2b..., 10,000 patients (case mix real-world, seed 7)'."""
        extra = ""
        if self.generator:
            extra = (
                f" (case mix {self.generator.get('case_mix', '?')}, "
                f"seed {self.generator.get('seed', '?')})"
            )
        return f"{self.provenance} cohort {self.fingerprint}, {self.n_patients:,} patients{extra}"


@dataclass
class Cohort:
    tables: dict[str, pd.DataFrame]
    metadata: CohortMetadata


def read_metadata(cohort_dir: Path, manifest: dict | None = None) -> CohortMetadata:
    """The cohort's metadata from its manifest (cohorts written before provenance was recorded
    are generated ones: their manifest says ``synthetic``)."""
    m = manifest or read_manifest(cohort_dir)
    provenance = m.get("provenance") or ("synthetic" if m.get("synthetic") else "real")
    generator = m.get("generator")
    if generator is None and provenance == "synthetic":
        generator = {
            k: m[k]
            for k in ("generator_version", "parameters_fingerprint", "case_mix", "seed")
            if k in m
        }
    return CohortMetadata(
        str(cohort_dir), m["fingerprint"], provenance, int(m["n_patients"]), m["tables"], generator
    )


def _present_columns(cohort_dir: Path, manifest: dict) -> dict[str, list[str]]:
    """Each observable table's contract columns that the cohort has (an optional column may be
    absent; the schema says so if a required one is)."""
    out = {}
    for name, columns in OBSERVABLE_COLUMNS.items():
        present = set(table_columns(cohort_dir, name, manifest))
        out[name] = [c for c in columns if c in present]
    return out


def read_cohort(cohort_dir: Path, with_true_risk: bool = True) -> Cohort:
    """The observable tables (contract columns only) and, if present and wanted, the true risk.

    The tables are read as stored; :func:`cohort.schema.validate_tables` checks them."""
    manifest = read_manifest(cohort_dir)
    tables = {
        name: read_table(cohort_dir, name, columns, manifest)
        for name, columns in _present_columns(cohort_dir, manifest).items()
    }
    metadata = read_metadata(cohort_dir, manifest)
    if with_true_risk and metadata.has_true_risk:
        tables[TRUE_RISK] = read_table(cohort_dir, TRUE_RISK, manifest=manifest)
    return Cohort(tables, metadata)


def read_cohort_chunks(
    cohort_dir: Path, patients_per_chunk: int
) -> Iterator[dict[str, pd.DataFrame]]:
    """The observable tables of :func:`read_cohort`, ``patients_per_chunk`` patients at a time
    (in the patients table's order), for work whose memory must not grow with the cohort:
    a Parquet cohort's chunk reads only its patients' rows; a CSV cohort's tables are read
    whole once per chunk and filtered (import it to Parquet for large cohorts)."""
    manifest = read_manifest(cohort_dir)
    columns = _present_columns(cohort_dir, manifest)
    patients = read_table(cohort_dir, "patients", columns.pop("patients"), manifest)
    for start in range(0, len(patients), patients_per_chunk):
        chunk = patients.iloc[start : start + patients_per_chunk].reset_index(drop=True)
        ids = chunk["patient_id"].tolist()
        yield {"patients": chunk} | {
            name: read_table(cohort_dir, name, cols, manifest, ids).reset_index(drop=True)
            for name, cols in columns.items()
        }
