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


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML file: [train] for training options, [settings] for paths/URIs."
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
]
ModelUri = Annotated[
    str, typer.Option(help="Registry URI: models:/<name>@<alias> or models:/<name>/<version>.")
]


def _stepper(bar: Progress):
    task = bar.add_task("starting", total=None)
    return lambda name: bar.update(task, description=name)


@app.command("train")
@user_errors
def train_cmd(
    cohort: Annotated[
        Path, typer.Option(help="Cohort directory written by 'icans cohort generate'.")
    ],
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
    seed: Annotated[
        int | None, typer.Option(help="Overrides [train] seed: splits, trees, bootstrap.")
    ] = None,
) -> None:
    """Train, evaluate on held-out patients, log to MLflow, register; promote if gates pass."""
    from icans.config import load_settings
    from training.config import load_train_config
    from training.train import train

    settings = load_settings(config, tracking_uri=tracking_uri)
    cfg = load_train_config(config)
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    with _progress() as bar:
        result = train(cohort, cfg, settings, step=_stepper(bar))
    print_evaluation(result.evaluation, "Held-out patients")
    console.print(
        f"MLflow run {result.run_id}; registered {settings.model_name} version "
        f"{result.model_version}: "
        + (
            f"[green]promoted to @{settings.model_alias}[/]"
            if result.promoted
            else f"[yellow]not promoted[/] ({result.gate.summary()})"
        )
    )
    console.print(
        f"Trained in {result.timings['total_s']:.0f} s (tracking store {settings.tracking_uri})."
    )


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort directory to evaluate on.")],
    model: ModelUri = "models:/icans-risk@champion",
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Evaluate a registered model on another cohort with the training metrics."""
    from icans.config import load_settings
    from training.assess import assess_registered_model
    from training.config import load_train_config

    settings = load_settings(config, tracking_uri=tracking_uri)
    result = assess_registered_model(model, cohort, settings, load_train_config(config))
    print_evaluation(
        result.evaluation,
        f"{result.model.name} v{result.model.version} on cohort "
        f"{result.cohort['fingerprint']} ({result.cohort['case_mix']})",
    )
    console.print(f"Recorded as MLflow run {result.run_id}.")


@app.command("report")
@user_errors
def report_cmd(
    cohort: Annotated[
        Path | None,
        typer.Option(
            help="Cohort directory to evaluate the model on (ideally not its training cohort). "
            "Without it: the report the training run logged, on its held-out patients."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="HTML file to write (self-contained; written atomically).")
    ] = Path("report.html"),
    model: ModelUri = "models:/icans-risk@champion",
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write a reviewer-facing HTML report: model card, performance, SHAP, TRIPOD+AI."""
    from icans.config import load_settings
    from reports.model_report import copy_logged_report, report_registered_model
    from training.config import load_train_config

    settings = load_settings(config, tracking_uri=tracking_uri)
    if cohort is None:
        path = copy_logged_report(model, out, settings)
    else:
        path = report_registered_model(model, cohort, out, settings, load_train_config(config))
    console.print(str(path), highlight=False, soft_wrap=True)


