"""The ``icans`` command line: a thin layer over library functions, one sub-command per job.

Every command parses its options, calls one library function and prints the result; errors
the user can fix (bad option values, missing cohort) print one clear line and exit with code 2.
Defaults (paths, tracking store, model URI, host and port) come from the settings object
(:mod:`icans.config`): an option left out takes the setting's value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.guards import sigterm_unwinds, user_errors
from cli.monitor import monitor_cmd
from cli.output import console, print_evaluation, print_summary
from cli.tracking import app as tracking_app
from icans.config import Settings, intended_use, load_settings

_DEFAULT = {name: field.default for name, field in Settings.model_fields.items()}
_CHAMPION = f"models:/{_DEFAULT['model_name']}@{_DEFAULT['model_alias']}"

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
    help="Generate synthetic CAR-T cohorts; validate and import a centre's own.",
    no_args_is_help=True,
)
app.add_typer(cohort_app, name="cohort")
app.add_typer(tracking_app, name="tracking")  # cli/tracking.py


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


def _stepper(bar: Progress):
    task = bar.add_task("starting", total=None)
    return lambda name: bar.update(task, description=name)


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        # rich reads [..] as markup: escaped so the table names show
        help="TOML file: \\[train] for training options, \\[settings] for paths/URIs.",
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        help=f"MLflow tracking URI (default: MLFLOW_TRACKING_URI, else {_DEFAULT['tracking_uri']})."
    ),
]
ModelUri = Annotated[
    str | None,
    typer.Option(
        help="Registry URI: models:/<name>@<alias> or models:/<name>/<version> "
        f"(default: the champion, {_CHAMPION})."
    ),
]
HtmlOut = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="HTML file to write (self-contained; written atomically; default under "
        "the artifacts directory).",
    ),
]


@cohort_app.command("generate")
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


CohortSource = Annotated[
    Path,
    typer.Argument(
        help="A directory with patients, daily, measurements and outcomes as .csv or .parquet "
        "(docs/import-format.md)."
    ),
]


@cohort_app.command("template")
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


@cohort_app.command("validate")
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


@cohort_app.command("import")
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


@app.command("train")
@user_errors
@sigterm_unwinds
def train_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort directory to train on.")],
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
    seed: Annotated[
        int | None, typer.Option(help="Overrides [train] seed: splits, trees, bootstrap.")
    ] = None,
) -> None:
    """Train, evaluate on held-out patients, log to MLflow, register; promote if gates pass."""
    from training.config import load_train_config
    from training.train import train

    settings = load_settings(config, tracking_uri=tracking_uri)
    cfg = load_train_config(config)
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    with _progress() as bar:
        result = train(cohort, cfg, settings, step=_stepper(bar))
    _print_run(result, settings, "Trained")


def _print_run(result, settings: Settings, verb: str) -> None:
    """A training or updating run: held-out metrics, the version and whether it was promoted."""
    print_evaluation(result.evaluation, "Held-out patients", result.cohort.synthetic)
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
        f"{verb} in {result.timings['total_s']:.0f} s (tracking store {settings.tracking_uri})."
    )
    for closed in result.closed_runs:  # left by training processes that died
        console.print(f"[yellow]Closed a dead training run:[/] {closed.summary()}")


@app.command("recalibrate")
@user_errors
@sigterm_unwinds
def recalibrate_cmd(
    cohort: Annotated[Path, typer.Option(help="The local cohort to recalibrate on.")],
    model: ModelUri = None,
    method: Annotated[
        str,
        typer.Option(
            help="intercept (match the local event rate) or intercept_and_slope (also the "
            "spread of the log-odds)."
        ),
    ] = "intercept",
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Recalibrate a registered model on a local cohort; register it as a new version with its
    parent, through the same gates (and against the champion) as a trained one."""
    from training.config import load_train_config
    from training.train import Update, train

    settings = load_settings(config, tracking_uri=tracking_uri)
    update = Update(model or settings.model_uri, method)
    with _progress() as bar:
        result = train(cohort, load_train_config(config), settings, _stepper(bar), update)
    _print_run(result, settings, "Recalibrated")


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort directory to evaluate on.")],
    model: ModelUri = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Evaluate a registered model on another cohort with the training metrics."""
    from training.assess import assess_registered_model
    from training.config import load_train_config

    settings = load_settings(config, tracking_uri=tracking_uri, model_uri=model)
    result = assess_registered_model(
        settings.model_uri, cohort, settings, load_train_config(config)
    )
    ref = result.registered.ref
    print_evaluation(
        result.evaluation,
        f"{ref.name} v{ref.version} on {result.cohort.describe()}",
        result.cohort.synthetic,
    )
    console.print(f"Recorded as MLflow run {result.run_id}.")


@app.command("score")
@user_errors
@sigterm_unwinds
def score_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort directory (generated or imported).")],
    out: Annotated[Path, typer.Option(help="Scores file, .parquet or .csv (written atomically).")],
    model: ModelUri = None,
    explain: Annotated[
        bool, typer.Option(help="Also write each row's contributions per clinical input.")
    ] = False,
    chunk: Annotated[
        int, typer.Option(help="Patients read and scored at a time (bounds the memory).")
    ] = 5_000,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score every landmark row of a cohort with a registered model (the endpoint's numbers)."""
    from training.score import score_cohort

    settings = load_settings(config, tracking_uri=tracking_uri, model_uri=model)
    with _progress() as bar:
        task = bar.add_task("scoring patients", total=None)
        summary = score_cohort(
            cohort,
            settings.model_uri,
            out,
            settings,
            explain=explain,
            patients_per_chunk=chunk,
            progress=lambda k: bar.advance(task, k),
        )
    console.print(
        f"Scored {summary.rows:,} landmark rows of {summary.patients:,} patients with "
        f"{summary.model_name} v{summary.model_version} into {summary.out} "
        f"in {summary.seconds:.1f} s."
    )
    console.print(intended_use(summary.synthetic_model))


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
    out: HtmlOut = None,
    model: ModelUri = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write a reviewer-facing HTML report: model card, performance, SHAP, TRIPOD+AI."""
    from reports.registry_io import write_logged_report
    from training.assess import report_registered_model
    from training.config import load_train_config

    settings = load_settings(config, tracking_uri=tracking_uri, model_uri=model)
    out = out or settings.artifacts_dir / "report.html"
    if cohort is None:
        path = write_logged_report(settings.model_uri, out, settings)
    else:
        path = report_registered_model(
            settings.model_uri, cohort, out, settings, load_train_config(config)
        )
    console.print(str(path), highlight=False, soft_wrap=True)


@app.command("explain")
@user_errors
def explain_cmd(
    patient: Annotated[
        Path,
        typer.Option(help="JSON file: one patient on one day (the body of POST /v1/risk)."),
    ],
    out: HtmlOut = None,
    model: ModelUri = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write one patient's explanation page: risk with its uncertainty, waterfall, drivers."""
    from reports.patient import explain_patient_file

    settings = load_settings(config, tracking_uri=tracking_uri, model_uri=model)
    out = out or settings.artifacts_dir / "patient.html"
    path, a = explain_patient_file(patient, out, settings.model_uri, settings)
    interval = f" (95% interval {a.interval[0]:.1%}-{a.interval[1]:.1%})" if a.interval else ""
    console.print(
        f"Risk on day {a.landmark_day}: {a.probability:.1%}{interval}. Decision support only.",
        highlight=False,
    )
    console.print(str(path), highlight=False, soft_wrap=True)


