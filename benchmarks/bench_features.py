"""Benchmark the feature pipeline: one patient at the endpoint, and a million cohort rows.

Run from the repository root::

    uv run python benchmarks/bench_features.py                    # 160,000 patients, ~1.0-1.1M rows
    uv run python benchmarks/bench_features.py --patients 20000   # quicker, smaller cohort
    uv run python benchmarks/bench_features.py --skip-cohort      # single-patient part only

Two parts, printed side by side in one run:

1. **Single patient.** The pipeline is fitted on the landmark rows of a small in-memory cohort;
   then one JSON request (the contract's example patient) is turned into features ``--calls``
   times (default 5,000) after a warm-up, along three paths that all validate the request with
   pydantic first and give identical features (checked before timing):

   * ``ours``:    ``transform_rows(pipe, to_raw(parse_patient(record)))`` - the endpoint's path
     (``RiskModel.transform`` runs ``transform_rows`` on its fitted feature pipeline);
   * ``sklearn``: ``pipe.transform(to_raw(parse_patient(record)))`` - the same through
     scikit-learn's ``Pipeline.transform``;
   * ``naive``:   ``parse_patient``, then a one-row pandas DataFrame with the raw columns built
     from the record, then ``pipe.transform(df)``.

   Median and p99 wall time per call (``time.perf_counter_ns``) and the ratios naive/ours and
   sklearn/ours; a breakdown of the endpoint path's stages follows. Target: p99 < 1,000 us.

2. **Cohort.** A cohort of ``--patients`` patients (default 160,000; Parquet, no true-risk
   table) is generated into a temporary directory first - NOT timed. Then, in a fresh child
   process (multiprocessing "spawn", so its peak RSS is the timed work's own high-water mark,
   ``getrusage(RUSAGE_SELF).ru_maxrss``, interpreter and imports included), the three phases are
   timed: ``cohort.reader.read_cohort(dir).tables`` (the contract's columns of every table),
   ``build_landmark_dataset(..., validate=True)`` with the default landmarks, and
   ``build_feature_pipeline().fit_transform(ds.raw)``. Target: 1,000,000 rows in under 60 s
   (the time is also scaled to exactly 1M rows when the row count differs).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_support import (
    Spread,
    generate_timed,
    machine,
    peak_rss_mib,
    row_counts,
    run_in_child,
    scratch_dir,
    spread,
    targets_line,
    verdict,
)

SINGLE_P99_TARGET_US = 1_000.0
ROWS_TARGET = 1_000_000
ROWS_TARGET_SECONDS = 60.0

RECORD = {
    "age_years": 61,
    "disease": "LBCL",
    "car_target": "CD19",
    "costimulatory_domain": "CD28",
    "dose_cells_per_kg": 2.0e6,
    "marrow_blasts_pct": 5.0,
    "cns_involvement": False,
    "neuro_comorbidity": True,
    "ldh_u_per_l": 320,
    "crp_mg_per_l": 24,
    "ferritin_ng_per_ml": 800,
    "platelets_10e9_per_l": 110,
    "creatinine_mg_per_dl": 0.9,
    "day_since_infusion": 5,
    "crs_grade_by_day": [{"day": 0, "grade": 0}, {"day": 2, "grade": 1}, {"day": 4, "grade": 2}],
    "cd4_car_t_cells_per_ul": [{"day": 0, "value": 0.0}, {"day": 3, "value": 4.2}],
    "cd8_car_t_cells_per_ul": [{"day": 3, "value": 7.9}],
    "icans_grade_by_day": [{"day": 4, "grade": 1}],
}


# --------------------------------------------------------------------------------------------
# 1. Single patient
# --------------------------------------------------------------------------------------------


def _time_calls(fn: Callable[[], object], calls: int, warmup: int) -> Spread:
    """Wall time per call of ``fn`` in microseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        fn()
        out[i] = clock() - start
    return spread(out / 1_000.0)


def _fitted_pipeline(n_patients: int, seed: int):
    from data.synthetic.chunk import generate_block
    from data.synthetic.parameters import CASE_MIXES, GeneratorParameters
    from data.synthetic.tables import block_tables
    from features.landmarks import build_landmark_dataset
    from features.transformers import build_feature_pipeline

    block = generate_block(seed, 0, n_patients, CASE_MIXES["real-world"], GeneratorParameters())
    ds = build_landmark_dataset(block_tables(block))
    return build_feature_pipeline().fit(ds.raw), len(ds)


