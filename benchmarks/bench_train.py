"""Benchmark ``training.train.train``: quality at 5,000 training patients, time at 10,000.

Run from the repository root::

    uv run python benchmarks/bench_train.py
    uv run python benchmarks/bench_train.py --patients-5k 6667 --patients-10k 10000 --seed 7

Two cohorts are generated first (Parquet with the generator's true risk, real-world case mix;
not timed) into a temporary directory. Each is then trained with the real ``train`` and the
default :class:`training.config.TrainConfig` against a temporary sqlite MLflow store:
``RiskModel.fit`` (training copies with a course series missing, grouped 3-fold
cross-validation over the default search space, the final fit, recalibration when needed, 20
uncertainty refits), then the baselines, evaluation with 200 patient-level bootstrap samples,
learning curve, MLflow logging, registration and the logged reviewers' report. Everything is
deleted afterwards. The only departure from a plain ``icans train`` is that the MLflow
experiment is created up front with its artefact location inside the temporary directory.

1. Quality: a cohort of 6,667 patients (5,000 training patients with the default 25% test
   split). The chosen hyper-parameters (``result.model.hyperparameters_``) and recalibration
   (``result.model.recalibration_``); per landmark: model AUROC, true-risk AUROC, gap (with its
   paired-bootstrap 95% CI), calibration slope; overall slope; logistic and m-EASIX AUROC.
   Targets: AUROC within 0.02 of the true risk at every landmark; overall calibration slope
   0.9-1.1; AUROC above both baselines. With ``--patients-external`` (default 20,000) the
   registered version is also evaluated on an independent cohort (another seed) exactly as
   ``icans evaluate`` does (``training.external_validation.evaluate_registered_model``), judged
   the same way.
2. Time: a cohort of 10,000 patients. Wall time of ``train`` (target: under 180 s on 2 cores),
   with the phase timings ``train`` reports (``result.timings``: ``model_fit_s`` holds tuning,
   fit, recalibration and refits; then baselines, evaluation, learning curve, report, total)
   and the time between the progress steps it announces.

Timings are only meaningful on an otherwise idle machine: xgboost runs ``n_threads`` (default 2)
OpenMP threads, and on a 2-core machine shared with another busy process those threads wait
for each other. The load average before and after the timed run is printed for that reason.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from bench_support import (
    generate_timed,
    machine,
    quiet_mlflow,
    row_counts,
    scratch_dir,
    store_uri,
    targets_line,
    tracking_store,
    verdict,
)

TARGET_GAP = 0.02
TARGET_SLOPE = (0.9, 1.1)
TARGET_SECONDS = 180.0


def _generate(out: Path, n_patients: int, seed: int, workers: int) -> None:
    manifest, seconds = generate_timed(out, n_patients, seed, workers)
    print(
        f"  generated {n_patients:,} patients in {seconds:.1f} s (not timed): "
        f"{row_counts(manifest)}",
        flush=True,
    )


class StepClock:
    """Records when ``train`` announces each step; durations run to the next announcement."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: list[tuple[str, float]] = []

    def __call__(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def durations(self, end: float) -> list[tuple[str, float]]:
        out = [("(before the first announced step)", self.marks[0][1] - self.start)]
        ends = [t for _, t in self.marks[1:]] + [end]
        out += [(name, stop - t) for (name, t), stop in zip(self.marks, ends, strict=True)]
        return out


def _run_train(cohort: Path, config, settings):
    from training.train import train

    clock = StepClock()
    start = time.perf_counter()
    result = train(cohort, config, settings, step=clock)
    end = time.perf_counter()
    return result, end - start, clock.durations(end)


def _assess(result, cohort: Path, config, settings):
    """The registered version evaluated on another cohort, exactly as ``icans evaluate`` does."""
    from training.external_validation import evaluate_registered_model

    uri = f"models:/{settings.model_name}/{result.model_version}"
    start = time.perf_counter()
    assessment = evaluate_registered_model(uri, cohort, settings, config)
    print(f"  evaluated {uri} in {time.perf_counter() - start:.1f} s", flush=True)
    return assessment.evaluation


def _estimate(ev, predictor: str, metric: str, subset: str) -> tuple[float, float, float]:
    row = ev.metrics.query("subset == @subset and predictor == @predictor and metric == @metric")
    if not len(row):
        return float("nan"), float("nan"), float("nan")
    r = row.iloc[0]
    return float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"])


def describe_fit(result, n_patients: int) -> None:
    ev = result.evaluation
    print()
    print(
        f"Quality: {n_patients:,}-patient cohort -> {ev.meta['n_patients']:,} held-out patients, "
        f"{ev.meta['n_rows']:,} rows, {ev.meta['n_events']:,} events "
        f"({ev.meta['n_boot']} bootstrap samples)"
    )
    calibration = result.model.recalibration_
    print(
        f"  chosen parameters {result.model.hyperparameters_}; recalibrated: "
        f"{calibration['recalibrated']} (a={calibration['intercept']:.3f}, "
        f"b={calibration['slope']:.3f}; out-of-fold slope before "
        f"{calibration['oof_slope_before']:.3f}, intercept before "
        f"{calibration['oof_intercept_before']:.3f})"
    )


def report_quality(ev, title: str) -> dict[str, bool]:
    """The per-landmark table of one evaluation and the three quality verdicts on it."""
    from evaluation.held_out import MODEL, TRUE_RISK, ordered_subsets

    print(
        f"\n{title}: {ev.meta['n_patients']:,} patients, {ev.meta['n_rows']:,} rows, "
        f"{ev.meta['n_events']:,} events ({ev.meta['n_boot']} bootstrap samples)"
    )
    header = (
        f"{'subset':<8} {'rows':>6} {'events':>6} {'AUROC':>7} {'true':>7} "
        f"{'gap (95% CI)':>24} {'slope':>6} {'true sl.':>8} {'logistic':>8} {'m-EASIX':>8}"
    )
    print(header)
    print("-" * len(header))
    subsets = ordered_subsets(ev.metrics["subset"].unique())
    shortfalls, unassessable = {}, []
    for subset in [*subsets[1:], subsets[0]]:  # landmarks first, overall last
        auroc = _estimate(ev, MODEL, "auroc", subset)[0]
        truth = _estimate(ev, TRUE_RISK, "auroc", subset)[0]
        gap, lo, hi = _estimate(ev, MODEL, "auroc_gap_to_true_risk", subset)
        slope = _estimate(ev, MODEL, "calibration_slope", subset)[0]
        true_slope = _estimate(ev, TRUE_RISK, "calibration_slope", subset)[0]
        logistic = _estimate(ev, "logistic", "auroc", subset)[0]
        m_easix = _estimate(ev, "m_easix", "auroc", subset)[0]
        row = ev.metrics.query("subset == @subset and predictor == @MODEL").iloc[0]
        events = int(row["n_events"])
        if subset != "overall" and not np.isfinite(gap):
            unassessable.append(f"{subset} ({events} events)")
        elif subset != "overall":
            shortfalls[subset] = (-gap, events)
        print(
            f"{subset:<8} {int(row['n_rows']):>6} {events:>6} {auroc:>7.3f} "
            f"{truth:>7.3f} {gap:>+8.3f} ({lo:+.3f}, {hi:+.3f}) {slope:>6.2f} "
            f"{true_slope:>8.2f} {logistic:>8.3f} {m_easix:>8.3f}"
        )
    print("  gap = model AUROC - true-risk AUROC on the same rows (paired bootstrap CI)")

    overall = {name: ev.value(name, "auroc") for name in (MODEL, TRUE_RISK, "logistic", "m_easix")}
    slope = ev.value(MODEL, "calibration_slope")
    intercept = ev.value(MODEL, "calibration_intercept")
    print(
        f"overall: AUROC {overall[MODEL]:.4f} (true risk {overall[TRUE_RISK]:.4f}), "
        f"calibration slope {slope:.3f}, intercept {intercept:+.3f}, "
        f"logistic AUROC {overall['logistic']:.4f}, m-EASIX AUROC {overall['m_easix']:.4f}"
    )

    verdicts = {}
    missed = {k: v for k, v in shortfalls.items() if v[0] > TARGET_GAP}
    ok = not missed
    verdicts[f"AUROC within {TARGET_GAP} of the true risk at every landmark"] = ok
    worst = max(shortfalls, key=lambda k: shortfalls[k][0])
    detail = (
        f"largest shortfall {shortfalls[worst][0]:.3f} at {worst}"
        if ok
        else "missed at "
        + ", ".join(f"{k} (shortfall {v[0]:.3f}, {v[1]} events)" for k, v in missed.items())
    )
    if unassessable:
        detail += f"; no AUROC at {', '.join(unassessable)}"
    print(
        f"target AUROC within {TARGET_GAP} of the true risk at every landmark: {verdict(ok)} "
        f"({detail})"
    )
    low, high = TARGET_SLOPE
    ok = low <= slope <= high
    verdicts[f"calibration slope {low}-{high}"] = ok
    print(f"target calibration slope {low}-{high}: {verdict(ok)} (overall slope {slope:.3f})")
    ok = overall[MODEL] > overall["logistic"] and overall[MODEL] > overall["m_easix"]
    verdicts["better than both baselines"] = ok
    print(
        f"target better than both baselines: {verdict(ok)} (model {overall[MODEL]:.4f} vs "
        f"logistic {overall['logistic']:.4f} [{overall[MODEL] - overall['logistic']:+.4f}], "
        f"m-EASIX {overall['m_easix']:.4f} [{overall[MODEL] - overall['m_easix']:+.4f}])"
    )
    return verdicts


def report_time(result, seconds: float, steps, n_patients: int, load: tuple) -> bool:
    from evaluation.held_out import MODEL, TRUE_RISK

    ev = result.evaluation
    print()
    print(
        f"Time: train() on {n_patients:,} patients ({ev.meta['n_patients']:,} held out, "
        f"{len(result.test):,} test rows)"
    )
    width = max(44, *(len(name) for name, _ in steps))
    print(f"{'phase (result.timings)':<{width}} {'seconds':>8}")
    print("-" * (width + 9))
    for name, value in result.timings.items():
        print(f"{name:<{width}} {value:>8.1f}")
    print(f"{'between announced steps':<{width}} {'seconds':>8}")
    print("-" * (width + 9))
    for name, value in steps:
        print(f"{name:<{width}} {value:>8.1f}")
    print(
        f"load average (1 min) before {load[0]:.2f}, after {load[1]:.2f} on {os.cpu_count()} CPU(s)"
    )
    print(
        f"  headline: AUROC {ev.value(MODEL, 'auroc'):.4f} (true risk "
        f"{ev.value(TRUE_RISK, 'auroc'):.4f}), slope {ev.value(MODEL, 'calibration_slope'):.3f}, "
        f"gates: {result.gate.summary()}"
    )
    ok = seconds < TARGET_SECONDS
    print(
        f"target train() on {n_patients:,} patients < {TARGET_SECONDS:.0f} s: {verdict(ok)} "
        f"(wall {seconds:.1f} s)"
    )
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--patients-5k",
        type=int,
        default=6_667,
        help="cohort for the quality part (default 6667: 5000 training patients at 25%% test)",
    )
    parser.add_argument(
        "--patients-10k", type=int, default=10_000, help="cohort for the timed part (10000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="cohort and training seed (7)")
    parser.add_argument(
        "--patients-external",
        type=int,
        default=20_000,
        help="independent cohort the 5k model is also evaluated on (20000; 0: skip)",
    )
    parser.add_argument(
        "--external-seed", type=int, default=99, help="seed of the independent cohort (99)"
    )
    parser.add_argument("--workers", type=int, default=2, help="generator workers (2)")
    parser.add_argument("--tmp-dir", default=None, help="where cohorts and the store go")
    args = parser.parse_args(argv)
    if args.patients_5k < 100 or args.patients_10k < 100 or args.seed < 0 or args.workers < 1:
        parser.error("--patients-5k/--patients-10k >= 100, --seed >= 0, --workers >= 1")
    if args.patients_external and (args.patients_external < 100 or args.external_seed == args.seed):
        parser.error("--patients-external >= 100 (or 0), and --external-seed != --seed")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from icans.config import Settings
    from training.config import TrainConfig

    quiet_mlflow()

    config = TrainConfig(seed=args.seed)
    print(
        f"bench_train: {machine()}; xgboost threads {config.n_threads}, "
        f"{config.bootstrap_samples} bootstrap samples, {config.cv_folds}-fold CV, "
        f"test fraction {config.test_fraction}",
        flush=True,
    )
    with scratch_dir("train", args.tmp_dir) as root:
        small, large = root / "cohort-5k", root / "cohort-10k"
        print("generating cohorts ...", flush=True)
        _generate(small, args.patients_5k, args.seed, args.workers)
        _generate(large, args.patients_10k, args.seed, args.workers)

        settings = Settings(tracking_uri=store_uri(root))
        tracking_store(root, settings, [config.experiment])

        print(f"training on {args.patients_5k:,} patients ...", flush=True)
        result, seconds, _ = _run_train(small, config, settings)
        print(f"  done in {seconds:.1f} s", flush=True)
        describe_fit(result, args.patients_5k)
        print(f"quality gates: {result.gate.summary()} (promoted: {result.promoted})")
        verdicts = {
            f"held-out: {k}": v
            for k, v in report_quality(result.evaluation, "Held-out patients of that run").items()
        }
        if args.patients_external:
            external = root / "cohort-external"
            print(
                f"\ngenerating an independent cohort of {args.patients_external:,} patients "
                f"(seed {args.external_seed}) ...",
                flush=True,
            )
            _generate(external, args.patients_external, args.external_seed, args.workers)
            ev = _assess(result, external, config, settings)
            title = (
                f"Independent cohort (the icans evaluate path, model v{result.model_version} "
                f"trained on the {args.patients_5k:,}-patient cohort)"
            )
            verdicts |= {f"independent: {k}": v for k, v in report_quality(ev, title).items()}

        print(f"\ntraining on {args.patients_10k:,} patients (timed) ...", flush=True)
        load_before = os.getloadavg()[0]
        result, seconds, steps = _run_train(large, config, settings)
        load_after = os.getloadavg()[0]
        verdicts[f"train() on {args.patients_10k:,} patients < {TARGET_SECONDS:.0f} s"] = (
            report_time(result, seconds, steps, args.patients_10k, (load_before, load_after))
        )
    print()
    print(targets_line(verdicts))


if __name__ == "__main__":
    main()
