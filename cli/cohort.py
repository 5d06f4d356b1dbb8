"""``icans cohort``: generate a synthetic cohort, summarise one, and take a centre's own
through template, validation and import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.guards import sigterm_unwinds, user_errors
from cli.options import progress
from cli.output import console, print_summary
from icans.config import load_settings

app = typer.Typer(
    help="Generate synthetic CAR-T cohorts; validate and import a centre's own.",
    no_args_is_help=True,
)


@app.command("generate")
@user_errors
@sigterm_unwinds
def cohort_generate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Output directory, created atomically (default artifacts/cohort)."
        ),
    ] = None,
    n: Annotated[int, typer.Option(help="Number of patients (1 to 10,000,000).")] = 5000,
    seed: Annotated[
        int, typer.Option(help="Random seed; same seed and options give byte-identical files.")
    ] = 7,
    case_mix: Annotated[
        str,
        typer.Option(
            help="Case-mix preset: real-world, myeloid-centre, seed-series or paediatric-all."
        ),
    ] = "real-world",
    fmt: Annotated[str, typer.Option("--format", help="Table format: parquet or csv.")] = "parquet",
    true_risk: Annotated[
        bool, typer.Option(help="Also compute the exact true-risk table (landmark days 0-14).")
    ] = True,
    workers: Annotated[
        int, typer.Option(help="Worker processes (blocks of 10,000 patients run in parallel).")
    ] = 1,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing non-empty directory.")
    ] = False,
) -> None:
    """Generate a synthetic cohort: patients, daily course, CAR-T samples, outcomes, true risk."""
    from data.synthetic.cohort import CohortSpec, generate_cohort

    out = out or load_settings().cohort_dir
    spec = CohortSpec(n_patients=n, seed=seed, case_mix=case_mix, fmt=fmt, with_true_risk=true_risk)
    with progress() as bar:
        task = bar.add_task("generating patients", total=n)
        manifest = generate_cohort(
            out, spec, overwrite=overwrite, workers=workers, progress=lambda k: bar.advance(task, k)
        )
    console.print(
        f"Wrote {n:,} synthetic patients to {out} (cohort fingerprint {manifest['fingerprint']})."
    )


@app.command("summary")
@user_errors
def cohort_summary(
    cohort_dir: Annotated[
        Path, typer.Argument(help="A directory written by 'icans cohort generate'.")
    ],
) -> None:
    """Print incidence by product family vs published ranges, grades, onset and true-risk AUROC."""
    from data.synthetic.summary import summarise

    print_summary(summarise(cohort_dir))


CohortSource = Annotated[
    Path,
    typer.Argument(
        help="A directory with patients, daily, measurements and outcomes as .csv or .parquet "
        "(docs/import-format.md)."
    ),
]


@app.command("template")
@user_errors
def cohort_template(
    out: Annotated[Path, typer.Argument(help="Directory for the four empty CSV files.")],
    overwrite: Annotated[bool, typer.Option(help="Replace existing template files.")] = False,
) -> None:
    """Write empty CSV templates (headers only) of the import format."""
    from cohort.importer import write_templates

    for path in write_templates(out, overwrite=overwrite):
        console.print(f"wrote {path}")
    console.print("Fill them in as docs/import-format.md says, then: icans cohort validate DIR")


@app.command("validate")
@user_errors
def cohort_validate(source: CohortSource) -> None:
    """Check a centre's cohort files; list every problem (file, row, patient, field, rule)."""
    from cohort.importer import validate_source

    checked, tables = validate_source(source)
    for name, columns in checked.ignored_columns().items():
        console.print(
            f"note: {checked.files[name].name}: columns not in the contract, ignored: "
            + ", ".join(columns)
        )
    console.print(
        f"{source}: valid ({len(tables['patients']):,} patients, {len(tables['daily']):,} "
        f"course days, {len(tables['measurements']):,} measurements)."
    )


@app.command("import")
@user_errors
@sigterm_unwinds
def cohort_import(
    source: CohortSource,
    out: Annotated[Path, typer.Option("--out", help="The cohort directory to create.")],
    provenance: Annotated[
        str, typer.Option(help="Where the data came from: real (patients) or synthetic.")
    ] = "real",
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing non-empty directory.")
    ] = False,
) -> None:
    """Validate a centre's cohort files and convert them once into a cohort directory."""
    from cohort.importer import import_cohort

    meta = import_cohort(source, out, provenance=provenance, overwrite=overwrite)
    console.print(f"Imported {meta.describe()} to {out}.")
