"""Benchmark synthetic cohort generation: wall time, throughput and peak memory per size.

Run from the repository root::

    uv run python benchmarks/bench_cohort.py --compare-workers
    uv run python benchmarks/bench_cohort.py 5000 50000 --workers 2
    uv run python benchmarks/bench_cohort.py --million --compare-workers

Each (size, workers) run happens in a fresh child process (multiprocessing "spawn"), so the
peak RSS reported is that run's own high-water mark (``getrusage(RUSAGE_SELF).ru_maxrss`` read
inside the child), not the benchmark driver's. With ``workers > 1`` the block-generating worker
processes are children of that child; the largest of them is reported in a note under the table
(``RUSAGE_CHILDREN`` gives the maximum over waited-for descendants, not their sum).

The call timed is :func:`data.synthetic.cohort.generate_cohort` with its defaults (Parquet,
true risk on, real-world case mix, seed 7) into a temporary directory that is deleted afterwards.
Interpreter start-up and imports are not timed; the per-process backward table of the true risk
is (every run starts cold).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench_support import generate_timed, peak_rss_mib, run_in_child, scratch_dir

DEFAULT_SIZES = (10_000, 100_000)
MILLION = 1_000_000


@dataclass(frozen=True)
class Run:
    size: int
    workers: int
    seconds: float
    peak_rss_mib: float
    worker_peak_rss_mib: float

    @property
    def patients_per_second(self) -> float:
        return self.size / self.seconds


def _child(size: int, workers: int, seed: int, tmp_root: str | None) -> tuple[float, float, float]:
    """Runs in a fresh process: generate one cohort; (seconds, RSS, largest worker's RSS)."""
    with scratch_dir("cohort", tmp_root) as tmp:
        _, seconds = generate_timed(tmp / "cohort", size, seed, workers)
    return seconds, peak_rss_mib(), peak_rss_mib(children=True)


def run_one(size: int, workers: int, seed: int = 7, tmp_root: str | None = None) -> Run:
    """Generate ``size`` patients with ``workers`` processes in a fresh child process."""
    what = f"benchmark child for size={size}, workers={workers}"
    seconds, rss, worker_rss = run_in_child(_child, size, workers, seed, tmp_root, what=what)
    return Run(size, workers, seconds, rss, worker_rss if workers > 1 else 0.0)


def format_table(runs: list[Run]) -> str:
    header = "size | workers | seconds | patients/s | peak RSS MiB"
    lines = [header, "-" * len(header)]
    for r in runs:
        lines.append(
            f"{r.size:,} | {r.workers} | {r.seconds:.2f} | "
            f"{r.patients_per_second:,.0f} | {r.peak_rss_mib:,.0f}"
        )
    return "\n".join(lines)


def format_notes(runs: list[Run]) -> list[str]:
    notes = []
    for r in runs:
        if r.workers > 1 and r.worker_peak_rss_mib == 0:
            notes.append(
                f"size {r.size:,}, workers {r.workers}: a single block, generated in-process "
                "(no worker processes started)"
            )
        elif r.workers > 1:
            notes.append(
                f"size {r.size:,}, workers {r.workers}: largest worker process peaked at "
                f"{r.worker_peak_rss_mib:,.0f} MiB (in addition to the {r.peak_rss_mib:,.0f} "
                "MiB of the writing process)"
            )
    by_size: dict[int, dict[int, Run]] = {}
    for r in runs:
        by_size.setdefault(r.size, {})[r.workers] = r
    for size, per_workers in by_size.items():
        if 1 in per_workers and 2 in per_workers:
            ratio = per_workers[2].patients_per_second / per_workers[1].patients_per_second
            notes.append(f"size {size:,}: 2-worker / 1-worker throughput = {ratio:.2f}x")
    return notes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time generate_cohort (Parquet, true risk on) at several cohort sizes."
    )
    parser.add_argument(
        "sizes",
        nargs="*",
        type=int,
        default=list(DEFAULT_SIZES),
        help="cohort sizes in patients (default: 10000 100000)",
    )
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 patients")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--compare-workers",
        action="store_true",
        help="run every size with 1 and with 2 workers and report the throughput ratio",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--tmp-dir", default=None, help="where the temporary cohorts are written (default: system)"
    )
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.sizes):
        parser.error("sizes must be positive")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = list(args.sizes) + ([MILLION] if args.million and MILLION not in args.sizes else [])
    worker_counts = sorted({1, 2, args.workers}) if args.compare_workers else [args.workers]
    print(
        f"generate_cohort: Parquet, true risk on, real-world case mix, seed {args.seed}; "
        "one fresh process per run",
        flush=True,
    )
    runs = []
    for size in sizes:
        for workers in worker_counts:
            print(f"  running size {size:,} with {workers} worker(s) ...", flush=True)
            runs.append(run_one(size, workers, args.seed, args.tmp_dir))
    print()
    print(format_table(runs))
    notes = format_notes(runs)
    if notes:
        print()
        print("\n".join(notes))


if __name__ == "__main__":
    main()
