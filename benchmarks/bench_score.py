"""Batch scoring (``icans score``): rows per second and peak memory, chunked against whole.

Run from the repository root::

    uv run python benchmarks/bench_score.py                   # ~1,000,000 landmark rows
    uv run python benchmarks/bench_score.py --patients 20000  # a quick look

Setup (not timed): a synthetic cohort (Parquet, real-world case mix, no true-risk table) of
``--patients`` patients (160,000 by default: about 1,000,000 landmark rows on the 7 default
landmark days), and a model trained with the fast configuration of ``bench_serving.py`` on
3,000 other patients, registered in a temporary sqlite store.

Timed, each in a fresh process (so its peak RSS is its own), side by side in one run:

* ``chunked``: :func:`scoring.batch.score_cohort` as ``icans score`` runs it, 5,000 patients
  at a time, with the per-input contributions (``--explain``);
* ``whole``: the same with every patient in one chunk, i.e. what scoring costs when the whole
  cohort's landmark rows are built at once (skipped with ``--no-whole``; it needs several GB
  at 1,000,000 rows).

Figures: landmark rows, seconds, rows per second, peak RSS (MiB) and the ratio of the two
peaks. Both outputs are compared (the same scores, bit for bit). The target of issue 16 is to
report the figures for 1,000,000 rows in bounded memory (the chunked peak must not grow with
the cohort: compare runs with different ``--patients``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_serving import _setup_model  # noqa: E402
from bench_support import (  # noqa: E402
    generate_timed,
    machine,
    peak_rss_mib,
    quiet_mlflow,
    run_in_child,
    scratch_dir,
)


def _score(cohort: Path, out: Path, settings, chunk: int) -> tuple[int, float, float]:
    """In a fresh process: (rows, seconds, peak RSS MiB) of one scoring run."""
    warnings.simplefilter("ignore")
    quiet_mlflow()
    from scoring.batch import score_cohort

    started = time.perf_counter()
    summary = score_cohort(
        cohort, settings.model_uri, out, settings, explain=True, patients_per_chunk=chunk
    )
    return summary.rows, time.perf_counter() - started, peak_rss_mib()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=160_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--no-whole", action="store_true", help="skip the one-chunk run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp-dir", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    quiet_mlflow()
    print(machine(), flush=True)
    with scratch_dir("score", args.tmp_dir) as root:
        settings, version, _ = _setup_model(root / "train", 3_000, args.seed, 2)
        cohort = root / "cohort"
        _, seconds = generate_timed(
            cohort, args.patients, args.seed + 1, workers=2, with_true_risk=False
        )
        print(f"  scoring cohort: {args.patients:,} patients generated in {seconds:.1f} s")
        runs = [("chunked", args.chunk)] + ([] if args.no_whole else [("whole", args.patients)])
        results = {}
        for label, chunk in runs:
            out = root / f"{label}.parquet"
            rows, secs, peak = run_in_child(_score, cohort, out, settings, chunk, what=label)
            results[label] = (rows, secs, peak, out)
            print(
                f"  {label:8s} chunk {chunk:>9,} patients: {rows:,} rows in {secs:.1f} s "
                f"({rows / secs:,.0f} rows/s), peak RSS {peak:,.0f} MiB",
                flush=True,
            )
        if "whole" in results:
            import pandas as pd

            a = pd.read_parquet(results["chunked"][3]).sort_values(["patient_id", "landmark_day"])
            b = pd.read_parquet(results["whole"][3]).sort_values(["patient_id", "landmark_day"])
            same = a.reset_index(drop=True).equals(b.reset_index(drop=True))
            ratio = results["whole"][2] / results["chunked"][2]
            print(f"  peak RSS whole / chunked: {ratio:.2f}x; outputs identical: {same}")
        print(f"  model version {version}; load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
