"""Prediction days: the sparse landmarks against every day, with the training rows each costs.

Run from the repository root::

    uv run python benchmarks/bench_landmarks.py                 # 3,000 patients, seed 7
    uv run python benchmarks/bench_landmarks.py --patients 3000 --strides 3,2,1 --refits 20

A cohort is generated (with the generator's true risk of every horizon on every day 0-27; not
timed) and its patients split once into training and held-out quarters (by patient). Each
design fits the shipped risk model (``TrainConfig`` as ``icans demo`` sets it: every horizon,
the default search, 20 uncertainty refits or ``--refits``, tasks on every core with one xgboost
thread each)
on the training patients' rows of its own days, and is judged on the same held-out rows: every
held-out patient on every day 0-21 (a prediction may be asked on any day). The designs:

* ``sparse``: the landmarks before issue 28, days 0, 1, 3, 5, 7, 10 and 14;
* ``daily/k``: every day 0-21, each training patient on every k-th day from a day drawn per
  patient (:func:`model.splits.day_stride_rows`; ``daily/1`` is every row).

Printed per design: training rows, fit seconds, and per horizon the held-out AUROC over all
rows, its gap to the horizon's exact true risk (true minus model), the largest gap over the day
groups (:data:`features.landmarks.DAY_GROUPS` with days 22-27 left out) and the calibration
slope (one column per design); then the per-day-group gaps of every design
(:func:`training.fit.horizon_table`); both after each design, cheapest first. The
machine's load is printed before and after: fit times on a shared machine are only comparable
within one run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_support import generate_timed, machine, scratch_dir

from cohort.reader import read_cohort
from features.landmarks import DAILY_LANDMARKS, SPARSE_LANDMARKS, build_landmark_dataset
from model.splits import day_stride_rows, grouped_split
from training.config import TrainConfig
from training.fit import horizon_table, risk_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strides", default="3,2,1", help="daily designs' strides")
    parser.add_argument(
        "--refits",
        type=int,
        default=20,
        help="uncertainty refits of each fit (the default's 20; they change no AUROC, and "
        "their time grows with the rows like the rest of the fit)",
    )
    parser.add_argument("--cohort", type=Path, help="an existing generated cohort instead")
    args = parser.parse_args()
    print(machine(), "| load", os.getloadavg())
    with scratch_dir("landmarks") as tmp:
        cohort = args.cohort
        if cohort is None:
            cohort = tmp / "cohort"
            _, seconds = generate_timed(cohort, args.patients, args.seed, workers=1)
            print(f"cohort: {args.patients:,} patients generated in {seconds:.0f} s")
        run(cohort, args.seed, [int(k) for k in args.strides.split(",")], args.refits)
    print("load after", os.getloadavg())


def run(cohort: Path, seed: int, strides: list[int], refits: int) -> None:
    ds = build_landmark_dataset(read_cohort(cohort).tables, DAILY_LANDMARKS)
    config = TrainConfig(seed=seed, n_tasks=-1, n_threads=1, uncertainty_refits=refits)
    rest, held = grouped_split(ds.patient_id, config.test_fraction, seed)
    test = ds.subset(held)
    designs = {"sparse": rest & np.isin(ds.landmark_day, SPARSE_LANDMARKS)}
    designs |= {
        f"daily/{k}": rest & day_stride_rows(ds.patient_id, ds.landmark_day, k, seed)
        for k in strides
    }
    print(f"held out: {len(np.unique(test.patient_id)):,} patients, {len(test):,} rows (days 0-21)")
    summary, groups = [], []
    for name, mask in designs.items():
        train = ds.subset(mask)
        started = time.perf_counter()
        model = risk_model(config).fit(train.raw, train.labels(config.horizons), train.patient_id)
        seconds = time.perf_counter() - started
        table = horizon_table(model, test)
        table.insert(0, "design", name)
        groups.append(table)
        line = {"design": name, "train_rows": len(train), "fit_s": round(seconds)}
        for horizon, rows in table.groupby("horizon", sort=False):
            overall = rows[rows["days"] == "all"].iloc[0]
            daily = rows[~rows["days"].isin(["all", "3-7", "22-27"])]
            line |= {
                f"{horizon} auroc": overall["auroc"],
                f"{horizon} gap": overall["auroc_gap"],
                f"{horizon} max group gap": daily["auroc_gap"].max(),
                f"{horizon} slope": overall["calibration_slope"],
            }
        summary.append(line)
        print(f"{name}: {len(train):,} training rows, fit {seconds:.0f} s", flush=True)
        # the tables so far after each design: a long run can be read as it goes
        print(pd.DataFrame(summary).round(3).T.to_string(header=False), flush=True)
        long = pd.concat(groups)
        wide = long.pivot_table(
            index=["horizon", "days"], columns="design", values="auroc_gap", sort=False
        )
        print("gap to the true risk (true minus model) per horizon and day group:")
        print(wide[[d for d in designs if d in wide.columns]].round(3).to_string(), flush=True)
        print("load", os.getloadavg(), flush=True)


if __name__ == "__main__":
    main()
