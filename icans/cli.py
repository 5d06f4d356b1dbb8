"""The ``icans`` command line: a thin layer over library functions, one sub-command per job.

Every command parses its options, calls one library function and prints the result; errors
the user can fix (bad option values, missing cohort) print one clear line and exit with code 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from icans.errors import IcansError

app = typer.Typer(
    name="icans",
    help=(
        "ICANS risk service: synthetic CAR-T cohorts, risk models and explanations. "
        "Decision support trained on SYNTHETIC data only; not for clinical use."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cohort_app = typer.Typer(
    help="Generate and summarise synthetic CAR-T cohorts.", no_args_is_help=True
)
app.add_typer(cohort_app, name="cohort")
# Pipes and CI logs get a fixed width wide enough for the summary tables.
console = Console() if sys.stdout.isatty() else Console(width=130)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a project error as one line (no traceback) and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IcansError as exc:
            # Plain text, never wrapped: one line per error in terminals, pipes and CI logs.
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


CohortDir = Annotated[Path, typer.Option("--out", help="Output directory (created atomically).")]


@cohort_app.command("generate")
@user_errors
def cohort_generate(
    out: CohortDir = Path("artifacts/cohort"),
    n: Annotated[int, typer.Option(help="Number of patients (1 to 10,000,000).")] = 5000,
    seed: Annotated[
        int, typer.Option(help="Random seed; same seed and options give byte-identical files.")
    ] = 7,
    case_mix: Annotated[
        str, typer.Option(help="Case-mix preset: real-world, myeloid-centre or paediatric-all.")
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

    spec = CohortSpec(n_patients=n, seed=seed, case_mix=case_mix, fmt=fmt, with_true_risk=true_risk)
    with _progress() as bar:
        task = bar.add_task("generating patients", total=n)
        manifest = generate_cohort(
            out, spec, overwrite=overwrite, workers=workers, progress=lambda k: bar.advance(task, k)
        )
    console.print(
        f"Wrote {n:,} synthetic patients to {out} (cohort fingerprint {manifest['fingerprint']})."
    )


@cohort_app.command("summary")
@user_errors
def cohort_summary(
    cohort_dir: Annotated[
        Path, typer.Argument(help="A directory written by 'icans cohort generate'.")
    ],
) -> None:
    """Print incidence by product family vs published ranges, grades, onset and true-risk AUROC."""
    from data.synthetic.summary import summarise

    print_summary(summarise(cohort_dir))


def print_summary(s: Any) -> None:
    m = s.manifest
    console.print(
        f"[bold]Synthetic cohort[/] {m['n_patients']:,} patients, case mix "
        f"{m['case_mix']}, seed {m['seed']}, fingerprint {m['fingerprint']} "
        "(SYNTHETIC data, not patients)"
    )
    t = Table(title="ICANS by product family (% of patients; published = grade >= 3 range)")
    cols = {
        "patients": "n",
        "any_icans": "any",
        "grade_3_plus": "gr>=3",
        "published_grade_3_plus": "published",
        "within_range": "in range",
        "steroid_refractory": "SR",
        "target": "target",
        "grade_1_share_of_icans": "gr1 share",
        "icans_death": "death",
        "any_crs": "CRS",
    }
    t.add_column("family")
    for header in cols.values():
        t.add_column(header, justify="right")
    for fam, row in s.by_family.iterrows():
        t.add_row(fam, *[_fmt(row[c]) for c in cols])
    console.print(t)
    console.print(
        "ICANS max grade distribution: "
        + ", ".join(f"{g}: {v:.1%}" for g, v in s.grade_distribution.items())
    )
    for name, row in s.onset.iterrows():
        console.print(
            f"Onset ({name}): median day {row['median_onset_day']:.0f}; new onset "
            f"after day 14 in {row['new_onset_after_day_14']:.2%} of patients"
        )
    if s.true_risk_auroc is not None:
        t = Table(title="True risk by landmark day (event after the landmark, through day 28)")
        for c in ["landmark day", "at risk", "events after", "mean true risk", "AUROC"]:
            t.add_column(c, justify="right")
        for day, row in s.true_risk_auroc.iterrows():
            t.add_row(
                str(day),
                f"{int(row['at_risk']):,}",
                f"{int(row['events_after']):,}",
                f"{row['mean_true_risk']:.3f}",
                f"{row['auroc']:.3f}",
            )
        console.print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "NO"
    if isinstance(v, (float, np.floating)):
        return f"{v:.1%}"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return str(v)


@app.command("demo")
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo cohort is written.")] = Path(
        "artifacts/demo-cohort"
    ),
    n: Annotated[int, typer.Option(help="Number of patients.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """The main job on embedded defaults: generate a cohort and print its summary."""
    from data.synthetic.cohort import CohortSpec, generate_cohort
    from data.synthetic.summary import summarise

    with _progress() as bar:
        task = bar.add_task("generating patients", total=n)
        generate_cohort(
            out,
            CohortSpec(n_patients=n, seed=seed),
            overwrite=True,
            progress=lambda k: bar.advance(task, k),
        )
    print_summary(summarise(out))


if __name__ == "__main__":  # pragma: no cover
    app()
