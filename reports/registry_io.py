"""What a report reads from, and writes to, the MLflow run of a registered model.

A training run logs the reviewers' report of its version (:data:`REPORT_DIR`), with every figure
as a file beside it, and its learning curve; ``icans report`` without a cohort writes that
logged report as it is, and a report on another cohort takes the run's learning curve.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import mlflow.artifacts
import pandas as pd
from mlflow.exceptions import MlflowException

from icans.config import Settings
from icans.errors import ModelNotFoundError
from registry.store import resolve, use_tracking
from reports.html import embedded_figures, write_atomically

REPORT_DIR = "report"
REPORT_FILE = "model_report.html"
LEARNING_CURVE = "evaluation/learning_curve.csv"


def log_report(page: str) -> None:
    """Log a report page and each of its embedded figures (byte for byte) to the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / REPORT_FILE).write_text(page, encoding="utf-8")
        (d / "figures").mkdir()
        for name, png in embedded_figures(page).items():
            (d / "figures" / name).write_bytes(png)
        mlflow.log_artifacts(str(d), artifact_path=REPORT_DIR)


def logged_learning_curve(run_id: str) -> pd.DataFrame | None:
    """The learning curve a training run logged, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=LEARNING_CURVE, dst_path=tmp
            )
            return pd.read_csv(path)
        except (MlflowException, OSError, pd.errors.EmptyDataError):
            return None


def logged_report(run_id: str) -> str | None:
    """The reviewers' report (with its model card) a training run logged, or None."""
    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{REPORT_DIR}/{REPORT_FILE}")
    except (MlflowException, OSError):
        return None


def write_logged_report(model_uri: str, out: Path, settings: Settings) -> Path:
    """Write the report the version's training run logged (its held-out patients) to ``out``.

    This is the honest default of ``icans report``: evaluated on patients the model never saw.
    Raises ModelNotFoundError when the run has none."""
    ref = resolve(model_uri, use_tracking(settings))
    page = logged_report(ref.run_id)
    if page is None:
        raise ModelNotFoundError(
            f"the training run of {model_uri!r} (version {ref.version}) logged no report; "
            "evaluate it on a cohort instead: 'icans report --cohort DIR'"
        )
    return write_atomically(page, out)
