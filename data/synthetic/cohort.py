"""Generate a whole cohort to disk, block by block, atomically; read it back.

* Memory stays bounded: blocks of :data:`BLOCK_SIZE` patients are generated and appended to
  the output files one at a time, so a million patients never sit in memory together.
* Atomic: everything is written to a hidden sibling directory that is renamed into place only
  when every table is complete; a failed or interrupted run leaves no partial output.
* Reproducible: block ``k`` is drawn from ``SeedSequence([seed, k])``; the files carry no
  timestamps, so the same seed, size, case mix and parameters give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data.synthetic.chunk import BLOCK_SIZE, generate_block
from data.synthetic.parameters import CASE_MIXES, GeneratorParameters
from data.synthetic.tables import TABLES, block_tables
from icans.errors import CohortNotFoundError, InvalidInputError

GENERATOR_VERSION = "1"
FORMATS = ("parquet", "csv")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CohortSpec:
    """What to generate. Validated on construction, before any work starts."""

    n_patients: int
    seed: int = 7
    case_mix: str = "real-world"
    fmt: str = "parquet"
    with_true_risk: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.n_patients, int) or not 1 <= self.n_patients <= 10_000_000:
            raise InvalidInputError("n", self.n_patients, "an integer from 1 to 10,000,000")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidInputError("seed", self.seed, "a non-negative integer")
        if self.case_mix not in CASE_MIXES:
            raise InvalidInputError("case_mix", self.case_mix, f"one of {sorted(CASE_MIXES)}")
        if self.fmt not in FORMATS:
            raise InvalidInputError("format", self.fmt, f"one of {list(FORMATS)}")


def _block_job(args: tuple[CohortSpec, int, GeneratorParameters]) -> dict[str, pd.DataFrame]:
    spec, k, params = args
    n = min(BLOCK_SIZE, spec.n_patients - k * BLOCK_SIZE)
    block = generate_block(spec.seed, k, n, CASE_MIXES[spec.case_mix], params, spec.with_true_risk)
    return block_tables(block)


def _blocks(
    spec: CohortSpec, params: GeneratorParameters, workers: int
) -> Iterator[dict[str, pd.DataFrame]]:
    jobs = [(spec, k, params) for k in range(-(-spec.n_patients // BLOCK_SIZE))]
    if workers <= 1 or len(jobs) == 1:
        yield from map(_block_job, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # map() keeps block order, so the files do not depend on the number of workers.
        yield from pool.map(_block_job, jobs)


class _TableWriter:
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def generate_cohort(
    out: Path,
    spec: CohortSpec,
    params: GeneratorParameters | None = None,
    *,
    overwrite: bool = False,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Generate ``spec`` into directory ``out`` and return its manifest."""
    params = params or GeneratorParameters()
    ext = "parquet" if spec.fmt == "parquet" else "csv"
    with atomic_directory(out, overwrite) as tmp:
        writers = {
            name: _TableWriter(tmp / f"{name}.{ext}", spec.fmt)
            for name in TABLES
            if name != "true_risk" or spec.with_true_risk
        }
        try:
            for tables in _blocks(spec, params, workers):
                for name, frame in tables.items():
                    writers[name].write(frame)
                if progress:
                    progress(len(tables["patients"]))
        finally:
            for w in writers.values():
                w.close()
        files = {
            name: {"file": w.path.name, "rows": w.rows, "sha256": _sha256(w.path)}
            for name, w in writers.items()
        }
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "n_patients": spec.n_patients,
            "seed": spec.seed,
            "case_mix": spec.case_mix,
            "format": spec.fmt,
            "parameters_fingerprint": params.fingerprint(),
            "tables": files,
            "fingerprint": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[
                :16
            ],
            "synthetic": True,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(cohort_dir: Path) -> dict:
    """The cohort's manifest; a clear error if the directory is not a generated cohort."""
    path = Path(cohort_dir) / MANIFEST
    if not path.is_file():
        raise CohortNotFoundError(
            f"{cohort_dir} is not a cohort directory (no {MANIFEST}); create one with "
            "'icans cohort generate --out DIR'"
        )
    return json.loads(path.read_text())


def read_table(cohort_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One table of a generated cohort (Parquet or CSV, as written)."""
    manifest = read_manifest(cohort_dir)
    if name not in manifest["tables"]:
        raise CohortNotFoundError(f"{cohort_dir} has no '{name}' table")
    path = Path(cohort_dir) / manifest["tables"][name]["file"]
    if manifest["format"] == "csv":
        return pd.read_csv(path, usecols=columns)
    return pd.read_parquet(path, columns=columns)
