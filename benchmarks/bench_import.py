"""Benchmark validating and importing a centre's cohort: wall time and peak memory per size.

Run from the repository root::

    uv run python benchmarks/bench_import.py                 # 100,000 patients, CSV and Parquet
    uv run python benchmarks/bench_import.py 10000 100000 --formats csv

Set-up (not timed): a synthetic cohort of the size is generated (no true risk) and its four
tables copied into a source directory in the import format, generator-only columns included
(the importer must read and ignore them, as it would a centre's extra columns). Timed, each in a
fresh process so memory is that run's own: :func:`cohort.importer.validate_source` alone, then
:func:`cohort.importer.import_cohort` (which validates again and writes). Target (issue 13):
100,000 patients import and validate in under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from bench_support import machine, peak_rss_mib, run_in_child, scratch_dir, targets_line

TARGET_SECONDS = 60.0
TABLES = ("patients", "daily", "measurements", "outcomes")


def _validate(src: str) -> tuple[float, float]:
    from cohort.importer import validate_source

    start = time.perf_counter()
    validate_source(Path(src))
    return time.perf_counter() - start, peak_rss_mib()


def _import(src: str, out: str) -> tuple[float, float]:
    from cohort.importer import import_cohort

    start = time.perf_counter()
    import_cohort(Path(src), Path(out))
    return time.perf_counter() - start, peak_rss_mib()


def _source(n: int, fmt: str, root: Path) -> tuple[Path, int]:
    """A generated cohort's tables as an import source directory; its size in MiB."""
    from data.synthetic.cohort import CohortSpec, generate_cohort

    gen = root / f"gen-{fmt}-{n}"
    generate_cohort(gen, CohortSpec(n_patients=n, seed=7, fmt=fmt, with_true_risk=False), workers=2)
    src = root / f"src-{fmt}-{n}"
    src.mkdir()
    for name in TABLES:
        shutil.copy(gen / f"{name}.{fmt}", src / f"{name}.{fmt}")
    shutil.rmtree(gen)
    return src, sum(p.stat().st_size for p in src.iterdir()) >> 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet"])
    args = parser.parse_args()
    print(machine())
    print(
        f"{'patients':>9} {'format':>7} {'MiB':>5} {'validate s':>10} {'RSS MiB':>8} "
        f"{'import s':>9} {'RSS MiB':>8} {'import/target':>13}"
    )
    verdicts = {}
    with scratch_dir("import") as root:
        for n in args.sizes:
            for fmt in args.formats:
                src, size = _source(n, fmt, root)
                v_s, v_rss = run_in_child(_validate, str(src), what="validate")
                i_s, i_rss = run_in_child(_import, str(src), str(root / "out"), what="import")
                shutil.rmtree(root / "out")
                shutil.rmtree(src)
                print(
                    f"{n:>9,} {fmt:>7} {size:>5} {v_s:>10.1f} {v_rss:>8.0f} {i_s:>9.1f} "
                    f"{i_rss:>8.0f} {i_s / TARGET_SECONDS:>13.2f}"
                )
                if n == 100_000:
                    verdicts[f"100,000 patients ({fmt}) under {TARGET_SECONDS:.0f} s"] = (
                        i_s < TARGET_SECONDS
                    )
    if verdicts:
        print(targets_line(verdicts))


if __name__ == "__main__":
    main()
