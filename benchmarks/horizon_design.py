"""Risk per horizon: one model monotone in the window against one model per horizon.

Run from the repository root on a generated cohort (true risk on, generator with horizons)::

    uv run python benchmarks/horizon_design.py artifacts/demo-cohort

The design question of the horizons (``icans.horizons``: the next 72 hours, the next 7 days,
by day 28): three models fitted apart contradict each other on some rows (a 72-hour risk above
the 7-day one), while the risks must be nested, ``risk(72 h) <= risk(7 d) <= risk(day 28)``.
One model of "the event within w days after day L" fitted on the landmark rows stacked once per
horizon, with the window ``w = min(horizon, 28 - L)`` as a predictor under a monotone
(non-decreasing) constraint, is nested by construction: for any row its log-odds cannot fall as
``w`` grows. This prints, on the same held-out quarter of patients, the held-out AUROC of both
designs per horizon and landmark beside the true risk of that horizon, the coherence violations
of each, and the fitting times. Plain gradient boosting on the pipeline's predictors (no
additive part, no search): a comparison of the two designs, not of the shipped model.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

from cohort.reader import read_cohort
from cohort.store import read_table
from features.landmarks import DEFAULT_LANDMARKS, build_landmark_dataset
from features.transformers import build_feature_pipeline
from icans.horizons import HORIZONS
from model.splits import grouped_split


def main() -> None:
    cdir = Path(sys.argv[1])
    tables = dict(read_cohort(cdir).tables)
    tables["true_risk"] = read_table(cdir, "true_risk")
    ds = build_landmark_dataset(tables, DEFAULT_LANDMARKS)
    rest, held = grouped_split(ds.patient_id, 0.25, seed=0)
    pipe = build_feature_pipeline().fit(ds.raw[rest])
    x = pipe.transform(ds.raw)
    L = ds.landmark_day.astype(float)
    truth = {
        "72h": ds.horizon_true_risk["72h"],
        "7d": ds.horizon_true_risk["7d"],
        "day28": ds.true_risk,
    }

    def window(h):
        return np.minimum(h.days if h.days else 28, 28 - L)

    fit_rows, stop_rows = grouped_split(ds.patient_id[rest], 0.1, seed=1)
    tr_idx, st_idx = np.flatnonzero(rest)[fit_rows], np.flatnonzero(rest)[stop_rows]
    kw = dict(
        n_estimators=3000,
        max_depth=4,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.8,
        early_stopping_rounds=50,
        n_jobs=2,
        eval_metric="logloss",
    )
    pred = {}
    # separate
    for h in HORIZONS:
        y = ds.horizon_labels[h.name].astype(int)
        s = time.perf_counter()
        m = XGBClassifier(**kw).fit(
            x[tr_idx], y[tr_idx], eval_set=[(x[st_idx], y[st_idx])], verbose=False
        )
        print("separate", h.name, m.best_iteration, round(time.perf_counter() - s), "s", flush=True)
        pred[("separate", h.name)] = m.predict_proba(x[held])[:, 1]

    # stacked, monotone in window
    def stack(idx):
        X = np.vstack([np.column_stack([x[idx], window(h)[idx]]) for h in HORIZONS])
        Y = np.concatenate([ds.horizon_labels[h.name][idx] for h in HORIZONS]).astype(int)
        return X, Y

    Xtr, Ytr = stack(tr_idx)
    Xst, Yst = stack(st_idx)
    mono = tuple([0] * x.shape[1] + [1])
    s = time.perf_counter()
    m = XGBClassifier(**kw, monotone_constraints=mono).fit(
        Xtr, Ytr, eval_set=[(Xst, Yst)], verbose=False
    )
    print("stacked", m.best_iteration, round(time.perf_counter() - s), "s", flush=True)
    hi = np.flatnonzero(held)
    for h in HORIZONS:
        pred[("stacked", h.name)] = m.predict_proba(np.column_stack([x[hi], window(h)[hi]]))[:, 1]
    sep = [pred[("separate", h.name)] for h in HORIZONS]
    print(
        "separate coherence violations:",
        int(np.sum((sep[0] > sep[1] + 1e-9) | (sep[1] > sep[2] + 1e-9))),
        "of",
        len(hi),
    )
    st = [pred[("stacked", h.name)] for h in HORIZONS]
    print(
        "stacked coherence violations:",
        int(np.sum((st[0] > st[1] + 1e-9) | (st[1] > st[2] + 1e-9))),
    )
    rows = []
    ld = ds.landmark_day[held]
    for h in HORIZONS:
        y = ds.horizon_labels[h.name][held]
        t = truth[h.name][held]
        for d in DEFAULT_LANDMARKS:
            at = ld == d
            if y[at].sum() < 5:
                continue
            rows.append(
                {
                    "horizon": h.name,
                    "L": d,
                    "events": int(y[at].sum()),
                    "truth": roc_auc_score(y[at], t[at]),
                    "separate": roc_auc_score(y[at], pred[("separate", h.name)][at]),
                    "stacked": roc_auc_score(y[at], pred[("stacked", h.name)][at]),
                }
            )
        rows.append(
            {
                "horizon": h.name,
                "L": "all",
                "events": int(y.sum()),
                "truth": roc_auc_score(y, t),
                "separate": roc_auc_score(y, pred[("separate", h.name)]),
                "stacked": roc_auc_score(y, pred[("stacked", h.name)]),
            }
        )
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
