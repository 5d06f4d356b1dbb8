"""Learning curve: held-out performance against the number of training patients.

Sizes start at 13, the size of the source series (Meng 2025), to show what a single centre's
case series can and cannot support (Riley et al., BMJ 2020 on sample size for prediction
models). Small sizes are repeated with different patient draws because one draw is noise.

Each point is the shipped estimator itself (:class:`model.risk_model.RiskModel`, with its
training copies and recalibration), refitted on the subset with the hyper-parameters the full
fit chose and without uncertainty refits (they only give intervals, which the curve does not
measure). The points are tasks (:func:`model.tasks.run_tasks`), up to the model's
``n_tasks`` at once.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
from sklearn.base import clone

from evaluation.metrics import PreparedScores
from features.landmarks import LandmarkDataset
from model.risk_model import RiskModel
from model.splits import sample_patients
from model.tasks import run_tasks


def learning_curve(
    model: RiskModel,
    train: LandmarkDataset,
    test: LandmarkDataset,
    sizes: tuple[int, ...],
    repeats: int,
) -> pd.DataFrame:
    """One row per (size, repeat): AUROC, Brier and calibration slope on the test rows."""
    available = len(np.unique(train.patient_id))
    seed = model.random_state
    subset_model = cast(RiskModel, clone(model)).set_params(
        hyperparameters=model.hyperparameters_, uncertainty_refits=0
    )
    y_test = test.label.astype(float)
    points = []
    for size in sizes:
        if size > available:
            continue
        for rep in range(repeats if size < 500 else 1):
            mask = sample_patients(train.patient_id, size, seed + 1000 * rep + size)
            points.append((size, rep, mask))
    scores = run_tasks(
        _point,
        [(subset_model, train.raw, train.label, train.patient_id, m, test.raw) for *_, m in points],
        model.n_tasks,
    )
    rows = []
    for (size, rep, mask), p in zip(points, scores, strict=True):
        m = PreparedScores(y_test, p).metrics()
        rows.append(
            {
                "n_patients": size,
                "repeat": rep,
                "train_events": int(train.label[mask].sum()),
                "auroc": m["auroc"],
                "brier": m["brier"],
                "calibration_slope": m["calibration_slope"],
            }
        )
    return pd.DataFrame(rows)


def _point(
    subset_model: RiskModel,
    raw: np.ndarray,
    label: np.ndarray,
    patient_id: np.ndarray,
    subset: np.ndarray,
    test_raw: np.ndarray,
) -> np.ndarray:
    """One point of the curve (a task, :func:`model.tasks.run_tasks`): the held-out
    probabilities of the model fitted on one subset of the training rows (a mask; the task
    takes the rows itself, so the points' copies do not all exist at once); with no events (or
    only events) in it, the constant prediction of its event rate."""
    y = label[subset].astype(int)
    if y.min() == y.max():
        return np.full(len(test_raw), y.mean())
    fitted = cast(RiskModel, clone(subset_model)).fit(raw[subset], y, patient_id[subset])
    return fitted.predict_proba(test_raw)[:, 1]
