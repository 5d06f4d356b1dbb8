"""The ``icans`` command line: a thin layer over library functions, one sub-command per job.

Every command parses its options, calls one library function and prints the result; errors
the user can fix (bad option values, missing cohort) print one clear line and exit with code 2.
Defaults (paths, tracking store, model URI, host and port) come from the settings object
(:mod:`icans.config`): an option left out takes the setting's value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console

from cli.cohort import app as cohort_app
from cli.guards import sigterm_unwinds, user_errors
from cli.monitor import monitor_cmd
from cli.options import (
    SERVE,
    ConfigFile,
    HtmlOut,
    ModelUri,
    TrackingUri,
    progress,
    stepper,
)
from cli.output import console, print_evaluation, print_horizons, print_summary
from cli.tracking import app as tracking_app
from icans.config import Settings, intended_use, load_settings

if TYPE_CHECKING:
    import pandas as pd

    from reports.horizon_review import HorizonReview

app = typer.Typer(
    name="icans",
    help=(
        "ICANS risk service: synthetic CAR-T cohorts, risk models and explanations. "
        "Decision support trained on SYNTHETIC data only; not for clinical use."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cohort_app, name="cohort")  # cli/cohort.py
app.add_typer(tracking_app, name="tracking")  # cli/tracking.py


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
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler (tcp://host:port) to run the model's independent fits on "
            "(default: ICANS_CLUSTER, else this machine)."
        ),
    ] = None,
) -> None:
    """Train, evaluate on held-out patients, log to MLflow, register; promote if gates pass."""
    from training.config import load_train_config
    from training.train import train

    settings = load_settings(config, tracking_uri=tracking_uri, cluster=cluster)
    cfg = load_train_config(config)
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    with progress() as bar:
        result = train(cohort, cfg, settings, step=stepper(bar))
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
    with progress() as bar:
        result = train(cohort, load_train_config(config), settings, stepper(bar), update)
    _print_run(result, settings, "Recalibrated")


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort directory to evaluate on.")],
    model: ModelUri = None,
    horizon: Annotated[
        str | None,
        typer.Option(
            help="Horizon whose risk the lead time alerts on: 72h, 7d or day28, one the model "
            "estimates (default: 72h if the model estimates it, else day28)."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Alert when the horizon's risk is at or above this, 0 < t < 1 (default 0.1, "
            "the CDS card's default day-28 warning threshold)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Also write the per-horizon metrics and the lead time to this JSON file "
            "(atomically).",
        ),
    ] = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Evaluate a registered model on another cohort with the training metrics, on every
    horizon it estimates, and the lead time of a threshold ("first score above threshold")."""
    from reports.html import write_atomically
    from training.config import load_train_config
    from training.external_validation import evaluate_registered_model

    settings = load_settings(config, tracking_uri=tracking_uri, model_uri=model)
    result = evaluate_registered_model(
        settings.model_uri,
        cohort,
        settings,
        load_train_config(config),
        horizon=horizon,
        threshold=threshold,
    )
    ref = result.registered.ref
    title = f"{ref.name} v{ref.version} on {result.cohort.describe()}"
    print_evaluation(result.evaluation, title, result.cohort.synthetic)
    review = cast("HorizonReview", result.review)
    print_horizons(review, result.cohort.synthetic)
    if json_out is not None:
        record = {
            "model": {"name": ref.name, "version": ref.version, "uri": settings.model_uri},
            "cohort": result.cohort.describe(),
            "synthetic": result.cohort.synthetic,
            "mlflow_run_id": result.run_id,
        } | review.record()
        write_atomically(json.dumps(record, indent=2) + "\n", json_out)
        console.print(f"Wrote {json_out}.", highlight=False, soft_wrap=True)
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
    horizons: Annotated[
        str | None,
        typer.Option(
            help="Horizons written, separated by commas (72h, 7d, day28), each as "
            "probability_<h>, interval_low_<h>, interval_high_<h>, log_odds_<h> (default: "
            "every horizon the model estimates; probability and interval_* stay day 28)."
        ),
    ] = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score every landmark row of a cohort with a registered model (the endpoint's numbers)."""
    from scoring.batch import score_cohort

    settings = load_settings(config, tracking_uri=tracking_uri, model_uri=model)
    with progress() as bar:
        task = bar.add_task("scoring patients", total=None)
        summary = score_cohort(
            cohort,
            settings.model_uri,
            out,
            settings,
            explain=explain,
            patients_per_chunk=chunk,
            progress=lambda k: bar.advance(task, k),
            horizons=horizons,
        )
    console.print(
        f"Scored {summary.rows:,} landmark rows of {summary.patients:,} patients with "
        f"{summary.model_name} v{summary.model_version} (horizons "
        f"{', '.join(summary.horizons)}) into {summary.out} in {summary.seconds:.1f} s."
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
    from training.config import load_train_config
    from training.external_validation import report_registered_model

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
            help=f"Interface to bind (default {SERVE['host']}; keep it unless a proxy fronts it)."
        ),
    ] = None,
    port: Annotated[int | None, typer.Option(help=f"TCP port (default {SERVE['port']}).")] = None,
    config: ConfigFile = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Serve a registered model with BentoML (JSON API under /v1, health at /livez, /readyz).

    Every setting and file is checked first (a bad one: exit code 2, one line naming it);
    SIGTERM or Ctrl-C stops the server and all its workers (serve.stop_timeout_s to drain)."""
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
        int | None, typer.Option(help=f"Port of the service (default {SERVE['port']}).")
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
    with progress() as bar:
        task = bar.add_task("generating patients", total=n)
        generate_cohort(
            out,
            CohortSpec(n_patients=n, seed=seed),
            overwrite=True,
            progress=lambda k: bar.advance(task, k),
        )
    print_summary(summarise(out))
    with progress() as bar:
        # every core running tasks of one xgboost thread each (model.tasks): the numbers of
        # the default configuration bit for bit, about a quarter faster on 2 cores
        config = TrainConfig(seed=seed, n_tasks=-1, n_threads=1)
        result = train(out, config, settings, step=stepper(bar))
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
    base = f"http://{settings.serve.host}:{settings.serve.port}"
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
    with_crs = cast(
        "pd.Series", daily[(daily["day"] <= 5) & (daily["crs_grade"] >= 2)]["patient_id"]
    )
    patient_id = with_crs.iloc[0] if len(with_crs) else tables["patients"]["patient_id"].iloc[0]
    record = patient_record(tables, patient_id, 5)
    record.pop("patient_id")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


app.command("monitor")(user_errors(sigterm_unwinds(monitor_cmd)))  # cli/monitor.py
if __name__ == "__main__":  # pragma: no cover
    app()