@app.command("serve")
@user_errors
def serve_cmd(
    model: ModelUri = None,
    host: Annotated[
        str | None,
        typer.Option(
            help=f"Interface to bind (default {_DEFAULT['serve_host']}; keep it unless a proxy "
            "fronts it)."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help=f"TCP port (default {_DEFAULT['serve_port']}).")
    ] = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Serve a registered model with BentoML (JSON API under /v1, health at /livez, /readyz)."""
    from serving.launch import serve

    settings = load_settings(
        config, tracking_uri=tracking_uri, model_uri=model, serve_host=host, serve_port=port
    )
    raise typer.Exit(code=serve(settings))


@app.command("demo")
@user_errors
def demo(
    out: Annotated[
        Path | None,
        typer.Option(help="Where the demo cohort is written (default artifacts/demo-cohort)."),
    ] = None,
    n: Annotated[
        int,
        typer.Option(
            help="Number of patients (10,000 by default: enough held-out events per landmark "
            "day for the quality gates to judge the model)."
        ),
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    serve: Annotated[bool, typer.Option(help="End by serving the champion (Ctrl-C stops).")] = True,
    port: Annotated[
        int | None, typer.Option(help=f"Port of the service (default {_DEFAULT['serve_port']}).")
    ] = None,
) -> None:
    """The main job on embedded defaults: generate, train, register the champion, serve it."""
    from data.synthetic.cohort import CohortSpec, generate_cohort
    from data.synthetic.summary import summarise
    from reports.patient import explain_patient_file
    from reports.registry_io import write_logged_report
    from serving.launch import serve as start_service
    from training.config import TrainConfig
    from training.train import train

    settings = load_settings(serve_port=port)
    out = out or settings.demo_cohort_dir
    with _progress() as bar:
        task = bar.add_task("generating patients", total=n)
        generate_cohort(
            out,
            CohortSpec(n_patients=n, seed=seed),
            overwrite=True,
            progress=lambda k: bar.advance(task, k),
        )
    print_summary(summarise(out))
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
    report = write_logged_report(
        settings.model_uri, settings.artifacts_dir / "report.html", settings
    )
    page, _ = explain_patient_file(
        example, settings.artifacts_dir / "example-patient.html", settings.model_uri, settings
    )
    base = f"http://{settings.serve_host}:{settings.serve_port}"
    console.print(
        f"Reviewers' report (held-out patients): {report}\n"
        f"One patient's explanation: {page}\n"
        "Open either in any browser (self-contained files, no network needed).\n"
        "Try the service (another terminal, once it is up):\n"
        f"  curl -s -X POST {base}/v1/risk "
        f"-H 'Content-Type: application/json' -d @{example}\n"
        f"  curl -s -X POST {base}/v1/report "
        f"-H 'Content-Type: application/json' -d @{example} -o patient.html",
        highlight=False,
    )
    if serve:
        raise typer.Exit(code=start_service(settings))


def write_example_request(cohort: Path, path: Path) -> Path:
    """A real patient of the cohort on day 5, as the endpoint's JSON (no identifier)."""
    from cohort.reader import read_cohort
    from features.landmarks import patient_record

    tables = read_cohort(cohort, with_true_risk=False).tables
    daily = tables["daily"]
    with_crs = daily[(daily["day"] <= 5) & (daily["crs_grade"] >= 2)]["patient_id"]
    patient_id = with_crs.iloc[0] if len(with_crs) else tables["patients"]["patient_id"].iloc[0]
    record = patient_record(tables, patient_id, 5)
    record.pop("patient_id")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


app.command("monitor")(user_errors(sigterm_unwinds(monitor_cmd)))  # cli/monitor.py
if __name__ == "__main__":  # pragma: no cover
    app()
