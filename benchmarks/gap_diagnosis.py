"""Where the model loses to the true risk: held-out AUROC by landmark for diagnostic fits.

Run from the repository root on a generated cohort (true risk on)::

    uv run python benchmarks/gap_diagnosis.py artifacts/demo-cohort
    uv run python benchmarks/gap_diagnosis.py DIR --trees 300 --depth 3 --tuned --oracle

Prints, on the same held-out quarter of patients (grouped split, seed 0), the true risk's
AUROC per landmark next to:

* the shipped estimator (:class:`model.risk_model.RiskModel`) with **fixed** trees (``--trees``
  rounds of depth ``--depth``, no tuning, no uncertainty refits): how far the predictors go when
  early stopping does not cut the trees short;
* with ``--tuned``: the shipped estimator as trained (tuned trees), without uncertainty refits;
* with ``--oracle``: plain gradient boosting on the pipeline's predictors, without and with the
  generator's **hidden** expansion-timing class (read from the generator-only column
  ``latent_expansion_timing_class``). A diagnosis only: a model never sees hidden truth; if the
  class closes the gap, what the predictors miss is the patient's expansion timing.
* with ``--ceiling``: gradient boosting on the pipeline's predictors trained on the **exact true
  risk** of the training patients (soft labels, cross-entropy) instead of their outcomes, and
  the same boosting trained on the outcomes. Noise-free labels are the most any training set of
  this size could teach, so the first column is the ceiling of what the predictors carry, in a
  form a learner finds: if it stays below the true risk, the gap is the predictors' (what the
  generator's forward filter extracts from the daily series), not the training size's or the
  solver's. Rounds by early stopping on a tenth of the training patients.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

LANDMARKS = (0, 3, 5, 7, 10, 14)


def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, score) if 0 < y.sum() < len(y) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cohort", type=Path)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--tuned", action="store_true")
    parser.add_argument("--oracle", action="store_true")
    parser.add_argument("--ceiling", action="store_true")
    args = parser.parse_args()

    from cohort.reader import read_cohort
    from cohort.store import read_table
    from features.landmarks import build_landmark_dataset
    from model.risk_model import RiskModel
    from model.splits import grouped_split

    tables = dict(read_cohort(args.cohort).tables)
    tables["true_risk"] = read_table(args.cohort, "true_risk")
    ds = build_landmark_dataset(tables, landmarks=LANDMARKS)
    rest, held = grouped_split(ds.patient_id, 0.25, seed=0)
    train, test = ds.subset(rest), ds.subset(held)
    params = dict(
        max_depth=args.depth, learning_rate=0.05, min_child_weight=5, n_estimators=args.trees
    )
    start = time.perf_counter()
    model = RiskModel(hyperparameters=params, uncertainty_refits=0).fit(
        train.raw, train.label, train.patient_id
    )
    columns = {"fixed trees": model.predict_proba(test.raw)[:, 1]}
    print(
        f"fixed trees ({args.trees} x depth {args.depth}) fitted in "
        f"{time.perf_counter() - start:.0f} s on {len(np.unique(train.patient_id)):,} patients"
    )

    if args.tuned:
        tuned = RiskModel(uncertainty_refits=0).fit(train.raw, train.label, train.patient_id)
        columns[f"tuned ({tuned.hyperparameters_['n_estimators']} trees)"] = tuned.predict_proba(
            test.raw
        )[:, 1]

    if args.oracle:
        from xgboost import XGBClassifier

        timing = read_table(args.cohort, "patients").set_index("patient_id")[
            "latent_expansion_timing_class"
        ]
        x = model.features_.transform(ds.raw)
        hidden = timing.reindex(ds.patient_id).to_numpy(float)[:, None]
        for name, design in (("boosting", x), ("boosting + hidden timing", np.hstack([x, hidden]))):
            fitted = XGBClassifier(
                n_estimators=400, max_depth=4, learning_rate=0.05, subsample=0.8, n_jobs=2
            ).fit(design[rest], ds.label[rest])
            columns[name] = fitted.predict_proba(design[held])[:, 1]

    if args.ceiling:
        columns |= _ceiling(model, train, test)

    rows = []
    for day in LANDMARKS:
        at = test.landmark_day == day
        row = {"landmark": day, "events": int(test.label[at].sum())}
        row["true risk"] = _auroc(test.label[at], test.true_risk[at])
        for name, score in columns.items():
            row[name] = _auroc(test.label[at], score[at])
        rows.append(row)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def _ceiling(model, train, test) -> dict[str, np.ndarray]:
    """Held-out probabilities of boosting trained on the true risk and on the outcomes of the
    training patients (see the module docstring)."""
    from xgboost import XGBRegressor

    from model.splits import grouped_split

    x, x_test = model.transform(train.raw), model.transform(test.raw)
    fit_rows, stop_rows = grouped_split(train.patient_id, 0.1, seed=1)
    out = {}
    for name, target in (
        ("boosting on the true risk", train.true_risk),
        ("boosting on the outcomes", train.label.astype(float)),
    ):
        booster = XGBRegressor(
            objective="binary:logistic",  # cross-entropy: a label may be any probability
            n_estimators=6000,
            max_depth=5,
            learning_rate=0.05,
            subsample=0.8,
            colsample_bytree=0.8,
            early_stopping_rounds=50,
            n_jobs=2,
        )
        start = time.perf_counter()
        booster.fit(
            x[fit_rows],
            target[fit_rows],
            eval_set=[(x[stop_rows], target[stop_rows])],
            verbose=False,
        )
        print(f"{name}: {booster.best_iteration + 1} rounds, {time.perf_counter() - start:.0f} s")
        out[name] = booster.predict(x_test)
    return out


if __name__ == "__main__":
    main()