def _naive_frame(patient):
    """A one-row DataFrame with the raw columns, built field by field from the request."""
    import pandas as pd

    from features.layout import CATEGORY_CODE, COURSE_SERIES, NUMERIC_FIELDS, RAW_COLUMNS

    row = dict.fromkeys(RAW_COLUMNS, np.nan)
    for field in NUMERIC_FIELDS:
        value = getattr(patient, field)
        if value is not None:
            row[field] = float(value)
    for field, codes in CATEGORY_CODE.items():
        value = getattr(patient, field)
        if value is not None:
            row[field] = codes[value]
    row["day_since_infusion"] = float(patient.day_since_infusion)
    for series, field in COURSE_SERIES.items():
        for obs in getattr(patient, field):
            row[f"{series}_d{obs.day:02d}"] = obs.grade if hasattr(obs, "grade") else obs.value
    return pd.DataFrame([row])


def single_patient(calls: int, warmup: int, fit_patients: int, seed: int) -> dict[str, Spread]:
    from api.patient import parse_patient
    from features.packing import to_raw
    from features.transformers import transform_rows

    start = time.perf_counter()
    pipe, fit_rows = _fitted_pipeline(fit_patients, seed)
    n_features = len(pipe.get_feature_names_out())
    print(
        f"pipeline fitted on {fit_rows:,} landmark rows of {fit_patients:,} in-memory patients "
        f"in {time.perf_counter() - start:.1f} s (not timed below); {n_features} features",
        flush=True,
    )

    def ours():
        return transform_rows(pipe, to_raw(parse_patient(RECORD)))

    def through_sklearn():
        return pipe.transform(to_raw(parse_patient(RECORD)))

    def naive():
        return pipe.transform(_naive_frame(parse_patient(RECORD)))

    reference = ours()
    for fn in (through_sklearn, naive):
        if not np.array_equal(fn(), reference, equal_nan=True):
            raise AssertionError(f"{fn.__name__} gives different features from the endpoint path")

    patient = parse_patient(RECORD)
    raw = to_raw(patient)
    paths = {
        "ours": ours,
        "sklearn": through_sklearn,
        "naive": naive,
        "  parse_patient": lambda: parse_patient(RECORD),
        "  to_raw": lambda: to_raw(patient),
        "  transform_rows": lambda: transform_rows(pipe, raw),
        "  pipe.transform(raw)": lambda: pipe.transform(raw),
        "  naive DataFrame build": lambda: _naive_frame(patient),
    }
    gc.collect()
    return {name: _time_calls(fn, calls, warmup) for name, fn in paths.items()}


