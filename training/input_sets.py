"""What each input set reaches: the model refitted on less than every input, on the same patients.

Issue 26 asks what the CAR-T counts (CD4+/CD8+ flow cytometry, at few centres) and IL-6 add to
what every ward charts. For each input set of :data:`training.config.TrainConfig.input_sets`
(:mod:`features.input_sets`) a :class:`~model.risk_model.RiskModel` with that ``inputs`` is
fitted on the main model's training patients and scored on its held-out rows; its AUROC per
landmark day (and over all days) stands beside the main model's (``"all"``) and, where the
cohort's generator has it, the AUROC of the exact true risk given the same observations
(:func:`features.landmarks.true_risk_column`): the gap between the two is what the model
misses of what the set holds, the gap between the sets what the inputs left out add.

Only the point model is fitted (tuned and calibrated as the main model, but with no
uncertainty refits, and scored without bootstrap intervals), to keep the cost of a training run
small: the figures are estimates, to be read with the held-out sample size in mind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
from sklearn.base import clone

from evaluation.held_out import MODEL, TRUE_RISK
from evaluation.metrics import PreparedScores
from features.landmarks import LandmarkDataset
from model.risk_model import RiskModel
from model.tasks import run_tasks

ALL = "all"
COLUMNS = ("input_set", "subset", "n_rows", "n_events", "model_auroc", "true_risk_auroc")


@dataclass
class InputSetComparison:
    """The table (one row per input set and subset, ``"overall"`` then ``"L=<day>"``: the
    held-out evaluation's subsets) and the models fitted for it (the main one not included)."""

    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(COLUMNS)))
    models: dict[str, RiskModel] = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """``input_set.<set>.<model|true_risk>.<subset>.auroc`` -> AUROC, the held-out
        evaluation's naming (:meth:`evaluation.held_out.Evaluation.flat_metrics`) under
        ``input_set.<set>``; missing figures are left out."""
        out = {}
        for r in self.table.to_dict("records"):
            subset = str(r["subset"]).replace("=", "_")
            for predictor, column in ((MODEL, "model_auroc"), (TRUE_RISK, "true_risk_auroc")):
                if np.isfinite(r[column]):
                    out[f"input_set.{r['input_set']}.{predictor}.{subset}.auroc"] = float(r[column])
        return out


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC as the held-out evaluation computes it (:class:`evaluation.metrics.PreparedScores`,
    ties counted half); NaN when the rows hold only one outcome."""
    return PreparedScores(y, p).metrics()["auroc"]


def auroc_table(
    test: LandmarkDataset, predictions: dict[str, np.ndarray], true_risk: dict[str, np.ndarray]
) -> pd.DataFrame:
    """One row per input set of ``predictions`` and subset of the held-out rows: rows, events,
    the model's AUROC and the AUROC of that set's exact true risk (NaN where ``true_risk`` has
    none for the set)."""
    y = test.label.astype(float)
    subsets = {"overall": np.ones(len(y), dtype=bool)}
    subsets |= {f"L={d}": test.landmark_day == d for d in np.unique(test.landmark_day)}
    rows = []
    for inputs, p in predictions.items():
        truth = true_risk.get(inputs)
        for subset, mask in subsets.items():
            rows.append(
                {
                    "input_set": inputs,
                    "subset": subset,
                    "n_rows": int(mask.sum()),
                    "n_events": int(y[mask].sum()),
                    "model_auroc": auroc(y[mask], p[mask]),
                    "true_risk_auroc": np.nan if truth is None else auroc(y[mask], truth[mask]),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _fit_set(
    model: RiskModel,
    inputs: str,
    raw: np.ndarray,
    label: np.ndarray,
    patient_id: np.ndarray,
    test_raw: np.ndarray,
) -> tuple[RiskModel, np.ndarray]:
    """One input set's model (a task, :func:`model.tasks.run_tasks`): ``model``'s settings with
    these inputs and no uncertainty refits, fitted, and its held-out probabilities."""
    fitted = cast(RiskModel, clone(model)).set_params(inputs=inputs, uncertainty_refits=0)
    fitted.fit(raw, label, patient_id)
    return fitted, fitted.predict_proba(test_raw)[:, 1]


def compare_input_sets(
    model: RiskModel,
    train: LandmarkDataset,
    test: LandmarkDataset,
    input_sets: tuple[str, ...],
    step: Callable[[str], None] = lambda _: None,
) -> InputSetComparison:
    """Fit ``model``'s settings with each of ``input_sets`` on ``train`` (no uncertainty
    refits; a task each, up to ``model.n_tasks`` at once) and tabulate every set's AUROC on
    ``test`` beside ``model``'s own (``"all"``).

    A true-risk AUROC is given only where every held-out row has that set's true risk (the
    same rows as the models'), as the held-out evaluation does for the true risk itself."""
    if not input_sets:
        return InputSetComparison()
    predictions = {ALL: model.predict_proba(test.raw)[:, 1]}
    step(f"input sets {', '.join(input_sets)}: tuning and fit (no uncertainty refits)")
    fits = run_tasks(
        _fit_set,
        [
            (model, inputs, train.raw, train.label, train.patient_id, test.raw)
            for inputs in input_sets
        ],
        model.n_tasks,
    )
    models = {}
    for inputs, (fitted, p) in zip(input_sets, fits, strict=True):
        models[inputs], predictions[inputs] = fitted, p
    true_risk = {}
    for inputs in predictions:
        risk = test.true_risk_of(inputs)
        if risk is not None and np.isfinite(risk).all():
            true_risk[inputs] = risk
    return InputSetComparison(auroc_table(test, predictions, true_risk), models)
