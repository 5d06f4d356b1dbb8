"""Generate a whole cohort to disk, block by block, atomically (read it with :mod:`cohort.reader`).

* Memory stays bounded: blocks of :data:`BLOCK_SIZE` patients are generated and appended to
  the output files one at a time, so a million patients never sit in memory together.
* Atomic: everything is written to a hidden sibling directory that is renamed into place only
  when every table is complete; a failed or interrupted run leaves no partial output.
* Reproducible: block ``k`` is drawn from ``SeedSequence([seed, k])``; the files carry no
  timestamps, so the same seed, size, case mix and parameters give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cohort.store import FORMATS, TableWriter, atomic_directory, fingerprint, write_manifest
from data.synthetic.backward import prepare_backward_tables
from data.synthetic.chunk import BLOCK_SIZE, generate_block
from data.synthetic.description import describe_generator
from data.synthetic.parameters import CASE_MIXES, GeneratorParameters
from data.synthetic.tables import TABLES, block_tables
from icans.errors import InvalidInputError


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
    if spec.with_true_risk:  # once here, not once in every worker (the workers fork)
        prepare_backward_tables(params, CASE_MIXES[spec.case_mix])
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # map() keeps block order, so the files do not depend on the number of workers.
        yield from pool.map(_block_job, jobs)


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
            name: TableWriter(tmp / f"{name}.{ext}", spec.fmt)
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
        files = {name: w.entry() for name, w in writers.items()}
        manifest = {
            "provenance": "synthetic",
            "n_patients": spec.n_patients,
            "format": spec.fmt,
            "tables": files,
            "fingerprint": fingerprint(files),
            "generator": describe_generator(params, spec.case_mix, spec.seed),
        }
        write_manifest(tmp, manifest)
    return manifest
