"""Learning curve: held-out performance against the number of training patients.

Sizes start at 13, the size of the source series (Meng 2025), to show what a single centre's
case series can and cannot support (Riley et al., BMJ 2020 on sample size for prediction
models). Small sizes are repeated with different patient draws because one draw is noise.

Each point is the shipped estimator itself (:class:`model.risk_model.RiskModel`, with its
training copies and recalibration), refitted on the subset with the hyper-parameters the full
fit chose and without uncertainty refits (they only give intervals, which the curve does not
measure).
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
    rows = []
    y_test = test.label.astype(float)
    for size in sizes:
        if size > available:
            continue
        for rep in range(repeats if size < 500 else 1):
            mask = sample_patients(train.patient_id, size, seed + 1000 * rep + size)
            y = train.label[mask].astype(int)
            if y.min() == y.max():  # no events (or only events): a constant prediction
                p = np.full(len(test), y.mean())
            else:
                fitted = cast(RiskModel, clone(subset_model)).fit(
                    train.raw[mask], y, train.patient_id[mask]
                )
                p = fitted.predict_proba(test.raw)[:, 1]
            m = PreparedScores(y_test, p).metrics()
            rows.append(
                {
                    "n_patients": size,
                    "repeat": rep,
                    "train_events": int(y.sum()),
                    "auroc": m["auroc"],
                    "brier": m["brier"],
                    "calibration_slope": m["calibration_slope"],
                }
            )
    return pd.DataFrame(rows)