@app.command("explain")
@user_errors
def explain_cmd(
    patient: Annotated[
        Path,
        typer.Option(help="JSON file: one patient on one day (the body of POST /v1/risk)."),
    ],
    out: Annotated[
        Path, typer.Option(help="HTML file to write (self-contained; written atomically).")
    ] = Path("patient.html"),
    model: ModelUri = "models:/icans-risk@champion",
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write one patient's explanation page: risk with its uncertainty, waterfall, drivers."""
    from icans.config import load_settings
    from reports.patient import explain_patient_file

    settings = load_settings(config, tracking_uri=tracking_uri)
    path, a = explain_patient_file(patient, out, model, settings)
    interval = f" (95% interval {a.interval[0]:.1%}-{a.interval[1]:.1%})" if a.interval else ""
    console.print(
        f"Risk on day {a.landmark_day}: {a.probability:.1%}{interval}. "
        "SYNTHETIC-data model: decision support only.",
        highlight=False,
    )
    console.print(str(path), highlight=False, soft_wrap=True)


def print_evaluation(ev: Any, title: str) -> None:
    """Model vs true risk per landmark (95% bootstrap CIs), then the baselines overall."""
    from evaluation.evaluate import ordered_subsets

    m = ev.metrics.set_index(["subset", "predictor", "metric"])

    def cell(subset: str, predictor: str, metric: str, ci: bool = True) -> str:
        if (subset, predictor, metric) not in m.index:
            return "-"
        r = m.loc[(subset, predictor, metric)]
        if not np.isfinite(r["estimate"]):
            return "-"
        text = f"{r['estimate']:.3f}"
        if ci and np.isfinite(r["ci_low"]):
            text += f" ({r['ci_low']:.3f}-{r['ci_high']:.3f})"
        return text

    t = Table(title=f"{title}: model vs true risk (SYNTHETIC data)")
    for c in (
        "landmark",
        "rows",
        "events",
        "AUROC model",
        "AUROC true risk",
        "gap",
        "cal. slope",
        "cal. intercept",
        "Brier",
    ):
        t.add_column(c, justify="right")
    subsets = ordered_subsets(s for s, _, _ in m.index)
    for s in subsets:
        r = m.loc[(s, "model", "auroc")]
        t.add_row(
            s.replace("L=", "day "),
            f"{int(r['n_rows']):,}",
            f"{int(r['n_events']):,}",
            cell(s, "model", "auroc"),
            cell(s, "true_risk", "auroc", ci=False),
            cell(s, "model", "auroc_gap_to_true_risk"),
            cell(s, "model", "calibration_slope"),
            cell(s, "model", "calibration_intercept", ci=False),
            cell(s, "model", "brier", ci=False),
        )
    console.print(t)
    base = [p for p in ("logistic", "m_easix") if ("overall", p, "auroc") in m.index]
    if base:
        console.print(
            "Baselines, all landmarks: "
            + "; ".join(f"{p} AUROC {cell('overall', p, 'auroc')}" for p in base)
        )


@app.command("serve")
@user_errors
def serve_cmd(
    model: Annotated[
        str | None,
        typer.Option(help="Registry URI to serve (default models:/icans-risk@champion)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind (keep 127.0.0.1 unless a proxy fronts it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Serve a registered model with BentoML (JSON API under /v1, health at /livez, /readyz)."""
    from serving.launch import serve

    raise typer.Exit(code=serve(model, host, port, config, tracking_uri))


@app.command("demo")
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo cohort is written.")] = Path(
        "artifacts/demo-cohort"
    ),
    n: Annotated[
        int,
        typer.Option(
            help="Number of patients (10,000 by default: at 5,000 the trees trail the logistic "
            "baseline by more than the gate's margin and are not promoted)."
        ),
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    serve: Annotated[
        bool, typer.Option(help="End by serving the champion on 127.0.0.1 (Ctrl-C stops).")
    ] = True,
    port: Annotated[int, typer.Option(help="Port of the service.")] = 3000,
) -> None:
    """The main job on embedded defaults: generate, train, register the champion, serve it."""
    from data.synthetic.cohort import CohortSpec, generate_cohort
    from data.synthetic.summary import summarise
    from icans.config import load_settings
    from reports.model_report import copy_logged_report
    from reports.patient import explain_patient_file
    from training.config import TrainConfig
    from training.train import train

    with _progress() as bar:
        task = bar.add_task("generating patients", total=n)
        generate_cohort(
            out,
            CohortSpec(n_patients=n, seed=seed),
            overwrite=True,
            progress=lambda k: bar.advance(task, k),
        )
    print_summary(summarise(out))
    settings = load_settings()
    with _progress() as bar:
        result = train(out, TrainConfig(seed=seed), settings, step=_stepper(bar))
    print_evaluation(result.evaluation, "Held-out patients")
    if not result.promoted:
        Console(stderr=True).print(f"[red]The model was not promoted: {result.gate.summary()}[/]")
        raise typer.Exit(code=1)
    console.print(
        f"Champion: {settings.model_uri} -> version {result.model_version} "
        f"(MLflow run {result.run_id}, store {settings.tracking_uri})."
    )
    example = write_example_request(out, settings.artifacts_dir / "example-patient.json")
    report = copy_logged_report(
        settings.model_uri, settings.artifacts_dir / "report.html", settings
    )
    page, _ = explain_patient_file(
        example, settings.artifacts_dir / "example-patient.html", settings.model_uri, settings
    )
    console.print(
        f"Reviewers' report (held-out patients): {report}\n"
        f"One patient's explanation: {page}\n"
        "Open either in any browser (self-contained files, no network needed).\n"
        "Try the service (another terminal, once it is up):\n"
        f"  curl -s -X POST http://127.0.0.1:{port}/v1/risk "
        f"-H 'Content-Type: application/json' -d @{example}\n"
        f"  curl -s -X POST http://127.0.0.1:{port}/v1/report "
        f"-H 'Content-Type: application/json' -d @{example} -o patient.html",
        highlight=False,
    )
    if serve:
        from serving.launch import serve as start_service

        raise typer.Exit(code=start_service(None, "127.0.0.1", port, None, None))


def write_example_request(cohort: Path, path: Path) -> Path:
    """A real patient of the cohort on day 5, as the endpoint's JSON (no identifier)."""
    import json

    from features.landmarks import load_cohort_tables, patient_record

    tables = load_cohort_tables(cohort)
    daily = tables["daily"]
    with_crs = daily[(daily["day"] <= 5) & (daily["crs_grade"] >= 2)]["patient_id"]
    patient_id = with_crs.iloc[0] if len(with_crs) else tables["patients"]["patient_id"].iloc[0]
    record = patient_record(tables, patient_id, 5)
    record.pop("patient_id")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


if __name__ == "__main__":  # pragma: no cover
    app()