def print_single(results: dict[str, Spread], calls: int) -> bool:
    ours = results["ours"]
    print()
    print(f"Single patient -> features ({calls:,} calls each, wall time per call)")
    header = (
        f"{'path':<26} {'median us':>10} {'p99 us':>10} {'median x ours':>14} {'p99 x ours':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, t in results.items():
        if name == "  parse_patient":
            print("endpoint path, by stage:")
        print(
            f"{name:<26} {t.median:>10.1f} {t.p99:>10.1f} "
            f"{t.median / ours.median:>14.2f} {t.p99 / ours.p99:>11.2f}"
        )
    naive, sk = results["naive"], results["sklearn"]
    print(
        f"ratio naive/ours: median {naive.median / ours.median:.2f}x, "
        f"p99 {naive.p99 / ours.p99:.2f}x;  "
        f"sklearn/ours: median {sk.median / ours.median:.2f}x, "
        f"p99 {sk.p99 / ours.p99:.2f}x"
    )
    ok = ours.p99 < SINGLE_P99_TARGET_US
    print(
        f"target single patient p99 < {SINGLE_P99_TARGET_US:,.0f} us: {verdict(ok)} "
        f"(p99 {ours.p99:.1f} us, median {ours.median:.1f} us)"
    )
    return ok


# --------------------------------------------------------------------------------------------
# 2. Cohort
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortRun:
    rows: int
    n_features: int
    load_s: float
    build_s: float
    features_s: float
    peak_rss_mib: float

    @property
    def total_s(self) -> float:
        return self.load_s + self.build_s + self.features_s


def _time_cohort(cohort_dir: str) -> CohortRun:
    """Fresh process: read, build landmark rows (validated), fit_transform; the timings."""
    from cohort.reader import read_cohort
    from features.landmarks import build_landmark_dataset
    from features.transformers import build_feature_pipeline

    t0 = time.perf_counter()
    tables = read_cohort(Path(cohort_dir)).tables
    t1 = time.perf_counter()
    ds = build_landmark_dataset(tables, validate=True)
    t2 = time.perf_counter()
    features = build_feature_pipeline().fit_transform(ds.raw)
    t3 = time.perf_counter()
    assert features.shape[0] == len(ds)
    return CohortRun(len(ds), features.shape[1], t1 - t0, t2 - t1, t3 - t2, peak_rss_mib())


def cohort(n_patients: int, workers: int, seed: int, tmp_root: str | None) -> bool:
    print()
    with scratch_dir("features", tmp_root) as tmp:
        out = tmp / "cohort"
        print(
            f"generating {n_patients:,} patients (Parquet, no true risk, seed {seed}, "
            f"{workers} worker(s)) - not timed ...",
            flush=True,
        )
        manifest, seconds = generate_timed(out, n_patients, seed, workers, with_true_risk=False)
        size_mib = sum(f.stat().st_size for f in out.iterdir()) / 2**20
        print(
            f"  generated in {seconds:.1f} s: {row_counts(manifest, ' rows')} "
            f"({size_mib:,.0f} MiB on disk)",
            flush=True,
        )
        print("timing read + landmark rows + features in a fresh process ...", flush=True)
        run = run_in_child(_time_cohort, str(out), what="cohort benchmark child")

    print()
    print(f"Cohort -> landmark rows -> features ({n_patients:,} patients, default landmarks)")
    header = f"{'phase':<44} {'seconds':>8} {'rows/s':>12}"
    print(header)
    print("-" * len(header))
    phases = (
        ("read_cohort(dir).tables", run.load_s),
        ("build_landmark_dataset(validate=True)", run.build_s),
        ("build_feature_pipeline().fit_transform", run.features_s),
        ("total", run.total_s),
    )
    for name, seconds in phases:
        print(f"{name:<44} {seconds:>8.2f} {run.rows / seconds:>12,.0f}")
    per_million = run.total_s * ROWS_TARGET / run.rows
    print(
        f"rows {run.rows:,} x {run.n_features} features; peak RSS of the timing process "
        f"{run.peak_rss_mib:,.0f} MiB; {per_million:.1f} s per 1,000,000 rows"
    )
    ok = per_million < ROWS_TARGET_SECONDS
    note = (
        f" (measured {run.total_s:.1f} s for {run.rows:,} rows)"
        if run.rows >= ROWS_TARGET
        else f" (scaled from {run.rows:,} rows; run --patients 160000 for a real 1M)"
    )
    print(
        f"target 1,000,000 rows < {ROWS_TARGET_SECONDS:.0f} s: {verdict(ok)} "
        f"({per_million:.1f} s per 1M rows){note}"
    )
    return ok


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time single-patient features and the 1M-row cohort feature path."
    )
    parser.add_argument(
        "--patients",
        type=int,
        default=160_000,
        help="cohort size for the cohort part (default 160000, ~1.0-1.1M landmark rows)",
    )
    parser.add_argument("--calls", type=int, default=5_000, help="single-patient calls per path")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls before timing")
    parser.add_argument(
        "--fit-patients",
        type=int,
        default=5_000,
        help="in-memory patients the single-patient pipeline is fitted on (default 5000)",
    )
    parser.add_argument("--workers", type=int, default=2, help="generator workers (default 2)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--skip-cohort", action="store_true", help="single-patient part only")
    parser.add_argument("--tmp-dir", default=None, help="where the cohort is written (temporary)")
    args = parser.parse_args(argv)
    if args.patients < 1 or args.calls < 100 or args.fit_patients < 100 or args.workers < 1:
        parser.error("--patients >= 1, --calls >= 100, --fit-patients >= 100, --workers >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"bench_features: {machine()}", flush=True)
    verdicts = {"single patient p99 < 1 ms": single_patient_and_print(args)}
    if not args.skip_cohort:
        verdicts["1M rows < 60 s"] = cohort(args.patients, args.workers, args.seed, args.tmp_dir)
    print()
    print(targets_line(verdicts))


def single_patient_and_print(args: argparse.Namespace) -> bool:
    results = single_patient(args.calls, args.warmup, args.fit_patients, args.seed)
    return print_single(results, args.calls)


if __name__ == "__main__":
    main()
