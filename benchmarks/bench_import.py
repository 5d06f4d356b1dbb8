"""Benchmark validating and importing a centre's cohort: wall time and peak memory per size.

Run from the repository root::

    uv run python benchmarks/bench_import.py                 # 100,000 patients, CSV and Parquet
    uv run python benchmarks/bench_import.py 10000 100000 --formats csv
    uv run python benchmarks/bench_import.py 10000 --formats csv --observations 100

Set-up (not timed): a synthetic cohort of the size is generated (no true risk) and its four
tables copied into a source directory in the import format, generator-only columns included
(the importer must read and ignore them, as it would a centre's extra columns). Timed, each in a
fresh process so memory is that run's own: :func:`cohort.importer.validate_source` alone, then
:func:`cohort.importer.import_cohort` (which validates again and writes). Target (issue 13):
100,000 patients import and validate in under 60 s on 2 cores.

``--observations K``: the source also holds a synthetic long export of the daily charted series,
``observations.<format>``, about K rows per patient (100: some ten million rows for 100,000
patients) on the generated cohort's charted days, in a mix of units (CRP mg/dL, creatinine
umol/L, °F, fibrinogen g/L), several temperatures and scores a day; the daily table's own
columns of those series are dropped, so the import pivots them from the observations.
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


def _source(n: int, fmt: str, root: Path, per_patient: int = 0) -> tuple[Path, int]:
    """A generated cohort's tables as an import source directory (with a long export of the
    daily series of about ``per_patient`` rows a patient, if not 0); its size in MiB."""
    from data.synthetic.cohort import CohortSpec, generate_cohort

    gen = root / f"gen-{fmt}-{n}"
    generate_cohort(gen, CohortSpec(n_patients=n, seed=7, fmt=fmt, with_true_risk=False), workers=2)
    src = root / f"src-{fmt}-{n}"
    src.mkdir()
    for name in TABLES:
        shutil.copy(gen / f"{name}.{fmt}", src / f"{name}.{fmt}")
    shutil.rmtree(gen)
    if per_patient:
        _observations(src, fmt, n * per_patient)
    return src, sum(p.stat().st_size for p in src.iterdir()) >> 20


def _read_table(path: Path):
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"patient_id": str})


def _write_table(frame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


# series -> (share of the rows, a plausible value in the contract's unit from a uniform u)
_SHARES = {
    "temperature_max_c": 0.2,
    "score": 0.2,  # the ICE score from 12 years, the CAPD below
    "crp_mg_per_l": 0.08,
    "ferritin_ng_per_ml": 0.07,
    "il6_pg_per_ml": 0.03,
    "platelets_10e9_per_l": 0.08,
    "fibrinogen_mg_per_dl": 0.06,
    "lymphocytes_10e9_per_l": 0.08,
    "ldh_u_per_l": 0.1,
    "creatinine_mg_per_dl": 0.1,
}
# another unit a centre may use for a share of the rows: (unit, share, value from contract unit)
_OTHER_UNITS = {
    "temperature_max_c": ("°F", 0.2, lambda c: c * 9 / 5 + 32),
    "crp_mg_per_l": ("mg/dL", 0.3, lambda v: v / 10),
    "fibrinogen_mg_per_dl": ("g/L", 0.3, lambda v: v / 100),
    "creatinine_mg_per_dl": ("µmol/L", 0.3, lambda v: v * 88.42),
}


def _observations(src: Path, fmt: str, n_rows: int) -> None:
    """A long export of the daily series on the cohort's charted days (scores that agree with
    the day's ICANS grade and the patient's age), in mixed units and file order."""
    import numpy as np
    import pandas as pd

    from cohort.observations import SERIES, accepted_units
    from icans.charting import domain_grade

    rng = np.random.default_rng(11)
    daily = _read_table(src / f"daily.{fmt}")
    patients = _read_table(src / f"patients.{fmt}")
    daily = daily.drop(columns=[c for c in SERIES if c in daily.columns])
    _write_table(daily, src / f"daily.{fmt}")
    age = patients.set_index("patient_id")["age_years"].reindex(daily["patient_id"]).to_numpy()
    row = np.sort(rng.integers(0, len(daily), n_rows))
    names = list(_SHARES)
    kind = rng.choice(len(names), n_rows, p=np.array(list(_SHARES.values())) / 1.0)
    u = rng.random(n_rows)
    grade = daily["icans_grade"].to_numpy()[row]
    child = age[row] < 12
    ice = np.where(u < 0.7, 10, np.floor(u * 11)).astype(float)
    ice = np.where(domain_grade(SERIES["ice_score"], ice) > grade, 10, ice)
    capd = np.floor(u * 12)
    capd = np.where(domain_grade(SERIES["capd_score"], capd) > grade, 0, capd)
    values = {
        "temperature_max_c": 36.2 + 3.5 * u,
        "crp_mg_per_l": 300 * u**2,
        "ferritin_ng_per_ml": 100 * np.exp(5 * u),
        "il6_pg_per_ml": np.exp(8 * u),
        "platelets_10e9_per_l": 5 + 395 * u,
        "fibrinogen_mg_per_dl": 100 + 500 * u,
        "lymphocytes_10e9_per_l": 0.05 + 5 * u,
        "ldh_u_per_l": 150 + 1350 * u,
        "creatinine_mg_per_dl": 0.4 + 2.6 * u,
    }
    series = np.array(names, dtype=object)[kind]
    series[series == "score"] = np.where(child, "capd_score", "ice_score")[series == "score"]
    value = np.full(n_rows, np.nan)
    unit = np.empty(n_rows, dtype=object)
    for name in SERIES:
        at = series == name
        v = {"ice_score": ice, "capd_score": capd}.get(name, values.get(name))
        assert v is not None
        value[at] = v[at]
        unit[at] = next(iter(accepted_units(name)))
        if name in _OTHER_UNITS:
            other, share, convert = _OTHER_UNITS[name]
            moved = at & (rng.random(n_rows) < share)
            value[moved] = convert(value[moved])
            unit[moved] = other
    frame = pd.DataFrame(
        {
            "patient_id": daily["patient_id"].to_numpy()[row],
            "day": daily["day"].to_numpy()[row],
            "series": series,
            "value": np.round(value, 3),
            "unit": unit,
        }
    )
    _write_table(frame, src / f"observations.{fmt}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet"])
    parser.add_argument(
        "--observations",
        type=int,
        default=0,
        metavar="K",
        help="add a long export of the daily series, about K rows per patient",
    )
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
                src, size = _source(n, fmt, root, args.observations)
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
